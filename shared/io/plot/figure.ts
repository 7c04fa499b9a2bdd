/**
 * A row of line-chart panels laid out like a matplotlib figure (`plt.subplots(1, n)` +
 * `tight_layout`), described as a Vega specification and rendered to SVG by Vega's headless view.
 * Sizes are pixels at 100 dpi: 12 pt titles are 17 px, 10 pt labels are 14 px.
 *
 * @module
 */

import type { Spec } from "npm:vega@6.4.0";
import { FONT_FAMILY } from "./rasterize.ts";
import { textWidth } from "./text_width.ts";

/** One line of a panel. */
export interface LineSeries {
  /** Legend label, e.g. `"Training Loss"`. */
  readonly label: string;
  /** One value per epoch; the x coordinate is the index (epoch 0, 1, …). Non-finite values leave gaps. */
  readonly values: readonly number[];
  /** CSS color of the line. */
  readonly color: string;
}

/** One axes box with its title, axis labels, lines and legend. */
export interface Panel {
  /** Title above the box, e.g. `"Loss Over Epochs"`. */
  readonly title: string;
  /** Label of the x axis. */
  readonly xLabel: string;
  /** Label of the y axis. */
  readonly yLabel: string;
  /** Lines, drawn in order and listed in the legend in order. */
  readonly series: readonly LineSeries[];
}

/** A figure: panels side by side, with an optional title over all of them. */
export interface Figure {
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** Title centered over the whole figure (matplotlib `suptitle`). */
  readonly title?: string;
  /** Panels from left to right. */
  readonly panels: readonly Panel[];
}

const FONT = `${FONT_FAMILY}, sans-serif`;
const TITLE_SIZE = 17;
const LABEL_SIZE = 14;
const LINE_WIDTH = 2;
const MARGIN = { left: 82, right: 18, top: 42, bottom: 62, gap: 92, suptitle: 34 };
const LEGEND = { inset: 7, padding: 7, handle: 28, handleGap: 11, rowHeight: 22 };

interface Box {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/**
 * Renders `figure` to an SVG document of exactly `figure.width` × `figure.height` pixels.
 *
 * @example
 * ```ts
 * const svg = await renderFigureSvg({ width: 700, height: 500, panels: [{
 *   title: "Loss Over Epochs", xLabel: "Epoch", yLabel: "Loss",
 *   series: [{ label: "Training Loss", values: [0.9, 0.5, 0.4], color: "#1f77b4" }],
 * }] });
 * ```
 */
export async function renderFigureSvg(figure: Figure): Promise<string> {
  const vega = await import("npm:vega@6.4.0");
  const view = new vega.View(vega.parse(figureSpec(figure)), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The Vega specification of `figure`: fixed layout, no autosize, one group per panel. */
export function figureSpec(figure: Figure): Spec {
  const count = figure.panels.length;
  if (count === 0) {
    throw new RangeError("Cannot draw a figure as it must have at least one panel: current value is 0");
  }
  const top = MARGIN.top + (figure.title === undefined ? 0 : MARGIN.suptitle);
  const panelWidth = (figure.width - MARGIN.left - MARGIN.right - MARGIN.gap * (count - 1)) / count;
  const panelHeight = figure.height - top - MARGIN.bottom;
  if (panelWidth < 50 || panelHeight < 50) {
    throw new RangeError(
      `Cannot draw ${count} panel(s) in ${figure.width}x${figure.height} px as each needs at least ` +
        `50x50 px: make the figure larger`,
    );
  }
  const data = figure.panels.flatMap((panel, p) =>
    panel.series.map((series, s) => ({
      name: seriesDataName(p, s),
      values: series.values.map((value, epoch) => ({ epoch, value })),
    }))
  );
  const marks: NonNullable<Spec["marks"]> = figure.panels.map((panel, p) =>
    panelMark(panel, p, {
      x: MARGIN.left + p * (panelWidth + MARGIN.gap),
      y: top,
      width: panelWidth,
      height: panelHeight,
    })
  );
  if (figure.title !== undefined) {
    marks.push({
      type: "text",
      encode: {
        enter: {
          x: { value: figure.width / 2 },
          y: { value: MARGIN.suptitle / 2 + 4 },
          text: { value: figure.title },
          align: { value: "center" },
          baseline: { value: "middle" },
          font: { value: FONT },
          fontSize: { value: TITLE_SIZE },
          fill: { value: "#000000" },
        },
      },
    });
  }
  return {
    $schema: "https://vega.github.io/schema/vega/v6.json",
    width: figure.width,
    height: figure.height,
    padding: 0,
    autosize: "none",
    background: "white",
    data,
    marks,
  };
}

function seriesDataName(panel: number, series: number): string {
  return `panel${panel}_series${series}`;
}

type GroupMark = Extract<NonNullable<Spec["marks"]>[number], { type: "group" }>;

function panelMark(panel: Panel, index: number, box: Box): GroupMark {
  const xDomain = paddedDomain(panel.series.flatMap((s) => s.values.map((_, i) => i)));
  const yDomain = paddedDomain(panel.series.flatMap((s) => s.values));
  const axisStyle = {
    grid: true,
    gridColor: "#b0b0b0",
    gridOpacity: 0.3,
    gridWidth: 0.8,
    domain: false,
    ticks: true,
    tickColor: "#000000",
    tickSize: 3.5,
    tickWidth: 0.8,
    labelFont: FONT,
    labelFontSize: LABEL_SIZE,
    labelColor: "#000000",
    labelPadding: 3.5,
    labelFlush: false,
    labelOverlap: true,
    titleFont: FONT,
    titleFontSize: LABEL_SIZE,
    titleFontWeight: "normal",
    titleColor: "#000000",
    titlePadding: 5,
    zindex: 0,
  } as const;
  return {
    type: "group",
    name: `panel${index}`,
    encode: {
      enter: {
        x: { value: box.x },
        y: { value: box.y },
        width: { value: box.width },
        height: { value: box.height },
        fill: { value: "white" },
        stroke: { value: "#000000" },
        strokeWidth: { value: 0.8 },
      },
    },
    scales: [
      { name: "x", type: "linear", domain: xDomain, range: [0, box.width], nice: false, zero: false },
      { name: "y", type: "linear", domain: yDomain, range: [box.height, 0], nice: false, zero: false },
    ],
    axes: [
      { orient: "bottom", scale: "x", title: panel.xLabel, tickMinStep: 1, format: "d", ...axisStyle },
      { orient: "left", scale: "y", title: panel.yLabel, ...axisStyle },
    ],
    marks: [
      {
        type: "text",
        encode: {
          enter: {
            x: { value: box.width / 2 },
            y: { value: -8 },
            text: { value: panel.title },
            align: { value: "center" },
            baseline: { value: "bottom" },
            font: { value: FONT },
            fontSize: { value: TITLE_SIZE },
            fill: { value: "#000000" },
          },
        },
      },
      ...panel.series.map((series, s) => ({
        type: "line" as const,
        from: { data: seriesDataName(index, s) },
        encode: {
          enter: {
            x: { scale: "x", field: "epoch" },
            y: { scale: "y", field: "value" },
            defined: { signal: "isFinite(datum.value)" },
            stroke: { value: series.color },
            strokeWidth: { value: LINE_WIDTH },
            strokeCap: { value: "square" as const },
            strokeJoin: { value: "round" as const },
          },
        },
      })),
      ...legendMarks(panel, box, xDomain, yDomain),
    ],
  };
}

/** Data range with 5 % margins on each side (matplotlib `axes.xmargin`/`ymargin`). */
function paddedDomain(values: readonly number[]): [number, number] {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return [0, 1];
  const min = Math.min(...finite);
  const max = Math.max(...finite);
  const span = max - min;
  if (span === 0) {
    const half = Math.abs(min) * 0.05 || 0.5;
    return [min - half, max + half];
  }
  return [min - 0.05 * span, max + 0.05 * span];
}

type LegendCorner = "upper right" | "upper left" | "lower left" | "lower right";

/** A framed legend (line sample + label per series) in the corner that hides the fewest data points. */
function legendMarks(
  panel: Panel,
  box: Box,
  xDomain: [number, number],
  yDomain: [number, number],
): GroupMark[] {
  if (panel.series.length === 0) return [];
  const labelWidth = Math.max(...panel.series.map((s) => textWidth(s.label, LABEL_SIZE)));
  const width = 2 * LEGEND.padding + LEGEND.handle + LEGEND.handleGap + labelWidth;
  const height = 2 * LEGEND.padding + panel.series.length * LEGEND.rowHeight - 4;
  const points = samplePoints(panel, box, xDomain, yDomain);
  const corners: LegendCorner[] = ["upper right", "upper left", "lower left", "lower right"];
  let best = { corner: corners[0]!, hidden: Infinity };
  for (const corner of corners) {
    const frame = legendFrame(corner, box, width, height);
    const hidden = points.filter(([x, y]) =>
      x >= frame.x && x <= frame.x + frame.width && y >= frame.y && y <= frame.y + frame.height
    ).length;
    if (hidden < best.hidden) {
      best = { corner, hidden };
    }
  }
  const frame = legendFrame(best.corner, box, width, height);
  return [{
    type: "group",
    name: "legend",
    encode: {
      enter: {
        x: { value: frame.x },
        y: { value: frame.y },
        width: { value: frame.width },
        height: { value: frame.height },
        fill: { value: "white" },
        fillOpacity: { value: 0.8 },
        stroke: { value: "#cccccc" },
        strokeWidth: { value: 1 },
        cornerRadius: { value: 3 },
      },
    },
    marks: panel.series.flatMap((series, row) => {
      const y = LEGEND.padding + (row + 0.5) * LEGEND.rowHeight - 2;
      return [
        {
          type: "rule" as const,
          encode: {
            enter: {
              x: { value: LEGEND.padding },
              x2: { value: LEGEND.padding + LEGEND.handle },
              y: { value: y },
              stroke: { value: series.color },
              strokeWidth: { value: LINE_WIDTH },
            },
          },
        },
        {
          type: "text" as const,
          encode: {
            enter: {
              x: { value: LEGEND.padding + LEGEND.handle + LEGEND.handleGap },
              y: { value: y },
              text: { value: series.label },
              baseline: { value: "middle" as const },
              font: { value: FONT },
              fontSize: { value: LABEL_SIZE },
              fill: { value: "#000000" },
            },
          },
        },
      ];
    }),
  }];
}

/** Legend frame in panel coordinates (origin at the panel's top-left corner). */
function legendFrame(corner: LegendCorner, box: Box, width: number, height: number): Box {
  const right = corner.endsWith("right");
  const upper = corner.startsWith("upper");
  return {
    x: right ? box.width - LEGEND.inset - width : LEGEND.inset,
    y: upper ? LEGEND.inset : box.height - LEGEND.inset - height,
    width,
    height,
  };
}

/** Points along every line, in panel pixels, 8 per segment, for counting what a legend would hide. */
function samplePoints(
  panel: Panel,
  box: Box,
  xDomain: [number, number],
  yDomain: [number, number],
): Array<[number, number]> {
  const px = (x: number) => ((x - xDomain[0]) / (xDomain[1] - xDomain[0])) * box.width;
  const py = (y: number) => box.height - ((y - yDomain[0]) / (yDomain[1] - yDomain[0])) * box.height;
  const points: Array<[number, number]> = [];
  for (const { values } of panel.series) {
    for (let i = 0; i < values.length; i++) {
      const a = values[i]!;
      if (!Number.isFinite(a)) continue;
      points.push([px(i), py(a)]);
      const b = values[i + 1];
      if (b === undefined || !Number.isFinite(b)) continue;
      for (let k = 1; k < 8; k++) {
        const t = k / 8;
        points.push([px(i + t), py(a + t * (b - a))]);
      }
    }
  }
  return points;
}
