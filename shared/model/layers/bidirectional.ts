/**
 * `Bidirectional`: runs a recurrent layer forward and a copy of it backward over the sequence and
 * merges the two outputs (`merge_mode`: concat, sum, mul, ave). With `returnSequences` the backward
 * outputs are put back in forward time order before the merge, as Keras does. Weights: the forward
 * layer's, then the backward layer's, stored in Keras's `forward_layer/cell` and `backward_layer/cell`.
 */
import { tf } from "../tf.ts";
import { Layer, type LayerOptions, type Shape, type WeightSpec } from "./layer.ts";
import type { Recurrent } from "./recurrent.ts";

export type MergeMode = "concat" | "sum" | "mul" | "ave";

export interface BidirectionalOptions extends LayerOptions {
  /** @default "concat" */
  mergeMode?: MergeMode;
  /** The backward layer; by default a copy of `layer` with `goBackwards` flipped. */
  backwardLayer?: Recurrent;
}

const MERGE_MODES: readonly MergeMode[] = ["concat", "sum", "mul", "ave"];

export class Bidirectional extends Layer {
  readonly className = "Bidirectional";
  readonly forwardLayer: Recurrent;
  readonly backwardLayer: Recurrent;
  readonly mergeMode: MergeMode;

  /** `layer` runs forward; the backward layer is `backwardLayer` or a copy of `layer` run backward. */
  constructor(layer: Recurrent, opts: BidirectionalOptions = {}) {
    super(opts);
    this.mergeMode = opts.mergeMode ?? "concat";
    if (!MERGE_MODES.includes(this.mergeMode)) {
      throw new TypeError(
        `Cannot create a Bidirectional layer as mergeMode must be one of ${MERGE_MODES.join(", ")}: ` +
          `received ${JSON.stringify(opts.mergeMode)}`,
      );
    }
    const inner = layer.name ?? snake(layer.className);
    this.forwardLayer = layer;
    if (!layer.name?.startsWith("forward_")) layer.name = `forward_${inner}`;
    if (opts.backwardLayer) this.backwardLayer = opts.backwardLayer;
    else {
      this.backwardLayer = layer.copyWith({
        name: `backward_${inner.replace(/^forward_/, "")}`,
        goBackwards: !layer.goBackwards,
      });
    }
    if (this.backwardLayer.returnSequences !== layer.returnSequences) {
      throw new RangeError(
        "Cannot create a Bidirectional layer as the forward and backward layers differ in returnSequences: " +
          "give both the same value",
      );
    }
  }

  override checkInputs(inputShapes: Shape[]): void {
    this.forwardLayer.checkInputs(inputShapes);
  }

  protected override makeWeights(inputShapes: Shape[]): WeightSpec[] {
    this.forwardLayer.build(inputShapes);
    this.backwardLayer.build(inputShapes);
    const side = (prefix: string, specs: WeightSpec[]) =>
      specs.map((s) => ({
        ...s,
        name: `${prefix}/${s.name}`,
        group: `${prefix}/${s.group ?? ""}`.replace(/\/$/, ""),
      }));
    return [
      ...side("forward_layer", this.forwardLayer.weightSpecs),
      ...side("backward_layer", this.backwardLayer.weightSpecs),
    ];
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    const out = this.forwardLayer.computeOutputShape(inputShapes);
    if (this.mergeMode !== "concat") return out;
    return [...out.slice(0, -1), 2 * out[out.length - 1]!];
  }

  call(inputs: tf.Tensor[], weights: tf.Tensor[]): tf.Tensor {
    const n = this.forwardLayer.weightSpecs.length;
    const forward = this.forwardLayer.call(inputs, weights.slice(0, n));
    let backward = this.backwardLayer.call(inputs, weights.slice(n));
    if (this.backwardLayer.returnSequences) backward = tf.reverse(backward, 1);
    switch (this.mergeMode) {
      case "concat":
        return tf.concat([forward, backward], -1);
      case "sum":
        return tf.add(forward, backward);
      case "mul":
        return tf.mul(forward, backward);
      case "ave":
        return tf.div(tf.add(forward, backward), 2);
    }
  }

  protected layerConfig(): Record<string, unknown> {
    const entry = (layer: Recurrent) => ({
      module: "keras.layers",
      class_name: layer.className,
      config: layer.getConfig(),
      registered_name: null,
      build_config: { input_shape: [null, ...layer.builtInputShapes[0]!] },
    });
    return {
      merge_mode: this.mergeMode,
      layer: entry(this.forwardLayer),
      backward_layer: entry(this.backwardLayer),
    };
  }
}

function snake(className: string): string {
  return className.replace(/(.)([A-Z][a-z]+)/g, "$1_$2").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}
