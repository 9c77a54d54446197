import assert from "node:assert/strict";
import {
  add,
  cka,
  type CkaOptions,
  memoryStats,
  mul,
  profile,
  type Tensor,
  tensor,
  zeros,
} from "../../../mod.ts";
import { type Ref, ref, Rng, roundF32 } from "../../helpers/reference.ts";
import { poison, upload } from "../../helpers/gpu.ts";
import { tapeNodes } from "../../helpers/tape_nodes.ts";

type Form = NonNullable<CkaOptions["form"]>;
const FORMS: Form[] = ["auto", "gram", "feature"];

// ---------------------------------------------------------------- float64 reference

/** Column-centered copy of a `[n, p]` Ref. */
function centered(x: Ref): Float64Array {
  const [n, p] = x.shape;
  const out = Float64Array.from(x.data);
  for (let j = 0; j < p; j++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += out[i * p + j];
    const m = s / n;
    for (let i = 0; i < n; i++) out[i * p + j] -= m;
  }
  return out;
}

/** `Σ (Aᵀ·B)²` for row-major `[n, a]` and `[n, b]`, accumulated one row (outer product) at a time. */
function crossSq(A: Float64Array, a: number, B: Float64Array, b: number, n: number): number {
  const C = new Float64Array(a * b);
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < a; r++) {
      const v = A[i * a + r];
      const o = r * b;
      for (let c = 0; c < b; c++) C[o + c] += v * B[i * b + c];
    }
  }
  let s = 0;
  for (const v of C) s += v * v;
  return s;
}

/** `K = A·Aᵀ` for row-major `[n, a]` (each pair once). */
function gramOf(A: Float64Array, a: number, n: number): Float64Array {
  const K = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      const oi = i * a;
      const oj = j * a;
      for (let k = 0; k < a; k++) s += A[oi + k] * A[oj + k];
      K[i * n + j] = s;
      K[j * n + i] = s;
    }
  }
  return K;
}

/**
 * Linear CKA in float64 by the textbook definition: feature form
 * `‖Ycᵀ·Xc‖² / (‖Xcᵀ·Xc‖·‖Ycᵀ·Yc‖)` or Gram form `⟨K, L⟩ / (‖K‖·‖L‖)`; by
 * default the cheaper one.
 */
function ckaRef(x: Ref, y: Ref, form: Form = "auto"): number {
  const [n, p] = x.shape;
  const q = y.shape[1];
  const xc = centered(x);
  const yc = centered(y);
  const useGram = form === "gram" ||
    (form === "auto" && n * n * (p + q) < n * (p * q + p * p + q * q));
  if (useGram) {
    const K = gramOf(xc, p, n);
    const L = gramOf(yc, q, n);
    let kl = 0, kk = 0, ll = 0;
    for (let i = 0; i < n * n; i++) {
      kl += K[i] * L[i];
      kk += K[i] * K[i];
      ll += L[i] * L[i];
    }
    return kl / Math.sqrt(kk * ll);
  }
  const s0 = crossSq(xc, p, yc, q, n);
  return s0 / Math.sqrt(crossSq(xc, p, xc, p, n) * crossSq(yc, q, yc, q, n));
}

/** `x·W + noise·N(0, 1)` for a random `W` (`[p, q]`, 1/√p scale): a y related to x, so CKA is far from 0. */
function related(r: Rng, x: Ref, q: number, noise = 1): Ref {
  const [n, p] = x.shape;
  const w = r.normalRef([p, q], 0, 1 / Math.sqrt(p)).data;
  const y = ref([n, q]);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < p; k++) {
      const v = x.data[i * p + k];
      for (let j = 0; j < q; j++) y.data[i * q + j] += v * w[k * q + j];
    }
    for (let j = 0; j < q; j++) y.data[i * q + j] += noise * r.normal();
  }
  return roundF32(y);
}

/** A random `[p, p]` orthogonal matrix: modified Gram–Schmidt on a normal one, in float64. */
function orthogonal(r: Rng, p: number): Float64Array {
  const q = Float64Array.from({ length: p * p }, () => r.normal());
  for (let c = 0; c < p; c++) {
    for (let prev = 0; prev < c; prev++) {
      let d = 0;
      for (let i = 0; i < p; i++) d += q[i * p + c] * q[i * p + prev];
      for (let i = 0; i < p; i++) q[i * p + c] -= d * q[i * p + prev];
    }
    let norm = 0;
    for (let i = 0; i < p; i++) norm += q[i * p + c] ** 2;
    norm = Math.sqrt(norm);
    for (let i = 0; i < p; i++) q[i * p + c] /= norm;
  }
  return q;
}

/** `x·Q` for a `[p, p]` Q, rounded to f32. */
function times(x: Ref, q: Float64Array): Ref {
  const [n, p] = x.shape;
  const out = ref([n, p]);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < p; k++) {
      const v = x.data[i * p + k];
      for (let j = 0; j < p; j++) out.data[i * p + j] += v * q[k * p + j];
    }
  }
  return roundF32(out);
}

/** The buffer pool's size class of `bytes` (engine/memory.ts: 256-byte steps, then quarter powers of two). */
function sizeClass(bytes: number): number {
  if (bytes <= 65536) return Math.ceil(bytes / 256) * 256;
  const step = 2 ** Math.floor(Math.log2(bytes)) / 4;
  return Math.ceil(bytes / step) * step;
}

/**
 * Poisons (see tests/helpers/gpu.ts) every pool buffer that a tensor of `count` to
 * `1.1·count` elements can get, whole (a fill writes only its tensor's elements): those of
 * the zero-padded centered copies, whose padding must be written, not assumed.
 */
function poisonAround(count: number): void {
  const sizes = new Set<number>();
  for (let s = count; s <= 1.1 * count + 64; s += 64) sizes.add(sizeClass(4 * s) / 4);
  poison([...sizes], 2);
}

/** Runs cka on the GPU, reads the scalar back and releases it. */
async function ckaGpu(x: Tensor, y: Tensor, form: Form = "auto"): Promise<number> {
  const out = cka(x, y, { form });
  try {
    assert.deepEqual(out.shape, []);
    assert.equal(out.dtype, "f32");
    return await out.item();
  } finally {
    out.dispose();
  }
}

function assertRel(actual: number, expected: number, rtol: number, msg: string): void {
  const err = Math.abs(actual - expected) / Math.abs(expected);
  assert.ok(err < rtol, `${msg}: got ${actual}, expected ${expected} (relative error ${err})`);
}

/** The form the engine chose, from the name of its reduction kernel. */
async function formUsed(x: Tensor, y: Tensor): Promise<string> {
  const { report } = await profile(() => cka(x, y).dispose(), { timestamps: false });
  const k = report.kernels.find((k) => k.name.startsWith("cka_partials_"));
  return k ? k.name.slice("cka_partials_".length) : "none";
}

// ---------------------------------------------------------------- tests

Deno.test("cka reference: the feature and Gram forms agree, and CKA(x, x) = 1", () => {
  const r = new Rng(1);
  for (const [n, p, q] of [[2, 1, 3], [5, 3, 4], [17, 9, 2], [40, 6, 50]]) {
    const x = r.normalRef([n, p]);
    const y = related(r, x, q);
    const g = ckaRef(x, y, "gram");
    assertRel(ckaRef(x, y, "feature"), g, 1e-12, `[${n}, ${p}] vs [${n}, ${q}]`);
    assertRel(ckaRef(x, x, "gram"), 1, 1e-12, `[${n}, ${p}] with itself`);
  }
});

Deno.test("cka() matches the float64 reference in every form, across shapes", async () => {
  const r = new Rng(2);
  // Odd sizes; n = 2 (rank-one centered Gram matrices: CKA = 1); column blocks with padded
  // columns ([20, 1301]: 5 blocks of 261) and row blocks with padded rows ([1000, ...]: 3 of 334).
  const shapes = [
    [2, 1, 1],
    [3, 1, 4],
    [7, 33, 5],
    [33, 7, 70],
    [65, 130, 129],
    [257, 16, 300],
    [20, 1301, 3],
    [1000, 5, 7],
  ];
  for (const [n, p, q] of shapes) {
    const xr = r.normalRef([n, p], 0.5, 2);
    const yr = related(r, xr, q, 2);
    const expected = ckaRef(xr, yr);
    const x = upload(xr);
    const y = upload(yr);
    try {
      for (const form of FORMS) {
        poisonAround(n * p);
        poisonAround(n * q);
        assertRel(await ckaGpu(x, y, form), expected, 1e-4, `[${n}, ${p}] vs [${n}, ${q}] ${form}`);
      }
    } finally {
      x.dispose();
      y.dispose();
    }
  }
});

Deno.test("cka() invariances: itself, orthogonal transforms, isotropic scaling, offsets", async () => {
  const r = new Rng(3);
  for (const [n, p, q] of [[50, 24, 10], [12, 40, 30]]) {
    const xr = r.normalRef([n, p]);
    const yr = related(r, xr, q);
    const xqr = times(xr, orthogonal(r, p));
    const offset = r.uniformRef([1, p], 10, 50);
    const x = upload(xr);
    const y = upload(yr);
    const xq = upload(xqr);
    const scaled = mul(x, 3.7);
    const off = upload(offset);
    const shifted = add(x, off);
    try {
      for (const form of FORMS) {
        const at = `[${n}, ${p}] vs [${n}, ${q}] ${form}`;
        const base = await ckaGpu(x, y, form);
        assertRel(await ckaGpu(x, x, form), 1, 1e-5, `${at}: cka(x, x)`);
        assertRel(await ckaGpu(x, xq, form), 1, 1e-4, `${at}: cka(x, x·Q)`);
        assertRel(await ckaGpu(xq, y, form), base, 1e-4, `${at}: cka(x·Q, y)`);
        assertRel(await ckaGpu(scaled, y, form), base, 1e-4, `${at}: cka(3.7·x, y)`);
        assertRel(await ckaGpu(y, scaled, form), base, 1e-4, `${at}: cka(y, 3.7·x)`);
        assertRel(await ckaGpu(shifted, y, form), base, 1e-4, `${at}: cka(x + c, y)`);
      }
    } finally {
      for (const t of [x, y, xq, scaled, off, shifted]) t.dispose();
    }
  }
});

Deno.test("cka() on large inputs: n = 2048 (feature form), p = 100,000 (Gram form)", async () => {
  const r = new Rng(4);
  const cases: [number, number, number, string][] = [
    [2048, 16, 24, "feature"],
    [64, 100_000, 300, "gram"],
  ];
  for (const [n, p, q, form] of cases) {
    const xr = r.normalRef([n, p], 1, 1);
    // y: half of its columns copy x's (plus noise), the rest is noise.
    const yr = ref([n, q]);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < q; j++) {
        yr.data[i * q + j] = (j % 2 === 0 && j < p ? xr.data[i * p + j] : 0) + r.normal();
      }
    }
    roundF32(yr);
    const x = upload(xr);
    const y = upload(yr);
    try {
      assert.equal(await formUsed(x, y), form);
      assertRel(await ckaGpu(x, y), ckaRef(xr, yr), 1e-4, `[${n}, ${p}] vs [${n}, ${q}]`);
    } finally {
      x.dispose();
      y.dispose();
    }
  }
});

Deno.test("cka() on columns longer than one centering invocation takes (n > 4096)", async () => {
  const r = new Rng(5);
  const n = 9001;
  // A large mean against a small spread: what the two-pass mean is for.
  const xr = r.normalRef([n, 3], 100, 0.5);
  const yr = related(r, xr, 5, 0.3);
  const x = upload(xr);
  const y = upload(yr);
  try {
    const expected = ckaRef(xr, yr);
    for (const form of ["auto", "feature"] as const) {
      assertRel(await ckaGpu(x, y, form), expected, 1e-4, `[${n}, 3] vs [${n}, 5] ${form}`);
    }
  } finally {
    x.dispose();
    y.dispose();
  }
});

Deno.test("cka() of a constant input (all rows equal) is NaN", async () => {
  const r = new Rng(6);
  for (const n of [5, 6000]) {
    const row = r.normalRef([1, 4], 3, 2).data;
    const c = tensor(Float32Array.from({ length: n * 4 }, (_, i) => row[i % 4]), { shape: [n, 4] });
    const y = upload(r.normalRef([n, 3]));
    try {
      for (const form of n > 10 ? ["feature" as const] : FORMS) {
        assert.ok(Number.isNaN(await ckaGpu(c, y, form)), `n = ${n} ${form}: cka(const, y)`);
        assert.ok(Number.isNaN(await ckaGpu(y, c, form)), `n = ${n} ${form}: cka(y, const)`);
      }
    } finally {
      c.dispose();
      y.dispose();
    }
  }
});

/** Asserts that `fn` throws an error of class `type` whose message names cka and the patterns. */
function throwsWith(fn: () => unknown, type: ErrorConstructor, ...patterns: string[]) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof type, `expected ${type.name}, got ${e}`);
    for (const p of ["cka", ...patterns]) {
      assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} lacks ${p}`);
    }
    return true;
  });
}

Deno.test("cka() rejects bad inputs with errors that name the op and the shapes", () => {
  const a = zeros([4, 3]);
  const b = zeros([5, 2]);
  const v = zeros([4]);
  const ints = zeros([4, 3], "i32");
  const one = zeros([1, 3]);
  const empty = zeros([4, 0]);
  const cube = zeros([4, 2, 1]);
  try {
    throwsWith(() => cka(v, a), RangeError, "[4]", "2-D");
    throwsWith(() => cka(a, cube), RangeError, "[4, 2, 1]");
    throwsWith(() => cka(a, b), RangeError, "[4, 3]", "[5, 2]", "rows");
    throwsWith(() => cka(a, ints), TypeError, "i32", "f32");
    throwsWith(() => cka(one, one), RangeError, "[1, 3]", "at least 2 rows");
    throwsWith(() => cka(a, empty), RangeError, "[4, 0]");
    throwsWith(() => cka(a, a, { form: "dual" as Form }), TypeError, "dual");
  } finally {
    for (const t of [a, b, v, ints, one, empty, cube]) t.dispose();
  }
});

Deno.test("cka() frees every intermediate", async () => {
  const r = new Rng(7);
  const x = upload(r.normalRef([5000, 6]));
  const y = upload(r.normalRef([5000, 9]));
  const xs = upload(r.normalRef([20, 1301]));
  const ys = upload(r.normalRef([20, 7]));
  try {
    const before = memoryStats().liveBytes;
    // Chunked centering (n > 4096) and row blocks; column blocks with padded columns.
    const runs: [Tensor, Tensor, Form][] = [
      [x, y, "auto"],
      [x, y, "feature"],
      ...FORMS.map((f): [Tensor, Tensor, Form] => [xs, ys, f]),
    ];
    for (const [a, b, form] of runs) {
      const out = cka(a, b, { form });
      await out.item();
      out.dispose();
    }
    assert.equal(memoryStats().liveBytes, before);
  } finally {
    for (const t of [x, y, xs, ys]) t.dispose();
  }
});

Deno.test("cka() records nothing on the tape and never requires grad", async () => {
  const r = new Rng(8);
  const x = upload(r.normalRef([16, 5]), { requiresGrad: true });
  const y = upload(r.normalRef([16, 40]), { requiresGrad: true });
  try {
    for (const form of FORMS) {
      const out = cka(x, y, { form });
      assert.equal(out.requiresGrad, false);
      assert.equal(out.node, null);
      assert.equal(tapeNodes(out).length, 0);
      const twice = mul(out, 2);
      assert.equal(twice.requiresGrad, false);
      assert.ok(Number.isFinite(await out.item()));
      twice.dispose();
      out.dispose();
    }
    assert.equal(x.grad, null);
    assert.equal(x.isLeaf && y.isLeaf, true);
  } finally {
    x.dispose();
    y.dispose();
  }
});
