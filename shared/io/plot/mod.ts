/**
 * Figures: learning curves of a training `History`, written as PNG or SVG.
 *
 * @module
 */

export {
  historyFigure,
  type HistoryLike,
  PLOT_HEIGHT,
  PLOT_WIDTH,
  plotHistory,
  type PlotHistoryOptions,
  TRAINING_COLOR,
  VALIDATION_COLOR,
} from "./plot_history.ts";
export { type Figure, figureSpec, type LineSeries, type Panel, renderFigureSvg } from "./figure.ts";
export { svgToPng } from "./rasterize.ts";
