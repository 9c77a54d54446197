/**
 * The peer side of the side-by-side benchmarks: the same matmul and MLP
 * training step (bench/compare.ts), and the same conv2d, small CNN and
 * ResNet-18 training steps (bench/vision_compare.ts), in TensorFlow.js
 * (tfjs-core + tfjs-backend-webgpu 4.22.0; tfjs-layers for the CNNs) and
 * jax-js (0.1.25, WebGPU device), run in the same Deno process on the same
 * WebGPU adapter as our engine, plus {@link printTable} for the comparison.
 *
 * Loading under Deno 2.9 (no shims needed: Deno provides `navigator.gpu`, and
 * neither library touches `window`/`OffscreenCanvas` on the async paths used here):
 * - tfjs: `import "@tensorflow/tfjs-backend-webgpu"` registers the "webgpu"
 *   backend when `navigator.gpu` exists; then `setBackend("webgpu")`. tfjs-core's
 *   Node build (which Deno resolves) registers no gradients, and
 *   `@tensorflow/tfjs-core/dist/register_all_gradients` cannot be imported by
 *   Deno (extensionless ESM imports), so the `@tensorflow/tfjs` umbrella bundle,
 *   which inlines them, is imported for its side effect only. tfjs sees Deno's
 *   Node-compat `process` and runs with IS_NODE=true (harmless here).
 * - jax-js: `init("webgpu")` then `defaultDevice("webgpu")`. Under Deno only the
 *   async read-backs work (`dataSync` needs `OffscreenCanvas`), so every read is
 *   `await data()` / `blockUntilReady()`.
 *
 * Each library acquires its own GPUDevice on `navigator.gpu`'s default adapter.
 * Timings are medians of `reps` individually synchronised runs, after one
 * compile run and `WARMUP` more that are not counted.
 *
 * @module
 */

import {
  CHECK_STEPS,
  checkConvOutputs,
  checkMatmulRows,
  checkMlpLosses,
  type CnnProblem,
  cnnProblem,
  convFlops,
  convOutSize,
  type ConvProblem,
  convProblem,
  cpuMlpLosses,
  fcForNhwc,
  matmulOperands,
  median,
  type MlpProblem,
  mlpProblem,
  nchwToNhwc,
  oihwToHwio,
  type ResnetProblem,
  timeRuns,
} from "./peers_ref.ts";

/** Result of a matmul benchmark. */
export interface MatmulTiming {
  /** Median milliseconds per n×n @ n×n product, synchronised. */
  ms: number;
  /** Fastest timed run, for a sense of the noise. */
  minMs: number;
  /** 2n³ / median time. */
  gflops: number;
  /** Timed runs behind the median. */
  runs: number;
  /** Where the library says the product ran ("webgpu", or a fallback). */
  device: string;
  /** Largest error of the checked rows, relative to Σ|a·b|. */
  maxRelErr: number;
}

/** Result of an MLP training-step benchmark. */
export interface StepTiming {
  /** Median milliseconds per forward + backward + momentum-SGD update, synchronised. */
  ms: number;
  /** Fastest timed run, for a sense of the noise. */
  minMs: number;
  /** Timed runs behind the median. */
  runs: number;
  /** Where the library says the step ran. */
  device: string;
  /** Losses of the first steps (checked against the float64 CPU reference). */
  losses: number[];
}

// ---------------------------------------------------------------- TensorFlow.js

type Tf = typeof import("npm:@tensorflow/tfjs-core@4.22.0");
type Scalar = import("npm:@tensorflow/tfjs-core@4.22.0").Scalar;
let tfLoading: Promise<Tf> | null = null;

/** Loads tfjs-core with the WebGPU backend active (once); throws if WebGPU cannot be used. */
export function loadTfjs(): Promise<Tf> {
  tfLoading ??= (async () => {
    // deno-lint-ignore no-import-prefix -- deno.json's imports are owned elsewhere; peers are pinned inline
    const tf = await import("npm:@tensorflow/tfjs-core@4.22.0");
    // deno-lint-ignore no-import-prefix -- deno.json's imports are owned elsewhere; peers are pinned inline
    await import("npm:@tensorflow/tfjs-backend-webgpu@4.22.0");
    // Gradients only: tfjs-core's Node build ships none (see module doc).
    // deno-lint-ignore no-import-prefix -- deno.json's imports are owned elsewhere; peers are pinned inline
    await import("npm:@tensorflow/tfjs@4.22.0");
    if (!tf.findBackendFactory("webgpu")) {
      throw new Error("tfjs: the webgpu backend did not register (navigator.gpu missing?)");
    }
    if (!(await tf.setBackend("webgpu"))) {
      throw new Error("tfjs: setBackend('webgpu') failed (no adapter or device)");
    }
    await tf.ready();
    if (tf.getBackend() !== "webgpu") throw new Error(`tfjs: backend is ${tf.getBackend()}`);
    return tf;
  })();
  tfLoading.catch(() => (tfLoading = null));
  return tfLoading;
}

/**
 * tfjs n×n @ n×n f32 matmul. Each timed run is `matMul` plus a 1-element
 * slice read back (the read waits for the queue; a full read-back would add an
 * n²·4-byte copy to every run). Rows 0 and n−1 of the first product are
 * checked on the CPU.
 */
export async function tfjsMatmul(n: number, reps: number): Promise<MatmulTiming> {
  const tf = await loadTfjs();
  const { a: ah, b: bh } = matmulOperands(n);
  const a = tf.tensor2d(ah, [n, n]);
  const b = tf.tensor2d(bh, [n, n]);
  try {
    const c0 = tf.matMul(a, b); // compile run, also the checked one
    const maxRelErr = checkMatmulRows(ah, bh, (await c0.data()) as Float32Array, n);
    c0.dispose();
    const times = await timeRuns(reps, async () => {
      const c = tf.matMul(a, b);
      const corner = tf.slice(c, [n - 1, n - 1], [1, 1]);
      await corner.data();
      corner.dispose();
      c.dispose();
    });
    const ms = median(times);
    return {
      ms,
      minMs: Math.min(...times),
      gflops: (2 * n ** 3) / (ms * 1e6),
      runs: times.length,
      device: tf.getBackend(),
      maxRelErr,
    };
  } finally {
    a.dispose();
    b.dispose();
  }
}

/**
 * One tfjs training step of the MLP: `optimizer.minimize` with
 * `tf.train.momentum(0.1, 0.9)` and `tf.losses.softmaxCrossEntropy` on
 * `tf.oneHot(labels)`, synchronised by reading the returned loss (the update
 * kernels are recorded before it, so the read waits for them too).
 */
export async function tfjsMlpStep(
  reps: number,
  problem: MlpProblem = mlpProblem(),
): Promise<StepTiming> {
  const tf = await loadTfjs();
  const p = problem;
  const w1 = tf.variable(tf.tensor2d(p.w1, [p.inDim, p.hidden]), true, "peer_w1");
  const b1 = tf.variable(tf.tensor1d(p.b1), true, "peer_b1");
  const w2 = tf.variable(tf.tensor2d(p.w2, [p.hidden, p.classes]), true, "peer_w2");
  const b2 = tf.variable(tf.tensor1d(p.b2), true, "peer_b2");
  const x = tf.tensor2d(p.x, [p.batch, p.inDim]);
  const y = tf.tensor1d(p.y, "int32");
  const opt = tf.train.momentum(p.lr, p.momentum);
  const lossFn = () => {
    const h = tf.relu(tf.add(tf.matMul(x, w1), b1));
    const logits = tf.add(tf.matMul(h, w2), b2);
    return tf.losses.softmaxCrossEntropy(tf.oneHot(y, p.classes), logits) as Scalar;
  };
  const step = async (): Promise<number> => {
    const loss = opt.minimize(lossFn, true, [w1, b1, w2, b2]);
    if (!loss) throw new Error("tfjs: minimize returned no loss");
    const v = (await loss.data())[0];
    loss.dispose();
    return v;
  };
  try {
    const losses: number[] = [];
    for (let i = 0; i < CHECK_STEPS; i++) losses.push(await step()); // first one compiles
    checkMlpLosses("tfjs", losses, cpuMlpLosses(p, CHECK_STEPS));
    const times = await timeRuns(reps, async () => void (await step()));
    return {
      ms: median(times),
      minMs: Math.min(...times),
      runs: times.length,
      device: tf.getBackend(),
      losses,
    };
  } finally {
    opt.dispose();
    for (const t of [w1, b1, w2, b2, x, y]) t.dispose();
  }
}

// ---------------------------------------------------------------------- jax-js

type Jax = typeof import("npm:@jax-js/jax@0.1.25");
let jaxLoading: Promise<{ jax: Jax; device: string }> | null = null;

/**
 * Loads jax-js and makes WebGPU its default device (once). If WebGPU cannot be
 * initialised it falls back to jax-js's Wasm device, and `device` (also in
 * every result) says so.
 */
export function loadJax(): Promise<{ jax: Jax; device: string }> {
  jaxLoading ??= (async () => {
    // deno-lint-ignore no-import-prefix -- deno.json's imports are owned elsewhere; peers are pinned inline
    const jax = await import("npm:@jax-js/jax@0.1.25");
    const available = await jax.init("webgpu");
    const device = available.includes("webgpu") ? "webgpu" : "wasm";
    if (device === "wasm") await jax.init("wasm");
    jax.defaultDevice(device);
    return { jax, device };
  })();
  jaxLoading.catch(() => (jaxLoading = null));
  return jaxLoading;
}

/**
 * jax-js n×n @ n×n f32 matmul (`np.matmul`, eager; a `jit` wrapper times the
 * same on one op). Each timed run waits with `blockUntilReady()`, which
 * realises the whole product and waits on a mapped read-back. jax-js fuses
 * lazily, so the check reads the full product rather than a slice of it.
 */
export async function jaxMatmul(n: number, reps: number): Promise<MatmulTiming> {
  const { jax } = await loadJax();
  const np = jax.numpy;
  const { a: ah, b: bh } = matmulOperands(n);
  const a = np.array(ah).reshape([n, n]);
  const b = np.array(bh).reshape([n, n]);
  try {
    const c0 = np.matmul(a.ref, b.ref); // compile run, also the checked one
    const device = c0.device;
    const maxRelErr = checkMatmulRows(ah, bh, (await c0.data()) as Float32Array, n);
    const times = await timeRuns(reps, async () => {
      const c = np.matmul(a.ref, b.ref);
      await c.blockUntilReady();
      c.dispose();
    });
    const ms = median(times);
    return {
      ms,
      minMs: Math.min(...times),
      gflops: (2 * n ** 3) / (ms * 1e6),
      runs: times.length,
      device,
      maxRelErr,
    };
  } finally {
    a.dispose();
    b.dispose();
  }
}

/**
 * One jax-js training step of the MLP, the JAX way: a `jit`-compiled step that
 * takes `valueAndGrad` of the loss (`nn.logSoftmax` · `nn.oneHot(labels)`) and
 * applies the momentum update with `tree.map`, returning new params, velocity
 * and loss. Synchronised by `blockUntilReady` on the new params and reading
 * the loss.
 */
export async function jaxMlpStep(
  reps: number,
  problem: MlpProblem = mlpProblem(),
): Promise<StepTiming> {
  const { jax } = await loadJax();
  const { numpy: np, nn, tree } = jax;
  type A = InstanceType<Jax["Array"]>;
  type Params = { w1: A; b1: A; w2: A; b2: A };
  const p = problem;
  const scale = -1 / p.batch;
  const loss = (q: Params, x: A, y: A): A => {
    const h = nn.relu(np.dot(x, q.w1).add(q.b1));
    const logits = np.dot(h, q.w2).add(q.b2);
    return nn.logSoftmax(logits).mul(nn.oneHot(y, p.classes)).sum().mul(scale);
  };
  const step = jax.jit((q: Params, v: Params, x: A, y: A): [Params, Params, A] => {
    const [l, g] = jax.valueAndGrad(loss)(tree.ref(q), x, y);
    const v2 = tree.map((vi: A, gi: A) => vi.mul(p.momentum).add(gi), v, g) as Params;
    const q2 = tree.map((qi: A, vi: A) => qi.sub(vi.mul(p.lr)), q, tree.ref(v2)) as Params;
    return [q2, v2, l];
  });
  let params: Params = {
    w1: np.array(p.w1).reshape([p.inDim, p.hidden]),
    b1: np.array(p.b1),
    w2: np.array(p.w2).reshape([p.hidden, p.classes]),
    b2: np.array(p.b2),
  };
  let vel: Params = {
    w1: np.zeros([p.inDim, p.hidden]),
    b1: np.zeros([p.hidden]),
    w2: np.zeros([p.hidden, p.classes]),
    b2: np.zeros([p.classes]),
  };
  const x = np.array(p.x).reshape([p.batch, p.inDim]);
  const y = np.array(p.y, { dtype: np.int32 });
  const device = x.device;
  const run = async (): Promise<number> => {
    const [q2, v2, l] = step(params, vel, x.ref, y.ref);
    params = q2;
    vel = v2;
    await jax.blockUntilReady(params);
    return (await l.data())[0]; // data() consumes l
  };
  try {
    const losses: number[] = [];
    for (let i = 0; i < CHECK_STEPS; i++) losses.push(await run()); // first one compiles
    checkMlpLosses("jax-js", losses, cpuMlpLosses(p, CHECK_STEPS));
    const times = await timeRuns(reps, async () => void (await run()));
    return { ms: median(times), minMs: Math.min(...times), runs: times.length, device, losses };
  } finally {
    tree.dispose(params);
    tree.dispose(vel);
    x.dispose();
    y.dispose();
    step.dispose();
  }
}

// ---------------------------------------------------------------------- vision

/** Result of a conv2d forward benchmark. */
export interface ConvTiming {
  /** Median milliseconds per convolution, synchronised. */
  ms: number;
  /** Fastest timed run, for a sense of the noise. */
  minMs: number;
  /** 2·N·O·OH·OW·C·k² / median time. */
  gflops: number;
  /** Timed runs behind the median. */
  runs: number;
  /** Where the library says the convolution ran. */
  device: string;
  /** Image layout the engine ran in ("NCHW" or "NHWC"). */
  layout: string;
  /** Largest error of the checked outputs, relative to Σ|x·w|. */
  maxRelErr: number;
}

/**
 * Result of a CNN training-step benchmark. `losses` holds the loss of every
 * step run, in order (checked ones, warm-up and timed), so engines that start
 * from the same weights can be compared step by step.
 */
export interface VisionStepTiming extends StepTiming {
  /** Leading steps whose losses were checked before timing. */
  checkedSteps: number;
  /** Trainable parameters of the engine's model. */
  params: number;
  /** How the engine's model was built. */
  build: string;
}

/**
 * The {@link VisionStepTiming} of a training run ({@link timeTraining}'s losses
 * and timed milliseconds): median and fastest timed step, with what ran it.
 */
export function stepTiming(
  { losses, times }: { losses: number[]; times: number[] },
  checkedSteps: number,
  about: { device: string; params: number; build: string },
): VisionStepTiming {
  return {
    ms: median(times),
    minMs: Math.min(...times),
    runs: times.length,
    device: about.device,
    losses,
    checkedSteps,
    params: about.params,
    build: about.build,
  };
}

/** Checks the first training losses of an engine before anything is timed; throws on a mismatch. */
export type LossCheck = (losses: number[]) => void;

type TfAll = typeof import("npm:@tensorflow/tfjs@4.22.0");
type TfTensor = import("npm:@tensorflow/tfjs@4.22.0").Tensor;
type TfSymbolic = import("npm:@tensorflow/tfjs@4.22.0").SymbolicTensor;
type TfLayer = import("npm:@tensorflow/tfjs@4.22.0").layers.Layer;

/**
 * The `@tensorflow/tfjs` umbrella module (tfjs-layers included) on the same
 * engine as {@link loadTfjs}, with the WebGPU backend active.
 */
export async function loadTfjsLayers(): Promise<TfAll> {
  await loadTfjs();
  // deno-lint-ignore no-import-prefix -- deno.json's imports are owned elsewhere; peers are pinned inline
  const tf = await import("npm:@tensorflow/tfjs@4.22.0");
  if (tf.getBackend() !== "webgpu") throw new Error(`tfjs: backend is ${tf.getBackend()}`);
  return tf;
}

/**
 * tfjs conv2d forward in its native NHWC layout (`tf.conv2d` with an HWIO
 * filter and `"same"` padding, which for stride 1 and an odd kernel is the
 * problem's symmetric padding): the same FLOPs as NCHW. Each timed run reads
 * one output element back through a slice; the first output is checked.
 */
export async function tfjsConv(reps: number, p: ConvProblem = convProblem()): Promise<ConvTiming> {
  const tf = await loadTfjs();
  if (2 * p.pad !== p.k - 1) throw new Error("tfjsConv: only 'same'-padded problems");
  const [OH, OW] = convOutSize(p);
  const x = tf.tensor4d(nchwToNhwc(p.x, [p.N, p.C, p.H, p.W]), [p.N, p.H, p.W, p.C]);
  const w = tf.tensor4d(oihwToHwio(p.w, [p.O, p.C, p.k, p.k]), [p.k, p.k, p.C, p.O]);
  try {
    const c0 = tf.conv2d(x, w, 1, "same"); // compile run, also the checked one
    const maxRelErr = checkConvOutputs(p, (await c0.data()) as Float32Array, "nhwc");
    c0.dispose();
    const times = await timeRuns(reps, async () => {
      const c = tf.conv2d(x, w, 1, "same");
      const corner = tf.slice(c, [p.N - 1, OH - 1, OW - 1, p.O - 1], [1, 1, 1, 1]);
      await corner.data();
      corner.dispose();
      c.dispose();
    });
    const ms = median(times);
    return {
      ms,
      minMs: Math.min(...times),
      gflops: convFlops(p) / (ms * 1e6),
      runs: times.length,
      device: tf.getBackend(),
      layout: "NHWC",
      maxRelErr,
    };
  } finally {
    x.dispose();
    w.dispose();
  }
}

/**
 * jax-js conv2d forward, NCHW with an OIHW kernel (`lax.conv`, eager, as
 * {@link jaxMatmul}), each timed run waited for with `blockUntilReady()`.
 */
export async function jaxConv(reps: number, p: ConvProblem = convProblem()): Promise<ConvTiming> {
  const { jax } = await loadJax();
  const np = jax.numpy;
  const x = np.array(p.x).reshape([p.N, p.C, p.H, p.W]);
  const w = np.array(p.w).reshape([p.O, p.C, p.k, p.k]);
  const pad: [number, number][] = [[p.pad, p.pad], [p.pad, p.pad]];
  try {
    const c0 = jax.lax.conv(x.ref, w.ref, [1, 1], pad); // compile run, also the checked one
    const device = c0.device;
    const maxRelErr = checkConvOutputs(p, (await c0.data()) as Float32Array, "nchw");
    const times = await timeRuns(reps, async () => {
      const c = jax.lax.conv(x.ref, w.ref, [1, 1], pad);
      await c.blockUntilReady();
      c.dispose();
    });
    const ms = median(times);
    return {
      ms,
      minMs: Math.min(...times),
      gflops: convFlops(p) / (ms * 1e6),
      runs: times.length,
      device,
      layout: "NCHW",
      maxRelErr,
    };
  } finally {
    x.dispose();
    w.dispose();
  }
}

/** Number of values in the trainable weights of a tfjs-layers model. */
function tfjsTrainable(model: { trainableWeights: { shape: (number | null)[] }[] }): number {
  return model.trainableWeights.reduce(
    (n, v) => n + v.shape.reduce<number>((a, b) => a * (b ?? 1), 1),
    0,
  );
}

/**
 * The training benchmark loop shared by every engine's vision step:
 * `checkSteps` steps whose losses go to `check` (the first one compiles),
 * then `reps` timed ones after `warmup` untimed ones. Returns the loss of
 * every step and the timed milliseconds.
 */
export async function timeTraining(
  step: () => Promise<number>,
  reps: number,
  { warmup, checkSteps, check, budgetMs }: TrainingProtocol,
): Promise<{ losses: number[]; times: number[] }> {
  const losses: number[] = [];
  const logged = async () => {
    const t0 = performance.now();
    const loss = await step();
    losses.push(loss);
    trainingProgress?.(losses.length, performance.now() - t0, loss);
  };
  for (let i = 0; i < checkSteps; i++) await logged();
  check?.(losses);
  const times = await timeRuns(reps, logged, warmup, budgetMs);
  return { losses, times };
}

/** How {@link timeTraining} runs an engine's steps. */
export interface TrainingProtocol {
  /** Untimed steps between the checked ones and the timed ones. */
  warmup: number;
  /** Leading steps whose losses go to `check` (the first one compiles). */
  checkSteps: number;
  /** Throws if the checked losses are wrong. */
  check?: LossCheck;
  /** Stop timing after this many timed milliseconds (at least one step is timed). */
  budgetMs?: number;
}

let trainingProgress: ((step: number, ms: number, loss: number) => void) | null = null;

/**
 * Receives every step {@link timeTraining} runs (1-based step, milliseconds
 * including the loss read-back, loss), or nothing with `null`: progress for
 * the slow ResNet steps.
 */
export function onTrainingStep(f: ((step: number, ms: number, loss: number) => void) | null): void {
  trainingProgress = f;
}

/** Untimed steps and checked steps of the CNN benchmark (fast: the MLP's protocol). */
export const CNN_PROTOCOL = { warmup: 2, checkSteps: CHECK_STEPS } as const;
/**
 * The same for ResNet-18, whose steps take seconds (ours) to minutes (peers)
 * on llvmpipe: step 1 compiles, step 2 (the first with a momentum buffer to
 * read) warms the rest up, and both are checked; timing starts at step 3 and
 * stops early once the timed steps add up to 4 minutes.
 */
export const RESNET_PROTOCOL = { warmup: 0, checkSteps: 2, budgetMs: 240_000 } as const;

/**
 * The CNN step in tfjs, as a tfjs user writes it: a `tf.sequential` of
 * `conv2d` (ReLU activation, `"same"` padding) and `maxPooling2d` layers in
 * NHWC, `flatten` and `dense`, compiled with `tf.train.momentum` and a
 * `softmaxCrossEntropy` loss on one-hot labels, stepped with `trainOnBatch`
 * (which resolves once the loss is read back). The problem's weights are
 * loaded with `setWeights` (filters as HWIO, the dense kernel permuted for
 * the NHWC flatten), so the first loss is the CPU reference's.
 */
export async function tfjsCnnStep(
  reps: number,
  check?: LossCheck,
  p: CnnProblem = cnnProblem(),
): Promise<VisionStepTiming> {
  const tf = await loadTfjsLayers();
  const S = p.size;
  const model = tf.sequential();
  const convLayers: TfLayer[] = [];
  for (const [i, c] of p.convs.entries()) {
    const layer = tf.layers.conv2d({
      filters: c.outC,
      kernelSize: 3,
      padding: "same",
      activation: "relu",
      ...(i === 0 ? { inputShape: [S, S, c.inC] } : {}),
    });
    model.add(layer);
    model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
    convLayers.push(layer);
  }
  model.add(tf.layers.flatten());
  const fc = tf.layers.dense({ units: p.classes });
  model.add(fc);
  const load = (layer: TfLayer, ws: TfTensor[]) => {
    layer.setWeights(ws);
    for (const w of ws) w.dispose();
  };
  for (const [i, c] of p.convs.entries()) {
    load(convLayers[i], [
      tf.tensor4d(oihwToHwio(c.w, [c.outC, c.inC, 3, 3]), [3, 3, c.inC, c.outC]),
      tf.tensor1d(c.b),
    ]);
  }
  const last = p.convs[p.convs.length - 1].outC;
  const T = S / 8;
  load(fc, [
    tf.tensor2d(fcForNhwc(p.fcW, p.classes, [last, T, T]), [last * T * T, p.classes]),
    tf.tensor1d(p.fcB),
  ]);
  const opt = tf.train.momentum(p.lr, p.momentum);
  model.compile({
    optimizer: opt,
    loss: (yTrue: TfTensor, yPred: TfTensor) => tf.losses.softmaxCrossEntropy(yTrue, yPred),
  });
  const x = tf.tensor4d(nchwToNhwc(p.x, [p.batch, 3, S, S]), [p.batch, S, S, 3]);
  const labels = tf.tensor1d(p.y, "int32");
  const y = tf.tidy(() => tf.cast(tf.oneHot(labels, p.classes), "float32"));
  labels.dispose();
  const step = async () => Number(await model.trainOnBatch(x, y));
  try {
    return stepTiming(
      await timeTraining(step, reps, { ...CNN_PROTOCOL, check }),
      CNN_PROTOCOL.checkSteps,
      {
        device: tf.getBackend(),
        params: tfjsTrainable(model),
        build: "tf.sequential (conv2d+relu, maxPooling2d, flatten, dense), NHWC, trainOnBatch",
      },
    );
  } finally {
    x.dispose();
    y.dispose();
    model.dispose();
    opt.dispose();
  }
}

/**
 * The CNN step in jax-js: a pure function of a parameter tree (`lax.conv`
 * NCHW/OIHW plus bias, `nn.relu`, 2×2 max pooling as a reshape to
 * `[N, C, H/2, 2, W/2, 2]` and a max over the two window axes, `np.dot` for
 * the linear layer), `jit` of `valueAndGrad` and the momentum update, as
 * {@link jaxMlpStep}.
 */
export async function jaxCnnStep(
  reps: number,
  check?: LossCheck,
  p: CnnProblem = cnnProblem(),
): Promise<VisionStepTiming> {
  const { jax } = await loadJax();
  const { numpy: np, nn, tree, lax } = jax;
  type A = InstanceType<Jax["Array"]>;
  type Params = Record<string, A>;
  const pad: [number, number][] = [[1, 1], [1, 1]];
  const pool = (h: A): A => {
    const [n, c, hh, ww] = h.shape;
    return np.max(h.reshape([n, c, hh / 2, 2, ww / 2, 2]), [3, 5]);
  };
  const loss = (q: Params, x: A, y: A): A => {
    let h = x;
    for (let i = 0; i < p.convs.length; i++) {
      const c = lax.conv(h, q[`c${i}w`], [1, 1], pad).add(q[`c${i}b`].reshape([1, -1, 1, 1]));
      h = pool(nn.relu(c));
    }
    const logits = np.dot(h.reshape([p.batch, -1]), q.fcw).add(q.fcb);
    return nn.logSoftmax(logits).mul(nn.oneHot(y, p.classes)).sum().mul(-1 / p.batch);
  };
  const step = jax.jit((q: Params, v: Params, x: A, y: A): [Params, Params, A] => {
    const [l, g] = jax.valueAndGrad(loss)(tree.ref(q), x, y);
    const v2 = tree.map((vi: A, gi: A) => vi.mul(p.momentum).add(gi), v, g) as Params;
    const q2 = tree.map((qi: A, vi: A) => qi.sub(vi.mul(p.lr)), q, tree.ref(v2)) as Params;
    return [q2, v2, l];
  });
  let params: Params = {};
  for (const [i, c] of p.convs.entries()) {
    params[`c${i}w`] = np.array(c.w).reshape([c.outC, c.inC, 3, 3]);
    params[`c${i}b`] = np.array(c.b);
  }
  const feat = p.fcW.length / p.classes;
  params.fcw = np.array(transposed(p.fcW, p.classes, feat)).reshape([feat, p.classes]);
  params.fcb = np.array(p.fcB);
  let vel = tree.map((a: A) => np.zerosLike(a), tree.ref(params)) as Params;
  const x = np.array(p.x).reshape([p.batch, 3, p.size, p.size]);
  const y = np.array(p.y, { dtype: np.int32 });
  const device = x.device;
  const count = Object.values(params).reduce((n, a) => n + a.size, 0);
  const run = async (): Promise<number> => {
    const [q2, v2, l] = step(params, vel, x.ref, y.ref);
    params = q2;
    vel = v2;
    await jax.blockUntilReady(params);
    return (await l.data())[0]; // data() consumes l
  };
  try {
    return stepTiming(
      await timeTraining(run, reps, { ...CNN_PROTOCOL, check }),
      CNN_PROTOCOL.checkSteps,
      {
        device,
        params: count,
        build: "jit(valueAndGrad) of lax.conv + nn.relu + reshape-max pooling + np.dot",
      },
    );
  } finally {
    tree.dispose(params);
    tree.dispose(vel);
    x.dispose();
    y.dispose();
    step.dispose();
  }
}

/** Row-major `[rows, cols]` → `[cols, rows]`. */
function transposed(src: Float32Array, rows: number, cols: number): Float32Array<ArrayBuffer> {
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) out[j * rows + i] = src[i * cols + j];
  }
  return out;
}

/**
 * The ResNet-18 (CIFAR stem) step in tfjs: a functional `tf.model` of
 * tfjs-layers in NHWC, laid out as torchvision's BasicBlock network: `conv2d`
 * without bias, `batchNormalization` (ε 1e-5, moving averages with Keras
 * momentum 0.9 = PyTorch's 0.1), `reLU`, `add`, `globalAveragePooling2d`,
 * `dense`. A 3×3 stride-1 conv uses `"same"` padding (1 on each side); a 3×3
 * stride-2 conv gets `zeroPadding2d(1)` and `"valid"`, because TensorFlow's
 * `"same"` at stride 2 pads only bottom/right and would sample other pixels
 * than PyTorch's padding 1. Weights come from the problem (`setWeights`),
 * compiled with `tf.train.momentum` and `softmaxCrossEntropy`, stepped with
 * `trainOnBatch` (BatchNorm in training mode, moving statistics updated).
 */
export async function tfjsResnetStep(
  reps: number,
  p: ResnetProblem,
  check?: LossCheck,
): Promise<VisionStepTiming> {
  const tf = await loadTfjsLayers();
  const S = p.size;
  const P = p.params;
  const loads: [TfLayer, TfTensor[]][] = [];
  const tfName = (name: string) => `resnet_${name.replaceAll(".", "_")}`;
  const conv = (name: string, h: TfSymbolic, stride: number): TfSymbolic => {
    const [O, I, k] = P[`${name}.weight`].shape;
    const pad = (k - 1) / 2;
    let z = h;
    if (pad > 0 && stride !== 1) {
      z = tf.layers.zeroPadding2d({ padding: pad }).apply(z) as TfSymbolic;
    }
    const layer = tf.layers.conv2d({
      filters: O,
      kernelSize: k,
      strides: stride,
      padding: pad > 0 && stride === 1 ? "same" : "valid",
      useBias: false,
      name: tfName(name),
    });
    loads.push([layer, [
      tf.tensor4d(oihwToHwio(P[`${name}.weight`].data, [O, I, k, k]), [k, k, I, O]),
    ]]);
    return layer.apply(z) as TfSymbolic;
  };
  const bn = (name: string, h: TfSymbolic): TfSymbolic => {
    const C = P[`${name}.weight`].shape[0];
    const layer = tf.layers.batchNormalization({
      axis: -1,
      momentum: 0.9,
      epsilon: p.eps,
      name: tfName(name),
    });
    loads.push([layer, [
      tf.tensor1d(P[`${name}.weight`].data),
      tf.tensor1d(P[`${name}.bias`].data),
      tf.zeros([C]),
      tf.ones([C]),
    ]]);
    return layer.apply(h) as TfSymbolic;
  };
  const relu = (h: TfSymbolic) => tf.layers.reLU().apply(h) as TfSymbolic;
  const input = tf.input({ shape: [S, S, 3] });
  let h = relu(bn("bn1", conv("conv1", input, 1)));
  for (const b of p.blocks) {
    let out = relu(bn(`${b.prefix}.bn1`, conv(`${b.prefix}.conv1`, h, b.stride)));
    out = bn(`${b.prefix}.bn2`, conv(`${b.prefix}.conv2`, out, 1));
    const shortcut = b.downsample
      ? bn(`${b.prefix}.downsample.1`, conv(`${b.prefix}.downsample.0`, h, b.stride))
      : h;
    h = relu(tf.layers.add().apply([out, shortcut]) as TfSymbolic);
  }
  const pooled = tf.layers.globalAveragePooling2d({}).apply(h) as TfSymbolic;
  const fc = tf.layers.dense({ units: p.classes, name: tfName("fc") });
  const [F] = [P["fc.weight"].shape[1]];
  loads.push([fc, [
    tf.tensor2d(transposed(P["fc.weight"].data, p.classes, F), [F, p.classes]),
    tf.tensor1d(P["fc.bias"].data),
  ]]);
  const model = tf.model({ inputs: input, outputs: fc.apply(pooled) as TfSymbolic });
  for (const [layer, ws] of loads) {
    layer.setWeights(ws);
    for (const w of ws) w.dispose();
  }
  const opt = tf.train.momentum(p.lr, p.momentum);
  model.compile({
    optimizer: opt,
    loss: (yTrue: TfTensor, yPred: TfTensor) => tf.losses.softmaxCrossEntropy(yTrue, yPred),
  });
  const x = tf.tensor4d(nchwToNhwc(p.x, [p.batch, 3, S, S]), [p.batch, S, S, 3]);
  const labels = tf.tensor1d(p.y, "int32");
  const y = tf.tidy(() => tf.cast(tf.oneHot(labels, p.classes), "float32"));
  labels.dispose();
  const step = async () => Number(await model.trainOnBatch(x, y));
  try {
    return stepTiming(
      await timeTraining(step, reps, { ...RESNET_PROTOCOL, check }),
      RESNET_PROTOCOL.checkSteps,
      {
        device: tf.getBackend(),
        params: tfjsTrainable(model),
        build:
          "tf.model of tfjs-layers (conv2d, batchNormalization, reLU, add), NHWC, trainOnBatch",
      },
    );
  } finally {
    x.dispose();
    y.dispose();
    model.dispose();
    opt.dispose();
  }
}

/**
 * The ResNet-18 (CIFAR stem) step in jax-js: a pure function of the
 * parameter tree (torchvision names) and the BatchNorm running statistics,
 * NCHW: `lax.conv` with explicit padding, BatchNorm written out with batch
 * mean and biased variance over (N, H, W) (the running statistics, PyTorch's
 * momentum 0.1 and unbiased variance, come back as `valueAndGrad`'s aux),
 * `nn.relu`, a mean over (H, W) and `np.dot`; `jit` of `valueAndGrad` and the
 * momentum update.
 */
export async function jaxResnetStep(
  reps: number,
  p: ResnetProblem,
  check?: LossCheck,
): Promise<VisionStepTiming> {
  const { jax } = await loadJax();
  const { numpy: np, nn, tree, lax } = jax;
  type A = InstanceType<Jax["Array"]>;
  type Params = Record<string, A>;
  const bnMomentum = 0.1;
  const loss = (q: Params, s: Params, x: A, y: A): [A, Params] => {
    const stats: Params = {};
    const conv = (name: string, h: A, stride: number): A => {
      const w = q[`${name}.weight`];
      const pad = (w.shape[2] - 1) / 2;
      return lax.conv(h, w, [stride, stride], [[pad, pad], [pad, pad]]);
    };
    const bn = (name: string, h: A): A => {
      const [n, c, hh, ww] = h.shape;
      const m = n * hh * ww;
      const mean = np.mean(h.ref, [0, 2, 3], { keepdims: true });
      const xc = h.sub(mean.ref);
      const v = np.mean(np.square(xc.ref), [0, 2, 3], { keepdims: true });
      const inv = np.reciprocal(np.sqrt(v.ref.add(p.eps)));
      const out = xc.mul(inv).mul(q[`${name}.weight`].reshape([1, c, 1, 1]))
        .add(q[`${name}.bias`].reshape([1, c, 1, 1]));
      const rm = `${name}.running_mean`, rv = `${name}.running_var`;
      stats[rm] = s[rm].mul(1 - bnMomentum)
        .add(lax.stopGradient(mean).reshape([c]).mul(bnMomentum));
      stats[rv] = s[rv].mul(1 - bnMomentum)
        .add(lax.stopGradient(v).reshape([c]).mul(bnMomentum * m / (m - 1)));
      return out;
    };
    let h = nn.relu(bn("bn1", conv("conv1", x, 1)));
    for (const b of p.blocks) {
      let out = nn.relu(bn(`${b.prefix}.bn1`, conv(`${b.prefix}.conv1`, h.ref, b.stride)));
      out = bn(`${b.prefix}.bn2`, conv(`${b.prefix}.conv2`, out, 1));
      const shortcut = b.downsample
        ? bn(`${b.prefix}.downsample.1`, conv(`${b.prefix}.downsample.0`, h, b.stride))
        : h;
      h = nn.relu(out.add(shortcut));
    }
    const pooled = np.mean(h, [2, 3]);
    const logits = np.dot(pooled, q["fc.weight"]).add(q["fc.bias"]);
    const l = nn.logSoftmax(logits).mul(nn.oneHot(y, p.classes)).sum().mul(-1 / p.batch);
    return [l, stats];
  };
  const step = jax.jit(
    (q: Params, v: Params, s: Params, x: A, y: A): [Params, Params, Params, A] => {
      const [[l, s2], g] = jax.valueAndGrad(loss, { hasAux: true })(tree.ref(q), s, x, y);
      const v2 = tree.map((vi: A, gi: A) => vi.mul(p.momentum).add(gi), v, g) as Params;
      const q2 = tree.map((qi: A, vi: A) => qi.sub(vi.mul(p.lr)), q, tree.ref(v2)) as Params;
      return [q2, v2, s2, l];
    },
  );
  let params: Params = {};
  let stats: Params = {};
  let count = 0;
  for (const [name, t] of Object.entries(p.params)) {
    count += t.data.length;
    params[name] = name === "fc.weight"
      ? np.array(transposed(t.data, t.shape[0], t.shape[1])).reshape([t.shape[1], t.shape[0]])
      : np.array(t.data).reshape(t.shape);
    if (name.endsWith(".bias") && t.shape.length === 1 && name !== "fc.bias") {
      const bnName = name.slice(0, -".bias".length);
      stats[`${bnName}.running_mean`] = np.zeros([t.shape[0]]);
      stats[`${bnName}.running_var`] = np.ones([t.shape[0]]);
    }
  }
  let vel = tree.map((a: A) => np.zerosLike(a), tree.ref(params)) as Params;
  const x = np.array(p.x).reshape([p.batch, 3, p.size, p.size]);
  const y = np.array(p.y, { dtype: np.int32 });
  const device = x.device;
  const run = async (): Promise<number> => {
    const [q2, v2, s2, l] = step(params, vel, stats, x.ref, y.ref);
    params = q2;
    vel = v2;
    stats = s2;
    await jax.blockUntilReady(params);
    return (await l.data())[0]; // data() consumes l
  };
  try {
    return stepTiming(
      await timeTraining(run, reps, { ...RESNET_PROTOCOL, check }),
      RESNET_PROTOCOL.checkSteps,
      {
        device,
        params: count,
        build: "jit(valueAndGrad) of lax.conv + hand-written batch norm + nn.relu + np.dot",
      },
    );
  } finally {
    tree.dispose(params);
    tree.dispose(vel);
    tree.dispose(stats);
    x.dispose();
    y.dispose();
    step.dispose();
  }
}

// ----------------------------------------------------------------------- table

/** A value, an error message for an engine that failed, or nothing. */
export type Cell = number | string | undefined;

/** One benchmark line: a value per engine (string = error), in `unit`. */
export interface Row {
  name: string;
  unit: string;
  ours?: Cell;
  tfjs?: Cell;
  jax?: Cell;
  /** Overrides the direction read from `unit` (GFLOP/s, …/s: higher; ms, s: lower). */
  higherIsBetter?: boolean;
}

function higherIsBetter(row: Row): boolean {
  if (row.higherIsBetter !== undefined) return row.higherIsBetter;
  return /\/s\b|per s|flop/i.test(row.unit) && !/^(ms|s|us|µs)\b/i.test(row.unit);
}

function fmt(v: number): string {
  const a = Math.abs(v);
  return a >= 1000 ? v.toFixed(0) : v.toPrecision(3);
}

/** Speed-up of ours over a peer (> 1: ours is faster), or a dash. */
function speedup(row: Row, ours: Cell, peer: Cell): string {
  if (typeof ours !== "number" || typeof peer !== "number" || !(ours > 0) || !(peer > 0)) {
    return "—";
  }
  const s = higherIsBetter(row) ? ours / peer : peer / ours;
  return `${s.toFixed(2)}×`;
}

/**
 * Prints (and returns) a markdown table: one column per engine and the
 * speed-up of ours over each peer (ours/peer for throughput units, peer/ours
 * for times, so > 1 always means ours is faster). Missing values print as "—";
 * error strings print shortened in the cell and in full as notes below.
 */
export function printTable(rows: Row[]): string {
  const notes: string[] = [];
  const cell = (v: Cell): string => {
    if (v === undefined) return "—";
    if (typeof v === "number") return Number.isFinite(v) ? fmt(v) : String(v);
    notes.push(v);
    const short = v.replace(/\s+/g, " ").replace(/\|/g, "\\|");
    return `error [${notes.length}]: ${short.length > 48 ? short.slice(0, 47) + "…" : short}`;
  };
  const head = ["benchmark", "unit", "ours", "tfjs", "jax-js", "ours vs tfjs", "ours vs jax-js"];
  const lines = [
    `| ${head.join(" | ")} |`,
    `| ${head.map((_, i) => (i < 2 ? "---" : "---:")).join(" | ")} |`,
  ];
  for (const r of rows) {
    const dir = higherIsBetter(r) ? "higher is better" : "lower is better";
    lines.push(
      `| ${r.name} | ${r.unit} (${dir}) | ${cell(r.ours)} | ${cell(r.tfjs)} | ${cell(r.jax)} | ` +
        `${speedup(r, r.ours, r.tfjs)} | ${speedup(r, r.ours, r.jax)} |`,
    );
  }
  let out = lines.join("\n");
  out += "\n\nSpeed-up columns: > 1× means ours is faster (GFLOP/s: ours/peer; ms: peer/ours).";
  if (notes.length) {
    out += "\n\n" + notes.map((n, i) => `[${i + 1}] ${n.replace(/\n/g, "\n    ")}`).join("\n");
  }
  console.log(out);
  return out;
}

// ------------------------------------------------------------------ row driver

/** Matmul sizes and timed runs per size used by default (kept small for llvmpipe). */
export const DEFAULT_MATMUL: ReadonlyArray<{ n: number; reps: number }> = [
  { n: 256, reps: 15 },
  { n: 512, reps: 7 },
  { n: 1024, reps: 5 },
];

/** Runs `f`, turning a failure into the row's error string; `detail` describes a success. */
export async function attempt<T>(
  f: () => Promise<T>,
  pick: (t: T) => number,
  detail?: (t: T) => void,
): Promise<Cell> {
  try {
    const r = await f();
    detail?.(r);
    return pick(r);
  } catch (e) {
    return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  }
}

/**
 * Runs every peer benchmark and returns table rows with the `ours` column
 * empty, for a caller to fill. A peer that fails puts its error in its cell;
 * nothing here throws. `log` receives progress and per-result details.
 */
export async function peerRows(opts: {
  matmul?: ReadonlyArray<{ n: number; reps: number }>;
  mlpReps?: number;
  log?: (msg: string) => void;
} = {}): Promise<Row[]> {
  const log = opts.log ?? (() => {});
  const mm = (who: string, n: number) => (r: MatmulTiming) =>
    log(
      `${who} matmul ${n}: median ${r.ms.toFixed(1)} ms (min ${
        r.minMs.toFixed(1)
      }, ${r.runs} runs) ` +
        `= ${r.gflops.toPrecision(3)} GFLOP/s on ${r.device}; rows 0,${n - 1} max rel err ` +
        r.maxRelErr.toExponential(1),
    );
  const st = (who: string) => (r: StepTiming) =>
    log(
      `${who} MLP step: median ${r.ms.toFixed(1)} ms (min ${r.minMs.toFixed(1)}, ${r.runs} runs) ` +
        `on ${r.device}; first losses [${
          r.losses.map((v) => v.toFixed(5))
        }] match the CPU reference`,
    );
  const rows: Row[] = [];
  for (const { n, reps } of opts.matmul ?? DEFAULT_MATMUL) {
    const tfjs = await attempt(() => tfjsMatmul(n, reps), (r) => r.gflops, mm("tfjs", n));
    const jax = await attempt(() => jaxMatmul(n, reps), (r) => r.gflops, mm("jax-js", n));
    rows.push({ name: `matmul ${n}×${n}×${n} f32`, unit: "GFLOP/s", tfjs, jax });
  }
  const mlpReps = opts.mlpReps ?? 15;
  const tfjs = await attempt(() => tfjsMlpStep(mlpReps), (r) => r.ms, st("tfjs"));
  const jax = await attempt(() => jaxMlpStep(mlpReps), (r) => r.ms, st("jax-js"));
  rows.push({ name: "MLP 784-128-10 train step, batch 64", unit: "ms", tfjs, jax });
  return rows;
}

/** The machine's load average (Linux), printed with every comparison: the CPUs are shared. */
export function loadavg(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").trim();
  } catch {
    return "unavailable";
  }
}

/**
 * Prints the header every comparison run starts with (adapter, date, Deno,
 * load) and loads both peers, reporting a peer that fails instead of stopping.
 */
export async function startComparison(
  adapter: string,
  quick: boolean,
): Promise<{ startedAt: Date; loadStart: string; adapter: string }> {
  const startedAt = new Date();
  const loadStart = loadavg();
  console.log(`adapter: ${adapter}`);
  console.log(`date: ${startedAt.toISOString()}`);
  console.log(`deno ${Deno.version.deno}, ${quick ? "quick" : "full"} run`);
  console.log(`load average at start: ${loadStart}`);
  for (const [who, load] of [["tfjs", loadTfjs], ["jax-js", loadJax]] as const) {
    try {
      await load();
      console.log(`${who} loaded`);
    } catch (e) {
      console.log(`${who} failed to load: ${e}`);
    }
  }
  return { startedAt, loadStart, adapter };
}

/**
 * The closing of a comparison run ({@link startComparison} opens it): prints
 * the seconds since `t0` and the load average, then the table of `rows`; with
 * `json`, writes the report (run header, `extra` fields, rows, per-engine
 * details and the table) there.
 */
export async function finishComparison(opts: {
  /** What {@link startComparison} returned. */
  start: { startedAt: Date; loadStart: string; adapter: string };
  /** Whether it was a `--quick` run. */
  quick: boolean;
  /** `performance.now()` when the measurements began. */
  t0: number;
  /** What the medians are of: "runs" or "steps". */
  timed: string;
  /** The table rows. */
  rows: Row[];
  /** Per-row, per-engine timings for the report. */
  details: unknown;
  /** Report path (`--json`), if any. */
  json?: string;
  /** Fields of the report between `seconds` and `rows`. */
  extra?: Record<string, unknown>;
}): Promise<void> {
  const seconds = (performance.now() - opts.t0) / 1000;
  const loadEnd = loadavg();
  console.log(
    `\n(finished in ${seconds.toFixed(1)} s; medians of synchronised ${opts.timed} after warm-up)`,
  );
  console.log(`load average at end: ${loadEnd}\n`);
  const table = printTable(opts.rows);
  if (opts.json) {
    const report = {
      date: opts.start.startedAt.toISOString(),
      adapter: opts.start.adapter,
      deno: Deno.version.deno,
      quick: opts.quick,
      loadavg: { start: opts.start.loadStart, end: loadEnd },
      seconds,
      ...opts.extra,
      rows: opts.rows,
      details: opts.details,
      table,
    };
    await Deno.writeTextFile(opts.json, JSON.stringify(report, null, 2) + "\n");
    console.log(`\nwrote ${opts.json}`);
  }
}
