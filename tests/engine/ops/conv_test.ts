import assert from "node:assert/strict";
import {
  conv2d,
  type Conv2dOptions,
  emptyCache,
  full,
  manualSeed,
  memoryStats,
  nn,
  randn,
  type Tensor,
  tensor,
  zeros,
} from "../../../mod.ts";
import { setConvChunkBytes } from "../../../engine/ops/conv.ts";
import { gpu } from "../../../engine/device.ts";
import {
  type DispatchObserver,
  readBuffer,
  setDispatchObserver,
} from "../../../engine/dispatch.ts";
import { assertClose, type Ref, ref, Rng } from "../../helpers/reference.ts";
import { conv2dGradRef, conv2dRef, type Conv2dRefOptions } from "../../helpers/conv_reference.ts";
import { checkOp, download, poison, upload } from "../../helpers/gpu.ts";
import { gradcheck } from "../../helpers/gradcheck.ts";

/** One configuration: input shape, weight shape, options (padding may be "same"/"valid"). */
interface Case {
  x: number[];
  w: number[];
  opts: Omit<Conv2dOptions, "bias">;
  bias?: boolean;
}

const CASES: Case[] = [
  { x: [1, 1, 1, 1], w: [1, 1, 1, 1], opts: {} },
  { x: [2, 3, 7, 9], w: [5, 3, 3, 3], opts: {} },
  { x: [2, 3, 7, 9], w: [5, 3, 3, 3], opts: { padding: 1 }, bias: true },
  { x: [3, 5, 8, 7], w: [6, 5, 3, 3], opts: { stride: 2, padding: 1 }, bias: true },
  { x: [1, 3, 11, 10], w: [4, 3, 3, 3], opts: { dilation: 2, padding: 2 } },
  { x: [2, 3, 9, 8], w: [4, 3, 3, 3], opts: { dilation: [2, 1], stride: [1, 2], padding: [0, 3] } },
  {
    x: [2, 4, 9, 8],
    w: [6, 2, 3, 2],
    opts: { groups: 2, padding: [1, 2], stride: [2, 1] },
    bias: true,
  },
  { x: [2, 12, 6, 5], w: [9, 4, 3, 3], opts: { groups: 3, padding: 1 } },
  { x: [1, 10, 7, 7], w: [10, 1, 3, 3], opts: { groups: 10, padding: 1 }, bias: true },
  { x: [2, 8, 10, 9], w: [8, 1, 5, 5], opts: { groups: 8, padding: 2, stride: 2 } },
  {
    x: [2, 6, 11, 10],
    w: [6, 1, 3, 3],
    opts: { groups: 6, padding: 2, dilation: 2, stride: 2 },
    bias: true,
  },
  { x: [1, 3, 7, 7], w: [6, 1, 3, 3], opts: { groups: 3, padding: 1 } },
  { x: [2, 9, 5, 6], w: [17, 9, 1, 1], opts: {} },
  { x: [2, 33, 4, 5], w: [7, 33, 1, 3], opts: { padding: [0, 1] }, bias: true },
  { x: [1, 6, 5, 4], w: [70, 3, 3, 3], opts: { groups: 2, padding: 1 }, bias: true },
  { x: [1, 2, 6, 7], w: [3, 2, 4, 4], opts: { padding: "same" } },
  { x: [1, 2, 6, 7], w: [3, 2, 2, 3], opts: { padding: "valid" }, bias: true },
  { x: [2, 3, 5, 5], w: [4, 3, 5, 5], opts: {} },
  { x: [1, 3, 4, 4], w: [2, 3, 3, 3], opts: { stride: 3, padding: 1 } },
  { x: [1, 2, 3, 3], w: [2, 2, 2, 2], opts: { padding: 3 } },
  // Data-gradient phases without taps, with a common factor of stride and dilation, and rows
  // fewer than the stride.
  { x: [2, 3, 7, 8], w: [4, 3, 1, 1], opts: { stride: 2 }, bias: true },
  {
    x: [1, 2, 10, 9],
    w: [3, 2, 3, 2],
    opts: { stride: [2, 3], dilation: [2, 1], padding: [2, 0] },
  },
  { x: [1, 2, 1, 5], w: [2, 2, 1, 3], opts: { stride: 2, padding: [0, 1] } },
  // The 32-channel tile over more pixels than one workgroup's (256), the last one partial: 33
  // outputs (forward), then 33 inputs (data gradient).
  { x: [2, 5, 13, 11], w: [33, 5, 3, 3], opts: { padding: 1 }, bias: true },
  { x: [1, 33, 17, 16], w: [6, 33, 3, 3], opts: { padding: 1 } },
];

/** The reference's padding for the engine's options ("same" resolved as PyTorch does). */
function refOpts(c: Case, bias?: Ref): Conv2dRefOptions {
  const { padding, ...rest } = c.opts;
  let p: Conv2dRefOptions["padding"];
  if (padding === "same") {
    const [dy, dx] = typeof rest.dilation === "number"
      ? [rest.dilation, rest.dilation]
      : rest.dilation ?? [1, 1];
    const ty = dy * (c.w[2] - 1);
    const tx = dx * (c.w[3] - 1);
    p = [ty >> 1, ty - (ty >> 1), tx >> 1, tx - (tx >> 1)];
  } else {
    p = padding === "valid" ? 0 : padding;
  }
  return { ...rest, padding: p, bias };
}

const label = (c: Case) =>
  `x [${c.x}] w [${c.w}] ${JSON.stringify(c.opts)}${c.bias ? " bias" : ""}`;

// f32 sums of K products of values ≤ 1: error grows like K·ε at worst.
const tol = (w: number[]) => ({ rtol: 1e-5, atol: 2e-7 * w[1] * w[2] * w[3] + 1e-6 });

function inputs(r: Rng, c: Case): { x: Ref; w: Ref; b?: Ref } {
  return {
    x: r.nonzero(c.x, 0.1, 1),
    w: r.nonzero(c.w, 0.1, 1),
    b: c.bias ? r.nonzero([c.w[0]], 0.1, 1) : undefined,
  };
}

/** Forward, then backward of `sum(y · gout)`; returns y and the gradients of the inputs that require them. */
async function runBoth(
  c: Case,
  v: { x: Ref; w: Ref; b?: Ref },
  gout: Ref,
): Promise<{ y: Ref; dx: Ref; dw: Ref; db?: Ref }> {
  const x = upload(v.x, { requiresGrad: true });
  const w = upload(v.w, { requiresGrad: true });
  const b = v.b ? upload(v.b, { requiresGrad: true }) : undefined;
  const g = upload(gout);
  poison([gout.data.length, v.x.data.length, v.w.data.length]);
  const y = conv2d(x, w, { ...c.opts, bias: b });
  const yr = await download(y);
  y.backward(g);
  const out = {
    y: yr,
    dx: await download(x.grad!),
    dw: await download(w.grad!),
    db: b ? await download(b.grad!) : undefined,
  };
  for (const t of [x, w, b, g, y]) {
    t?.grad?.dispose();
    t?.dispose();
  }
  return out;
}

/** Checks forward and all gradients of `c` against the float64 reference and its adjoint. */
async function checkCase(r: Rng, c: Case, msg = label(c)): Promise<void> {
  const v = inputs(r, c);
  const yRef = conv2dRef(v.x, v.w, refOpts(c, v.b));
  const gout = r.nonzero(yRef.shape, 0.1, 1);
  const got = await runBoth(c, v, gout);
  assertClose(got.y.data, yRef, { ...tol(c.w), msg: `${msg}: forward` });
  const want = conv2dGradRef(v.x, v.w, gout, refOpts(c));
  const [, , OH, OW] = yRef.shape;
  // dx sums O/groups·taps products, dw sums N·OH·OW, db N·OH·OW.
  const big = { rtol: 1e-5, atol: 2e-7 * c.x[0] * OH * OW + 1e-6 };
  assertClose(got.dx.data, want.dx, { ...tol([0, c.w[0], c.w[2], c.w[3]]), msg: `${msg}: dx` });
  assertClose(got.dw.data, want.dw, { ...big, msg: `${msg}: dweight` });
  if (got.db) assertClose(got.db.data, want.db, { ...big, msg: `${msg}: dbias` });
}

Deno.test("conv2d() matches the float64 reference for every option at odd sizes", async () => {
  const r = new Rng(1);
  for (const c of CASES) {
    const v = inputs(r, c);
    await checkOp(
      label(c),
      v.b ? [v.x, v.w, v.b] : [v.x, v.w],
      (x, w, b) => conv2d(x, w, { ...c.opts, bias: b }),
      conv2dRef(v.x, v.w, refOpts(c, v.b)),
      tol(c.w),
    );
  }
});

Deno.test("conv2d() gradients of input, weight and bias match the exact float64 adjoint", async () => {
  const r = new Rng(2);
  for (const c of CASES) await checkCase(r, c);
});

Deno.test("conv2d() backward matches finite differences for strided, dilated, grouped and depthwise cases", async () => {
  const r = new Rng(3);
  const cases: Case[] = [
    { x: [2, 3, 6, 5], w: [4, 3, 3, 3], opts: { stride: 2, padding: 1 }, bias: true },
    { x: [1, 4, 7, 6], w: [6, 2, 3, 2], opts: { groups: 2, dilation: 2, padding: [2, 1] } },
    { x: [2, 5, 6, 6], w: [5, 1, 3, 3], opts: { groups: 5, stride: 2, padding: 1 }, bias: true },
    { x: [1, 2, 5, 6], w: [3, 2, 2, 4], opts: { padding: "same" }, bias: true },
  ];
  for (const c of cases) {
    const v = inputs(r, c);
    await gradcheck(label(c), {
      inputs: v.b ? [v.x, v.w, v.b] : [v.x, v.w],
      gpu: (x, w, b) => conv2d(x, w, { ...c.opts, bias: b }),
      ref: (x, w, b) => conv2dRef(x, w, refOpts(c, b)),
    });
  }
});

Deno.test("conv2d() processes images in chunks and splits the weight gradient's pixels", async () => {
  const r = new Rng(4);
  const cases: Case[] = [
    // One tile of the weight gradient over 2·24·20 pixels: split into several partial sums.
    { x: [2, 3, 24, 20], w: [4, 3, 1, 1], opts: {}, bias: true },
    { x: [3, 5, 6, 7], w: [6, 5, 3, 3], opts: { stride: 2, padding: 1 }, bias: true },
    { x: [3, 6, 9, 8], w: [6, 1, 3, 3], opts: { groups: 6, padding: 1 } },
  ];
  for (const c of cases) await checkCase(r, c, `${label(c)} (whole batch)`);
  const prev = setConvChunkBytes(1);
  try {
    for (const c of cases) await checkCase(r, c, `${label(c)} (one image per chunk)`);
  } finally {
    setConvChunkBytes(prev);
  }
});

Deno.test("conv2d() keeps every kernel loop within llvmpipe's loop budget", async () => {
  // llvmpipe stops an invocation's loops after 65,535 passes in all (kernels/program.ts).
  // 1,024 taps of 64 input texels are 67,584 passes of the GEMM kernel, and 128 taps of 600
  // texels 77,056: the forward of the first case and the data gradient of the second (its
  // pass inputs are w's 2,400 outputs) are summed in blocks. The third has 65,536 output
  // pixels one wide in one weight-gradient tile: 8,192 pixels per lane at 11 passes each
  // before the pixels were split to fit.
  // Each case checks only the pass in question.
  const r = new Rng(7);
  const fwd: Case = { x: [1, 256, 32, 32], w: [2, 256, 32, 32], opts: {}, bias: true };
  const v = inputs(r, fwd);
  await checkOp(
    `${label(fwd)}: forward`,
    [v.x, v.w, v.b!],
    (x, w, b) => conv2d(x, w, { bias: b }),
    conv2dRef(v.x, v.w, refOpts(fwd, v.b)),
    tol(fwd.w),
  );
  const dx: Case = { x: [1, 2, 8, 16], w: [2400, 2, 8, 16], opts: {} };
  const dw: Case = { x: [8, 1, 8223, 1], w: [4, 1, 32, 1], opts: {} };
  for (const [c, wrt] of [[dx, "dx"], [dw, "dw"]] as [Case, "dx" | "dw"][]) {
    const { x, w } = inputs(r, c);
    const [N, , H] = c.x;
    const [O, , kh] = c.w;
    const OH = H - kh + 1;
    const gout = r.nonzero([N, O, OH, c.x[3] - c.w[3] + 1], 0.1, 1);
    const want = wrt === "dx" ? conv2dGradRef(x, w, gout, refOpts(c)).dx : ref(c.w);
    if (wrt === "dw") {
      // dW[o, 0, ky, 0] = Σ_n Σ_oh x[n, 0, oh + ky, 0]·g[n, o, oh, 0] (one channel, one column).
      for (let o = 0; o < O; o++) {
        for (let ky = 0; ky < kh; ky++) {
          let acc = 0;
          for (let n = 0; n < N; n++) {
            for (let oh = 0; oh < OH; oh++) {
              acc += x.data[n * H + oh + ky] * gout.data[(n * O + o) * OH + oh];
            }
          }
          want.data[o * kh + ky] = acc;
        }
      }
    }
    const xt = upload(x, { requiresGrad: wrt === "dx" });
    const wt = upload(w, { requiresGrad: wrt === "dw" });
    const gt = upload(gout);
    poison([x.data.length, w.data.length]);
    conv2d(xt, wt).backward(gt);
    const t = wrt === "dx"
      ? tol([0, c.w[0], c.w[2], c.w[3]])
      : { rtol: 1e-5, atol: 2e-7 * N * OH + 1e-6 };
    const got = await (wrt === "dx" ? xt : wt).grad!.toArray();
    assertClose(got, want, { ...t, msg: `${label(c)}: ${wrt}` });
    for (const u of [xt, wt, gt]) {
      u.grad?.dispose();
      u.dispose();
    }
  }
});

Deno.test("conv2d() is right for batches of 1, 6, 12 and 96 square images and 6-tap kernels", async () => {
  // wgpu's GL backend makes a 1-layer texture TEXTURE_2D and a square one with a multiple of 6
  // layers a cube map, so these layer counts once read garbage there. 96 is the last batch of a
  // Fashion-MNIST epoch at batch size 128; a 2×3 kernel of 4 → 16 channels packs its weight
  // as 6 layers of 4×4 texels.
  const r = new Rng(6);
  const cases: Case[] = [
    { x: [1, 1, 28, 28], w: [4, 1, 3, 3], opts: { padding: 1 }, bias: true },
    { x: [6, 1, 28, 28], w: [4, 1, 3, 3], opts: { padding: 1 }, bias: true },
    { x: [12, 3, 8, 8], w: [5, 3, 3, 3], opts: { padding: 1 } },
    { x: [96, 1, 28, 28], w: [4, 1, 3, 3], opts: { padding: 1 }, bias: true },
    { x: [6, 4, 7, 7], w: [16, 4, 2, 3], opts: { padding: [1, 1] } },
    { x: [6, 8, 6, 6], w: [8, 1, 3, 3], opts: { groups: 8, padding: 1 } },
  ];
  for (const c of cases) await checkCase(r, c);
});

Deno.test("conv2d() tiles channel texels when a row of them exceeds the texture width", async () => {
  // 520 channels = 130 texels of a 130-pixel row: 16,900 texels, above the 16,384 texture limit.
  const r = new Rng(5);
  await checkCase(r, { x: [1, 520, 1, 130], w: [3, 520, 1, 1], opts: {} });
  await checkCase(r, { x: [1, 4, 1, 130], w: [520, 4, 1, 1], opts: {} });
});

Deno.test("conv2d() of an empty batch or of zero input channels gives the bias or zeros", async () => {
  const y = conv2d(zeros([0, 3, 5, 5]), zeros([4, 3, 3, 3]), { padding: 1 });
  assert.deepEqual(y.shape, [0, 4, 5, 5]);
  const b = tensor([1, 2]);
  const z = conv2d(zeros([1, 0, 2, 2]), zeros([2, 0, 1, 1]), { bias: b });
  assert.deepEqual(Array.from(await z.toArray()), [1, 1, 1, 1, 2, 2, 2, 2]);
});

Deno.test("conv2d() reports mismatched shapes and options, naming conv2d and the shapes", () => {
  const x = zeros([1, 3, 5, 5]);
  const cases: [() => unknown, RegExp][] = [
    [
      () => conv2d(x, zeros([4, 2, 3, 3])),
      /conv2d: input \[1, 3, 5, 5\], weight \[4, 2, 3, 3\]: the input has 3 channels but the weight expects 2/,
    ],
    [
      () => conv2d(zeros([1, 4, 5, 5]), zeros([3, 2, 3, 3]), { groups: 2 }),
      /conv2d: .*groups=2 must divide the input channels \(4\) and the output channels \(3\)/,
    ],
    [
      () => conv2d(zeros([1, 1, 2, 2]), zeros([1, 1, 3, 3])),
      /conv2d: input \[1, 1, 2, 2\], weight \[1, 1, 3, 3\]: the kernel 3×3 .* larger than the padded input 2×2/,
    ],
    [
      () => conv2d(zeros([1, 1, 4, 4]), zeros([1, 1, 3, 3]), { dilation: 2 }),
      /spanning 5×5\) is larger than the padded input 4×4/,
    ],
    [
      () => conv2d(x, zeros([4, 3, 3, 3]), { bias: zeros([3]) }),
      /conv2d: .*bias must be f32 \[4\], got f32 \[3\]/,
    ],
    [() => conv2d(zeros([3, 5, 5]), zeros([4, 3, 3, 3])), /conv2d: input \[3, 5, 5\].*4-D/],
    [
      () => conv2d(x, zeros([4, 3, 3, 3]), { padding: "same", stride: 2 }),
      /padding="same" is not supported for strided convolutions/,
    ],
    [() => conv2d(x, zeros([4, 3, 3, 3]), { stride: 0 }), /stride must be an integer ≥ 1/],
    [() => conv2d(x, zeros([4, 3, 3, 3]), { padding: -1 }), /padding must be an integer ≥ 0/],
    [() => conv2d(x, zeros([4, 3, 3, 3]), { groups: 0 }), /groups must be an integer ≥ 1/],
    [
      () => conv2d(zeros([1, 3, 5, 5], "i32"), zeros([4, 3, 3, 3])),
      /conv2d: .*expected f32 operands, got i32 and f32/,
    ],
  ];
  // A kernel with more taps than a texture has layers.
  const k = Math.ceil(Math.sqrt(gpu().limits.maxTextureArrayLayers + 1));
  cases.push([
    () => conv2d(zeros([1, 1, k, k]), zeros([1, 1, k, k])),
    new RegExp(`conv2d: a ${k}×${k} kernel .* exceeds this adapter's texture limits`),
  ]);
  for (const [f, re] of cases) assert.throws(f, re);
  // The same kernel fits once padded.
  assert.deepEqual(conv2d(zeros([1, 1, 2, 2]), zeros([1, 1, 3, 3]), { padding: 1 }).shape, [
    1,
    1,
    2,
    2,
  ]);
});

/** Names of the kernels dispatched by `fn`. */
function dispatched(fn: () => void): string[] {
  const names: string[] = [];
  const o: DispatchObserver = {
    onDispatch(name) {
      names.push(name);
      return undefined;
    },
    beforeSubmit() {},
    afterSubmit() {},
    syncEach: false,
  };
  setDispatchObserver(o);
  try {
    fn();
  } finally {
    setDispatchObserver(null);
  }
  return names;
}

Deno.test("conv2d() saves and computes only the gradients that are required", async () => {
  const r = new Rng(6);
  for (const depthwise of [false, true]) {
    const c: Case = depthwise
      ? { x: [2, 4, 6, 6], w: [4, 1, 3, 3], opts: { groups: 4, padding: 1 } }
      : { x: [2, 3, 6, 6], w: [4, 3, 3, 3], opts: { padding: 1 } };
    const v = inputs(r, c);
    const b = r.nonzero([c.w[0]]);
    const kernel = depthwise ? "conv2d_depthwise" : "conv2d";
    for (
      const [wantX, wantW, wantB] of [[true, false, false], [false, true, false], [
        false,
        false,
        true,
      ], [true, true, true]]
    ) {
      const x = upload(v.x, { requiresGrad: wantX });
      const w = upload(v.w, { requiresGrad: wantW });
      const bt = upload(b, { requiresGrad: wantB });
      const y = conv2d(x, w, { ...c.opts, bias: bt });
      // The data gradient needs the weight, the weight gradient the input, which the forward
      // pass keeps as its packed texture rather than as a tensor; the bias needs nothing.
      assert.equal(y.node!.saved.length, +wantX, `${kernel} ${wantX} ${wantW}`);
      assert.equal(y.node!.keep?.length ?? 0, +wantW, `${kernel} keeps the packed input`);
      const names = dispatched(() => y.sum().backward());
      const what = `${kernel} wrt x=${wantX} w=${wantW} b=${wantB}: ${names.join(", ")}`;
      assert.equal(names.includes(`${kernel}_bwd_data`), wantX, what);
      assert.equal(names.includes(`${kernel}_bwd_weight`), wantW, what);
      // The weight gradient packs the output gradient only (the input was packed by forward),
      // and not even that when the data gradient packed it already (stride 1, not depthwise).
      const packs = names.filter((n) => n.includes("pack_image_bwd_weight")).length;
      assert.equal(packs, +(wantW && !(wantX && !depthwise)), what);
      assert.equal(x.grad !== null, wantX);
      assert.equal(w.grad !== null, wantW);
      assert.equal(bt.grad !== null, wantB);
      if (wantB) {
        const hw = 36;
        const want = new Float64Array(c.w[0]).fill(c.x[0] * hw);
        assertClose(await bt.grad!.toArray(), want);
      }
      for (const t of [x, w, bt, y]) {
        t.grad?.dispose();
        t.dispose();
      }
    }
  }
});

Deno.test("conv2d() scratch textures are counted by memoryStats() and freed by emptyCache()", async () => {
  const y = conv2d(zeros([2, 8, 16, 16]), zeros([8, 8, 3, 3]), { padding: 1 });
  await y.toArray();
  assert.ok(memoryStats().scratchBytes >= 16 * 2 * 18 * 18 * 2, `${memoryStats().scratchBytes}`);
  emptyCache();
  assert.equal(memoryStats().scratchBytes, 0);
});

// ---------------------------------------------------------------- PyTorch

interface Fx {
  shape: number[];
  data: number[];
}

interface ConvFixture {
  name: string;
  stride: number | [number, number];
  padding: number | [number, number] | "same";
  dilation: number | [number, number];
  groups: number;
  x: Fx;
  weight: Fx;
  bias: Fx | null;
  out: Fx;
  gout: Fx;
  dx: Fx;
  dweight: Fx;
  dbias: Fx | null;
}

const fixture = async (): Promise<{ cases: ConvFixture[] }> =>
  JSON.parse(
    await Deno.readTextFile(new URL("../../fixtures/conv2d.json", import.meta.url)),
  );
const asRef = (t: Fx): Ref => ref(t.shape, t.data);

Deno.test("conv2d() forward and gradients match PyTorch for every fixture case", async () => {
  const { cases } = await fixture();
  assert.equal(cases.length, 9);
  for (const c of cases) {
    const opts = { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups };
    const k = c.weight.shape.slice(1).reduce((p, d) => p + d, 1);
    const t = { rtol: 1e-4, atol: 1e-5 * k };
    const got = await runBoth(
      { x: c.x.shape, w: c.weight.shape, opts },
      { x: asRef(c.x), w: asRef(c.weight), b: c.bias ? asRef(c.bias) : undefined },
      asRef(c.gout),
    );
    assertClose(got.y.data, asRef(c.out), { ...t, msg: `${c.name}: out` });
    assertClose(got.dx.data, asRef(c.dx), { ...t, msg: `${c.name}: dx` });
    assertClose(got.dw.data, asRef(c.dweight), { ...t, msg: `${c.name}: dweight` });
    if (c.dbias) assertClose(got.db!.data, asRef(c.dbias), { ...t, msg: `${c.name}: dbias` });
  }
});

// ---------------------------------------------------------------- nn.Conv2d

Deno.test("nn.Conv2d has PyTorch's parameters, init bounds, state-dict keys and repr", async () => {
  const conv = new nn.Conv2d(6, 8, 3, { padding: 1, groups: 2 });
  assert.deepEqual(conv.namedParameters().map(([k, t]) => [k, t.shape]), [
    ["weight", [8, 3, 3, 3]],
    ["bias", [8]],
  ]);
  const bound = 1 / Math.sqrt(3 * 3 * 3);
  for (const t of [conv.weight, conv.bias!]) {
    const v = await t.toArray();
    const m = Math.max(...Array.from(v, Math.abs));
    assert.ok(m <= bound && m > 0.7 * bound, `max |v| ${m}, bound ${bound}`);
  }
  assert.equal(
    conv.toString(),
    "Conv2d(6, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), groups=2)",
  );
  const dw = new nn.Conv2d(4, 4, [3, 5], { stride: 2, dilation: [1, 2], groups: 4, bias: false });
  assert.equal(dw.bias, null);
  assert.deepEqual(Object.keys(dw.stateDict()), ["weight"]);
  assert.equal(
    dw.toString(),
    "Conv2d(4, 4, kernel_size=(3, 5), stride=(2, 2), dilation=(1, 2), groups=4, bias=False)",
  );
  assert.throws(() => new nn.Conv2d(6, 8, 3, { groups: 4 }), /Conv2d: groups=4 must divide/);
  conv.dispose();
  dw.dispose();
});

Deno.test("nn.Conv2d loads a PyTorch state dict and gives PyTorch's output", async () => {
  const { cases } = await fixture();
  const c = cases.find((e) => e.name === "stride2_pad1")!;
  const [O, Cg, kh, kw] = c.weight.shape;
  const conv = new nn.Conv2d(Cg, O, [kh, kw], {
    stride: c.stride as number,
    padding: c.padding as number,
  });
  const sd: Record<string, Tensor> = {
    weight: upload(asRef(c.weight)),
    bias: upload(asRef(c.bias!)),
  };
  conv.loadStateDict(sd);
  const y = conv.forward(upload(asRef(c.x)));
  assertClose(await y.toArray(), asRef(c.out), { rtol: 1e-4, atol: 1e-4 });
  conv.dispose();
});

Deno.test("conv2d() binds image ranges of tensors above one storage binding's limit", async () => {
  // y and its gradient: 2 images of 16·1025² floats (67,240,000 bytes each, not a multiple of the
  // 256-byte binding alignment), 134,480,000 bytes in all: above llvmpipe's 134,217,728-byte
  // binding limit. The forward writes y by image ranges, the data gradient packs dy by ranges
  // (the packing code is shared by every pass).
  const [N, C, O, S] = [2, 4, 16, 1025];
  manualSeed(11);
  const x = randn([N, C, S, S]);
  x.requiresGrad = true;
  const wv = Array.from({ length: O * C }, (_, i) => ((i * 7) % 5) - 2);
  const bv = Array.from({ length: O }, (_, o) => o / 4);
  const w = tensor(wv, { shape: [O, C, 1, 1] });
  const y = conv2d(x, w, { bias: tensor(bv) });
  const at = async (t: Tensor, i: number) =>
    new Float32Array(await readBuffer(t.storage, 4 * i, 4))[0];
  // Pixels of the second image, whose outputs straddle the binding limit.
  for (const pix of [0, 654321, S * S - 1]) {
    const xs = [];
    for (let c = 0; c < C; c++) xs.push(await at(x, (C + c) * S * S + pix));
    for (const o of [0, 5, 15]) {
      const want = bv[o] + xs.reduce((s, v, c) => s + v * wv[o * C + c], 0);
      const got = await at(y, (O + o) * S * S + pix);
      assert.ok(Math.abs(got - want) < 1e-5, `y[1, ${o}, pixel ${pix}] ${got} vs ${want}`);
    }
  }
  // (Not y.sum().backward(): sum's backward expands through a copy that is one binding.)
  const ones = full(y.shape, 1);
  y.backward(ones);
  const colSums = [0, 1, 2, 3].map((c) => bv.reduce((s, _, o) => s + wv[o * C + c], 0));
  for (const i of [0, (C + 2) * S * S + 777, N * C * S * S - 1]) {
    const c = Math.floor(i / (S * S)) % C;
    assert.equal(await at(x.grad!, i), colSums[c], `dx[${i}]`);
  }
  for (const t of [x, w, y, ones, x.grad!]) t.dispose();
});
