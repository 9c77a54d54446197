import assert from "node:assert/strict";
import {
  dropout,
  manualSeed,
  type Node,
  ones,
  randn,
  scaledDotProductAttention,
  type ScaledDotProductAttentionOptions,
  type Storage,
  type Tensor,
  tensor,
} from "../../../mod.ts";
import { maskedSoftmax, setAttentionTexturePath } from "../../../engine/ops/attention.ts";
import * as functional from "../../../engine/nn/functional.ts";
import {
  assertClose,
  mapRef,
  matmulRef,
  type Ref,
  ref,
  Rng,
  sizeOf,
  zipRef,
} from "../../helpers/reference.ts";
import { checkOp, download, type OpInput, upload } from "../../helpers/gpu.ts";
import { gradcheck } from "../../helpers/gradcheck.ts";

// ---------------------------------------------------------------- float64 reference

/** A mask for the reference: additive f32 values or a u32 keep-mask. */
interface MaskRef {
  ref: Ref;
  dtype: "f32" | "u32";
}

/** `softmax(scale·s + mask)` per row; rows with every entry at −∞ give zeros (the engine's choice). */
function maskedSoftmaxRef(s: Ref, mask?: MaskRef, scale = 1): Ref {
  let t = mapRef(s, (x) => scale * x);
  if (mask?.dtype === "f32") t = zipRef(t, mask.ref, (a, m) => a + m);
  if (mask?.dtype === "u32") t = zipRef(t, mask.ref, (a, m) => (m !== 0 ? a : -Infinity));
  assert.deepEqual(t.shape, s.shape, "the mask must not enlarge the scores");
  const n = s.shape.at(-1)!;
  const out = ref(s.shape);
  for (let b = 0; b < t.data.length; b += n) {
    let m = -Infinity;
    for (let j = 0; j < n; j++) m = Math.max(m, t.data[b + j]);
    if (m === -Infinity) continue;
    let z = 0;
    for (let j = 0; j < n; j++) z += Math.exp(t.data[b + j] - m);
    for (let j = 0; j < n; j++) out.data[b + j] = Math.exp(t.data[b + j] - m) / z;
  }
  return out;
}

/** `P·v` with `P = maskedSoftmax(q·kᵀ)`, times the dropout multipliers `drop` when given. */
function attentionRef(
  q: Ref,
  k: Ref,
  v: Ref,
  o: { mask?: MaskRef; scale?: number; drop?: Ref } = {},
): Ref {
  const scale = o.scale ?? 1 / Math.sqrt(q.shape.at(-1)!);
  let p = maskedSoftmaxRef(matmulRef(q, k, { transB: true }), o.mask, scale);
  if (o.drop) p = zipRef(p, o.drop, (a, d) => a * d);
  return matmulRef(p, v);
}

// ---------------------------------------------------------------- cases

interface Case {
  name: string;
  q: number[];
  k: number[];
  v: number[];
  mask?: (r: Rng) => MaskRef;
  scale?: number;
}

/** Additive padding mask `[B, 1, 1, Tk]`: sequence b keeps its first `lens[b]` keys. */
function paddingMask(lens: number[], tk: number, blocked: number): MaskRef {
  const m = ref([lens.length, 1, 1, tk]);
  lens.forEach((len, b) => m.data.fill(blocked, b * tk + len, (b + 1) * tk));
  return { ref: m, dtype: "f32" };
}

/** Keep-mask `[B, 1, 1, Tk]` (1 = attend). */
function keepMask(lens: number[], tk: number): MaskRef {
  const m = ref([lens.length, 1, 1, tk]);
  lens.forEach((len, b) => m.data.fill(1, b * tk, b * tk + len));
  return { ref: m, dtype: "u32" };
}

/** Causal keep-mask of the given shape (last two axes `[Tq, Tk]`, query i sees keys ≤ i). */
function causalMask(shape: number[], dtype: "f32" | "u32"): MaskRef {
  const [tq, tk] = shape.slice(-2);
  const m = ref(shape);
  for (let i = 0; i < tq; i++) {
    for (let j = 0; j < tk; j++) {
      const keep = j <= i;
      m.data[i * tk + j] = dtype === "u32" ? +keep : keep ? 0 : -Infinity;
    }
  }
  return { ref: m, dtype };
}

const CASES: Case[] = [
  { name: "no mask, Tq = Tk", q: [2, 3, 5, 8], k: [2, 3, 5, 8], v: [2, 3, 5, 8] },
  // 2·3·17 = 102 rows: more than one 64-row workgroup; Tk = 33 is odd.
  { name: "no mask, Tq != Tk, Dv != D", q: [2, 3, 17, 4], k: [2, 3, 33, 4], v: [2, 3, 33, 6] },
  {
    name: "additive padding mask [B,1,1,Tk] of -1e4",
    q: [2, 2, 4, 8],
    k: [2, 2, 6, 8],
    v: [2, 2, 6, 5],
    mask: () => paddingMask([6, 3], 6, -1e4),
  },
  {
    name: "additive padding mask [B,1,1,Tk] of -Infinity",
    q: [2, 2, 4, 8],
    k: [2, 2, 6, 8],
    v: [2, 2, 6, 5],
    mask: () => paddingMask([2, 5], 6, -Infinity),
  },
  // Masks of more than 128 floats: read from storage in the 2-row-chunk texture form.
  {
    name: "additive random mask [B,H,Tq,Tk]",
    q: [2, 2, 6, 4],
    k: [2, 2, 7, 4],
    v: [2, 2, 7, 4],
    mask: (r) => ({ ref: r.normalRef([2, 2, 6, 7], 0, 2), dtype: "f32" }),
  },
  {
    name: "u32 random mask [B,H,Tq,Tk]",
    q: [2, 2, 5, 4],
    k: [2, 2, 7, 4],
    v: [2, 2, 7, 3],
    mask: (r) => ({
      ref: mapRef(r.uniformRef([2, 2, 5, 7], 0, 1), (x) => +(x < 0.7)),
      dtype: "u32",
    }),
  },
  {
    name: "u32 padding mask [B,1,1,Tk]",
    q: [3, 2, 4, 8],
    k: [3, 2, 7, 8],
    v: [3, 2, 7, 3],
    mask: () => keepMask([7, 1, 4], 7),
  },
  {
    name: "u32 causal mask [1,1,T,T]",
    q: [2, 2, 6, 4],
    k: [2, 2, 6, 4],
    v: [2, 2, 6, 4],
    mask: () => causalMask([1, 1, 6, 6], "u32"),
  },
  {
    name: "additive causal mask [T,T] (rank 2)",
    q: [2, 2, 6, 4],
    k: [2, 2, 6, 4],
    v: [2, 2, 6, 4],
    mask: () => causalMask([6, 6], "f32"),
  },
  {
    name: "fully masked rows (u32 [B,1,Tq,Tk] and a u32 [Tq,1] column mask)",
    q: [2, 2, 4, 4],
    k: [2, 2, 5, 4],
    v: [2, 2, 5, 3],
    mask: () => {
      const m = ref([2, 1, 4, 5]);
      m.data.fill(1);
      m.data.fill(0, 5, 10); // batch 0, query 1: nothing to attend
      m.data.fill(0, 20 + 15, 20 + 20); // batch 1, query 3
      return { ref: m, dtype: "u32" };
    },
  },
  {
    name: "u32 [Tq,1] mask (column stride 0): query rows on or off",
    q: [2, 4, 4],
    k: [2, 5, 4],
    v: [2, 5, 3],
    mask: () => ({ ref: ref([4, 1], [1, 0, 1, 1]), dtype: "u32" }),
  },
  {
    name: "fully masked row by -Infinity",
    q: [1, 2, 3, 4],
    k: [1, 2, 4, 4],
    v: [1, 2, 4, 2],
    mask: () => ({
      ref: ref([3, 4], [
        0,
        0,
        -Infinity,
        0,
        -Infinity,
        -Infinity,
        -Infinity,
        -Infinity,
        0,
        0,
        0,
        0,
      ]),
      dtype: "f32",
    }),
  },
  { name: "scale 0.7", q: [2, 2, 3, 4], k: [2, 2, 5, 4], v: [2, 2, 5, 4], scale: 0.7 },
  {
    name: "scale 2 with a u32 padding mask",
    q: [2, 1, 3, 4],
    k: [2, 1, 5, 4],
    v: [2, 1, 5, 4],
    scale: 2,
    mask: () => keepMask([2, 5], 5),
  },
  {
    name: "shared k, v across heads ([B,1,Tk,D])",
    q: [2, 3, 4, 4],
    k: [2, 1, 5, 4],
    v: [2, 1, 5, 3],
    mask: () => keepMask([5, 3], 5),
  },
];

/**
 * The kernels' two forms (kernels/attention.ts): storage buffers, and scratch
 * textures, whole or in chunks of 2 texture rows (128 floats, so rows of odd
 * length straddle chunks and texels).
 */
const PATHS = [
  { path: "storage", minScores: Infinity, chunkRows: 0 },
  { path: "texture", minScores: 0, chunkRows: 0 },
  { path: "texture, 2-row chunks", minScores: 0, chunkRows: 2 },
];

/** Runs `fn` with each form of the kernels in turn. */
async function forEachPath(fn: (path: string) => Promise<void>): Promise<void> {
  for (const { path, ...settings } of PATHS) {
    const prev = setAttentionTexturePath(settings);
    try {
      await fn(path);
    } finally {
      setAttentionTexturePath(prev);
    }
  }
}

function inputsOf(c: Case, r: Rng): { xs: Ref[]; mask?: MaskRef } {
  return {
    xs: [r.normalRef(c.q), r.normalRef(c.k), r.normalRef(c.v)],
    mask: c.mask?.(r),
  };
}

async function checkForward(name: string, c: Case, r: Rng): Promise<void> {
  const { xs, mask } = inputsOf(c, r);
  const inputs: OpInput[] = [...xs];
  if (mask) inputs.push(mask);
  const expected = attentionRef(xs[0], xs[1], xs[2], { mask, scale: c.scale });
  for (const x of expected.data) assert.ok(Number.isFinite(x), `${name}: reference is finite`);
  await checkOp(
    name,
    inputs,
    (q, k, v, m) => scaledDotProductAttention(q, k, v, { mask: m, scale: c.scale }),
    expected,
    { rtol: 1e-4, atol: 1e-5 },
  );
}

Deno.test("scaledDotProductAttention() matches the float64 reference with either kernel form", async () => {
  const r = new Rng(1);
  await forEachPath(async (path) => {
    for (const c of CASES) await checkForward(`${c.name} (${path})`, c, r);
  });
});

Deno.test("scaledDotProductAttention() matches the float64 reference above the texture threshold", async () => {
  // 2·4·33·65 = 17,160 scores: the default settings take the texture form.
  await checkForward("[2,4,33,65] scores, causal-ish u32 mask [33,65]", {
    name: "",
    q: [2, 4, 33, 8],
    k: [2, 4, 65, 8],
    v: [2, 4, 65, 5],
    mask: () => causalMask([33, 65], "u32"),
  }, new Rng(6));
});

Deno.test("scaledDotProductAttention() gives zero rows, not NaN, where every key is masked", async () => {
  const q = randn([1, 1, 2, 4]), k = randn([1, 1, 3, 4]), v = randn([1, 1, 3, 2]);
  for (const t of [q, k, v]) t.requiresGrad = true;
  const mask = tensor([1, 1, 0, 0, 0, 0], { shape: [2, 3], dtype: "u32" });
  const o = scaledDotProductAttention(q, k, v, { mask });
  const out = await o.toArray();
  assert.deepEqual(Array.from(out.slice(2)), [0, 0]);
  o.sum().backward();
  const dq = await q.grad!.toArray();
  assert.deepEqual(Array.from(dq.slice(4)), [0, 0, 0, 0]);
  for (const t of [k, v]) for (const g of await t.grad!.toArray()) assert.ok(Number.isFinite(g));
  for (const t of [q, k, v, o, mask]) {
    t.grad?.dispose();
    t.dispose();
  }
});

Deno.test("scaledDotProductAttention() backward matches finite differences for q, k and v", async () => {
  const r = new Rng(2);
  await forEachPath(async (path) => {
    for (const c of CASES.filter((c) => sizeOf(c.q) + sizeOf(c.k) + sizeOf(c.v) <= 400)) {
      const { xs, mask } = inputsOf(c, r);
      const m = mask ? upload(mask.ref, { dtype: mask.dtype }) : undefined;
      await gradcheck(`${c.name} (${path})`, {
        inputs: xs,
        gpu: (q, k, v) => scaledDotProductAttention(q, k, v, { mask: m, scale: c.scale }),
        ref: (q, k, v) => attentionRef(q, k, v, { mask, scale: c.scale }),
      });
      m?.dispose();
    }
  });
});

Deno.test("maskedSoftmax() backward is scale·P·(dP − rowsum(dP·P)) (finite differences)", async () => {
  const r = new Rng(3);
  const mask = causalMask([1, 5, 5], "u32");
  mask.ref.data.fill(0, 10, 15); // query 2 sees nothing
  const m = upload(mask.ref, { dtype: "u32" });
  await forEachPath(async (path) => {
    await gradcheck(`maskedSoftmax [2,5,5] causal, scale 0.5 (${path})`, {
      inputs: [r.normalRef([2, 5, 5], 0, 2)],
      gpu: (s) => maskedSoftmax(s, { mask: m, scale: 0.5 }),
      ref: (s) => maskedSoftmaxRef(s, mask, 0.5),
    });
  });
  m.dispose();
});

Deno.test("maskedSoftmax() forward and backward over rows beyond the loop budget", async () => {
  // llvmpipe stops an invocation's loops after 65,535 passes in all (kernels/program.ts): the
  // storage form's two sweeps of 40,000 keys and the texture form's of 140,000 (35,000
  // texels each) overran it. Masks: a u32 mask that hides every key of one row (zeros), an
  // f32 padding mask; and a −∞ score.
  const r = new Rng(30);
  const cases: { path: string; minScores: number; n: number; mask: (n: number) => MaskRef }[] = [
    {
      path: "storage",
      minScores: Infinity,
      n: 40_000,
      mask: (n) => ({
        ref: ref([2, n], Array.from({ length: 2 * n }, (_, i) => i < n ? 0 : 1)),
        dtype: "u32",
      }),
    },
    {
      path: "texture",
      minScores: 0,
      n: 140_000,
      mask: (n) => ({
        ref: ref([1, 1, n], Array.from({ length: n }, (_, i) => i % 3 === 0 ? -Infinity : 0)),
        dtype: "f32",
      }),
    },
  ];
  for (const c of cases) {
    const { n } = c;
    const prev = setAttentionTexturePath({ minScores: c.minScores });
    try {
      const s = r.normalRef([1, 2, n], 0, 2);
      s.data[n + 7] = -Infinity;
      const mask = c.mask(n);
      const name = `${c.path} [1, 2, ${n}] ${mask.dtype} mask`;
      const p = maskedSoftmaxRef(s, mask, 0.5);
      await checkOp(name, [s, mask], (x, m) => maskedSoftmax(x, { mask: m, scale: 0.5 }), p, {
        rtol: 2e-4,
        atol: 1e-8,
      });
      // d Σ w·P / ds = scale·P·(w − Σ_row w·P).
      const w = r.normalRef(s.shape);
      const want = ref(s.shape);
      for (let b = 0; b < s.data.length; b += n) {
        let dot = 0;
        for (let j = 0; j < n; j++) dot += w.data[b + j] * p.data[b + j];
        for (let j = 0; j < n; j++) want.data[b + j] = 0.5 * p.data[b + j] * (w.data[b + j] - dot);
      }
      const st = upload(s, { requiresGrad: true });
      const wt = upload(w);
      const mt = upload(mask.ref, { dtype: mask.dtype });
      maskedSoftmax(st, { mask: mt, scale: 0.5 }).mul(wt).sum().backward();
      assertClose(await st.grad!.toArray(), want, {
        rtol: 1e-4,
        atol: 1e-7,
        msg: `${name} backward`,
      });
      for (const t of [st, wt, mt]) t.dispose();
    } finally {
      setAttentionTexturePath(prev);
    }
  }
});

Deno.test("scaledDotProductAttention() tape saves only q, k, v and P", () => {
  const [B, H, T, D] = [2, 2, 8, 4];
  const q = randn([B, H, T, D]), k = randn([B, H, T, D]), v = randn([B, H, T, D]);
  for (const t of [q, k, v]) t.requiresGrad = true;
  const mask = tensor([1], { dtype: "u32" });
  const o = scaledDotProductAttention(q, k, v, { mask });
  // Every tensor any node of the graph keeps for backward, by storage.
  const saved = new Set<Storage>();
  const seen = new Set<Node>();
  const visit = (t: Tensor) => {
    const n = t.node;
    if (!n || seen.has(n)) return;
    seen.add(n);
    for (const s of n.saved) saved.add(s.storage);
    for (const i of n.inputs) visit(i);
  };
  visit(o);
  assert.deepEqual(
    [...seen].map((n) => n.op).sort(),
    ["maskedSoftmax", "matmul", "matmul"],
  );
  const bytes = [...saved].map((s) => s.bytes).sort((a, b) => a - b);
  // q, k, v (4·B·H·T·D bytes each) and P (4·B·H·T·T bytes).
  assert.deepEqual(bytes, [...[q, k, v].map((t) => 4 * t.size), 4 * B * H * T * T]);
  assert.ok(saved.has(q.storage) && saved.has(k.storage) && saved.has(v.storage));
  o.sum().backward();
  for (const t of [q, k, v, o, mask]) {
    t.grad?.dispose();
    t.dispose();
  }
});

// ---------------------------------------------------------------- dropout

/** The dropout multipliers (0 or 1/(1−p)) the next `dropout()` of `shape` draws after manualSeed(seed). */
async function dropMultipliers(seed: number, shape: number[], p: number): Promise<Ref> {
  manualSeed(seed);
  const o = ones(shape);
  const d = dropout(o, p);
  const r = await download(d);
  o.dispose();
  d.dispose();
  return r;
}

Deno.test("scaledDotProductAttention() dropout is reproducible under manualSeed() and drops ≈ p", async () => {
  const [B, H, T] = [2, 2, 32];
  const p = 0.3;
  const r = new Rng(4);
  const q = upload(r.normalRef([B, H, T, 8]));
  const k = upload(r.normalRef([B, H, T, 8]));
  // v = I, so the output is the dropped-out attention matrix itself.
  const eye = ref([T, T]);
  for (let i = 0; i < T; i++) eye.data[i * T + i] = 1;
  const v = upload(eye);
  const run = (seed: number) => {
    manualSeed(seed);
    return scaledDotProductAttention(q, k, v, { dropoutP: p });
  };
  const a = await run(7).toArray();
  const b = await run(7).toArray();
  const c = await run(8).toArray();
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const full = await scaledDotProductAttention(q, k, v).toArray();
  let dropped = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === 0) dropped++;
    else {assert.ok(
        Math.abs(a[i] - full[i] / (1 - p)) <= 1e-6 + 1e-5 * a[i],
        `kept ${i} is P/(1−p)`,
      );}
  }
  // 4096 Bernoulli(0.3) draws: standard deviation 0.007; allow 5 of them.
  const frac = dropped / a.length;
  assert.ok(Math.abs(frac - p) < 0.035, `dropped fraction ${frac}, expected ≈ ${p}`);
  for (const t of [q, k, v]) t.dispose();
});

Deno.test("scaledDotProductAttention() dropout backward uses the forward's mask (finite differences)", async () => {
  const r = new Rng(5);
  const [B, H, Tq, Tk, D] = [2, 2, 3, 5, 4];
  const p = 0.4;
  const seed = 11;
  const drop = await dropMultipliers(seed, [B, H, Tq, Tk], p);
  const mask = keepMask([5, 3], Tk);
  const m = upload(mask.ref, { dtype: "u32" });
  await gradcheck("dropout 0.4 with a padding mask", {
    inputs: [r.normalRef([B, H, Tq, D]), r.normalRef([B, H, Tk, D]), r.normalRef([B, H, Tk, 3])],
    gpu: (q, k, v) => {
      // The first draw after the seed: the same counters as dropMultipliers().
      manualSeed(seed);
      return scaledDotProductAttention(q, k, v, { mask: m, dropoutP: p });
    },
    ref: (q, k, v) => attentionRef(q, k, v, { mask, drop }),
  });
  m.dispose();
});

// ---------------------------------------------------------------- errors and exports

Deno.test("scaledDotProductAttention() names the op and the shapes in its errors", () => {
  const q = randn([2, 3, 4, 8]), k = randn([2, 3, 5, 8]), v = randn([2, 3, 5, 6]);
  const sdpa = (
    a: Tensor,
    b: Tensor,
    c: Tensor,
    o: ScaledDotProductAttentionOptions = {},
  ) =>
  () => scaledDotProductAttention(a, b, c, o);
  const k7 = randn([2, 3, 5, 7]), v4 = randn([2, 3, 4, 6]), kb = randn([3, 3, 5, 8]);
  assert.throws(
    sdpa(q, k7, v),
    /scaledDotProductAttention: q \[2, 3, 4, 8\], k \[2, 3, 5, 7\], v \[2, 3, 5, 6\]: q and k must have the same last axis \(D = 8 and 7\)/,
  );
  assert.throws(sdpa(q, k, v4), /same number of keys \(Tk = 5 and 4\)/);
  assert.throws(sdpa(q, kb, v), /scaledDotProductAttention: .*cannot be broadcast together/);
  assert.throws(sdpa(q, k, v, { mask: ones([2, 1, 4, 4]) }), (e: Error) => {
    assert.ok(e instanceof RangeError);
    assert.match(
      e.message,
      /scaledDotProductAttention: .*mask \[2, 1, 4, 4\] does not broadcast to the scores \[2, 3, 4, 5\]/,
    );
    return true;
  });
  assert.throws(sdpa(q, k, v, { mask: ones([1, 2, 3, 4, 5]) }), /does not broadcast/);
  const im = tensor([0], { dtype: "i32" });
  assert.throws(sdpa(q, k, v, { mask: im }), /mask must be f32 \(additive\) or u32.*got i32/);
  const gm = ones([5]);
  gm.requiresGrad = true;
  assert.throws(sdpa(q, k, v, { mask: gm }), /the mask gets no gradient/);
  const qi = tensor([1, 2], { shape: [1, 2], dtype: "i32" });
  assert.throws(sdpa(qi, k, v), /q, k and v must be f32, got i32, f32 and f32/);
  assert.throws(sdpa(randn([8]), k, v), /at least 2 axes/);
  assert.throws(sdpa(q, k, v, { dropoutP: 1 }), /dropoutP must be in \[0, 1\), got 1/);
  assert.throws(sdpa(q, k, v, { scale: NaN }), /scale must be finite/);
  for (const t of [q, k, v, k7, v4, kb, im, gm, qi]) t.dispose();
});

Deno.test("scaledDotProductAttention is exported from nn.functional", () => {
  assert.equal(functional.scaledDotProductAttention, scaledDotProductAttention);
});

// ---------------------------------------------------------------- PyTorch goldens

interface TensorJson {
  shape: number[];
  data: number[];
}

const toRef = (t: TensorJson): Ref => ref(t.shape, t.data);

Deno.test("scaledDotProductAttention() matches PyTorch's forward and q, k, v gradients", async () => {
  // tests/fixtures/make_transformer_op_fixtures.py (make_attention): PyTorch 1.13 in float64.
  const fixture = JSON.parse(
    await Deno.readTextFile(new URL("../../fixtures/transformer_ops.json", import.meta.url)),
  ) as {
    attention: {
      name: string;
      q: TensorJson;
      k: TensorJson;
      v: TensorJson;
      mask: TensorJson | null;
      mask_dtype: "f32" | "u32" | null;
      out: TensorJson;
      gout: TensorJson;
      dq: TensorJson;
      dk: TensorJson;
      dv: TensorJson;
    }[];
  };
  const cases = fixture.attention;
  assert.deepEqual(cases.map((c) => c.mask_dtype), [null, "f32", "u32", "u32"]);
  for (const c of cases) {
    const [q, k, v] = [c.q, c.k, c.v].map((t) => upload(toRef(t), { requiresGrad: true }));
    const mask = c.mask ? upload(toRef(c.mask), { dtype: c.mask_dtype ?? "f32" }) : undefined;
    const o = scaledDotProductAttention(q, k, v, { mask });
    assertClose(await o.toArray(), toRef(c.out), { rtol: 1e-4, atol: 1e-5, msg: `${c.name}: out` });
    const gout = upload(toRef(c.gout));
    o.backward(gout);
    for (const [name, t, g] of [["dq", q, c.dq], ["dk", k, c.dk], ["dv", v, c.dv]] as const) {
      assertClose(await t.grad!.toArray(), toRef(g), {
        rtol: 1e-3,
        atol: 1e-5,
        msg: `${c.name}: ${name}`,
      });
    }
    for (const t of [q, k, v, o, gout, ...(mask ? [mask] : [])]) {
      t.grad?.dispose();
      t.dispose();
    }
  }
});
