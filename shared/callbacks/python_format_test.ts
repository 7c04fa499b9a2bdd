import assert from "node:assert/strict";
import {
  formatExponential,
  formatFixed,
  formatGeneral,
  formatTemplate,
  parseTemplate,
  pyRepr,
} from "./python_format.ts";

// Expected strings produced by CPython 3 (repr, f"{x:.2f}", f"{x:.0f}", f"{x:.4e}", f"{x:.3g}").
const CASES: Array<[number, string, string, string, string, string]> = [
  [0, "0.0", "0.00", "0", "0.0000e+00", "0"],
  [-0, "-0.0", "-0.00", "-0", "-0.0000e+00", "-0"],
  [0.125, "0.125", "0.12", "0", "1.2500e-01", "0.125"],
  [0.375, "0.375", "0.38", "0", "3.7500e-01", "0.375"],
  [2.5, "2.5", "2.50", "2", "2.5000e+00", "2.5"],
  [3.5, "3.5", "3.50", "4", "3.5000e+00", "3.5"],
  [1e-5, "1e-05", "0.00", "0", "1.0000e-05", "1e-05"],
  [0.1, "0.1", "0.10", "0", "1.0000e-01", "0.1"],
  [1 / 3, "0.3333333333333333", "0.33", "0", "3.3333e-01", "0.333"],
  [123456.789, "123456.789", "123456.79", "123457", "1.2346e+05", "1.23e+05"],
  [1e16, "1e+16", "10000000000000000.00", "10000000000000000", "1.0000e+16", "1e+16"],
  [0.00010000000474974513, "0.00010000000474974513", "0.00", "0", "1.0000e-04", "0.0001"],
  [5e-324, "5e-324", "0.00", "0", "4.9407e-324", "4.94e-324"],
  [-0.0004, "-0.0004", "-0.00", "-0", "-4.0000e-04", "-0.0004"],
  [9.99995, "9.99995", "10.00", "10", "1.0000e+01", "10"],
  [12, "12.0", "12.00", "12", "1.2000e+01", "12"],
  [NaN, "nan", "nan", "nan", "nan", "nan"],
  [-Infinity, "-inf", "-inf", "-inf", "-inf", "-inf"],
];

Deno.test("Python float formatting matches CPython, rounding half to even", () => {
  for (const [x, repr, f2, f0, e4, g3] of CASES) {
    assert.equal(pyRepr(x), repr, `repr(${x})`);
    assert.equal(formatFixed(x, 2), f2, `${x}:.2f`);
    assert.equal(formatFixed(x, 0), f0, `${x}:.0f`);
    assert.equal(formatExponential(x, 4), e4, `${x}:.4e`);
    assert.equal(formatGeneral(x, 3), g3, `${x}:.3g`);
  }
});

Deno.test("Templates support the str.format spec subset Keras users write", () => {
  const t = "w-{epoch:02d}-{val_loss:.2f}-{loss}-{a:+08.3f}-{b:^9.1e}-{c:%}-{{x}}.keras";
  const out = formatTemplate(t, parseTemplate(t), {
    epoch: { value: 3, isInt: true },
    val_loss: { value: 0.125, isInt: false },
    loss: { value: 0.5, isInt: false },
    a: { value: -1.5, isInt: false },
    b: { value: 12345, isInt: false },
    c: { value: 0.25, isInt: false },
  });
  // t.format(epoch=3, val_loss=0.125, loss=0.5, a=-1.5, b=12345.0, c=0.25) in CPython:
  assert.equal(out, "w-03-0.12-0.5--001.500- 1.2e+04 -25.000000%-{x}.keras");
  assert.throws(
    () => formatTemplate("{loss:d}", parseTemplate("{loss:d}"), { loss: { value: 1, isInt: false } }),
    /Cannot format \{loss:d\} in template "\{loss:d\}" as loss=1.0 is a float/,
  );
  assert.throws(() => parseTemplate("a}b"), /single '}' at index 1/);
  assert.throws(() => parseTemplate("{0}"), /has no plain name/);
});
