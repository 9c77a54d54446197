/**
 * batchNorm2d() and nn.BatchNorm2d: float64 references (forward, running
 * statistics, textbook backward), gradchecks, golden PyTorch fixtures
 * (tests/fixtures/vision_ops.json) and the frozen-layer behaviour.
 */

import assert from "node:assert/strict";
import { batchNorm2d, nn, noGrad, ones, tensor, zeros } from "../../../mod.ts";
import { assertClose, type Ref, ref, Rng } from "../../helpers/reference.ts";
import { download, poison, upload } from "../../helpers/gpu.ts";
import { gradcheck } from "../../helpers/gradcheck.ts";

// ---------------------------------------------------------------- references

/** Per-channel mean and biased/unbiased variance of `[N, C, H, W]`, two-pass in float64. */
function statsRef(x: Ref): { mean: number[]; varB: number[]; varU: number[] } {
  const [N, C, H, W] = x.shape;
  const S = H * W, M = N * S;
  const mean = new Array<number>(C).fill(0);
  const ss = new Array<number>(C).fill(0);
  for (let c = 0; c < C; c++) {
    for (let n = 0; n < N; n++) for (let s = 0; s < S; s++) mean[c] += x.data[(n * C + c) * S + s];
    mean[c] /= M;
    for (let n = 0; n < N; n++) {
      for (let s = 0; s < S; s++) ss[c] += (x.data[(n * C + c) * S + s] - mean[c]) ** 2;
    }
  }
  return { mean, varB: ss.map((v) => v / M), varU: ss.map((v) => v / (M - 1)) };
}

interface BnRef {
  w?: Ref;
  b?: Ref;
  /** Statistics to normalise with (eval mode); batch statistics when absent. */
  mean?: number[];
  var?: number[];
  eps?: number;
}

/** `(x − mean)/√(var + eps)·w + b` per channel. */
function bnRef(x: Ref, o: BnRef): Ref {
  const [, C, H, W] = x.shape;
  const S = H * W;
  const st = o.mean ? { mean: o.mean, varB: o.var! } : statsRef(x);
  const out = ref(x.shape);
  for (let i = 0; i < x.data.length; i++) {
    const c = Math.floor(i / S) % C;
    const xh = (x.data[i] - st.mean[c]) / Math.sqrt(st.varB[c] + (o.eps ?? 1e-5));
    out.data[i] = xh * (o.w?.data[c] ?? 1) + (o.b?.data[c] ?? 0);
  }
  return out;
}

/** Textbook training-mode backward: dx = w·rstd·(g − mean(g) − x̂·mean(g·x̂)), Σg·x̂, Σg. */
function bnBackwardRef(x: Ref, g: Ref, w: Ref | null, eps = 1e-5) {
  const [N, C, H, W] = x.shape;
  const S = H * W, M = N * S;
  const { mean, varB } = statsRef(x);
  const rstd = varB.map((v) => 1 / Math.sqrt(v + eps));
  const sg = new Array<number>(C).fill(0), sgx = new Array<number>(C).fill(0);
  const xh = (i: number, c: number) => (x.data[i] - mean[c]) * rstd[c];
  for (let i = 0; i < x.data.length; i++) {
    const c = Math.floor(i / S) % C;
    sg[c] += g.data[i];
    sgx[c] += g.data[i] * xh(i, c);
  }
  const dx = ref(x.shape);
  for (let i = 0; i < x.data.length; i++) {
    const c = Math.floor(i / S) % C;
    dx.data[i] = (w?.data[c] ?? 1) * rstd[c] *
      (g.data[i] - sg[c] / M - xh(i, c) * sgx[c] / M);
  }
  return { dx, dw: ref([C], sgx), db: ref([C], sg) };
}

/** Channels with different means and scales, so that a wrong reduction axis shows. */
function channelData(r: Rng, shape: number[]): Ref {
  const x = r.normalRef(shape);
  const [, C, H, W] = shape;
  for (let i = 0; i < x.data.length; i++) {
    const c = Math.floor(i / (H * W)) % C;
    x.data[i] = Math.fround(x.data[i] * (0.5 + c % 3) + (c % 4) - 1.5);
  }
  return x;
}

const TOL = { rtol: 1e-4, atol: 1e-5 };

// ---------------------------------------------------------------- forward

// Odd sizes, H·W = 1, N = 1, and ≥ 8192 values per channel (the reduction splits into parts).
const SHAPES = [[2, 3, 5, 7], [3, 5, 1, 1], [1, 2, 3, 3], [4, 1, 1, 33], [8, 2, 33, 33]];

Deno.test("batchNorm2d() in training mode matches the float64 reference and updates running stats as PyTorch", async () => {
  const r = new Rng(1);
  for (const shape of SHAPES) {
    for (const affine of [true, false]) {
      const C = shape[1];
      const x = channelData(r, shape);
      const w = r.uniformRef([C], 0.5, 1.5), b = r.uniformRef([C], -1, 1);
      const rm0 = r.uniformRef([C], -1, 1), rv0 = r.uniformRef([C], 0.5, 2);
      const [xt, wt, bt, rm, rv] = [x, w, b, rm0, rv0].map((v) => upload(v));
      poison([x.data.length, C]);
      const y = batchNorm2d(xt, affine ? wt : null, affine ? bt : null, rm, rv, {
        training: true,
        momentum: 0.3,
        eps: 1e-3,
      });
      const msg = `[${shape}] affine=${affine}`;
      assertClose(await y.toArray(), bnRef(x, affine ? { w, b, eps: 1e-3 } : { eps: 1e-3 }), {
        ...TOL,
        msg,
      });
      const { mean, varU } = statsRef(x);
      const m = 0.3;
      assertClose(await rm.toArray(), rm0.data.map((v, c) => (1 - m) * v + m * mean[c]), {
        ...TOL,
        msg: `${msg} running_mean`,
      });
      assertClose(await rv.toArray(), rv0.data.map((v, c) => (1 - m) * v + m * varU[c]), {
        ...TOL,
        msg: `${msg} running_var (unbiased)`,
      });
      for (const t of [xt, wt, bt, rm, rv, y]) t.dispose();
    }
  }
});

Deno.test("batchNorm2d() keeps the variance accurate for channels with a large mean", async () => {
  // mean 1000, std 0.01: E[x²] − E[x]² would lose every digit in f32; Welford/Chan does not.
  const r = new Rng(2);
  const x = r.normalRef([4, 2, 16, 16], 0, 0.01);
  for (let i = 0; i < x.data.length; i++) x.data[i] = Math.fround(x.data[i] + 1000);
  const y = batchNorm2d(upload(x), null, null, null, null, { training: true });
  // x̂ keeps the f32 rounding of x (ulp 6e-5 at 1000, i.e. 6e-3 of a std) and a few ulps from the mean.
  assertClose(await y.toArray(), bnRef(x, {}), { rtol: 0, atol: 3e-2 });
});

Deno.test("batchNorm2d() in eval mode uses the running statistics and leaves them unchanged", async () => {
  const r = new Rng(3);
  for (const shape of [[2, 3, 5, 7], [1, 4, 1, 1]]) {
    const C = shape[1];
    const x = channelData(r, shape);
    const w = r.uniformRef([C], 0.5, 1.5), b = r.uniformRef([C], -1, 1);
    const rm0 = r.uniformRef([C], -1, 1), rv0 = r.uniformRef([C], 0.5, 2);
    const [xt, wt, bt, rm, rv] = [x, w, b, rm0, rv0].map((v) => upload(v));
    const y = batchNorm2d(xt, wt, bt, rm, rv);
    const want = bnRef(x, { w, b, mean: Array.from(rm0.data), var: Array.from(rv0.data) });
    assertClose(await y.toArray(), want, { ...TOL, msg: `[${shape}]` });
    assert.deepEqual(await rm.toArray(), Float32Array.from(rm0.data));
    assert.deepEqual(await rv.toArray(), Float32Array.from(rv0.data));
  }
});

// ---------------------------------------------------------------- backward

Deno.test("batchNorm2d() gradients match central differences (training and eval, with and without affine)", async () => {
  const r = new Rng(4);
  const shape = [3, 2, 3, 5];
  const C = shape[1];
  const rm = r.uniformRef([C], -1, 1), rv = r.uniformRef([C], 0.5, 2);
  await gradcheck("training, affine", {
    inputs: [channelData(r, shape), r.uniformRef([C], 0.5, 1.5), r.uniformRef([C], -1, 1)],
    gpu: (x, w, b) => batchNorm2d(x, w, b, null, null, { training: true }),
    ref: (x, w, b) => bnRef(x, { w, b }),
  });
  await gradcheck("training, no affine", {
    inputs: [channelData(r, [2, 3, 1, 4])],
    gpu: (x) => batchNorm2d(x, null, null, null, null, { training: true, eps: 0.1 }),
    ref: (x) => bnRef(x, { eps: 0.1 }),
  });
  const evalStats = { mean: Array.from(rm.data), var: Array.from(rv.data) };
  await gradcheck("eval, affine", {
    inputs: [channelData(r, shape), r.uniformRef([C], 0.5, 1.5), r.uniformRef([C], -1, 1)],
    gpu: (x, w, b) => batchNorm2d(x, w, b, upload(rm), upload(rv)),
    ref: (x, w, b) => bnRef(x, { w, b, ...evalStats }),
  });
});

Deno.test("batchNorm2d() backward matches the textbook formula when channels split into parts", async () => {
  const r = new Rng(5);
  const shape = [8, 2, 33, 33];
  const x = channelData(r, shape);
  const g = r.normalRef(shape);
  const w = r.uniformRef([2], 0.5, 1.5);
  const [xt, wt, bt] = [upload(x, { requiresGrad: true }), upload(w, { requiresGrad: true })]
    .concat(upload(ref([2], [0.1, -0.2]), { requiresGrad: true }));
  const y = batchNorm2d(xt, wt, bt, null, null, { training: true });
  poison([x.data.length, 2]);
  y.backward(upload(g));
  const want = bnBackwardRef(x, g, w);
  assertClose(await xt.grad!.toArray(), want.dx, { rtol: 1e-3, atol: 1e-5, msg: "dx" });
  assertClose(await wt.grad!.toArray(), want.dw, { rtol: 1e-4, atol: 1e-3, msg: "dweight" });
  assertClose(await bt.grad!.toArray(), want.db, { rtol: 1e-4, atol: 1e-3, msg: "dbias" });
});

Deno.test("batchNorm2d() computes only the gradients that are needed", async () => {
  const r = new Rng(6);
  const shape = [2, 3, 4, 5];
  const x = channelData(r, shape), g = r.normalRef(shape), w = r.uniformRef([3], 0.5, 1.5);
  const want = bnBackwardRef(x, g, w);
  for (const [nx, nw, nb] of [[false, true, false], [false, false, true], [true, false, false]]) {
    const xt = upload(x, { requiresGrad: nx });
    const wt = upload(w, { requiresGrad: nw });
    const bt = upload(ref([3]), { requiresGrad: nb });
    const y = batchNorm2d(xt, wt, bt, null, null, { training: true });
    // Saved: mean and rstd, plus x only when dx or dweight needs it, w only for dx.
    assert.equal(y.node!.saved.length, 2 + (nx || nw ? 1 : 0) + (nx ? 1 : 0));
    y.backward(upload(g));
    const msg = `needs x=${nx} w=${nw} b=${nb}`;
    assert.equal(xt.grad === null, !nx, msg);
    assert.equal(wt.grad === null, !nw, msg);
    assert.equal(bt.grad === null, !nb, msg);
    if (nx) assertClose(await xt.grad!.toArray(), want.dx, { rtol: 1e-3, atol: 1e-5, msg });
    if (nw) assertClose(await wt.grad!.toArray(), want.dw, { ...TOL, msg });
    if (nb) assertClose(await bt.grad!.toArray(), want.db, { ...TOL, msg });
  }
  // Eval mode, only dx: dx = g·w·rstd, and no reduction is needed.
  const rm = upload(ref([3], [0.1, 0.2, 0.3])), rv = upload(ref([3], [1, 2, 4]));
  const xt = upload(x, { requiresGrad: true });
  batchNorm2d(xt, upload(w), null, rm, rv).backward(upload(g));
  const dx = (await download(xt.grad!)).data;
  const S = 20;
  assertClose(
    dx,
    g.data.map((v, i) =>
      v * w.data[Math.floor(i / S) % 3] / Math.sqrt([1, 2, 4][Math.floor(i / S) % 3] + 1e-5)
    ),
    TOL,
  );
});

// ---------------------------------------------------------------- vec4 and fused passes

/** `relu(bn(x) + r)` (either part optional), in float64. */
function fusedRef(x: Ref, o: BnRef & { r?: Ref; relu?: boolean }): Ref {
  const y = bnRef(x, o);
  for (let i = 0; i < y.data.length; i++) {
    const z = y.data[i] + (o.r?.data[i] ?? 0);
    y.data[i] = o.relu ? Math.max(z, 0) : z;
  }
  return y;
}

// Planes of a multiple of 4 pixels take the vec4 passes: per-plane (S/4 ≥ 64) and flat
// (S/4 < 64) schedules, and channels split into parts (≥ 8192 values per channel).
const VEC_SHAPES = [[2, 3, 4, 4], [3, 2, 8, 8], [2, 3, 16, 16], [8, 2, 32, 32], [4, 3, 2, 2]];

Deno.test("batchNorm2d() vec4 passes and fused residual + ReLU match the float64 reference", async () => {
  const r = new Rng(11);
  for (const shape of [...VEC_SHAPES, [2, 3, 5, 7]]) {
    const C = shape[1];
    for (const [relu, residual] of [[false, false], [true, false], [false, true], [true, true]]) {
      for (const training of [true, false]) {
        const x = channelData(r, shape), res = r.normalRef(shape);
        const w = r.uniformRef([C], 0.5, 1.5), b = r.uniformRef([C], -1, 1);
        const rm0 = r.uniformRef([C], -1, 1), rv0 = r.uniformRef([C], 0.5, 2);
        const [xt, rt, wt, bt, rm, rv] = [x, res, w, b, rm0, rv0].map((v) => upload(v));
        poison([x.data.length, C]);
        const y = batchNorm2d(xt, wt, bt, rm, rv, {
          training,
          residual: residual ? rt : null,
          relu,
        });
        const stats = training ? {} : { mean: Array.from(rm0.data), var: Array.from(rv0.data) };
        const want = fusedRef(x, { w, b, ...stats, r: residual ? res : undefined, relu });
        const msg = `[${shape}] relu=${relu} residual=${residual} training=${training}`;
        assertClose(await y.toArray(), want, { ...TOL, msg });
        if (training) {
          const { mean } = statsRef(x);
          assertClose(await rm.toArray(), rm0.data.map((v, c) => 0.9 * v + 0.1 * mean[c]), {
            ...TOL,
            msg: `${msg} running_mean`,
          });
        }
        for (const t of [xt, rt, wt, bt, rm, rv, y]) t.dispose();
      }
    }
  }
});

Deno.test("batchNorm2d() fused residual + ReLU gradients match central differences", async () => {
  const r = new Rng(12);
  for (const shape of [[2, 2, 4, 4], [3, 2, 3, 5]]) {
    const C = shape[1];
    await gradcheck(`training, relu + residual [${shape}]`, {
      inputs: [
        channelData(r, shape),
        r.uniformRef([C], 0.5, 1.5),
        r.uniformRef([C], -1, 1),
        r.normalRef(shape),
      ],
      gpu: (x, w, b, res) =>
        batchNorm2d(x, w, b, null, null, { training: true, residual: res, relu: true }),
      ref: (x, w, b, res) => fusedRef(x, { w, b, r: res, relu: true }),
    });
    await gradcheck(`training, relu, no affine [${shape}]`, {
      inputs: [channelData(r, shape)],
      gpu: (x) => batchNorm2d(x, null, null, null, null, { training: true, relu: true }),
      ref: (x) => fusedRef(x, { relu: true }),
    });
    const rm = r.uniformRef([C], -1, 1), rv = r.uniformRef([C], 0.5, 2);
    await gradcheck(`eval, relu + residual [${shape}]`, {
      inputs: [channelData(r, shape), r.uniformRef([C], 0.5, 1.5), r.normalRef(shape)],
      gpu: (x, w, res) =>
        batchNorm2d(x, w, null, upload(rm), upload(rv), { residual: res, relu: true }),
      ref: (x, w, res) =>
        fusedRef(x, { w, mean: Array.from(rm.data), var: Array.from(rv.data), r: res, relu: true }),
    });
  }
});

Deno.test("batchNorm2d() fused backward matches the textbook formula with vec4 parts", async () => {
  const r = new Rng(13);
  const shape = [8, 2, 32, 32];
  const x = channelData(r, shape), res = r.normalRef(shape), g = r.normalRef(shape);
  const w = r.uniformRef([2], 0.5, 1.5), b = ref([2], [0.1, -0.2]);
  const [xt, wt, bt, rt] = [x, w, b, res].map((v) => upload(v, { requiresGrad: true }));
  const y = batchNorm2d(xt, wt, bt, null, null, { training: true, residual: rt, relu: true });
  // The ReLU's mask applied to g is what batch norm and the residual receive.
  const z = fusedRef(x, { w, b, r: res });
  const gz = ref(shape, g.data.map((v, i) => (z.data[i] > 0 ? v : 0)));
  poison([x.data.length, 2]);
  y.backward(upload(g));
  const want = bnBackwardRef(x, gz, w);
  assertClose(await xt.grad!.toArray(), want.dx, { rtol: 1e-3, atol: 1e-5, msg: "dx" });
  assertClose(await wt.grad!.toArray(), want.dw, { rtol: 1e-4, atol: 1e-3, msg: "dweight" });
  assertClose(await bt.grad!.toArray(), want.db, { rtol: 1e-4, atol: 1e-3, msg: "dbias" });
  assertClose(await rt.grad!.toArray(), gz, { rtol: 0, atol: 0, msg: "dresidual" });
});

Deno.test("batchNorm2d() fused ReLU passes NaN through and gives it no gradient, as relu()", async () => {
  const x = upload(ref([1, 2, 2, 2], [1, -2, 3, -4, 0.5, 0.25, -1, 2]), { requiresGrad: true });
  const res = upload(ref([1, 2, 2, 2], [0, 0, NaN, 0, 0, 0, 0, 0]), { requiresGrad: true });
  const rm = upload(ref([2], [0, 0])), rv = upload(ref([2], [1, 1]));
  const y = batchNorm2d(x, null, null, rm, rv, { residual: res, relu: true, eps: 0 });
  const out = await y.toArray();
  assert.ok(Number.isNaN(out[2]), `NaN kept, got ${out[2]}`);
  assert.deepEqual(Array.from(out).filter((_, i) => i !== 2), [1, 0, 0, 0.5, 0.25, 0, 2]);
  y.backward(upload(ref([1, 2, 2, 2], [1, 1, 1, 1, 1, 1, 1, 1])));
  assert.deepEqual(Array.from(await res.grad!.toArray()), [1, 0, 0, 0, 1, 1, 0, 1]);
});

Deno.test("batchNorm2d() rejects a residual of another shape", () => {
  const x = upload(ref([1, 2, 2, 2]));
  assert.throws(
    () =>
      batchNorm2d(x, null, null, null, null, {
        training: true,
        residual: upload(ref([1, 2, 2, 1])),
      }),
    /batchNorm2d: residual must be an f32 tensor shaped like the input \[1, 2, 2, 2\], got f32 \[1, 2, 2, 1\]/,
  );
});

// ---------------------------------------------------------------- PyTorch

interface Fx {
  shape: number[];
  data: number[];
}
const asRef = (t: Fx): Ref => ref(t.shape, t.data);
const bnFx = JSON.parse(
  await Deno.readTextFile(new URL("../../fixtures/vision_ops.json", import.meta.url)),
).batch_norm;

/** A BatchNorm2d with the fixture's affine parameters (loaded through its state dict). */
function fixtureLayer(momentum: number | null): nn.BatchNorm2d {
  const bn = new nn.BatchNorm2d(bnFx.C, { eps: bnFx.eps, momentum });
  bn.loadStateDict({ weight: upload(asRef(bnFx.weight)), bias: upload(asRef(bnFx.bias)) }, {
    strict: false,
  });
  return bn;
}

Deno.test("nn.BatchNorm2d matches PyTorch over two training steps and in eval mode (outputs, running stats, grads)", async () => {
  const bn = fixtureLayer(bnFx.momentum);
  const step = async (c: { x: Fx; gout: Fx }, msg: string) => {
    const x = upload(asRef(c.x), { requiresGrad: true });
    const y = bn.forward(x);
    const out = await y.toArray();
    y.backward(upload(asRef(c.gout)));
    const r = {
      out,
      dx: await x.grad!.toArray(),
      dw: await bn.weight!.grad!.toArray(),
      db: await bn.bias!.grad!.toArray(),
    };
    for (const p of bn.parameters()) {
      p.grad!.dispose();
      p.grad = null;
    }
    assertClose(r.out, asRef((c as unknown as { out: Fx }).out), { ...TOL, msg: `${msg} out` });
    return r;
  };
  for (const [i, c] of bnFx.steps.entries()) {
    const r = await step(c, `step ${i + 1}`);
    assertClose(r.dx, asRef(c.dx), { rtol: 1e-4, atol: 1e-4, msg: `step ${i + 1} dx` });
    assertClose(r.dw, asRef(c.dweight), { ...TOL, msg: `step ${i + 1} dweight` });
    assertClose(r.db, asRef(c.dbias), { ...TOL, msg: `step ${i + 1} dbias` });
    assertClose(await bn.running_mean!.toArray(), asRef(c.running_mean), TOL);
    assertClose(await bn.running_var!.toArray(), asRef(c.running_var), TOL);
  }
  assert.equal(await bn.num_batches_tracked!.item(), 2);
  bn.eval();
  const r = await step(bnFx.eval, "eval");
  assertClose(r.dx, asRef(bnFx.eval.dx), { ...TOL, msg: "eval dx" });
  assertClose(r.dw, asRef(bnFx.eval.dweight), { ...TOL, msg: "eval dweight" });
  assertClose(r.db, asRef(bnFx.eval.dbias), { ...TOL, msg: "eval dbias" });
  assert.equal(await bn.num_batches_tracked!.item(), 2);
  assertClose(await bn.running_mean!.toArray(), asRef(bnFx.steps[1].running_mean), TOL);

  // momentum: null is PyTorch's cumulative moving average (1 / num_batches_tracked).
  const cum = fixtureLayer(null);
  noGrad(() => bnFx.steps.forEach((c: { x: Fx }) => cum.forward(upload(asRef(c.x)))));
  assertClose(await cum.running_mean!.toArray(), asRef(bnFx.cumulative.running_mean), TOL);
  assertClose(await cum.running_var!.toArray(), asRef(bnFx.cumulative.running_var), TOL);
  assert.equal(
    String(cum),
    "BatchNorm2d(3, eps=1e-05, momentum=None, affine=True, track_running_stats=True)",
  );
});

// ---------------------------------------------------------------- the layer

Deno.test("nn.BatchNorm2d has PyTorch's state dict (names, shapes, i32 counter) and loads a torch-style one", async () => {
  const bn = new nn.BatchNorm2d(4);
  const sd = bn.stateDict();
  assert.deepEqual(Object.keys(sd), [
    "weight",
    "bias",
    "running_mean",
    "running_var",
    "num_batches_tracked",
  ]);
  assert.deepEqual(sd.num_batches_tracked.shape, []);
  assert.equal(sd.num_batches_tracked.dtype, "i32");
  assert.deepEqual(bn.namedParameters().map(([k]) => k), ["weight", "bias"]);
  assert.deepEqual(Array.from(await sd.weight.toArray()), [1, 1, 1, 1]);
  assert.deepEqual(Array.from(await sd.running_var.toArray()), [1, 1, 1, 1]);
  assert.equal(
    String(bn),
    "BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)",
  );
  // A checkpoint's counter may arrive as f32 (or i64 converted on load): it is cast to i32.
  bn.loadStateDict({
    weight: tensor([1, 2, 3, 4]),
    bias: zeros([4]),
    running_mean: ones([4]),
    running_var: ones([4]),
    num_batches_tracked: tensor([7], { shape: [] }),
  });
  assert.equal(await bn.num_batches_tracked!.item(), 7);
  bn.forward(upload(channelData(new Rng(7), [2, 4, 3, 3])));
  assert.equal(await bn.num_batches_tracked!.item(), 8);

  const plain = new nn.BatchNorm2d(3, { affine: false, trackRunningStats: false });
  assert.deepEqual(Object.keys(plain.stateDict()), []);
  assert.equal(
    String(plain),
    "BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=False, track_running_stats=False)",
  );
  // Without running statistics, eval mode still normalises with the batch's.
  const x = channelData(new Rng(8), [2, 3, 2, 3]);
  assertClose(await plain.eval().forward(upload(x)).toArray(), bnRef(x, {}), TOL);
});

Deno.test("a frozen nn.BatchNorm2d still updates running stats in training mode (as PyTorch) but not after eval()", async () => {
  const bn = new nn.BatchNorm2d(3).freeze();
  const x = channelData(new Rng(9), [4, 3, 3, 3]);
  const y = bn.forward(upload(x));
  // Nothing needs a gradient: no node, nothing saved.
  assert.equal(y.node, null);
  assert.equal(y.requiresGrad, false);
  const { mean, varU } = statsRef(x);
  assertClose(await bn.running_mean!.toArray(), mean.map((m) => 0.1 * m), TOL);
  assertClose(await bn.running_var!.toArray(), varU.map((v) => 0.9 + 0.1 * v), TOL);
  assert.equal(await bn.num_batches_tracked!.item(), 1);
  // Statistics updates are not ops: they are not on the tape and happen under noGrad too.
  noGrad(() => bn.forward(upload(x)));
  assert.equal(await bn.num_batches_tracked!.item(), 2);
  for (const t of bn.buffers()) assert.equal(t.requiresGrad, false);

  bn.eval();
  const before = await bn.running_mean!.toArray();
  const z = bn.forward(upload(x, { requiresGrad: true }));
  z.sum().backward();
  assert.deepEqual(await bn.running_mean!.toArray(), before);
  assert.equal(await bn.num_batches_tracked!.item(), 2);
  assert.equal(bn.weight!.grad, null);
});

Deno.test("batchNorm2d() errors name the op and the shapes", () => {
  const x = zeros([2, 3, 4, 4]);
  const c = zeros([3]);
  assert.throws(
    () => batchNorm2d(zeros([2, 3, 4]), null, null, c, c),
    /batchNorm2d: expected an f32 \[N, C, H, W\] input, got f32 \[2, 3, 4\]/,
  );
  assert.throws(
    () => batchNorm2d(x, zeros([4]), null, c, c),
    /batchNorm2d: weight must be an f32 \[3\] tensor for input \[2, 3, 4, 4\], got f32 \[4\]/,
  );
  assert.throws(() => batchNorm2d(x, null, null, c, null), /pass both runningMean and runningVar/);
  assert.throws(() => batchNorm2d(x, null, null, null, null), /eval mode .* needs runningMean/);
  assert.throws(
    () => batchNorm2d(zeros([1, 3, 1, 1]), null, null, null, null, { training: true }),
    /expected more than 1 value per channel when training, got input \[1, 3, 1, 1\]/,
  );
  assert.throws(
    () => batchNorm2d(x, null, null, c, c, { training: true, momentum: null }),
    /momentum null .* needs numBatchesTracked/,
  );
  assert.throws(
    () => new nn.BatchNorm2d(3).forward(zeros([2, 4, 1, 1])),
    /BatchNorm2d\(3\): expected an input \[N, 3, H, W\], got Tensor\(\[2, 4, 1, 1\]/,
  );
});
