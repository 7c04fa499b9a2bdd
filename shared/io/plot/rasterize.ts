/**
 * SVG → PNG with resvg compiled to WebAssembly. Text is set in DejaVu Sans, read from the
 * `dejavu-fonts-ttf` package: no system fonts, native addons or extra permissions are needed
 * (only `--allow-read` for the wasm and font files).
 *
 * @module
 */

import type { Resvg } from "npm:@resvg/resvg-wasm@2.6.2";

/** The font family the renderer embeds; SVG text should ask for it. */
export const FONT_FAMILY = "DejaVu Sans";

interface Rasterizer {
  readonly Resvg: typeof Resvg;
  readonly font: Uint8Array;
}

/**
 * resvg-wasm keeps one WebAssembly instance per process and refuses a second `initWasm`, so the
 * loaded module is shared by every caller of {@linkcode svgToPng}; it is created on first use.
 */
let rasterizer: Promise<Rasterizer> | undefined;

async function loadRasterizer(): Promise<Rasterizer> {
  // Both packages are in the module graph once imported, so their files resolve to local paths,
  // under node_modules or Deno's npm cache alike.
  const [resvg] = await Promise.all([
    import("npm:@resvg/resvg-wasm@2.6.2"),
    import("npm:dejavu-fonts-ttf@2.37.3/package.json", { with: { type: "json" } }),
  ]);
  const [wasm, font] = await Promise.all([
    Deno.readFile(new URL(import.meta.resolve("npm:@resvg/resvg-wasm@2.6.2/index_bg.wasm"))),
    Deno.readFile(
      new URL("ttf/DejaVuSans.ttf", import.meta.resolve("npm:dejavu-fonts-ttf@2.37.3/package.json")),
    ),
  ]);
  await resvg.initWasm(wasm);
  return { Resvg: resvg.Resvg, font };
}

/**
 * Renders an SVG document to PNG bytes at the SVG's own pixel size, on an opaque white background.
 *
 * @example
 * ```ts
 * const png = await svgToPng('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
 * ```
 */
export async function svgToPng(svg: string): Promise<Uint8Array> {
  rasterizer ??= loadRasterizer();
  let loaded: Rasterizer;
  try {
    loaded = await rasterizer;
  } catch (error) {
    rasterizer = undefined;
    throw error;
  }
  const image = new loaded.Resvg(svg, {
    background: "white",
    fitTo: { mode: "original" },
    font: {
      fontBuffers: [loaded.font],
      defaultFontFamily: FONT_FAMILY,
      sansSerifFamily: FONT_FAMILY,
    },
  });
  try {
    const rendered = image.render();
    try {
      return rendered.asPng();
    } finally {
      rendered.free();
    }
  } finally {
    image.free();
  }
}
