/**
 * Learning curves from a Keras-style `History`: the loss panel ("Loss Over Epochs") and, when the
 * model tracks a metric, a second panel for it ("Accuracy Over Epochs"), each with its training and
 * validation line — the figure the Keras chapter draws with matplotlib (`figsize=(14, 5)`, `dpi=100`).
 *
 * @module
 */

import { writeFileAtomic } from "../keras/atomic_write.ts";
import { type Figure, type LineSeries, type Panel, renderFigureSvg } from "./figure.ts";
import { svgToPng } from "./rasterize.ts";

/** What `fit` returns, or the `History` callback itself: one value per epoch for every logged key. */
export interface HistoryLike {
  /** Values per log key (`loss`, `val_loss`, `accuracy`, `val_accuracy`, …), one per epoch. */
  readonly history: Readonly<Record<string, readonly number[]>>;
}

/** Options of {@linkcode plotHistory}. */
export interface PlotHistoryOptions {
  /** Title centered above both panels. @default no title */
  title?: string;
  /**
   * Metric shown in the second panel, without the `val_` prefix (e.g. `"mae"`).
   * @default `"accuracy"`, else `"acc"`, else the first logged key that is neither a loss nor a
   * learning rate
   */
  metric?: string;
}

/** Figure size in pixels: matplotlib's `figsize=(14, 5)` at `dpi=100`. */
export const PLOT_WIDTH = 1400;
/** Figure height in pixels. */
export const PLOT_HEIGHT = 500;
/** Line colors: matplotlib's first two cycle colors (tab:blue for training, tab:orange for validation). */
export const TRAINING_COLOR = "#1f77b4";
/** Color of the validation lines. */
export const VALIDATION_COLOR = "#ff7f0e";

const FORMATS = [".png", ".svg"] as const;
const LOSS = "loss";
const VALIDATION_PREFIX = "val_";
const NOT_METRICS = new Set(["loss", "lr", "learning_rate"]);
const ACRONYMS = new Set(["mae", "mse", "rmse", "mape", "msle", "auc", "iou", "prc", "roc", "kl", "r2"]);

/**
 * Draws the learning curves of `history` and writes them to `path` as PNG (1400×500) or SVG,
 * chosen by the extension. The file is replaced atomically (temporary file, then rename).
 *
 * Panels: "Loss Over Epochs" with `loss` and `val_loss`, then "<Metric> Over Epochs" with the metric
 * and its `val_` series. A missing validation series is left out; without a metric only the loss
 * panel is drawn. x is the epoch index (0-based, as matplotlib plots a list); non-finite values
 * leave a gap.
 *
 * @throws {TypeError} when `path` does not end in `.png` or `.svg`.
 * @throws {RangeError} when `history` has nothing to draw, or `options.metric` was not logged.
 *
 * @example
 * ```ts
 * const history = await model.fit(x, y, { epochs: 15, validationSplit: 0.2 });
 * await plotHistory(history, "training_curves.png");
 * ```
 */
export async function plotHistory(
  history: HistoryLike,
  path: string,
  options: PlotHistoryOptions = {},
): Promise<void> {
  const format = formatOf(path);
  const svg = await renderFigureSvg(historyFigure(history, options));
  const bytes = format === ".svg" ? new TextEncoder().encode(svg) : await svgToPng(svg);
  await writeFileAtomic(path, bytes);
}

/** The figure {@linkcode plotHistory} draws, before rendering: panels, labels and values. */
export function historyFigure(history: HistoryLike, options: PlotHistoryOptions = {}): Figure {
  const logs = history.history;
  const panels: Panel[] = [];
  const lossPanel = curvePanel(logs, LOSS, "Loss");
  if (lossPanel !== undefined) panels.push(lossPanel);
  const metric = options.metric ?? defaultMetric(logs);
  if (metric !== undefined) {
    const metricPanel = curvePanel(logs, metric, displayName(metric));
    if (metricPanel === undefined) {
      throw new RangeError(
        `Cannot plot metric "${metric}" as the history has no "${metric}" or "${VALIDATION_PREFIX}${metric}" ` +
          `series: logged keys are ${listKeys(logs)}`,
      );
    }
    panels.push(metricPanel);
  }
  if (panels.length === 0) {
    throw new RangeError(
      `Cannot plot history as it has no loss or metric values: logged keys are ${listKeys(logs)}; ` +
        `pass the History returned by fit after at least one epoch`,
    );
  }
  return {
    width: PLOT_WIDTH,
    height: PLOT_HEIGHT,
    ...(options.title === undefined ? {} : { title: options.title }),
    panels,
  };
}

function formatOf(path: string): (typeof FORMATS)[number] {
  const lower = path.toLowerCase();
  const format = FORMATS.find((extension) => lower.endsWith(extension));
  if (format === undefined) {
    throw new TypeError(
      `Cannot plot history to "${path}" as the file extension must be one of ${FORMATS.join(", ")}: ` +
        `rename the output file`,
    );
  }
  return format;
}

/** The training and validation lines of `key`, or undefined when neither has a value. */
function curvePanel(
  logs: HistoryLike["history"],
  key: string,
  name: string,
): Panel | undefined {
  const candidates: LineSeries[] = [
    { label: `Training ${name}`, values: logs[key] ?? [], color: TRAINING_COLOR },
    { label: `Validation ${name}`, values: logs[VALIDATION_PREFIX + key] ?? [], color: VALIDATION_COLOR },
  ];
  const series = candidates.filter((s) => s.values.length > 0);
  if (series.length === 0) return undefined;
  return { title: `${name} Over Epochs`, xLabel: "Epoch", yLabel: name, series };
}

function defaultMetric(logs: HistoryLike["history"]): string | undefined {
  const names = new Set<string>();
  for (const key of Object.keys(logs)) {
    const name = key.startsWith(VALIDATION_PREFIX) ? key.slice(VALIDATION_PREFIX.length) : key;
    if (!NOT_METRICS.has(name) && (logs[key]?.length ?? 0) > 0) names.add(name);
  }
  if (names.has("accuracy")) return "accuracy";
  if (names.has("acc")) return "acc";
  return names.values().next().value;
}

/** `"accuracy"` → `"Accuracy"`, `"mae"` → `"MAE"`, `"sparse_categorical_accuracy"` → `"Sparse Categorical Accuracy"`. */
function displayName(metric: string): string {
  if (metric === "acc") return "Accuracy";
  return metric
    .split(/[_\s]+/)
    .filter((word) => word.length > 0)
    .map((word) =>
      ACRONYMS.has(word.toLowerCase()) ? word.toUpperCase() : word[0]!.toUpperCase() + word.slice(1)
    )
    .join(" ");
}

function listKeys(logs: HistoryLike["history"]): string {
  const keys = Object.keys(logs);
  return keys.length === 0 ? "none" : keys.map((key) => `"${key}"`).join(", ");
}
