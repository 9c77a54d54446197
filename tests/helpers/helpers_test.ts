/** Tests of the test helpers themselves: if these fail, the op tests prove nothing. */

import assert from "node:assert/strict";
import { Tensor } from "../../mod.ts";
import { sizeClass } from "../../engine/memory.ts";
import {
  argmaxRef,
  assertClose,
  erf,
  matmulRef,
  ref,
  Rng,
  scatterAddRef,
  softmaxRef,
  zipRef,
} from "./reference.ts";
import { poison, upload } from "./gpu.ts";
import { gradcheck } from "./gradcheck.ts";

Deno.test("poison() makes Tensor.empty hand out NaN-filled memory", async () => {
  for (const n of [1, 7, 33, 257, 5000]) {
    // Recycle a buffer of this size class holding ordinary data first.
    upload(ref([n], new Array(n).fill(3))).dispose();
    poison([n]);
    const e = Tensor.empty([n]);
    const v = await e.toArray();
    assert.ok(v.every(Number.isNaN), `[${n}]: ${v.slice(0, 4)}`);
    e.dispose();
    // A larger tensor of the same size class gets one of those buffers: its tail, beyond the n
    // elements asked for, must be NaN too, not data an earlier tensor left there.
    const whole = sizeClass(4 * n) / 4;
    upload(ref([whole], new Array(whole).fill(3))).dispose();
    poison([n]);
    const big = Tensor.empty([whole]);
    const w = await big.toArray();
    assert.ok(w.every(Number.isNaN), `[${whole}] after poison([${n}]): ${w.slice(-4)}`);
    big.dispose();
  }
});

Deno.test("assertClose() rejects NaN, names the worst element and respects tolerances", () => {
  assertClose([1, 2.000001], [1, 2], { rtol: 1e-6 });
  assertClose([NaN, Infinity], [NaN, Infinity]);
  assert.throws(() => assertClose([1, NaN], [1, 2]), /1 of 2 elements differ.*index 1.*actual NaN/);
  assert.throws(() => assertClose([1, 2], [1, NaN]), /index 1/);
  assert.throws(() => assertClose([-Infinity], [Infinity]), /differ/);
  assert.throws(
    () => assertClose([0, 0, 0, 5], ref([2, 2], [0, 0, 0, 4]), { msg: "m" }),
    /^Error: m: 1 of 4 elements differ.*index 3 \[1, 1\]: actual 5, expected 4/,
  );
  assert.throws(() => assertClose([1], [1, 2]), /length 1, expected 2/);
});

Deno.test("Rng is seeded, f32-exact and never gives zero from nonzero()", () => {
  const a = new Rng(5).nonzero([1000]);
  const b = new Rng(5).nonzero([1000]);
  assert.deepEqual(a.data, b.data);
  assert.ok(a.data.every((v) => v !== 0 && Math.abs(v) >= 0.09 && Math.fround(v) === v));
  assert.ok(a.data.some((v) => v < 0) && a.data.some((v) => v > 0));
  const n = new Rng(6).normalRef([10000]);
  const mean = n.data.reduce((p, v) => p + v, 0) / 1e4;
  assert.ok(Math.abs(mean) < 0.05);
});

Deno.test("erf() is accurate to 1e-14 (values from Abramowitz & Stegun table 7.1)", () => {
  const table: [number, number][] = [
    [0, 0],
    [0.1, 0.1124629160182849],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [2, 0.9953222650189527],
    [2.5, 0.9995930479825550],
    [3, 0.9999779095030014],
    [4, 0.9999999845827421],
  ];
  for (const [x, want] of table) {
    assert.ok(Math.abs(erf(x) - want) < 1e-14, `erf(${x}) = ${erf(x)}`);
    assert.ok(Math.abs(erf(-x) + want) < 1e-14);
  }
});

Deno.test("the references handle broadcasting, transposes, ties and repeated indices", () => {
  const s = zipRef(ref([2, 1], [1, 2]), ref([3], [10, 20, 30]), (p, q) => p + q);
  assert.deepEqual(s.shape, [2, 3]);
  assert.deepEqual(Array.from(s.data), [11, 21, 31, 12, 22, 32]);
  // [[1,2],[3,4]]ᵀ · [[1],[1]] = [[4],[6]]
  const m = matmulRef(ref([2, 2], [1, 2, 3, 4]), ref([2, 1], [1, 1]), { transA: true });
  assert.deepEqual(Array.from(m.data), [4, 6]);
  assert.deepEqual(Array.from(argmaxRef(ref([2, 3], [1, 5, 5, 2, 2, 1]), 1).data), [1, 0]);
  const sc = scatterAddRef(ref([3]), 0, ref([4], [2, 2, 0, 9]), ref([4], [1, 2, 3, 4]));
  assert.deepEqual(Array.from(sc.data), [3, 0, 3]);
  const sm = softmaxRef(ref([2], [1000, 1000]));
  assert.deepEqual(Array.from(sm.data), [0.5, 0.5]);
});

Deno.test("gradcheck() passes a right backward rule and catches a wrong one", async () => {
  const inputs = [ref([3], [0.5, 1, -1])];
  await gradcheck("right", {
    inputs,
    gpu: (x) => x.exp(),
    ref: (x) => ({ ...x, data: x.data.map(Math.exp) }),
  });
  // The "reference" claims 1.01·exp: forward passes a 2% tolerance, the gradients differ by 1%.
  await assert.rejects(
    gradcheck("wrong", {
      inputs,
      gpu: (x) => x.exp(),
      ref: (x) => ({ ...x, data: x.data.map((v) => 1.01 * Math.exp(v)) }),
      fwdRtol: 0.02,
    }),
    /wrong: gradient of input 0/,
  );
});
