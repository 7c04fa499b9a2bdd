import assert from "node:assert/strict";
import { join } from "node:path";
import { decode } from "npm:fast-png@8.0.0";
import {
  historyFigure,
  PLOT_HEIGHT,
  PLOT_WIDTH,
  plotHistory,
  TRAINING_COLOR,
  VALIDATION_COLOR,
} from "./plot_history.ts";

/** A 15-epoch history shaped like a Fashion-MNIST run: loss falls, accuracy rises, validation lags. */
function fakeHistory(epochs = 15): Record<string, number[]> {
  const history: Record<string, number[]> = { loss: [], val_loss: [], accuracy: [], val_accuracy: [] };
  for (let e = 0; e < epochs; e++) {
    history.loss!.push(0.5 * Math.exp(-e / 4) + 0.02);
    history.val_loss!.push(0.35 * Math.exp(-e / 3) + 0.07 + 0.004 * e);
    history.accuracy!.push(0.996 - 0.15 * Math.exp(-e / 3.5));
    history.val_accuracy!.push(0.975 - 0.07 * Math.exp(-e / 2.5));
  }
  return history;
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "plot_history_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

function hexToRgb(hex: string): [number, number, number] {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

interface Rgba {
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  readonly data: ArrayLike<number>;
}

interface Region {
  readonly x0: number;
  readonly x1: number;
  readonly y0: number;
  readonly y1: number;
}

/** Pixels within `tolerance` of `hex` per channel, counted in `region` (default: the whole image). */
function countColor(image: Rgba, hex: string, region?: Partial<Region>, tolerance = 12): number {
  const { x0 = 0, x1 = image.width, y0 = 0, y1 = image.height } = region ?? {};
  const [r, g, b] = hexToRgb(hex);
  let count = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = (y * image.width + x) * image.channels;
      if (
        Math.abs(image.data[i]! - r) <= tolerance && Math.abs(image.data[i + 1]! - g) <= tolerance &&
        Math.abs(image.data[i + 2]! - b) <= tolerance
      ) count++;
    }
  }
  return count;
}

Deno.test("plotHistory writes a 1400x500 PNG with both panels, both line colors and text", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "training_curves.png");
    await plotHistory({ history: fakeHistory() }, path);
    const bytes = await Deno.readFile(path);

    assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    assert.equal(new TextDecoder().decode(bytes.subarray(12, 16)), "IHDR");
    assert.equal(view.getUint32(16), PLOT_WIDTH);
    assert.equal(view.getUint32(20), PLOT_HEIGHT);
    assert.deepEqual([PLOT_WIDTH, PLOT_HEIGHT], [1400, 500]);

    const image = decode(bytes);
    assert.equal(image.width, 1400);
    assert.equal(image.height, 500);
    assert.equal(image.depth, 8);
    const total = image.width * image.height;
    const white = countColor(image, "#ffffff", {}, 2);
    assert.ok(white > total * 0.5 && white < total * 0.97, `white pixels: ${white} of ${total}`);
    const dark = countColor(image, "#000000", {}, 60);
    assert.ok(dark > 1500, `dark pixels (frames, ticks, text): ${dark}`);
    // Panel titles are centered above each panel: glyphs there prove the font was loaded.
    for (const center of [384, 1079]) {
      const title = countColor(image, "#000000", { x0: center - 80, x1: center + 80, y0: 8, y1: 36 }, 100);
      assert.ok(title > 150, `dark title pixels around x=${center}: ${title}`);
    }
    const half = image.width / 2;
    for (const [x0, x1, panel] of [[0, half, "loss"], [half, image.width, "accuracy"]] as const) {
      const blue = countColor(image, TRAINING_COLOR, { x0, x1 });
      const orange = countColor(image, VALIDATION_COLOR, { x0, x1 });
      assert.ok(blue > 500, `training (blue) pixels in the ${panel} panel: ${blue}`);
      assert.ok(orange > 500, `validation (orange) pixels in the ${panel} panel: ${orange}`);
    }
  });
});

Deno.test("plotHistory SVG holds the titles, axis labels and legend labels as text", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "training_curves.svg");
    await plotHistory({ history: fakeHistory() }, path, { title: "Fashion-MNIST MLP" });
    const svg = await Deno.readTextFile(path);
    assert.match(svg, /^<svg[^>]* width="1400" height="500"/);
    const texts = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    for (
      const label of [
        "Fashion-MNIST MLP",
        "Loss Over Epochs",
        "Accuracy Over Epochs",
        "Loss",
        "Accuracy",
        "Training Loss",
        "Validation Loss",
        "Training Accuracy",
        "Validation Accuracy",
      ]
    ) {
      assert.ok(texts.includes(label), `missing text "${label}" in ${JSON.stringify(texts)}`);
    }
    assert.equal(texts.filter((t) => t === "Epoch").length, 2);
    assert.ok(texts.includes("14"), "the last epoch (14) is a tick label");
    assert.ok(svg.includes(`stroke="${TRAINING_COLOR}"`) && svg.includes(`stroke="${VALIDATION_COLOR}"`));
    assert.ok(svg.includes('stroke-width="2"'));
  });
});

Deno.test("plotHistory draws only training lines when validation series are missing", async () => {
  await withTempDir(async (dir) => {
    const { loss, accuracy } = fakeHistory();
    const history = { history: { loss: loss!, accuracy: accuracy! } };
    const svg = join(dir, "curves.svg");
    const png = join(dir, "curves.png");
    await plotHistory(history, svg);
    await plotHistory(history, png);
    const text = await Deno.readTextFile(svg);
    assert.ok(text.includes("Training Loss") && text.includes("Training Accuracy"));
    assert.ok(!text.includes("Validation"));
    const image = decode(await Deno.readFile(png));
    assert.ok(countColor(image, TRAINING_COLOR) > 1000);
    assert.equal(countColor(image, VALIDATION_COLOR), 0);
  });
});

Deno.test("plotHistory shows a non-accuracy metric such as mae in the second panel", async () => {
  await withTempDir(async (dir) => {
    const { loss, val_loss } = fakeHistory();
    const path = join(dir, "mae.svg");
    await plotHistory(
      { history: { loss: loss!, mae: loss!.map((v) => v * 2), val_mae: val_loss!, learning_rate: loss! } },
      path,
    );
    const svg = await Deno.readTextFile(path);
    for (const label of ["MAE Over Epochs", "Training MAE", "Validation MAE", "Loss Over Epochs"]) {
      assert.ok(svg.includes(`>${label}<`), `missing "${label}"`);
    }
    assert.ok(!svg.includes("Accuracy") && !svg.includes("Learning"));
  });
});

Deno.test("historyFigure picks panels: loss only without a metric, accuracy before others, metric option", () => {
  const { loss, val_loss, accuracy } = fakeHistory(3);
  const lossOnly = historyFigure({
    history: { loss: loss!, val_loss: val_loss!, learning_rate: [1e-3, 1e-3, 1e-4] },
  });
  assert.deepEqual(lossOnly.panels.map((p) => p.title), ["Loss Over Epochs"]);
  assert.deepEqual(lossOnly.panels[0]!.series.map((s) => s.label), ["Training Loss", "Validation Loss"]);

  const both = {
    history: { loss: loss!, mse: loss!, accuracy: accuracy!, sparse_categorical_accuracy: accuracy! },
  };
  assert.deepEqual(historyFigure(both).panels.map((p) => p.yLabel), ["Loss", "Accuracy"]);
  const chosen = historyFigure(both, { metric: "sparse_categorical_accuracy" }).panels[1]!;
  assert.equal(chosen.title, "Sparse Categorical Accuracy Over Epochs");
  assert.deepEqual(chosen.series.map((s) => s.label), ["Training Sparse Categorical Accuracy"]);

  const validationOnly = historyFigure({ history: { val_loss: val_loss! } });
  assert.deepEqual(validationOnly.panels[0]!.series.map((s) => s.label), ["Validation Loss"]);
  assert.equal(historyFigure({ history: { loss: loss! } }, { title: "Run 7" }).title, "Run 7");
});

Deno.test("historyFigure rejects an empty history and an unknown metric, naming the logged keys", () => {
  assert.throws(() => historyFigure({ history: {} }), (error: unknown) => {
    assert.ok(error instanceof RangeError);
    assert.match(error.message, /no loss or metric values: logged keys are none/);
    return true;
  });
  assert.throws(
    () => historyFigure({ history: { loss: [1, 0.5] } }, { metric: "accuracy" }),
    (error: unknown) => {
      assert.ok(error instanceof RangeError);
      assert.match(error.message, /"accuracy".*logged keys are "loss"/);
      return true;
    },
  );
});

Deno.test("plotHistory leaves gaps for non-finite values instead of failing", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "nan.svg");
    await plotHistory(
      { history: { loss: [0.9, Number.NaN, 0.5, Number.POSITIVE_INFINITY, 0.3, 0.2] } },
      path,
    );
    const svg = await Deno.readTextFile(path);
    assert.ok(svg.includes("Training Loss"));
    assert.ok(!/NaN|Infinity/.test(svg), "no NaN or Infinity coordinates in the SVG");
  });
});

Deno.test("plotHistory rejects other extensions with a TypeError naming the path and the accepted ones", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "training_curves.jpg");
    await assert.rejects(plotHistory({ history: fakeHistory(2) }, path), (error: unknown) => {
      assert.ok(error instanceof TypeError);
      assert.ok(error.message.includes(path), error.message);
      assert.ok(error.message.includes(".png") && error.message.includes(".svg"), error.message);
      return true;
    });
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("plotHistory replaces an existing file atomically and leaves no temporary file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "curves.SVG");
    await Deno.writeTextFile(path, "old contents");
    await plotHistory({ history: fakeHistory(4) }, path);
    assert.deepEqual(await listDir(dir), ["curves.SVG"]);
    const svg = await Deno.readTextFile(path);
    assert.ok(svg.startsWith("<svg") && svg.includes("Loss Over Epochs"));

    const missingDir = join(dir, "no-such-dir", "curves.svg");
    await assert.rejects(plotHistory({ history: fakeHistory(4) }, missingDir), Deno.errors.NotFound);
    assert.deepEqual(await listDir(dir), ["curves.SVG"]);
  });
});
