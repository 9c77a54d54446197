/**
 * Shared, engine-independent inputs and CPU references for the side-by-side
 * benchmarks: a seeded generator, the matmul row check, and a float64 reference
 * of the MLP training step (784→128→10, ReLU, softmax cross-entropy with integer
 * labels, SGD with momentum 0.9 and lr 0.1, PyTorch/tfjs convention
 * `v = μ·v + g; p = p − lr·v`). Every engine in the comparison starts from the
 * same {@link mlpProblem} so the first losses it reports can be checked
 * against {@link cpuMlpLosses}. The vision benchmarks' problems (conv2d,
 * small CNN, ResNet-18), their checks and layout conversions follow.
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
  c: { readonly [i: number]: number },
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
 * Times `reps` awaited runs of `run` after `warmup` (default {@link WARMUP})
 * untimed ones, in ms. Every engine is timed through this one function so the
 * harness is the same. A caller whose runs before timing already warmed the
 * engine up (the checked training steps of a slow model) may pass 0. Timing
 * stops early, after at least one run, once the timed runs add up to
 * `budgetMs` (for engines whose single run takes minutes).
 */
export async function timeRuns(
  reps: number,
  run: () => Promise<void>,
  warmup: number = WARMUP,
  budgetMs: number = Infinity,
): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await run();
  const times: number[] = [];
  let total = 0;
  for (let i = 0; i < Math.max(1, reps) && total < budgetMs; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
    total += times[times.length - 1];
  }
  return times;
}

// ------------------------------------------------------------- vision problems

/** `len` normal values with standard deviation `std` from `seed` (Box–Muller over {@link rng}). */
export function normal(len: number, seed: number, std = 1): Float32Array<ArrayBuffer> {
  const r = rng(seed);
  const out = new Float32Array(len);
  for (let i = 0; i < len; i += 2) {
    const m = std * Math.sqrt(-2 * Math.log(1 - r())); // 1 − r() ∈ (0, 1]: log is finite
    const a = 2 * Math.PI * r();
    out[i] = m * Math.cos(a);
    if (i + 1 < len) out[i + 1] = m * Math.sin(a);
  }
  return out;
}

/** `[N, C, H, W]` → `[N, H, W, C]`, TensorFlow.js's default image layout. */
export function nchwToNhwc(
  x: Float32Array,
  [N, C, H, W]: readonly number[],
): Float32Array<ArrayBuffer> {
  const out = new Float32Array(x.length);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      for (let i = 0; i < H * W; i++) out[(n * H * W + i) * C + c] = x[(n * C + c) * H * W + i];
    }
  }
  return out;
}

/** Conv weight `[O, I, kh, kw]` (PyTorch's layout) → `[kh, kw, I, O]` (TensorFlow's). */
export function oihwToHwio(
  w: Float32Array,
  [O, I, kh, kw]: readonly number[],
): Float32Array<ArrayBuffer> {
  const out = new Float32Array(w.length);
  for (let o = 0; o < O; o++) {
    for (let i = 0; i < I; i++) {
      for (let t = 0; t < kh * kw; t++) out[(t * I + i) * O + o] = w[(o * I + i) * kh * kw + t];
    }
  }
  return out;
}

/** The conv2d forward problem: stride 1, zero padding `pad`, no bias, NCHW/OIHW operands. */
export interface ConvProblem {
  N: number;
  C: number;
  O: number;
  H: number;
  W: number;
  k: number;
  pad: number;
  /** `[N, C, H, W]`, uniform in [−1, 1). */
  x: Float32Array<ArrayBuffer>;
  /** `[O, C, k, k]`, uniform in ±1/√(C·k²). */
  w: Float32Array<ArrayBuffer>;
}

/** Builds the conv2d problem (default: batch 8, 64→64 channels, 3×3, padding 1, 32×32). */
export function convProblem(N = 8, C = 64, O = 64, H = 32, W = 32, k = 3, pad = 1): ConvProblem {
  const s = 1 / Math.sqrt(C * k * k);
  return {
    N,
    C,
    O,
    H,
    W,
    k,
    pad,
    x: uniform(N * C * H * W, 31),
    w: uniform(O * C * k * k, 32, -s, s),
  };
}

/** Output height and width of the conv problem. */
export function convOutSize(p: ConvProblem): [number, number] {
  return [p.H + 2 * p.pad - p.k + 1, p.W + 2 * p.pad - p.k + 1];
}

/** Floating-point operations of the conv problem's forward pass: 2·N·O·OH·OW·C·k². */
export function convFlops(p: ConvProblem): number {
  const [OH, OW] = convOutSize(p);
  return 2 * p.N * p.O * OH * OW * p.C * p.k * p.k;
}

/**
 * Output elements `[n, o, y, x]` that {@link checkConvOutputs} checks: the
 * four corners of the first and of the last (image, channel) pair, where the
 * padding is read, and `random` seeded ones anywhere.
 */
export function convCheckPoints(p: ConvProblem, random = 12): number[][] {
  const [OH, OW] = convOutSize(p);
  const pts: number[][] = [];
  for (const [n, o] of [[0, 0], [p.N - 1, p.O - 1]]) {
    for (const y of [0, OH - 1]) for (const x of [0, OW - 1]) pts.push([n, o, y, x]);
  }
  const r = rng(33);
  const pick = (m: number) => Math.floor(r() * m);
  for (let i = 0; i < random; i++) pts.push([pick(p.N), pick(p.O), pick(OH), pick(OW)]);
  return pts;
}

/**
 * Checks the sampled outputs ({@link convCheckPoints}) of the conv problem
 * against float64 sums, `out` being `[N, O, OH, OW]` (`"nchw"`) or
 * `[N, OH, OW, O]` (`"nhwc"`). The tolerance scales with Σ|x·w| of each
 * output, as {@link checkMatmulRows}'s does. Returns the largest relative
 * error; throws if one exceeds `tol` or is not finite.
 */
export function checkConvOutputs(
  p: ConvProblem,
  out: { readonly [i: number]: number },
  layout: "nchw" | "nhwc",
  tol = 1e-4,
): number {
  const [OH, OW] = convOutSize(p);
  let worst = 0;
  for (const [n, o, oy, ox] of convCheckPoints(p)) {
    let s = 0;
    let mag = 0;
    for (let c = 0; c < p.C; c++) {
      for (let ky = 0; ky < p.k; ky++) {
        const iy = oy + ky - p.pad;
        if (iy < 0 || iy >= p.H) continue;
        for (let kx = 0; kx < p.k; kx++) {
          const ix = ox + kx - p.pad;
          if (ix < 0 || ix >= p.W) continue;
          const t = p.x[((n * p.C + c) * p.H + iy) * p.W + ix] *
            p.w[((o * p.C + c) * p.k + ky) * p.k + kx];
          s += t;
          mag += Math.abs(t);
        }
      }
    }
    const at = layout === "nchw"
      ? ((n * p.O + o) * OH + oy) * OW + ox
      : ((n * OH + oy) * OW + ox) * p.O + o;
    const got = out[at];
    const err = Math.abs(got - s) / (mag + 1e-30);
    if (!Number.isFinite(got) || !(err <= tol)) {
      throw new Error(
        `conv2d check failed at [${n},${o},${oy},${ox}] (${layout}): got ${got}, expected ` +
          `${s.toPrecision(7)} (relative error ${err.toExponential(2)} > ${tol})`,
      );
    }
    worst = Math.max(worst, err);
  }
  return worst;
}

/** One 3×3, padding-1 convolution (with bias) of {@link CnnProblem}. */
export interface CnnConv {
  inC: number;
  outC: number;
  /** `[outC, inC, 3, 3]`. */
  w: Float32Array<ArrayBuffer>;
  /** `[outC]`. */
  b: Float32Array<ArrayBuffer>;
}

/**
 * The small CNN training problem: three blocks of 3×3 conv (padding 1, bias)
 * → ReLU → 2×2 max pooling (3→32→64→64 channels, 32×32 → 4×4), then a linear
 * layer from the NCHW flatten (1024) to the classes; mean cross-entropy, SGD
 * with momentum. Initial parameters are PyTorch-style U(±1/√fan_in), seeded.
 */
export interface CnnProblem {
  batch: number;
  size: number;
  classes: number;
  lr: number;
  momentum: number;
  /** `[batch, 3, size, size]`, uniform in [−1, 1). */
  x: Float32Array<ArrayBuffer>;
  /** Integer class labels, `[batch]`. */
  y: Int32Array<ArrayBuffer>;
  convs: CnnConv[];
  /** `[classes, 64·(size/8)²]`, PyTorch's `Linear` layout over the NCHW flatten (c, h, w). */
  fcW: Float32Array<ArrayBuffer>;
  /** `[classes]`. */
  fcB: Float32Array<ArrayBuffer>;
}

/** Builds the CNN problem (default batch 16, 32×32 images, 10 classes, lr 0.05, momentum 0.9). */
export function cnnProblem(batch = 16, size = 32, classes = 10): CnnProblem {
  const chans = [3, 32, 64, 64];
  const convs = chans.slice(1).map((outC, i) => {
    const inC = chans[i];
    const s = 1 / Math.sqrt(inC * 9);
    return {
      inC,
      outC,
      w: uniform(outC * inC * 9, 41 + 2 * i, -s, s),
      b: uniform(outC, 42 + 2 * i, -s, s),
    };
  });
  const feat = 64 * (size / 8) ** 2;
  const s = 1 / Math.sqrt(feat);
  const r = rng(40);
  const y = new Int32Array(batch);
  for (let i = 0; i < batch; i++) y[i] = Math.floor(r() * classes);
  return {
    batch,
    size,
    classes,
    lr: 0.05,
    momentum: 0.9,
    x: uniform(batch * 3 * size * size, 39),
    y,
    convs,
    fcW: uniform(classes * feat, 47, -s, s),
    fcB: uniform(classes, 48, -s, s),
  };
}

/**
 * `[classes, C·H·W]` over an NCHW flatten → `[H·W·C, classes]` over an NHWC
 * flatten (a TensorFlow `dense` kernel), so an NHWC network computes the same logits.
 */
export function fcForNhwc(
  w: Float32Array,
  classes: number,
  [C, H, W]: readonly number[],
): Float32Array<ArrayBuffer> {
  const out = new Float32Array(w.length);
  for (let k = 0; k < classes; k++) {
    for (let c = 0; c < C; c++) {
      for (let i = 0; i < H * W; i++) {
        out[(i * C + c) * classes + k] = w[k * C * H * W + c * H * W + i];
      }
    }
  }
  return out;
}

/**
 * Float64 CPU reference of the CNN's mean cross-entropy at its initial
 * parameters: the loss every engine must report for its first step.
 */
export function cpuCnnLoss(p: CnnProblem): number {
  const N = p.batch;
  let h: Float64Array = Float64Array.from(p.x);
  let S = p.size;
  for (const { inC, outC, w, b } of p.convs) {
    const conv = new Float64Array(N * outC * S * S);
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < outC; o++) {
        const plane = conv.subarray((n * outC + o) * S * S, (n * outC + o + 1) * S * S);
        plane.fill(b[o]);
        for (let c = 0; c < inC; c++) {
          const src = h.subarray((n * inC + c) * S * S, (n * inC + c + 1) * S * S);
          for (let ky = 0; ky < 3; ky++) {
            for (let kx = 0; kx < 3; kx++) {
              const wv = w[((o * inC + c) * 3 + ky) * 3 + kx];
              for (let y = Math.max(0, 1 - ky); y < Math.min(S, S + 1 - ky); y++) {
                const iy = y + ky - 1;
                for (let x = Math.max(0, 1 - kx); x < Math.min(S, S + 1 - kx); x++) {
                  plane[y * S + x] += wv * src[iy * S + x + kx - 1];
                }
              }
            }
          }
        }
      }
    }
    // ReLU then 2×2 max pooling (they commute).
    const T = S / 2;
    const pooled = new Float64Array(N * outC * T * T);
    for (let nc = 0; nc < N * outC; nc++) {
      for (let y = 0; y < T; y++) {
        for (let x = 0; x < T; x++) {
          const at = nc * S * S + 2 * y * S + 2 * x;
          const m = Math.max(conv[at], conv[at + 1], conv[at + S], conv[at + S + 1]);
          pooled[(nc * T + y) * T + x] = Math.max(m, 0);
        }
      }
    }
    h = pooled;
    S = T;
  }
  const F = h.length / N;
  let loss = 0;
  for (let n = 0; n < N; n++) {
    const z = new Float64Array(p.classes);
    for (let k = 0; k < p.classes; k++) {
      let s = p.fcB[k];
      for (let f = 0; f < F; f++) s += h[n * F + f] * p.fcW[k * F + f];
      z[k] = s;
    }
    const mx = Math.max(...z);
    let se = 0;
    for (const v of z) se += Math.exp(v - mx);
    loss += mx + Math.log(se) - z[p.y[n]];
  }
  return loss / N;
}

/** A residual basic block of {@link ResnetProblem}, named as in torchvision (`"layer2.0"`). */
export interface ResBlock {
  prefix: string;
  inC: number;
  outC: number;
  stride: number;
  /** Whether the shortcut is a 1×1 conv + BatchNorm (`downsample.0`, `downsample.1`). */
  downsample: boolean;
}

/** A named parameter: shape and row-major values (PyTorch layouts: OIHW convs, `[out, in]` linear). */
export interface NamedParam {
  shape: number[];
  data: Float32Array<ArrayBuffer>;
}

/**
 * The ResNet-18 training problem with the CIFAR stem (3×3 stride-1 `conv1`,
 * no max pooling): one batch, and every trainable parameter under its
 * torchvision name, initialised as torchvision does (convs
 * `kaiming_normal_(fan_out, relu)`, BatchNorm weight 1 and bias 0, `fc`
 * U(±1/√512)), seeded, so every engine starts from the same network.
 */
export interface ResnetProblem {
  batch: number;
  size: number;
  classes: number;
  lr: number;
  momentum: number;
  /** BatchNorm ε (PyTorch's default). */
  eps: number;
  /** `[batch, 3, size, size]`, uniform in [−1, 1). */
  x: Float32Array<ArrayBuffer>;
  /** Integer class labels, `[batch]`. */
  y: Int32Array<ArrayBuffer>;
  blocks: ResBlock[];
  /** Trainable parameters by torchvision name (no BatchNorm running statistics). */
  params: Record<string, NamedParam>;
}

/** ResNet-18's eight basic blocks (`[2, 2, 2, 2]`, 64·2^stage channels). */
export function resnet18Blocks(): ResBlock[] {
  const blocks: ResBlock[] = [];
  let inC = 64;
  for (const [stage, outC, stride] of [[1, 64, 1], [2, 128, 2], [3, 256, 2], [4, 512, 2]]) {
    for (let b = 0; b < 2; b++) {
      const s = b === 0 ? stride : 1;
      blocks.push({
        prefix: `layer${stage}.${b}`,
        inC,
        outC,
        stride: s,
        downsample: s !== 1 || inC !== outC,
      });
      inC = outC;
    }
  }
  return blocks;
}

/** Builds the ResNet-18 problem (default batch 16, 32×32, 10 classes, lr 0.1, momentum 0.9). */
export function resnetProblem(batch = 16, size = 32, classes = 10): ResnetProblem {
  const params: Record<string, NamedParam> = {};
  let seed = 100;
  const conv = (name: string, o: number, i: number, k: number) => {
    const shape = [o, i, k, k];
    params[`${name}.weight`] = {
      shape,
      data: normal(o * i * k * k, seed++, Math.sqrt(2 / (o * k * k))),
    };
  };
  const bn = (name: string, c: number) => {
    params[`${name}.weight`] = { shape: [c], data: new Float32Array(c).fill(1) };
    params[`${name}.bias`] = { shape: [c], data: new Float32Array(c) };
  };
  conv("conv1", 64, 3, 3);
  bn("bn1", 64);
  const blocks = resnet18Blocks();
  for (const b of blocks) {
    conv(`${b.prefix}.conv1`, b.outC, b.inC, 3);
    bn(`${b.prefix}.bn1`, b.outC);
    conv(`${b.prefix}.conv2`, b.outC, b.outC, 3);
    bn(`${b.prefix}.bn2`, b.outC);
    if (b.downsample) {
      conv(`${b.prefix}.downsample.0`, b.outC, b.inC, 1);
      bn(`${b.prefix}.downsample.1`, b.outC);
    }
  }
  const s = 1 / Math.sqrt(512);
  params["fc.weight"] = { shape: [classes, 512], data: uniform(classes * 512, seed++, -s, s) };
  params["fc.bias"] = { shape: [classes], data: uniform(classes, seed++, -s, s) };
  const r = rng(99);
  const y = new Int32Array(batch);
  for (let i = 0; i < batch; i++) y[i] = Math.floor(r() * classes);
  return {
    batch,
    size,
    classes,
    lr: 0.1,
    momentum: 0.9,
    eps: 1e-5,
    x: uniform(batch * 3 * size * size, 98),
    y,
    blocks,
    params,
  };
}

/** Total number of values in `params`. */
export function paramCount(params: Record<string, NamedParam>): number {
  let n = 0;
  for (const p of Object.values(params)) n += p.data.length;
  return n;
}

/**
 * Largest deviation of `got` from `ref`, relative to max(1, |ref|), over the
 * steps both have: how far one engine's training losses are from another's.
 */
export function lossDeviation(got: number[], ref: number[]): number {
  let worst = 0;
  for (let i = 0; i < Math.min(got.length, ref.length); i++) {
    const d = Math.abs(got[i] - ref[i]) / Math.max(1, Math.abs(ref[i]));
    worst = Math.max(worst, Number.isFinite(d) ? d : Infinity);
  }
  return worst;
}

/**
 * A check for an engine's first training loss (`losses[0]`) against `ref()`:
 * throws unless |Δ| ≤ `abs` + `rel`·|ref| (default 2e-3 + 1e-3·|ref|, as
 * {@link checkMlpLosses}). Nothing is checked while `ref()` is undefined (the
 * first engine of a row with no CPU reference sets it).
 */
export function firstLossCheck(
  engine: string,
  what: string,
  ref: () => number | undefined,
  { abs = 2e-3, rel = 1e-3 }: { abs?: number; rel?: number } = {},
): (losses: number[]) => void {
  return (losses) => {
    const r = ref();
    if (r === undefined) return;
    const d = Math.abs(losses[0] - r);
    if (!Number.isFinite(losses[0]) || !(d <= abs + rel * Math.abs(r))) {
      throw new Error(
        `${engine} first ${what} loss ${losses[0]} differs from the reference ${r.toFixed(6)}`,
      );
    }
  };
}

/**
 * One line per engine after the first: how far its losses are from the first
 * engine's ({@link lossDeviation}) over every step both ran.
 */
export function lossAgreement(ran: [string, { losses: number[] }][]): string[] {
  if (ran.length < 2) return [];
  const [refWho, ref] = ran[0];
  return ran.slice(1).map(([who, r]) =>
    `${who} vs ${refWho} losses over steps 1-${Math.min(r.losses.length, ref.losses.length)}: ` +
    `max relative deviation ${lossDeviation(r.losses, ref.losses).toExponential(1)}`
  );
}
