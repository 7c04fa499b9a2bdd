import assert from "node:assert/strict";
import { type MetricSpec, resolveMetric } from "../shared/model/mod.ts";
import { evalLogs, RunningMetrics } from "./running_metrics.ts";

const ACCURACY: MetricSpec[] = [resolveMetric("accuracy", "sparse_categorical_crossentropy", 3)];

Deno.test("running means weigh each step by its samples, under Keras's log names", () => {
  const running = new RunningMetrics(ACCURACY);
  assert.deepEqual(running.logs(), {});
  running.add({ count: 4, lossSum: 4, metricSums: [1], regLoss: 0.5 });
  running.add({ count: 2, lossSum: 5, metricSums: [2], regLoss: 0.25 });
  assert.equal(running.seen, 6);
  // loss: 9 / 6 + (0.5·4 + 0.25·2) / 6; accuracy: 3 / 6.
  assert.deepEqual(running.logs(), { accuracy: 0.5, loss: 1.5 + 2.5 / 6 });
});

Deno.test("running metrics resumed from saved sums continue as if never stopped", () => {
  const steps = [
    { count: 3, lossSum: 1.5, metricSums: [2], regLoss: 0.1 },
    { count: 3, lossSum: 0.75, metricSums: [3], regLoss: 0.2 },
    { count: 1, lossSum: 0.125, metricSums: [0], regLoss: 0.3 },
  ];
  const whole = new RunningMetrics(ACCURACY);
  steps.forEach((s) => whole.add(s));
  const first = new RunningMetrics(ACCURACY);
  first.add(steps[0]!);
  const saved = first.sums();
  first.add(steps[1]!); // changes after the snapshot must not reach it
  // A whole TrainingPosition may be passed: only the sums are taken.
  const resumed = new RunningMetrics(ACCURACY, { ...saved, epoch: 4, batch: 9 } as typeof saved);
  assert.deepEqual(Object.keys(resumed.sums()).sort(), ["lossSum", "metricSums", "regSum", "seen"]);
  steps.slice(1).forEach((s) => resumed.add(s));
  assert.deepEqual(resumed.logs(), whole.logs());
  assert.throws(
    () => new RunningMetrics([], saved),
    /the compiled metrics keep 0 sums but the saved sums hold 1: resume with the same compile options/,
  );
});

Deno.test("evalLogs divides sums by the count and prefixes validation names", () => {
  assert.deepEqual(evalLogs(ACCURACY, { count: 4, lossSum: 2, metricSums: [3], regLoss: 0.5 }, "val_"), {
    val_accuracy: 0.75,
    val_loss: 1,
  });
});

Deno.test("confusion metrics sum their counts over steps and compute the value once, as Keras's state variables", () => {
  const metrics: MetricSpec[] = [
    resolveMetric("precision", "binary_crossentropy", 1),
    resolveMetric("recall", "binary_crossentropy", 1),
  ];
  const running = new RunningMetrics(metrics);
  // (tp, fp, fn) per step, for each metric.
  running.add({ count: 4, lossSum: 0, metricSums: [2, 1, 0, 2, 1, 0], regLoss: 0 });
  running.add({ count: 4, lossSum: 0, metricSums: [0, 1, 3, 0, 1, 3], regLoss: 0 });
  // Precision 2 / (2 + 2), recall 2 / (2 + 3): not the means of the steps' 2/3 and 0.
  assert.deepEqual(running.logs(), { precision: 0.5, recall: 0.4, loss: 0 });
});
