/**
 * The peer side of the side-by-side benchmarks: the same matmul and MLP
 * training step in TensorFlow.js (tfjs-core + tfjs-backend-webgpu 4.22.0) and
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
  checkMatmulRows,
  checkMlpLosses,
  cpuMlpLosses,
  matmulOperands,
  median,
  type MlpProblem,
  mlpProblem,
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
