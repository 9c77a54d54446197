/**
 * layerNorm(): float64 references (forward, textbook backward), gradchecks,
 * golden PyTorch fixtures (tests/fixtures/transformer_ops.json), wide and
 * many-row inputs, the multi-level column sums, and errors.
 */

import assert from "node:assert/strict";
import { layerNorm, tensor, zeros } from "../../../mod.ts";
import { layerNormTuning } from "../../../engine/ops/layernorm.ts";
import { assertClose, type Ref, ref, Rng } from "../../helpers/reference.ts";
import { download, poison, upload } from "../../helpers/gpu.ts";
import { gradcheck } from "../../helpers/gradcheck.ts";

// ---------------------------------------------------------------- references

/** Per-row mean and rstd of `x [..., C]`, two-pass in float64. */
function rowStats(x: Ref, eps: number): { mean: number[]; rstd: number[] } {
  const C = x.shape.at(-1)!;
  const rows = x.data.length / C;
  const mean: number[] = [], rstd: number[] = [];
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let j = 0; j < C; j++) m += x.data[r * C + j];
    m /= C;
    let v = 0;
    for (let j = 0; j < C; j++) v += (x.data[r * C + j] - m) ** 2;
    mean.push(m);
    rstd.push(1 / Math.sqrt(v / C + eps));
  }
  return { mean, rstd };
}

/** `(x − mean)·rstd·w + b` per row. */
function lnRef(x: Ref, w: Ref | null, b: Ref | null, eps = 1e-5): Ref {
  const C = x.shape.at(-1)!;
  const { mean, rstd } = rowStats(x, eps);
  const out = ref(x.shape);
  for (let i = 0; i < x.data.length; i++) {
    const r = Math.floor(i / C), j = i % C;
    out.data[i] = (x.data[i] - mean[r]) * rstd[r] * (w?.data[j] ?? 1) + (b?.data[j] ?? 0);
  }
  return out;
}

/** Textbook backward: dx = rstd·(w·g − mean(w·g) − x̂·mean(w·g·x̂)), Σ g·x̂, Σ g. */
function lnBackwardRef(x: Ref, g: Ref, w: Ref | null, eps = 1e-5) {
  const C = x.shape.at(-1)!;
  const rows = x.data.length / C;
  const { mean, rstd } = rowStats(x, eps);
  const dx = ref(x.shape), dw = ref([C]), db = ref([C]);
  for (let r = 0; r < rows; r++) {
    let a = 0, b = 0;
    const xh = (j: number) => (x.data[r * C + j] - mean[r]) * rstd[r];
    const gw = (j: number) => g.data[r * C + j] * (w?.data[j] ?? 1);
    for (let j = 0; j < C; j++) {
      a += gw(j);
      b += gw(j) * xh(j);
      dw.data[j] += g.data[r * C + j] * xh(j);
      db.data[j] += g.data[r * C + j];
    }
    for (let j = 0; j < C; j++) dx.data[r * C + j] = rstd[r] * (gw(j) - a / C - xh(j) * b / C);
  }
  return { dx, dw, db };
}

/** Rows with different means and scales, so that a wrong reduction axis shows. */
function rowData(r: Rng, shape: number[]): Ref {
  const x = r.normalRef(shape);
  const C = shape.at(-1)!;
  for (let i = 0; i < x.data.length; i++) {
    const row = Math.floor(i / C);
    x.data[i] = Math.fround(x.data[i] * (0.5 + row % 3) + (row % 4) - 1.5);
  }
  return x;
}

const TOL = { rtol: 1e-4, atol: 1e-5 };

// ---------------------------------------------------------------- forward

// C = 1 (the row is its mean), below/above the lanes-per-row steps, odd sizes, 3-D.
// Rows of a multiple of 4 values ([1, 64], [4, 256], [3, 12]) take the vec4 kernels.
const SHAPES = [[4, 1], [3, 7], [2, 3, 33], [5, 257], [1, 64], [9, 130], [4, 256], [3, 12]];

Deno.test("layerNorm() matches the float64 reference over the last axis (with and without affine)", async () => {
  const r = new Rng(1);
  for (const shape of SHAPES) {
    const C = shape.at(-1)!;
    for (const [hw, hb] of [[true, true], [false, false], [true, false], [false, true]]) {
      const x = rowData(r, shape);
      const w = r.uniformRef([C], 0.5, 1.5), b = r.uniformRef([C], -1, 1);
      const [xt, wt, bt] = [x, w, b].map((v) => upload(v));
      poison([x.data.length]);
      const y = layerNorm(xt, hw ? wt : null, hb ? bt : null, 1e-3);
      const want = lnRef(x, hw ? w : null, hb ? b : null, 1e-3);
      assertClose(await y.toArray(), want, { ...TOL, msg: `[${shape}] w=${hw} b=${hb}` });
      for (const t of [xt, wt, bt, y]) t.dispose();
    }
  }
});

Deno.test("layerNorm() stays accurate for rows with a large mean (forward and backward)", async () => {
  // mean 1000, std 0.01: E[x²] − E[x]² would lose every digit in f32, and a running f32 mean
  // near 1000 drifts by ulps (6e-5, i.e. 6e-3 of a std); values shifted by the row's first
  // element keep x̂ to f32 precision. Both schedules: one invocation per row, and lanes.
  const r = new Rng(2);
  for (const shape of [[3, 200], [2, 3000]]) {
    const x = r.normalRef(shape, 0, 0.01);
    for (let i = 0; i < x.data.length; i++) x.data[i] = Math.fround(x.data[i] + 1000);
    const g = r.normalRef(shape);
    const xt = upload(x, { requiresGrad: true });
    const wt = upload(ref([shape[1]], new Array(shape[1]).fill(1)), { requiresGrad: true });
    const y = layerNorm(xt, wt);
    assertClose(await y.toArray(), lnRef(x, null, null), { ...TOL, msg: `[${shape}] out` });
    y.backward(upload(g));
    const want = lnBackwardRef(x, g, null);
    // dx is rstd (100) times O(1) terms.
    assertClose(await xt.grad!.toArray(), want.dx, {
      rtol: 1e-4,
      atol: 1e-3,
      msg: `[${shape}] dx`,
    });
    assertClose(await wt.grad!.toArray(), want.dw, { ...TOL, msg: `[${shape}] dweight` });
  }
});

Deno.test("layerNorm() handles wide rows (1500, 3072, 40000: 2, 4, 64 lanes per row) and many rows (20000), forward and backward", async () => {
  const r = new Rng(3);
  for (const shape of [[5, 1500], [3, 3072], [1, 40000], [20000, 6]]) {
    const C = shape[1];
    const x = rowData(r, shape), g = r.normalRef(shape);
    const w = r.uniformRef([C], 0.5, 1.5), b = r.uniformRef([C], -1, 1);
    const xt = upload(x, { requiresGrad: true });
    const wt = upload(w, { requiresGrad: true }), bt = upload(b, { requiresGrad: true });
    poison([x.data.length, C]);
    const y = layerNorm(xt, wt, bt);
    const msg = `[${shape}]`;
    assertClose(await y.toArray(), lnRef(x, w, b), { ...TOL, msg });
    y.backward(upload(g));
    const want = lnBackwardRef(x, g, w);
    assertClose(await xt.grad!.toArray(), want.dx, { rtol: 1e-3, atol: 1e-4, msg: `${msg} dx` });
    // Column sums of 20000 terms of size ~1: f32 summation error ~1e-3 absolute.
    assertClose(await wt.grad!.toArray(), want.dw, { rtol: 1e-4, atol: 2e-3, msg: `${msg} dw` });
    assertClose(await bt.grad!.toArray(), want.db, { rtol: 1e-4, atol: 2e-3, msg: `${msg} db` });
  }
});

// ---------------------------------------------------------------- backward

Deno.test("layerNorm() gradients of x, weight and bias match central differences", async () => {
  const r = new Rng(4);
  await gradcheck("affine [3, 5]", {
    inputs: [rowData(r, [3, 5]), r.uniformRef([5], 0.5, 1.5), r.uniformRef([5], -1, 1)],
    gpu: (x, w, b) => layerNorm(x, w, b),
    ref: (x, w, b) => lnRef(x, w, b),
  });
  await gradcheck("affine [2, 2, 37], eps 0.1", {
    inputs: [rowData(r, [2, 2, 37]), r.uniformRef([37], 0.5, 1.5), r.uniformRef([37], -1, 1)],
    gpu: (x, w, b) => layerNorm(x, w, b, 0.1),
    ref: (x, w, b) => lnRef(x, w, b, 0.1),
  });
  await gradcheck("affine [3, 8] (vec4 rows)", {
    inputs: [rowData(r, [3, 8]), r.uniformRef([8], 0.5, 1.5), r.uniformRef([8], -1, 1)],
    gpu: (x, w, b) => layerNorm(x, w, b),
    ref: (x, w, b) => lnRef(x, w, b),
  });
  for (const shape of [[4, 9], [2, 12]]) {
    await gradcheck(`no affine [${shape}]`, {
      inputs: [rowData(r, shape)],
      gpu: (x) => layerNorm(x),
      ref: (x) => lnRef(x, null, null),
    });
  }
  await gradcheck("weight only [3, 6], x frozen", {
    inputs: [rowData(r, [3, 6]), r.uniformRef([6], 0.5, 1.5)],
    gpu: (x, w) => layerNorm(x, w, null),
    ref: (x, w) => lnRef(x, w, null),
    wrt: [false, true],
  });
});

Deno.test("layerNorm() computes only the gradients that are needed", async () => {
  const r = new Rng(5);
  const shape = [6, 10];
  const x = rowData(r, shape), g = r.normalRef(shape), w = r.uniformRef([10], 0.5, 1.5);
  const want = lnBackwardRef(x, g, w);
  const cases = [[false, true, false], [false, false, true], [true, false, false], [
    true,
    true,
    true,
  ]];
  for (const [nx, nw, nb] of cases) {
    const xt = upload(x, { requiresGrad: nx });
    const wt = upload(w, { requiresGrad: nw });
    const bt = upload(ref([10]), { requiresGrad: nb });
    const y = layerNorm(xt, wt, bt);
    // Saved: mean, rstd and x when dx or dweight needs them, weight only for dx.
    assert.equal(y.node!.saved.length, (nx || nw ? 3 : 0) + (nx ? 1 : 0));
    y.backward(upload(g));
    const msg = `needs x=${nx} w=${nw} b=${nb}`;
    assert.equal(xt.grad === null, !nx, msg);
    assert.equal(wt.grad === null, !nw, msg);
    assert.equal(bt.grad === null, !nb, msg);
    if (nx) assertClose(await xt.grad!.toArray(), want.dx, { rtol: 1e-3, atol: 1e-5, msg });
    if (nw) assertClose(await wt.grad!.toArray(), want.dw, { ...TOL, msg });
    if (nb) assertClose(await bt.grad!.toArray(), want.db, { ...TOL, msg });
  }
});

Deno.test("layerNorm() column sums over several levels of parts match the reference", async () => {
  // Small chunks force parts → parts → gradient (three kernels) on a small input.
  const saved = { ...layerNormTuning };
  Object.assign(layerNormTuning, { maxChunk: 4, minChunk: 1, targetGroups: 1 });
  try {
    const r = new Rng(6);
    const shape = [70, 300];
    const x = rowData(r, shape), g = r.normalRef(shape);
    const xt = upload(x), wt = upload(ref([300], new Array(300).fill(1)), { requiresGrad: true });
    const bt = upload(ref([300]), { requiresGrad: true });
    poison([300]);
    layerNorm(xt, wt, bt).backward(upload(g));
    const want = lnBackwardRef(x, g, null);
    assertClose(await wt.grad!.toArray(), want.dw, { ...TOL, msg: "dweight" });
    assertClose(await bt.grad!.toArray(), want.db, { ...TOL, msg: "dbias" });
  } finally {
    Object.assign(layerNormTuning, saved);
  }
});

Deno.test("layerNorm() on empty inputs gives empty outputs and zero weight/bias gradients", async () => {
  const xt = zeros([0, 4]);
  xt.requiresGrad = true;
  const wt = tensor([1, 2, 3, 4], { requiresGrad: true });
  const bt = zeros([4]);
  bt.requiresGrad = true;
  const y = layerNorm(xt, wt, bt);
  assert.deepEqual(y.shape, [0, 4]);
  y.sum().backward();
  assert.deepEqual(xt.grad!.shape, [0, 4]);
  assert.deepEqual(Array.from(await wt.grad!.toArray()), [0, 0, 0, 0]);
  assert.deepEqual(Array.from(await bt.grad!.toArray()), [0, 0, 0, 0]);
});

// ---------------------------------------------------------------- PyTorch

interface Fx {
  shape: number[];
  data: number[];
}
interface LnCase {
  name: string;
  eps: number;
  x: Fx;
  weight: Fx | null;
  bias: Fx | null;
  out: Fx;
  gout: Fx;
  dx: Fx;
  dweight: Fx | null;
  dbias: Fx | null;
}
const asRef = (t: Fx): Ref => ref(t.shape, t.data);
const fixtures: LnCase[] = JSON.parse(
  await Deno.readTextFile(new URL("../../fixtures/transformer_ops.json", import.meta.url)),
).layer_norm;

Deno.test("layerNorm() matches PyTorch's F.layer_norm (outputs and gradients)", async () => {
  for (const c of fixtures) {
    const xt = upload(asRef(c.x), { requiresGrad: true });
    const wt = c.weight ? upload(asRef(c.weight), { requiresGrad: true }) : null;
    const bt = c.bias ? upload(asRef(c.bias), { requiresGrad: true }) : null;
    const y = layerNorm(xt, wt, bt, c.eps);
    // large_mean (x ≈ 1000 ± 0.01) too: dx is up to 344 there (rstd 100).
    const tol = c.name.startsWith("large_mean") ? { dx: 1e-3 } : { dx: 1e-5 };
    assertClose(await y.toArray(), asRef(c.out), { ...TOL, msg: `${c.name} out` });
    y.backward(upload(asRef(c.gout)));
    assertClose(await xt.grad!.toArray(), asRef(c.dx), {
      rtol: 1e-4,
      atol: tol.dx,
      msg: `${c.name} dx`,
    });
    if (wt) {
      assertClose(await wt.grad!.toArray(), asRef(c.dweight!), {
        ...TOL,
        msg: `${c.name} dweight`,
      });
    }
    if (bt) {
      assertClose(await bt.grad!.toArray(), asRef(c.dbias!), { ...TOL, msg: `${c.name} dbias` });
    }
  }
});

// ---------------------------------------------------------------- errors

Deno.test("layerNorm() errors name the op and the shapes", () => {
  const x = zeros([2, 3, 4]);
  assert.throws(
    () => layerNorm(x, zeros([3])),
    /layerNorm: weight must be an f32 \[4\] tensor \(the last axis of input \[2, 3, 4\]\), got f32 \[3\]/,
  );
  assert.throws(
    () => layerNorm(x, null, zeros([1, 4])),
    /layerNorm: bias must be an f32 \[4\] tensor .*, got f32 \[1, 4\]/,
  );
  assert.throws(
    () => layerNorm(x, zeros([4], "i32")),
    /layerNorm: weight must be an f32 \[4\] tensor .*, got i32 \[4\]/,
  );
  assert.throws(
    () => layerNorm(zeros([2, 4], "i32")),
    /layerNorm: expected an f32 input with at least one axis, got i32 \[2, 4\]/,
  );
  assert.throws(() => layerNorm(zeros([])), /at least one axis, got f32 \[\]/);
  assert.throws(() => layerNorm(x, null, null, -1), /layerNorm: eps must be finite and ≥ 0/);
  assert.throws(
    () => layerNorm(zeros([1, 65537])),
    /layerNorm: rows of 65537 values \(input \[1, 65537\]\) are wider than the 65536 supported/,
  );
});

Deno.test("layerNorm() of a constant row is the bias (x̂ = 0 with eps > 0)", async () => {
  const y = layerNorm(tensor([2, 2, 2, 5, 5, 5], { shape: [2, 3] }), null, tensor([1, 2, 3]));
  assert.deepEqual(Array.from(await download(y).then((t) => t.data)), [1, 2, 3, 1, 2, 3]);
});
