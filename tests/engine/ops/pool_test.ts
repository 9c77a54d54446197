/**
 * Pooling ops (maxPool2d, avgPool2d, adaptiveAvgPool2d) and their layers:
 * float64 CPU references written from PyTorch's definitions, gradchecks, and
 * golden PyTorch fixtures (tests/fixtures/vision_ops.json, made by
 * make_vision_op_fixtures.py).
 */

import assert from "node:assert/strict";
import {
  adaptiveAvgPool2d,
  avgPool2d,
  type AvgPool2dOptions,
  maxPool2d,
  type MaxPool2dOptions,
  maxPool2dWithIndices,
  nn,
  type Tensor,
  tensor,
  zeros,
} from "../../../mod.ts";
import { assertClose, type Ref, ref, Rng } from "../../helpers/reference.ts";
import { checkOp, download, poison, upload } from "../../helpers/gpu.ts";
import { gradcheck } from "../../helpers/gradcheck.ts";

// ---------------------------------------------------------------- references

type P2 = number | [number, number];
const two = (v: P2): [number, number] => (typeof v === "number" ? [v, v] : v);

/** PyTorch's pooling_output_shape, written out. */
function outLen(i: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const eff = d * (k - 1) + 1;
  let o = (ceil ? Math.ceil((i + 2 * p - eff) / s) : Math.floor((i + 2 * p - eff) / s)) + 1;
  if (ceil && (o - 1) * s >= i + p) o -= 1;
  return o;
}

interface PoolSpec {
  k: P2;
  s?: P2;
  p?: P2;
  d?: P2;
  ceil?: boolean;
}

/** Max pooling with PyTorch's rules: −∞ padding, first maximum wins, NaN wins (the last one). */
function maxPoolRef(x: Ref, o: PoolSpec): { out: Ref; idx: Ref } {
  const [N, C, H, W] = x.shape;
  const [kh, kw] = two(o.k), [sh, sw] = two(o.s ?? o.k), [ph, pw] = two(o.p ?? 0);
  const [dh, dw] = two(o.d ?? 1);
  const OH = outLen(H, kh, sh, ph, dh, o.ceil ?? false);
  const OW = outLen(W, kw, sw, pw, dw, o.ceil ?? false);
  const out = ref([N, C, OH, OW]);
  const idx = ref([N, C, OH, OW]);
  let at = 0;
  for (let pl = 0; pl < N * C; pl++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++, at++) {
        let best = -Infinity;
        let bi = -1;
        for (let a = 0; a < kh; a++) {
          const ih = oh * sh - ph + a * dh;
          if (ih < 0 || ih >= H) continue;
          for (let b = 0; b < kw; b++) {
            const iw = ow * sw - pw + b * dw;
            if (iw < 0 || iw >= W) continue;
            const v = x.data[pl * H * W + ih * W + iw];
            if (bi < 0 || Number.isNaN(v) || (!Number.isNaN(best) && v > best)) {
              best = v;
              bi = ih * W + iw;
            }
          }
        }
        out.data[at] = best;
        idx.data[at] = bi;
      }
    }
  }
  return { out, idx };
}

interface AvgSpec extends PoolSpec {
  countIncludePad?: boolean;
  divisor?: number;
}

/** Average pooling: padded divisor over the window clipped to [−p, H + p), sum over [0, H). */
function avgPoolRef(x: Ref, o: AvgSpec): Ref {
  const [N, C, H, W] = x.shape;
  const [kh, kw] = two(o.k), [sh, sw] = two(o.s ?? o.k), [ph, pw] = two(o.p ?? 0);
  const OH = outLen(H, kh, sh, ph, 1, o.ceil ?? false);
  const OW = outLen(W, kw, sw, pw, 1, o.ceil ?? false);
  const out = ref([N, C, OH, OW]);
  let at = 0;
  for (let pl = 0; pl < N * C; pl++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++, at++) {
        const h0 = oh * sh - ph, w0 = ow * sw - pw;
        const h1 = Math.min(h0 + kh, H + ph), w1 = Math.min(w0 + kw, W + pw);
        let s = 0, n = 0;
        for (let ih = Math.max(h0, 0); ih < Math.min(h1, H); ih++) {
          for (let iw = Math.max(w0, 0); iw < Math.min(w1, W); iw++) {
            s += x.data[pl * H * W + ih * W + iw];
            n++;
          }
        }
        const div = o.divisor ?? ((o.countIncludePad ?? true) ? (h1 - h0) * (w1 - w0) : n);
        out.data[at] = n === 0 ? 0 : s / div;
      }
    }
  }
  return out;
}

/** Adaptive average pooling: output i averages [⌊i·H/OH⌋, ⌈(i+1)·H/OH⌉). */
function adaptiveRef(x: Ref, OH: number, OW: number): Ref {
  const [N, C, H, W] = x.shape;
  const out = ref([N, C, OH, OW]);
  let at = 0;
  for (let pl = 0; pl < N * C; pl++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++, at++) {
        const h0 = Math.floor((oh * H) / OH), h1 = Math.ceil(((oh + 1) * H) / OH);
        const w0 = Math.floor((ow * W) / OW), w1 = Math.ceil(((ow + 1) * W) / OW);
        let s = 0;
        for (let ih = h0; ih < h1; ih++) {
          for (let iw = w0; iw < w1; iw++) s += x.data[pl * H * W + ih * W + iw];
        }
        out.data[at] = s / ((h1 - h0) * (w1 - w0));
      }
    }
  }
  return out;
}

const maxOpts = (o: PoolSpec): MaxPool2dOptions => ({
  kernelSize: o.k,
  stride: o.s,
  padding: o.p,
  dilation: o.d,
  ceilMode: o.ceil,
});
const avgOpts = (o: AvgSpec): AvgPool2dOptions => ({
  kernelSize: o.k,
  stride: o.s,
  padding: o.p,
  ceilMode: o.ceil,
  countIncludePad: o.countIncludePad,
  divisorOverride: o.divisor,
});

// [input shape, options]: odd sizes, overlapping and gapped windows, every option.
const MAX_CASES: [number[], PoolSpec][] = [
  [[2, 3, 7, 9], { k: 2 }],
  [[2, 3, 7, 9], { k: 2, ceil: true }],
  [[1, 2, 9, 7], { k: 3, s: 2, p: 1 }],
  [[1, 2, 10, 12], { k: 3, s: 2, p: 1, ceil: true }],
  [[1, 3, 8, 11], { k: [3, 2], s: [1, 2], p: [1, 0] }],
  [[1, 2, 11, 9], { k: 3, s: 2, p: 1, d: 2 }],
  [[2, 1, 9, 13], { k: [2, 3], s: [3, 1], d: [3, 2], ceil: true }],
  [[1, 1, 5, 5], { k: 2, s: 2, p: 1, ceil: true }],
  [[3, 1, 1, 1], { k: 1 }],
  [[1, 1, 33, 7], { k: 5, s: 4, p: 2, ceil: true }],
];

// ---------------------------------------------------------------- max

Deno.test("maxPool2d() matches the float64 reference (values and argmax) for every option", async () => {
  const r = new Rng(1);
  for (const [shape, o] of MAX_CASES) {
    const x = r.nonzero(shape);
    const want = maxPoolRef(x, o);
    const msg = `maxPool2d [${shape}] ${JSON.stringify(o)}`;
    await checkOp(msg, [x], (t) => maxPool2d(t, maxOpts(o)), want.out, { rtol: 0, atol: 0 });
    const xt = upload(x);
    poison([want.idx.data.length]);
    const [y, idx] = maxPool2dWithIndices(xt, maxOpts(o));
    assert.equal(idx.dtype, "i32");
    assertClose(await idx.toArray(), want.idx, { rtol: 0, atol: 0, msg: `${msg} indices` });
    for (const t of [xt, y, idx]) t.dispose();
  }
});

Deno.test("maxPool2d() gradients match central differences (padding, dilation, overlaps or not)", async () => {
  const r = new Rng(2);
  // Overlapping windows take the gather kernel, disjoint ones (1, 7) the scatter kernel;
  // 33 rows span two backward tiles.
  for (const i of [1, 3, 4, 6, 7, 9]) {
    const [shape, o] = MAX_CASES[i];
    await gradcheck(`maxPool2d [${shape}] ${JSON.stringify(o)}`, {
      inputs: [r.nonzero(shape)],
      gpu: (x) => maxPool2d(x, maxOpts(o)),
      ref: (x) => maxPoolRef(x, o).out,
    });
  }
});

Deno.test("maxPool2d() gives ties to the first maximum, pads with -inf and propagates NaN", async () => {
  // Constant input: every window ties; the first position of each window gets all its gradient.
  const x = tensor(new Float32Array(16).fill(2), { shape: [1, 1, 4, 4], requiresGrad: true });
  const y = maxPool2d(x, { kernelSize: 2, stride: 1 });
  y.sum().backward();
  // Windows start at (0..2, 0..2): their first element is the window's top-left corner.
  assert.deepEqual(Array.from(await x.grad!.toArray()), [
    ...[1, 1, 1, 0],
    ...[1, 1, 1, 0],
    ...[1, 1, 1, 0],
    ...[0, 0, 0, 0],
  ]);
  // Disjoint windows (the scatter kernel) break ties the same way.
  const x2 = tensor(new Float32Array(16).fill(2), { shape: [1, 1, 4, 4], requiresGrad: true });
  maxPool2d(x2, { kernelSize: 2 }).sum().backward();
  assert.deepEqual(Array.from(await x2.grad!.toArray()), [
    ...[1, 0, 1, 0],
    ...[0, 0, 0, 0],
    ...[1, 0, 1, 0],
    ...[0, 0, 0, 0],
  ]);
  // All-negative input: zero padding would win, −∞ padding does not.
  const neg = tensor([-5, -4, -3, -2], { shape: [1, 1, 2, 2] });
  const pooled = maxPool2d(neg, { kernelSize: 2, stride: 1, padding: 1 });
  assert.deepEqual(Array.from(await pooled.toArray()), [-5, -4, -4, -3, -2, -2, -3, -2, -2]);
  // NaN wins its windows; the others are unaffected.
  const nan = tensor([1, NaN, 3, 4, 5, 6, 7, 8, 9], { shape: [1, 1, 3, 3] });
  const [v, i] = maxPool2dWithIndices(nan, { kernelSize: 2, stride: 1 });
  const vals = Array.from(await v.toArray());
  assert.ok(Number.isNaN(vals[0]) && Number.isNaN(vals[1]), `${vals}`);
  assert.deepEqual(vals.slice(2), [8, 9]);
  assert.deepEqual(Array.from(await i.toArray()), [1, 1, 7, 8]);
});

// ---------------------------------------------------------------- average

const AVG_CASES: [number[], AvgSpec][] = [
  [[2, 3, 7, 9], { k: 2 }],
  [[1, 2, 9, 7], { k: 3, s: 2, p: 1 }],
  [[1, 2, 9, 7], { k: 3, s: 2, p: 1, countIncludePad: false }],
  [[1, 2, 10, 12], { k: 3, s: 2, p: 1, ceil: true }],
  [[1, 2, 10, 12], { k: 3, s: 2, p: 1, ceil: true, countIncludePad: false }],
  [[1, 1, 5, 5], { k: 2, s: 2, p: 1, ceil: true }],
  [[2, 1, 8, 11], { k: [2, 3], s: [1, 2], p: [1, 1], divisor: 4 }],
  [[1, 1, 33, 7], { k: 5, s: 3, p: 2, ceil: true, countIncludePad: false }],
];

Deno.test("avgPool2d() matches the float64 reference (padding, ceil mode, divisors)", async () => {
  const r = new Rng(3);
  for (const [shape, o] of AVG_CASES) {
    const x = r.nonzero(shape);
    await checkOp(
      `avgPool2d [${shape}] ${JSON.stringify(o)}`,
      [x],
      (t) => avgPool2d(t, avgOpts(o)),
      avgPoolRef(x, o),
      { rtol: 1e-5, atol: 1e-6 },
    );
  }
});

Deno.test("avgPool2d() gradients match central differences", async () => {
  const r = new Rng(4);
  for (const [shape, o] of [AVG_CASES[1], AVG_CASES[4], AVG_CASES[6], AVG_CASES[7]]) {
    await gradcheck(`avgPool2d [${shape}] ${JSON.stringify(o)}`, {
      inputs: [r.nonzero(shape)],
      gpu: (x) => avgPool2d(x, avgOpts(o)),
      ref: (x) => avgPoolRef(x, o),
    });
  }
});

// ---------------------------------------------------------------- adaptive

const ADAPTIVE_CASES: [number[], [number, number]][] = [
  [[2, 3, 10, 13], [7, 7]],
  [[2, 3, 10, 13], [1, 1]],
  [[1, 2, 3, 4], [5, 7]],
  [[1, 2, 9, 9], [3, 3]],
  [[1, 1, 33, 1], [4, 1]],
  [[3, 2, 16, 16], [1, 1]],
];

Deno.test("adaptiveAvgPool2d() matches the float64 reference when shrinking, growing and global", async () => {
  const r = new Rng(5);
  for (const [shape, [oh, ow]] of ADAPTIVE_CASES) {
    const x = r.nonzero(shape);
    await checkOp(
      `adaptiveAvgPool2d [${shape}] -> ${oh}x${ow}`,
      [x],
      (t) => adaptiveAvgPool2d(t, [oh, ow]),
      adaptiveRef(x, oh, ow),
      { rtol: 1e-5, atol: 1e-6 },
    );
  }
  // One number for both sizes, and null keeps an input size.
  const x = r.nonzero([1, 2, 6, 5]);
  await checkOp("number", [x], (t) => adaptiveAvgPool2d(t, 2), adaptiveRef(x, 2, 2));
  await checkOp("null", [x], (t) => adaptiveAvgPool2d(t, [null, 3]), adaptiveRef(x, 6, 3));
});

Deno.test("adaptiveAvgPool2d() gradients match central differences", async () => {
  const r = new Rng(6);
  for (const [shape, [oh, ow]] of [ADAPTIVE_CASES[0], ADAPTIVE_CASES[2], ADAPTIVE_CASES[4]]) {
    await gradcheck(`adaptiveAvgPool2d [${shape}] -> ${oh}x${ow}`, {
      inputs: [r.nonzero(shape)],
      gpu: (x) => adaptiveAvgPool2d(x, [oh, ow]),
      ref: (x) => adaptiveRef(x, oh, ow),
    });
  }
});

/** The adjoint of {@link adaptiveRef}: d Σ g·pool(x) / dx. */
function adaptiveGradRef(g: Ref, H: number, W: number): Ref {
  const [N, C, OH, OW] = g.shape;
  const dx = ref([N, C, H, W]);
  let at = 0;
  for (let pl = 0; pl < N * C; pl++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++, at++) {
        const h0 = Math.floor((oh * H) / OH), h1 = Math.ceil(((oh + 1) * H) / OH);
        const w0 = Math.floor((ow * W) / OW), w1 = Math.ceil(((ow + 1) * W) / OW);
        const v = g.data[at] / ((h1 - h0) * (w1 - w0));
        for (let ih = h0; ih < h1; ih++) {
          for (let iw = w0; iw < w1; iw++) dx.data[pl * H * W + ih * W + iw] += v;
        }
      }
    }
  }
  return dx;
}

Deno.test("adaptiveAvgPool2d() windows beyond the loop budget, forward and backward", async () => {
  // llvmpipe ends an invocation's loops after 65,535 passes in all (kernels/program.ts): a
  // window of 300×260 (global pooling) or 300×300, and an input read by 300×300 windows
  // (growing 1×1 to 300×300, backward) overran it. They are pooled rows first, then columns,
  // as are windows of 101×150 (within the budget, not within the op's margin).
  const r = new Rng(7);
  const cases: [number[], [number, number]][] = [
    [[2, 3, 300, 260], [1, 1]],
    [[1, 1, 600, 300], [2, 1]],
    [[1, 2, 301, 300], [3, 2]],
    [[1, 2, 1, 1], [300, 300]],
  ];
  for (const [shape, [oh, ow]] of cases) {
    const name = `adaptiveAvgPool2d [${shape}] -> ${oh}x${ow}`;
    const x = r.nonzero(shape);
    await checkOp(name, [x], (t) => adaptiveAvgPool2d(t, [oh, ow]), adaptiveRef(x, oh, ow), {
      rtol: 1e-5,
      atol: 1e-6,
    });
    const g = r.nonzero([shape[0], shape[1], oh, ow]);
    const xt = upload(x, { requiresGrad: true });
    const gt = upload(g);
    adaptiveAvgPool2d(xt, [oh, ow]).backward(gt);
    assertClose(await xt.grad!.toArray(), adaptiveGradRef(g, shape[2], shape[3]), {
      rtol: 1e-5,
      atol: 1e-6,
      msg: `${name} backward`,
    });
    for (const t of [xt, gt]) t.dispose();
  }
  assert.throws(
    () => adaptiveAvgPool2d(zeros([1, 1, 100_001, 1]), [2, 1]),
    /adaptiveAvgPool2d: input \[1, 1, 100001, 1\] to 2×1 needs windows of 50001 values/,
  );
  assert.throws(
    () => maxPool2d(zeros([1, 1, 200, 200]), { kernelSize: 150 }),
    /kernelSize \[150, 150\] is too large/,
  );
});

// ---------------------------------------------------------------- PyTorch fixtures

interface Fx {
  shape: number[];
  data: number[];
}
const asRef = (t: Fx): Ref => ref(t.shape, t.data);
const fixture = JSON.parse(
  await Deno.readTextFile(new URL("../../fixtures/vision_ops.json", import.meta.url)),
);

/** Output and input gradient of `f` on the fixture's x with upstream gout. */
async function run(c: { x: Fx; gout: Fx }, f: (x: Tensor) => Tensor) {
  const x = upload(asRef(c.x), { requiresGrad: true });
  poison([c.gout.data.length, c.x.data.length]);
  const y = f(x);
  assert.deepEqual(y.shape, c.gout.shape);
  const out = await y.toArray();
  y.backward(upload(asRef(c.gout)));
  const dx = await x.grad!.toArray();
  x.grad!.dispose();
  x.dispose();
  y.dispose();
  return { out, dx };
}

const TOL = { rtol: 1e-5, atol: 1e-6 };

Deno.test("maxPool2d() values, indices and gradients match PyTorch (padding, ceil, dilation, ties)", async () => {
  assert.equal(fixture.max_pool2d.length, 4);
  for (const c of fixture.max_pool2d) {
    const o: MaxPool2dOptions = {
      kernelSize: c.kernel_size,
      stride: c.stride,
      padding: c.padding,
      dilation: c.dilation,
      ceilMode: c.ceil_mode,
    };
    const { out, dx } = await run(c, (x) => maxPool2d(x, o));
    assertClose(out, asRef(c.out), { ...TOL, msg: `${c.name} out` });
    assertClose(dx, asRef(c.dx), { ...TOL, msg: `${c.name} dx` });
    const [y, idx] = maxPool2dWithIndices(upload(asRef(c.x)), o);
    assert.deepEqual(Array.from(await idx.toArray()), c.indices.data, `${c.name} indices`);
    y.dispose();
    idx.dispose();
    // The reference agrees with PyTorch too, so the reference tests above test the right thing.
    const spec = { k: c.kernel_size, s: c.stride, p: c.padding, d: c.dilation, ceil: c.ceil_mode };
    assert.deepEqual(Array.from(maxPoolRef(asRef(c.x), spec).idx.data), c.indices.data);
  }
});

Deno.test("avgPool2d() outputs and gradients match PyTorch (padding in or out of the divisor, ceil, override)", async () => {
  assert.equal(fixture.avg_pool2d.length, 4);
  for (const c of fixture.avg_pool2d) {
    const spec: AvgSpec = {
      k: c.kernel_size,
      s: c.stride,
      p: c.padding,
      ceil: c.ceil_mode,
      countIncludePad: c.count_include_pad,
      divisor: c.divisor_override ?? undefined,
    };
    const { out, dx } = await run(c, (x) => avgPool2d(x, avgOpts(spec)));
    assertClose(out, asRef(c.out), { ...TOL, msg: `${c.name} out` });
    assertClose(dx, asRef(c.dx), { ...TOL, msg: `${c.name} dx` });
    assertClose(avgPoolRef(asRef(c.x), spec).data, asRef(c.out), { ...TOL, msg: `${c.name} ref` });
  }
});

Deno.test("adaptiveAvgPool2d() outputs and gradients match PyTorch (7x7 from 10x13, 1x1, 5x7 from 3x4)", async () => {
  assert.equal(fixture.adaptive_avg_pool2d.length, 3);
  for (const c of fixture.adaptive_avg_pool2d) {
    const { out, dx } = await run(c, (x) => adaptiveAvgPool2d(x, c.output_size));
    assertClose(out, asRef(c.out), { ...TOL, msg: `${c.name} out` });
    assertClose(dx, asRef(c.dx), { ...TOL, msg: `${c.name} dx` });
  }
});

// ---------------------------------------------------------------- shapes, layers, errors

Deno.test("pooling takes [C, H, W] inputs and records nothing when no gradient is needed", async () => {
  const r = new Rng(7);
  const x = r.nonzero([3, 7, 9]);
  const x4 = ref([1, 3, 7, 9], x.data);
  await checkOp("max 3-D", [x], (t) => maxPool2d(t, { kernelSize: 2 }), {
    ...maxPoolRef(x4, { k: 2 }).out,
    shape: [3, 3, 4],
  });
  await checkOp("avg 3-D", [x], (t) => avgPool2d(t, { kernelSize: 3, padding: 1 }), {
    ...avgPoolRef(x4, { k: 3, p: 1 }),
    shape: [3, 3, 3],
  });
  await checkOp("adaptive 3-D", [x], (t) => adaptiveAvgPool2d(t, 1), {
    ...adaptiveRef(x4, 1, 1),
    shape: [3, 1, 1],
  });
  const t = upload(r.nonzero([1, 3, 7, 9]));
  for (const y of [maxPool2d(t, { kernelSize: 2 }), avgPool2d(t, { kernelSize: 2 })]) {
    assert.equal(y.node, null);
    assert.equal(y.requiresGrad, false);
  }
  // A 3-D input's gradient comes back 3-D.
  const g = upload(x, { requiresGrad: true });
  maxPool2d(g, { kernelSize: 3, stride: 2 }).sum().backward();
  assert.deepEqual(g.grad!.shape, [3, 7, 9]);
  assert.equal((await download(g.grad!)).data.reduce((p, v) => p + v, 0), 3 * 3 * 4);
});

Deno.test("nn.MaxPool2d, nn.AvgPool2d and nn.AdaptiveAvgPool2d match the ops and print like PyTorch", async () => {
  const r = new Rng(8);
  const x = r.nonzero([2, 3, 9, 9]);
  const mp = new nn.MaxPool2d(3, { stride: 2, padding: 1 });
  await checkOp("MaxPool2d", [x], (t) => mp.forward(t), maxPoolRef(x, { k: 3, s: 2, p: 1 }).out);
  const ap = new nn.AvgPool2d([2, 3], { ceilMode: true, countIncludePad: false });
  await checkOp(
    "AvgPool2d",
    [x],
    (t) => ap.forward(t),
    avgPoolRef(x, { k: [2, 3], ceil: true, countIncludePad: false }),
  );
  const gap = new nn.AdaptiveAvgPool2d([1, 1]);
  await checkOp("AdaptiveAvgPool2d", [x], (t) => gap.forward(t), adaptiveRef(x, 1, 1));
  assert.equal(
    String(mp),
    "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)",
  );
  assert.equal(String(ap), "AvgPool2d(kernel_size=(2, 3), stride=(2, 3), padding=0)");
  assert.equal(String(gap), "AdaptiveAvgPool2d(output_size=(1, 1))");
  for (const m of [mp, ap, gap]) assert.deepEqual(Object.keys(m.stateDict()), []);
});

Deno.test("pooling errors name the op, the shapes and the offending option", () => {
  const x = zeros([1, 2, 5, 5]);
  assert.throws(() => maxPool2d(zeros([5, 5]), { kernelSize: 2 }), /maxPool2d: .*got \[5, 5\]/);
  assert.throws(
    () => maxPool2d(x, { kernelSize: 2, padding: 2 }),
    /maxPool2d: padding \[2, 2\] must be at most half of kernelSize \[2, 2\]/,
  );
  assert.throws(
    () => maxPool2d(x, { kernelSize: 3, dilation: 3 }),
    /maxPool2d: input \[1, 2, 5, 5\] is too small for kernelSize \[3, 3\], padding \[0, 0\], dilation \[3, 3\]: the output would be 0×0/,
  );
  assert.throws(() => avgPool2d(x, { kernelSize: 0 }), /avgPool2d: kernelSize must be/);
  assert.throws(() => avgPool2d(x, { kernelSize: [2, 2, 2] as never }), /avgPool2d: kernelSize/);
  assert.throws(() => avgPool2d(x, { kernelSize: 2, stride: 0 }), /avgPool2d: stride must be/);
  assert.throws(
    () => avgPool2d(x, { kernelSize: 2, divisorOverride: 0 }),
    /avgPool2d: divisorOverride must be a positive integer/,
  );
  assert.throws(() => adaptiveAvgPool2d(x, [0, 2]), /adaptiveAvgPool2d: outputSize must be/);
  assert.throws(
    () => adaptiveAvgPool2d(zeros([1, 1, 0, 3]), 1),
    /adaptiveAvgPool2d: input \[1, 1, 0, 3\] has an empty plane/,
  );
  assert.throws(
    () => maxPool2d(zeros([1, 1, 4, 4], "i32"), { kernelSize: 2 }),
    /maxPool2d: expected an f32 tensor, got i32 \[1, 1, 4, 4\]/,
  );
});
