import assert from "node:assert/strict";
import { inferDirection, MonitorCallback, type MonitorOptions } from "./monitor.ts";

class Probe extends MonitorCallback {
  constructor(options: MonitorOptions) {
    super("Probe", options);
  }
  protected override missingMonitorMessage(available: string): string {
    return `missing ${this.monitor}; have ${available}`;
  }
  value(logs: Record<string, number>): number | undefined {
    return this.getMonitorValue(logs);
  }
}

Deno.test("inferDirection follows the direction of Keras 3 metrics", () => {
  const cases: Array<[string, "min" | "max" | undefined]> = [
    ["loss", "min"],
    ["val_loss", "min"],
    ["output_1_loss", "min"],
    ["accuracy", "max"],
    ["val_sparse_categorical_accuracy", "max"],
    ["acc", "max"],
    ["auc", "max"],
    ["val_auc_1", "max"],
    ["precision", "max"],
    ["recall", "max"],
    ["f1_score", "max"],
    ["mean_squared_error", "min"],
    ["val_mae", "min"],
    ["categorical_crossentropy", "min"],
    ["false_negatives", "min"],
    ["true_positives", "max"],
    ["val_custom", undefined],
  ];
  for (const [name, expected] of cases) assert.equal(inferDirection(name), expected, name);
});

Deno.test("MonitorCallback signs minDelta and compares as Keras _is_improvement", () => {
  const min = new Probe({ monitor: "val_loss", minDelta: 0.1 });
  assert.equal(min.minDelta, -0.1);
  assert.equal(min.isImprovement(5, null), true);
  assert.equal(min.isImprovement(0.85, 1), true);
  assert.equal(min.isImprovement(0.95, 1), false);
  const max = new Probe({ monitor: "val_accuracy", minDelta: -0.1 });
  assert.equal(max.minDelta, 0.1);
  assert.equal(max.isImprovement(0.65, 0.5), true);
  assert.equal(max.isImprovement(0.55, 0.5), false);
  const forced = new Probe({ monitor: "val_accuracy", mode: "min" });
  assert.equal(forced.direction, "min");
  assert.equal(forced.isImprovement(0.4, 0.5), true);
});

Deno.test("MonitorCallback warns through the injected function with the available keys", () => {
  const warnings: string[] = [];
  const probe = new Probe({ monitor: "val_loss", warn: (m) => warnings.push(m) });
  assert.equal(probe.value({ val_loss: 0.5 }), 0.5);
  assert.equal(probe.value({ loss: 1, accuracy: 0.5 }), undefined);
  assert.deepEqual(warnings, ["missing val_loss; have loss,accuracy"]);
});
