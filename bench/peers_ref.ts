/**
 * Shared, engine-independent inputs and CPU references for the side-by-side
 * benchmarks: a seeded generator, the matmul row check, and a float64 reference
 * of the MLP training step (784→128→10, ReLU, softmax cross-entropy with integer
 * labels, SGD with momentum 0.9 and lr 0.1, PyTorch/tfjs convention
 * `v = μ·v + g; p = p − lr·v`). Every engine in the comparison starts from the
 * same {@link mlpProblem} so the first losses it reports can be checked
 * against {@link cpuMlpLosses}.
 *
 * @module
 */

/** Deterministic uniform generator in [0, 1) (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `len` values uniform in [lo, hi) from `seed`. */
export function uniform(len: number, seed: number, lo = -1, hi = 1): Float32Array<ArrayBuffer> {
  const r = rng(seed);
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/** The two n×n operands used by every engine's matmul benchmark. */
export function matmulOperands(
  n: number,
): { a: Float32Array<ArrayBuffer>; b: Float32Array<ArrayBuffer> } {
  return { a: uniform(n * n, 1000 + n), b: uniform(n * n, 2000 + n) };
}

/**
 * Checks rows `rows` of `c = a @ b` (all n×n, row-major) against a float64 CPU
 * product. The tolerance scales with Σ|a_ik·b_kj|, so it is independent of
 * cancellation. Returns the largest error relative to that scale; throws if
 * any entry is off by more than `tol` of it (or is not finite).
 */
export function checkMatmulRows(
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  n: number,
  rows: number[] = [0, n - 1],
  tol = 1e-4,
): number {
  let worst = 0;
  for (const i of rows) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let mag = 0;
      for (let k = 0; k < n; k++) {
        const p = a[i * n + k] * b[k * n + j];
        s += p;
        mag += Math.abs(p);
      }
      const got = c[i * n + j];
      const err = Math.abs(got - s) / (mag + 1e-30);
      if (!Number.isFinite(got) || !(err <= tol)) {
        throw new Error(
          `matmul check failed at [${i},${j}]: got ${got}, expected ${s.toPrecision(7)} ` +
            `(relative error ${err.toExponential(2)} > ${tol})`,
        );
      }
      worst = Math.max(worst, err);
    }
  }
  return worst;
}

/** The fixed MLP benchmark problem: one batch and the initial parameters. */
export interface MlpProblem {
  batch: number;
  inDim: number;
  hidden: number;
  classes: number;
  lr: number;
  momentum: number;
  /** Inputs, [batch, inDim] row-major, uniform in [0, 1). */
  x: Float32Array<ArrayBuffer>;
  /** Integer class labels, [batch]. */
  y: Int32Array<ArrayBuffer>;
  /** [inDim, hidden] row-major (so h = x @ w1 + b1). */
  w1: Float32Array<ArrayBuffer>;
  b1: Float32Array<ArrayBuffer>;
  /** [hidden, classes] row-major. */
  w2: Float32Array<ArrayBuffer>;
  b2: Float32Array<ArrayBuffer>;
}

/** Builds the MLP problem (PyTorch-style U(±1/√fan_in) initialisation, seeded). */
export function mlpProblem(batch = 64, inDim = 784, hidden = 128, classes = 10): MlpProblem {
  const s1 = 1 / Math.sqrt(inDim);
  const s2 = 1 / Math.sqrt(hidden);
  const r = rng(7);
  const y = new Int32Array(batch);
  for (let i = 0; i < batch; i++) y[i] = Math.floor(r() * classes);
  return {
    batch,
    inDim,
    hidden,
    classes,
    lr: 0.1,
    momentum: 0.9,
    x: uniform(batch * inDim, 11, 0, 1),
    y,
    w1: uniform(inDim * hidden, 12, -s1, s1),
    b1: uniform(hidden, 13, -s1, s1),
    w2: uniform(hidden * classes, 14, -s2, s2),
    b2: uniform(classes, 15, -s2, s2),
  };
}

/**
 * Float64 CPU reference: the loss reported by each of the first `steps`
 * training steps (the loss at the parameters before that step's update).
 */
export function cpuMlpLosses(p: MlpProblem, steps: number): number[] {
  const { batch: B, inDim: D, hidden: H, classes: C, lr, momentum: mu } = p;
  const w1 = Float64Array.from(p.w1), b1 = Float64Array.from(p.b1);
  const w2 = Float64Array.from(p.w2), b2 = Float64Array.from(p.b2);
  const vw1 = new Float64Array(w1.length), vb1 = new Float64Array(b1.length);
  const vw2 = new Float64Array(w2.length), vb2 = new Float64Array(b2.length);
  const h = new Float64Array(B * H), dl = new Float64Array(B * C), dh = new Float64Array(B * H);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    // Forward.
    for (let i = 0; i < B; i++) {
      for (let j = 0; j < H; j++) h[i * H + j] = b1[j];
      for (let k = 0; k < D; k++) {
        const xv = p.x[i * D + k];
        if (xv === 0) continue;
        for (let j = 0; j < H; j++) h[i * H + j] += xv * w1[k * H + j];
      }
      for (let j = 0; j < H; j++) if (h[i * H + j] < 0) h[i * H + j] = 0;
    }
    let loss = 0;
    for (let i = 0; i < B; i++) {
      let mx = -Infinity;
      for (let c = 0; c < C; c++) {
        let z = b2[c];
        for (let j = 0; j < H; j++) z += h[i * H + j] * w2[j * C + c];
        dl[i * C + c] = z;
        mx = Math.max(mx, z);
      }
      let se = 0;
      for (let c = 0; c < C; c++) se += Math.exp(dl[i * C + c] - mx);
      const lse = mx + Math.log(se);
      loss += lse - dl[i * C + p.y[i]];
      // d loss / d logits = (softmax − onehot) / B.
      for (let c = 0; c < C; c++) {
        dl[i * C + c] = (Math.exp(dl[i * C + c] - lse) - (c === p.y[i] ? 1 : 0)) / B;
      }
    }
    losses.push(loss / B);
    // Backward.
    const gw2 = new Float64Array(w2.length), gb2 = new Float64Array(C);
    const gw1 = new Float64Array(w1.length), gb1 = new Float64Array(H);
    for (let i = 0; i < B; i++) {
      for (let c = 0; c < C; c++) gb2[c] += dl[i * C + c];
      for (let j = 0; j < H; j++) {
        const hv = h[i * H + j];
        let d = 0;
        for (let c = 0; c < C; c++) {
          gw2[j * C + c] += hv * dl[i * C + c];
          d += dl[i * C + c] * w2[j * C + c];
        }
        dh[i * H + j] = hv > 0 ? d : 0;
        gb1[j] += dh[i * H + j];
      }
      for (let k = 0; k < D; k++) {
        const xv = p.x[i * D + k];
        if (xv === 0) continue;
        for (let j = 0; j < H; j++) gw1[k * H + j] += xv * dh[i * H + j];
      }
    }
    // Momentum SGD.
    const upd = (w: Float64Array, v: Float64Array, g: Float64Array) => {
      for (let i = 0; i < w.length; i++) {
        v[i] = mu * v[i] + g[i];
        w[i] -= lr * v[i];
      }
    };
    upd(w1, vw1, gw1);
    upd(b1, vb1, gb1);
    upd(w2, vw2, gw2);
    upd(b2, vb2, gb2);
  }
  return losses;
}

/**
 * Throws unless `got` matches the CPU reference losses to float32 accuracy
 * (|Δ| ≤ 2e-3 + 1e-3·|ref|). Three steps exercise forward, backward, and both
 * momentum terms.
 */
export function checkMlpLosses(engine: string, got: number[], ref: number[]): void {
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(got[i] - ref[i]);
    if (!Number.isFinite(got[i]) || !(d <= 2e-3 + 1e-3 * Math.abs(ref[i]))) {
      throw new Error(
        `${engine} MLP step ${i + 1} loss ${got[i]} differs from the CPU reference ` +
          `${ref[i].toFixed(6)} (all: got [${got.map((v) => v.toFixed(5))}], ` +
          `ref [${ref.map((v) => v.toFixed(5))}])`,
      );
    }
  }
}

/** Median of a non-empty list. */
export function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Untimed runs after the first (compile) run, for every engine. */
export const WARMUP = 2;
/** Training steps checked against the CPU reference before timing (covers both momentum terms). */
export const CHECK_STEPS = 3;

/**
 * Times `reps` awaited runs of `run` after {@link WARMUP} untimed ones, in ms.
 * Every engine is timed through this one function so the harness is the same.
 */
export async function timeRuns(reps: number, run: () => Promise<void>): Promise<number[]> {
  for (let i = 0; i < WARMUP; i++) await run();
  const times: number[] = [];
  for (let i = 0; i < Math.max(1, reps); i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  return times;
}
