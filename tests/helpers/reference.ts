/**
 * Float64 CPU reference implementations of the engine's ops, a seeded PRNG for
 * test inputs, and {@link assertClose}. Nothing here touches the GPU, so the
 * references can be trusted independently of the engine: each is the textbook
 * definition, written for clarity rather than speed (test sizes are small).
 *
 * Arrays are {@link Ref}s: a shape and a row-major `Float64Array`. Integer
 * tensors (labels, indices, i32/u32 results) are Refs holding integers.
 *
 * @module
 */

// ---------------------------------------------------------------- arrays

/** A row-major float64 array with a shape. */
export interface Ref {
  /** Sizes, outermost first. */
  shape: number[];
  /** Row-major values. */
  data: Float64Array;
}

/** Number of elements of a shape. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Makes a Ref from a shape and values (zeros when no values are given). */
export function ref(shape: readonly number[], data?: ArrayLike<number>): Ref {
  const n = sizeOf(shape);
  const d = data ? Float64Array.from(data) : new Float64Array(n);
  if (d.length !== n) throw new RangeError(`ref: ${d.length} values for shape [${shape}]`);
  return { shape: [...shape], data: d };
}

/** Row-major strides of a shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Multi-index of flat index `i` in `shape`. */
export function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

/** Flat index of a multi-index. */
function ravel(idx: readonly number[], strides: readonly number[]): number {
  let o = 0;
  for (let d = 0; d < idx.length; d++) o += idx[d] * strides[d];
  return o;
}

/** Rounds every value to float32 in place (engine inputs are f32) and returns the Ref. */
export function roundF32(x: Ref): Ref {
  for (let i = 0; i < x.data.length; i++) x.data[i] = Math.fround(x.data[i]);
  return x;
}

// ---------------------------------------------------------------- PRNG

/**
 * Seeded PRNG (mulberry32) for test inputs, so a failing case replays exactly.
 * Values are rounded to float32 so that the engine and the reference see the
 * same numbers.
 */
export class Rng {
  #a: number;

  /** Starts the stream from `seed`. */
  constructor(seed: number) {
    this.#a = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#a = (this.#a + 0x6d2b79f5) >>> 0;
    let t = this.#a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** Integer in [lo, hi). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo));
  }

  /**
   * Random f32 values with |x| in [lo, hi) and random signs: never zero, so a
   * kernel that multiplies by a wrong zero or skips an element cannot pass by luck.
   */
  nonzero(shape: readonly number[], lo = 0.1, hi = 2): Ref {
    const x = ref(shape);
    for (let i = 0; i < x.data.length; i++) {
      x.data[i] = (this.next() < 0.5 ? -1 : 1) * this.uniform(lo, hi);
    }
    return roundF32(x);
  }

  /** Random f32 values uniform in [lo, hi). */
  uniformRef(shape: readonly number[], lo: number, hi: number): Ref {
    const x = ref(shape);
    for (let i = 0; i < x.data.length; i++) x.data[i] = this.uniform(lo, hi);
    return roundF32(x);
  }

  /** Random f32 values, normal with the given mean and std. */
  normalRef(shape: readonly number[], mean = 0, std = 1): Ref {
    const x = ref(shape);
    for (let i = 0; i < x.data.length; i++) x.data[i] = mean + std * this.normal();
    return roundF32(x);
  }

  /** Random integers in [lo, hi). */
  intRef(shape: readonly number[], lo: number, hi: number): Ref {
    const x = ref(shape);
    for (let i = 0; i < x.data.length; i++) x.data[i] = this.int(lo, hi);
    return x;
  }
}

// ---------------------------------------------------------------- comparison

/** Tolerances of {@link assertClose}: `|actual − expected| ≤ atol + rtol·|expected|`. */
export interface CloseOptions {
  /** Relative tolerance (default 1e-5). */
  rtol?: number;
  /** Absolute tolerance (default 1e-6). */
  atol?: number;
  /** Shape, to report the worst element's multi-index. */
  shape?: readonly number[];
  /** Prefix of the failure message. */
  msg?: string;
}

/**
 * Asserts that `actual` matches `expected` elementwise within tolerance. NaN
 * matches only NaN and infinities only themselves, so a poisoned (unwritten)
 * element fails. The message names the worst element (index, multi-index,
 * both values) and how many elements failed.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number> | Ref,
  opts: CloseOptions = {},
): void {
  const exp = "data" in expected ? expected.data : expected;
  const shape = opts.shape ?? ("data" in expected ? expected.shape : undefined);
  const rtol = opts.rtol ?? 1e-5;
  const atol = opts.atol ?? 1e-6;
  const prefix = opts.msg ? `${opts.msg}: ` : "";
  if (actual.length !== exp.length) {
    throw new Error(`${prefix}length ${actual.length}, expected ${exp.length}`);
  }
  let bad = 0;
  let worst = -1;
  let worstRatio = 0;
  for (let i = 0; i < exp.length; i++) {
    const a = actual[i];
    const e = exp[i];
    let ratio: number;
    if (Number.isNaN(e)) ratio = Number.isNaN(a) ? 0 : Infinity;
    else if (!Number.isFinite(e)) ratio = a === e ? 0 : Infinity;
    else {
      const err = Math.abs(a - e);
      ratio = Number.isNaN(err) ? Infinity : err / (atol + rtol * Math.abs(e));
    }
    if (ratio > 1) {
      bad++;
      if (ratio > worstRatio || worst < 0) {
        worstRatio = ratio;
        worst = i;
      }
    }
  }
  if (bad === 0) return;
  const a = actual[worst];
  const e = exp[worst];
  const where = shape ? ` [${unravel(worst, shape).join(", ")}]` : "";
  throw new Error(
    `${prefix}${bad} of ${exp.length} elements differ (rtol ${rtol}, atol ${atol}); worst at ` +
      `index ${worst}${where}: actual ${a}, expected ${e}, |diff| ${Math.abs(a - e)} ` +
      `> tolerance ${atol + rtol * Math.abs(e)}`,
  );
}

/** Largest |x| of an array (0 for an empty one). */
export function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

// ---------------------------------------------------------------- math

/**
 * erf to about 1e-15: Maclaurin series below 2.5 (terms peak near e^{x²} ≈ 500,
 * so cancellation costs under 3 digits), Lentz's continued fraction for erfc above.
 */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a < 2.5) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(a) = e^{-a²}/√π · 1/(a + 1/2/(a + 1/(a + 3/2/(a + ...)))).
  const tiny = 1e-300;
  let f = a;
  let c = a;
  let d = 0;
  for (let n = 1; n < 500; n++) {
    const an = n / 2;
    d = a + an * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = a + an / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** Unary functions by the engine's kernel names. */
export const UNARY_REF: Record<string, (x: number) => number> = {
  neg: (x) => -x,
  abs: Math.abs,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  relu: (x) => Math.max(x, 0),
  relu6: (x) => Math.min(Math.max(x, 0), 6),
  gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  gelu_tanh: (x) => 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x ** 3))),
  sin: Math.sin,
  cos: Math.cos,
};

/** Binary functions by the engine's kernel names (comparisons give 0/1). */
export const BINARY_REF: Record<string, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  // Math.pow gives the real result for a negative base and integral exponent and
  // NaN otherwise, which is the engine's (and PyTorch's) convention.
  pow: (a, b) => Math.pow(a, b),
  maximum: Math.max,
  minimum: Math.min,
  eq: (a, b) => +(a === b),
  ne: (a, b) => +(a !== b),
  lt: (a, b) => +(a < b),
  le: (a, b) => +(a <= b),
  gt: (a, b) => +(a > b),
  ge: (a, b) => +(a >= b),
};

// ---------------------------------------------------------------- elementwise

/** `f` applied to every element. */
export function mapRef(x: Ref, f: (v: number) => number): Ref {
  return { shape: [...x.shape], data: x.data.map(f) };
}

/** The NumPy broadcast of several shapes (throws if they do not broadcast). */
export function broadcastShape(...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      if (out[o] === 1) out[o] = s[i];
      else if (s[i] !== 1 && s[i] !== out[o]) {
        throw new RangeError(`shapes ${shapes.map((x) => `[${x}]`).join(", ")} do not broadcast`);
      }
    }
  }
  return out;
}

/** Flat index into `shape` of each element of `out` it broadcasts to. */
function broadcastIndex(shape: readonly number[], out: readonly number[]): Int32Array {
  const n = sizeOf(out);
  const st = stridesOf(shape);
  const lead = out.length - shape.length;
  const r = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const idx = unravel(i, out);
    let o = 0;
    for (let d = 0; d < shape.length; d++) if (shape[d] !== 1) o += idx[lead + d] * st[d];
    r[i] = o;
  }
  return r;
}

/** `f(a, b)` elementwise with broadcasting. */
export function zipRef(a: Ref, b: Ref, f: (x: number, y: number) => number): Ref {
  const shape = broadcastShape(a.shape, b.shape);
  const ia = broadcastIndex(a.shape, shape);
  const ib = broadcastIndex(b.shape, shape);
  const out = ref(shape);
  for (let i = 0; i < out.data.length; i++) out.data[i] = f(a.data[ia[i]], b.data[ib[i]]);
  return out;
}

/** `cond ? a : b` with broadcasting of all three (nonzero is true). */
export function whereRef(cond: Ref, a: Ref, b: Ref): Ref {
  const shape = broadcastShape(cond.shape, a.shape, b.shape);
  const ic = broadcastIndex(cond.shape, shape);
  const ia = broadcastIndex(a.shape, shape);
  const ib = broadcastIndex(b.shape, shape);
  const out = ref(shape);
  for (let i = 0; i < out.data.length; i++) {
    out.data[i] = cond.data[ic[i]] !== 0 ? a.data[ia[i]] : b.data[ib[i]];
  }
  return out;
}

/** Broadcasts `x` to `shape` (`-1` keeps a size). */
export function expandRef(x: Ref, shape: readonly number[]): Ref {
  const s = shape.map((d, i) => (d === -1 ? x.shape[i - (shape.length - x.shape.length)] : d));
  const idx = broadcastIndex(x.shape, s);
  return { shape: s, data: Float64Array.from(idx, (k) => x.data[k]) };
}

/** Sums `g` down to `shape` (the adjoint of broadcasting `shape` up to `g.shape`). */
export function sumToRef(g: Ref, shape: readonly number[]): Ref {
  const idx = broadcastIndex(shape, g.shape);
  const out = ref(shape);
  for (let i = 0; i < idx.length; i++) out.data[idx[i]] += g.data[i];
  return out;
}

// ---------------------------------------------------------------- reductions

/** Normalised, sorted reduction axes (undefined means all). */
export function normAxes(rank: number, axes?: number | number[]): number[] {
  const list = axes === undefined
    ? Array.from({ length: rank }, (_, i) => i)
    : typeof axes === "number"
    ? [axes]
    : axes;
  return [...new Set(list.map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
}

function reducedShape(shape: readonly number[], axes: number[], keepdim: boolean): number[] {
  const r: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) r.push(d);
    else if (keepdim) r.push(1);
  });
  return r;
}

/** For each input element, the flat index of the output element it reduces into. */
function reductionTargets(shape: readonly number[], axes: number[]): Int32Array {
  const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return broadcastIndex(kept, shape);
}

/** Sum, mean, max or min over `axes` (all by default). */
export function reduceRef(
  fn: "sum" | "mean" | "max" | "min",
  x: Ref,
  axes?: number | number[],
  keepdim = false,
): Ref {
  const ax = normAxes(x.shape.length, axes);
  const out = ref(reducedShape(x.shape, ax, keepdim));
  const tgt = reductionTargets(x.shape, ax);
  const init = fn === "max" ? -Infinity : fn === "min" ? Infinity : 0;
  out.data.fill(init);
  for (let i = 0; i < tgt.length; i++) {
    const o = tgt[i];
    const v = x.data[i];
    if (fn === "max") out.data[o] = Math.max(out.data[o], v);
    else if (fn === "min") out.data[o] = Math.min(out.data[o], v);
    else out.data[o] += v;
  }
  if (fn === "mean") {
    const n = ax.reduce((p, a) => p * x.shape[a], 1);
    for (let i = 0; i < out.data.length; i++) out.data[i] /= n;
  }
  return out;
}

/** Index of the first maximum along `axis` (NaN counts as the maximum, as in PyTorch). */
export function argmaxRef(x: Ref, axis: number, keepdim = false): Ref {
  const [a] = normAxes(x.shape.length, axis);
  const out = ref(reducedShape(x.shape, [a], keepdim));
  const best = new Float64Array(out.data.length).fill(-Infinity);
  const found = new Uint8Array(out.data.length);
  const tgt = reductionTargets(x.shape, [a]);
  for (let i = 0; i < tgt.length; i++) {
    const o = tgt[i];
    const v = x.data[i];
    const j = unravel(i, x.shape)[a];
    // Strict comparison keeps the first of equal maxima; the first NaN wins over numbers.
    const better = !found[o] || (!Number.isNaN(best[o]) && (Number.isNaN(v) || v > best[o]));
    if (better) {
      best[o] = v;
      out.data[o] = j;
      found[o] = 1;
    }
  }
  return out;
}

/** Variance over `axes`, dividing by `n − correction`. */
export function varianceRef(
  x: Ref,
  axes?: number | number[],
  correction = 1,
  keepdim = false,
): Ref {
  const ax = normAxes(x.shape.length, axes);
  const n = ax.reduce((p, a) => p * x.shape[a], 1);
  const mean = reduceRef("mean", x, ax, true);
  const d = zipRef(x, mean, (v, m) => (v - m) ** 2);
  const s = reduceRef("sum", d, ax, keepdim);
  return mapRef(s, (v) => v / (n - correction));
}

// ---------------------------------------------------------------- matmul

/** Options of {@link matmulRef}, as the engine's matmul. */
export interface MatmulRefOptions {
  /** `a` holds `[..., K, M]`. */
  transA?: boolean;
  /** `b` holds `[..., N, K]`. */
  transB?: boolean;
  /** `[N]`, added to every row. */
  bias?: Ref;
  /** Applied after the bias. */
  act?: "none" | "relu" | "gelu";
}

/** `op(a)·op(b) (+ bias) (then act)`, batched with broadcasting of the leading axes. */
export function matmulRef(a: Ref, b: Ref, opts: MatmulRefOptions = {}): Ref {
  const { transA = false, transB = false, bias, act = "none" } = opts;
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const M = transA ? ac : ar;
  const K = transA ? ar : ac;
  const N = transB ? br : bc;
  if ((transB ? bc : br) !== K) throw new RangeError("matmulRef: inner sizes differ");
  const batch = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const nb = sizeOf(batch);
  const ia = broadcastIndex(a.shape.slice(0, -2), batch);
  const ib = broadcastIndex(b.shape.slice(0, -2), batch);
  const out = ref([...batch, M, N]);
  for (let p = 0; p < nb; p++) {
    const ao = ia[p] * M * K;
    const bo = ib[p] * K * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = a.data[ao + (transA ? k * M + m : m * K + k)];
          const bv = b.data[bo + (transB ? n * K + k : k * N + n)];
          s += av * bv;
        }
        if (bias) s += bias.data[n];
        if (act === "relu") s = Math.max(s, 0);
        else if (act === "gelu") s = UNARY_REF.gelu(s);
        out.data[(p * M + m) * N + n] = s;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- softmax & loss

/** Softmax (or log-softmax) along `axis`, computed stably. */
export function softmaxRef(x: Ref, axis = -1, log = false): Ref {
  const r = x.shape.length;
  const a = axis < 0 ? axis + r : axis;
  const n = x.shape[a];
  const inner = sizeOf(x.shape.slice(a + 1));
  const outer = sizeOf(x.shape.slice(0, a));
  const out = ref(x.shape);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const at = (j: number) => (o * n + j) * inner + i;
      let m = -Infinity;
      for (let j = 0; j < n; j++) m = Math.max(m, x.data[at(j)]);
      let s = 0;
      for (let j = 0; j < n; j++) s += Math.exp(x.data[at(j)] - m);
      for (let j = 0; j < n; j++) {
        const z = x.data[at(j)] - m;
        out.data[at(j)] = log ? z - Math.log(s) : Math.exp(z) / s;
      }
    }
  }
  return out;
}

/** Options of {@link crossEntropyRef}, as the engine's crossEntropy. */
export interface CrossEntropyRefOptions {
  /** Default "mean" (over rows not ignored). */
  reduction?: "mean" | "sum" | "none";
  /** PyTorch's `label_smoothing`. */
  labelSmoothing?: number;
  /** Default -100. */
  ignoreIndex?: number;
}

/**
 * PyTorch's cross-entropy of `logits [N, C]` and integer `labels [N]`:
 * per row `−Σ_c t_c·log_softmax(x)_c` with `t = (1−ε)·onehot + ε/C`; 0 for
 * ignored rows, NaN for other labels outside [0, C).
 */
export function crossEntropyRef(
  logits: Ref,
  labels: ArrayLike<number>,
  opts: CrossEntropyRefOptions = {},
): Ref {
  const { reduction = "mean", labelSmoothing: eps = 0, ignoreIndex = -100 } = opts;
  const [N, C] = logits.shape;
  const lsm = softmaxRef(logits, -1, true);
  const loss = ref([N]);
  let count = 0;
  for (let r = 0; r < N; r++) {
    const y = labels[r];
    if (y === ignoreIndex) continue;
    if (y < 0 || y >= C) {
      loss.data[r] = NaN;
      continue;
    }
    count++;
    let l = 0;
    for (let c = 0; c < C; c++) l -= ((c === y ? 1 - eps : 0) + eps / C) * lsm.data[r * C + c];
    loss.data[r] = l;
  }
  if (reduction === "none") return loss;
  const total = loss.data.reduce((p, v) => p + v, 0);
  return ref([], [reduction === "sum" ? total : total / count]);
}

// ---------------------------------------------------------------- indexing

/** `torch.index_select`: entries `index` along `axis`; out-of-range indices read 0. */
export function indexSelectRef(x: Ref, axis: number, index: ArrayLike<number>): Ref {
  const a = axis < 0 ? axis + x.shape.length : axis;
  const shape = [...x.shape];
  shape[a] = index.length;
  const out = ref(shape);
  const xs = stridesOf(x.shape);
  for (let i = 0; i < out.data.length; i++) {
    const idx = unravel(i, shape);
    const k = index[idx[a]];
    if (k < 0 || k >= x.shape[a]) continue;
    idx[a] = k;
    out.data[i] = x.data[ravel(idx, xs)];
  }
  return out;
}

/** `torch.gather`: `out[..j..] = x[..index[..j..]..]` along `axis`; out of range reads 0. */
export function gatherRef(x: Ref, axis: number, index: Ref): Ref {
  const a = axis < 0 ? axis + x.shape.length : axis;
  const out = ref(index.shape);
  const xs = stridesOf(x.shape);
  for (let i = 0; i < out.data.length; i++) {
    const idx = unravel(i, index.shape);
    const k = index.data[i];
    if (k < 0 || k >= x.shape[a]) continue;
    idx[a] = k;
    out.data[i] = x.data[ravel(idx, xs)];
  }
  return out;
}

/**
 * `base` plus `src` added at `index` along `axis`: `index` is 1-D (index-select
 * style) or has src's shape (gather style). Out-of-range indices are skipped.
 */
export function scatterAddRef(base: Ref, axis: number, index: Ref, src: Ref): Ref {
  const a = axis < 0 ? axis + base.shape.length : axis;
  const out = ref(base.shape, base.data);
  const bs = stridesOf(base.shape);
  const oneD = index.shape.length === 1;
  for (let i = 0; i < src.data.length; i++) {
    const idx = unravel(i, src.shape);
    const k = oneD ? index.data[idx[a]] : index.data[i];
    if (k < 0 || k >= base.shape[a]) continue;
    idx[a] = k;
    out.data[ravel(idx, bs)] += src.data[i];
  }
  return out;
}

// ---------------------------------------------------------------- shape ops

/** Reorders axes: output axis i is input axis `perm[i]`. */
export function permuteRef(x: Ref, perm: number[]): Ref {
  const r = x.shape.length;
  const p = perm.map((a) => (a < 0 ? a + r : a));
  const shape = p.map((a) => x.shape[a]);
  const xs = stridesOf(x.shape);
  const out = ref(shape);
  for (let i = 0; i < out.data.length; i++) {
    const idx = unravel(i, shape);
    let o = 0;
    for (let d = 0; d < r; d++) o += idx[d] * xs[p[d]];
    out.data[i] = x.data[o];
  }
  return out;
}

/** Swaps two axes. */
export function transposeRef(x: Ref, d0 = -2, d1 = -1): Ref {
  const r = x.shape.length;
  const p = x.shape.map((_, i) => i);
  const a = d0 < 0 ? d0 + r : d0;
  const b = d1 < 0 ? d1 + r : d1;
  [p[a], p[b]] = [p[b], p[a]];
  return permuteRef(x, p);
}

/** `x[starts[0]:ends[0], ...]` on the leading axes, Python-style (negative, clamped). */
export function sliceRef(x: Ref, starts: number[], ends: number[]): Ref {
  const begin: number[] = [];
  const shape = x.shape.map((d, i) => {
    if (i >= starts.length) {
      begin.push(0);
      return d;
    }
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
    const s = clamp(starts[i]);
    begin.push(s);
    return Math.max(clamp(ends[i]), s) - s;
  });
  const xs = stridesOf(x.shape);
  const out = ref(shape);
  for (let i = 0; i < out.data.length; i++) {
    const idx = unravel(i, shape).map((v, d) => v + begin[d]);
    out.data[i] = x.data[ravel(idx, xs)];
  }
  return out;
}

/** Constant padding: `pads[i] = [before, after]` for the leading axes. */
export function padRef(x: Ref, pads: [number, number][], value = 0): Ref {
  const before = x.shape.map((_, i) => pads[i]?.[0] ?? 0);
  const shape = x.shape.map((d, i) => d + before[i] + (pads[i]?.[1] ?? 0));
  const out = ref(shape);
  out.data.fill(value);
  const os = stridesOf(shape);
  for (let i = 0; i < x.data.length; i++) {
    const idx = unravel(i, x.shape).map((v, d) => v + before[d]);
    out.data[ravel(idx, os)] = x.data[i];
  }
  return out;
}

/** Joins along `axis`. */
export function concatRef(xs: Ref[], axis = 0): Ref {
  const r = xs[0].shape.length;
  const a = axis < 0 ? axis + r : axis;
  const shape = [...xs[0].shape];
  shape[a] = xs.reduce((p, t) => p + t.shape[a], 0);
  const out = ref(shape);
  const os = stridesOf(shape);
  let at = 0;
  for (const t of xs) {
    for (let i = 0; i < t.data.length; i++) {
      const idx = unravel(i, t.shape);
      idx[a] += at;
      out.data[ravel(idx, os)] = t.data[i];
    }
    at += t.shape[a];
  }
  return out;
}

/** Splits along `axis` into pieces of the given sizes. */
export function splitRef(x: Ref, sizes: number[], axis = 0): Ref[] {
  const r = x.shape.length;
  const a = axis < 0 ? axis + r : axis;
  let at = 0;
  return sizes.map((s) => {
    const starts = x.shape.map((_, i) => (i === a ? at : 0));
    const ends = x.shape.map((d, i) => (i === a ? at + s : d));
    at += s;
    return sliceRef(x, starts, ends);
  });
}
