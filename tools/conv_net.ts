/** The small conv net of the benchmark and of `tools/train_conv.ts`: two Conv2D + MaxPooling2D blocks. */
import { layers } from "../shared/model/mod.ts";
import { Sequential } from "../coordinator/model.ts";

/** Conv2D(32,3) → MaxPool → Conv2D(64,3) → MaxPool → Flatten → Dense(128) → Dense(10, softmax). */
export function convNet(seed: number): Sequential {
  return new Sequential([
    new layers.Conv2D(32, 3, { activation: "relu", inputShape: [28, 28, 1] }),
    new layers.MaxPooling2D(),
    new layers.Conv2D(64, 3, { activation: "relu" }),
    new layers.MaxPooling2D(),
    new layers.Flatten(),
    new layers.Dense(128, { activation: "relu" }),
    new layers.Dense(10, { activation: "softmax" }),
  ], { seed });
}
