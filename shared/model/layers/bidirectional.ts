/**
 * `Bidirectional`: runs a recurrent layer forward and a copy of it backward over the sequence and
 * merges the two outputs (`merge_mode`: concat, sum, mul, ave). With `returnSequences` the backward
 * outputs are put back in forward time order before the merge, as Keras does. Weights: the forward
 * layer's, then the backward layer's, stored in Keras's `forward_layer/cell` and `backward_layer/cell`.
 * When the layer returns its states, a call gives `[output, ...forward states, ...backward states]`.
 */
import { tf } from "../tf.ts";
import { Layer, type LayerOptions, type Shape, type SymbolicTensor, type WeightSpec } from "./layer.ts";
import type { Recurrent } from "./recurrent.ts";

export type MergeMode = "concat" | "sum" | "mul" | "ave";

export interface BidirectionalOptions extends LayerOptions {
  /** @default "concat" */
  mergeMode?: MergeMode;
  /** The backward layer; by default a copy of `layer` with `goBackwards` flipped. */
  backwardLayer?: Recurrent;
}

const MERGE_MODES: readonly MergeMode[] = ["concat", "sum", "mul", "ave"];

/** `L`: the wrapped layer's type, whose `returnState` types {@link apply}. */
export class Bidirectional<L extends Recurrent = Recurrent> extends Layer {
  readonly className = "Bidirectional";
  readonly forwardLayer: L;
  readonly backwardLayer: Recurrent;
  readonly mergeMode: MergeMode;

  /** `layer` runs forward; the backward layer is `backwardLayer` or a copy of `layer` run backward. */
  constructor(layer: L, opts: BidirectionalOptions = {}) {
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
    for (const key of ["returnSequences", "returnState"] as const) {
      if (this.backwardLayer[key] !== layer[key]) {
        throw new RangeError(
          `Cannot create a Bidirectional layer as the forward and backward layers differ in ${key}: ` +
            "give both the same value",
        );
      }
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

  /** The merged output's shape, then with `returnState` the forward layer's states and the backward's. */
  override computeOutputShapes(inputShapes: Shape[]): Shape[] {
    const states = (layer: Recurrent) => layer.computeOutputShapes(inputShapes).slice(1);
    return [
      this.computeOutputShape(inputShapes),
      ...states(this.forwardLayer),
      ...states(this.backwardLayer),
    ];
  }

  /**
   * Calls the layer on symbolic tensors: `[output, ...forward states, ...backward states]` when the
   * wrapped layer has `returnState: true`, else the output. TypeScript types the list only when the
   * wrapped layer is made first (`const lstm = new layers.LSTM(8, { returnState: true })`); a layer made
   * inside the call is typed as returning one tensor, so use {@link applyAll} there.
   */
  override apply(
    this: Bidirectional<Recurrent<true>>,
    inputs: SymbolicTensor | SymbolicTensor[],
  ): SymbolicTensor[];
  override apply(inputs: SymbolicTensor | SymbolicTensor[]): SymbolicTensor;
  override apply(inputs: SymbolicTensor | SymbolicTensor[]): SymbolicTensor | SymbolicTensor[] {
    const outputs = this.applyAll(inputs);
    return this.forwardLayer.returnState ? outputs : outputs[0]!;
  }

  call(inputs: tf.Tensor[], weights: tf.Tensor[]): tf.Tensor {
    return this.callAll(inputs, weights)[0]!;
  }

  override callAll(inputs: tf.Tensor[], weights: tf.Tensor[]): tf.Tensor[] {
    const n = this.forwardLayer.weightSpecs.length;
    const [forward, ...forwardStates] = this.forwardLayer.callAll(inputs, weights.slice(0, n));
    const [backward, ...backwardStates] = this.backwardLayer.callAll(inputs, weights.slice(n));
    return [this.merge(forward!, backward!), ...forwardStates, ...backwardStates];
  }

  private merge(forward: tf.Tensor, backwardOutput: tf.Tensor): tf.Tensor {
    const backward = this.backwardLayer.returnSequences ? tf.reverse(backwardOutput, 1) : backwardOutput;
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
