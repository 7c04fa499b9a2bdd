/** Keras weight regularizers (`regularizers.l2(0.01)`), added to the training loss. */
import { tf } from "./tf.ts";

/** An L1/L2 penalty: `l1 * sum(|w|) + l2 * sum(w²)`. */
export class Regularizer {
  readonly l1: number;
  readonly l2: number;

  constructor(opts: { l1?: number; l2?: number }) {
    this.l1 = opts.l1 ?? 0;
    this.l2 = opts.l2 ?? 0;
    for (const [k, v] of Object.entries({ l1: this.l1, l2: this.l2 })) {
      if (!Number.isFinite(v) || v < 0) {
        throw new RangeError(
          `Cannot create a regularizer as ${k} must be a finite number >= 0: received ${v}`,
        );
      }
    }
  }

  /** The penalty for one weight tensor, a scalar. */
  penalty(w: tf.Tensor): tf.Scalar {
    return tf.tidy(() => {
      let p: tf.Scalar = tf.scalar(0);
      if (this.l1 > 0) p = tf.add(p, tf.mul(this.l1, tf.sum(tf.abs(w))));
      if (this.l2 > 0) p = tf.add(p, tf.mul(this.l2, tf.sum(tf.square(w))));
      return p;
    });
  }

  /** The penalty computed on a plain array (used by the coordinator for reporting). */
  penaltyOf(w: Float32Array): number {
    let s1 = 0, s2 = 0;
    for (let i = 0; i < w.length; i++) {
      s1 += Math.abs(w[i]);
      s2 += w[i] * w[i];
    }
    return this.l1 * s1 + this.l2 * s2;
  }

  /** Keras 3 serialized form. */
  toConfig(): Record<string, unknown> {
    if (this.l1 > 0 && this.l2 > 0) {
      return {
        module: "keras.regularizers",
        class_name: "L1L2",
        config: { l1: this.l1, l2: this.l2 },
        registered_name: null,
      };
    }
    if (this.l1 > 0) {
      return {
        module: "keras.regularizers",
        class_name: "L1",
        config: { l1: this.l1 },
        registered_name: null,
      };
    }
    return { module: "keras.regularizers", class_name: "L2", config: { l2: this.l2 }, registered_name: null };
  }

  /** Reads the Keras 3 serialized form (or null). */
  static fromConfig(config: unknown): Regularizer | null {
    if (config === null || config === undefined) return null;
    const c = config as { class_name?: string; config?: { l1?: number; l2?: number } };
    if (typeof config === "string") {
      if (config === "l1") return l1();
      if (config === "l2") return l2();
      if (config === "l1_l2") return l1L2();
      throw new TypeError(`Unknown regularizer: '${config}'. Use one of: l1, l2, l1_l2`);
    }
    switch (c.class_name) {
      case "L1":
      case "L2":
      case "L1L2":
        return new Regularizer({ l1: c.config?.l1 ?? 0, l2: c.config?.l2 ?? 0 });
      default:
        throw new TypeError(`Unknown regularizer: '${c.class_name}'. Use one of: L1, L2, L1L2`);
    }
  }
}

/** `regularizers.l1(0.01)` (Keras default 0.01). */
export function l1(l1 = 0.01): Regularizer {
  return new Regularizer({ l1 });
}

/** `regularizers.l2(0.01)` (Keras default 0.01). */
export function l2(l2 = 0.01): Regularizer {
  return new Regularizer({ l2 });
}

/** `regularizers.l1_l2({ l1, l2 })` (Keras defaults 0). Exported as both `l1L2` and `l1_l2`. */
export function l1L2(opts: { l1?: number; l2?: number } = {}): Regularizer {
  return new Regularizer({ l1: opts.l1 ?? 0, l2: opts.l2 ?? 0 });
}
