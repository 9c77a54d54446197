/**
 * Side-by-side benchmark of our engine against TensorFlow.js (WebGPU) and
 * jax-js (WebGPU), in one process on the same adapter: f32 matmul n×n @ n×n
 * for n = 256, 512, 1024, and one training step of the 784→128→10 ReLU MLP
 * (batch 64, mean cross-entropy, SGD with momentum 0.9 and lr 0.1).
 *
 * ```sh
 * deno task compare [--quick] [--json runs/compare.json]
 * ```
 *
 * Every engine gets the same operands ({@link matmulOperands}) and the same
 * initial MLP ({@link mlpProblem}); our products are checked with
 * {@link checkMatmulRows} and our first three losses with
 * {@link checkMlpLosses}, as the peers' are. Rows are interleaved (ours, tfjs,
 * jax-js back-to-back for each size) so that a change in machine load hits
 * every engine of a row alike. Each timed run includes GPU completion: a
 * matmul run reads one element of its product back, and a training step reads
 * its loss back, the same synchronisation the peers use.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { keep, matmul, nn, optim, scope, type Tensor, tensor } from "../mod.ts";
import { gpu } from "../engine/device.ts";
import { flushErrors, readBuffer } from "../engine/dispatch.ts";
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
import {
  attempt,
  DEFAULT_MATMUL,
  finishComparison,
  jaxMatmul,
  jaxMlpStep,
  type MatmulTiming,
  type Row,
  startComparison,
  type StepTiming,
  tfjsMatmul,
  tfjsMlpStep,
} from "./peers.ts";

/**
 * Our n×n @ n×n f32 matmul. Each timed run records a fresh product and reads
 * its last element back (the read is queued after the product, so it resolves
 * only once the product is done), then frees it. The compile run's rows 0 and
 * n−1 are checked on the CPU, and so is the last timed product, after timing.
 */
export async function oursMatmul(n: number, reps: number): Promise<MatmulTiming> {
  const { a: ah, b: bh } = matmulOperands(n);
  const a = keep(tensor(ah, { shape: [n, n] }));
  const b = keep(tensor(bh, { shape: [n, n] }));
  // The latest timed product, freed by the next run (or at the end, once checked).
  const held: { c: Tensor | null } = { c: null };
  try {
    const c0 = matmul(a, b); // compile run, also the checked one
    const maxRelErr = checkMatmulRows(ah, bh, (await c0.toArray()) as Float32Array, n);
    c0.dispose();
    const times = await timeRuns(reps, async () => {
      held.c?.dispose();
      const c = held.c = matmul(a, b);
      await readBuffer(c.storage, (n * n - 1) * 4, 4);
    });
    const lastErr = checkMatmulRows(ah, bh, (await held.c!.toArray()) as Float32Array, n);
    const ms = median(times);
    return {
      ms,
      minMs: Math.min(...times),
      gflops: (2 * n ** 3) / (ms * 1e6),
      runs: times.length,
      device: "webgpu",
      maxRelErr: Math.max(maxRelErr, lastErr),
    };
  } finally {
    held.c?.dispose();
    a.dispose();
    b.dispose();
    await flushErrors();
  }
}

/** Row-major [rows, cols] → [cols, rows] (the problem stores x·W weights; Linear holds Wᵀ). */
function transposed(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) out[j * rows + i] = src[i * cols + j];
  }
  return out;
}

/**
 * One training step of the MLP with our `nn.Sequential` and `optim.SGD`,
 * starting from the problem's weights (loaded with `loadStateDict`): forward,
 * mean cross-entropy, backward, momentum update, then the loss read back,
 * which waits for the update kernels recorded before it.
 */
export async function oursMlpStep(
  reps: number,
  problem: MlpProblem = mlpProblem(),
): Promise<StepTiming> {
  const p = problem;
  const model = new nn.Sequential(
    new nn.Linear(p.inDim, p.hidden),
    new nn.ReLU(),
    new nn.Linear(p.hidden, p.classes),
  );
  const sd = {
    "0.weight": tensor(transposed(p.w1, p.inDim, p.hidden), { shape: [p.hidden, p.inDim] }),
    "0.bias": tensor(p.b1, { shape: [p.hidden] }),
    "2.weight": tensor(transposed(p.w2, p.hidden, p.classes), { shape: [p.classes, p.hidden] }),
    "2.bias": tensor(p.b2, { shape: [p.classes] }),
  };
  model.loadStateDict(sd);
  await flushErrors();
  for (const t of Object.values(sd)) t.dispose();
  const x = keep(tensor(p.x, { shape: [p.batch, p.inDim] }));
  const y = keep(tensor(p.y, { shape: [p.batch], dtype: "i32" }));
  const opt = new optim.SGD(model.parameters(), { lr: p.lr, momentum: p.momentum });
  const step = async (): Promise<number> => {
    const loss = scope(() => {
      const l = nn.crossEntropy(model.forward(x), y);
      l.backward();
      opt.step();
      opt.zeroGrad();
      return l.detach();
    });
    const v = await loss.item();
    loss.dispose();
    return v;
  };
  try {
    const losses: number[] = [];
    for (let i = 0; i < CHECK_STEPS; i++) losses.push(await step()); // first one compiles
    checkMlpLosses("ours", losses, cpuMlpLosses(p, CHECK_STEPS));
    const times = await timeRuns(reps, async () => void (await step()));
    return {
      ms: median(times),
      minMs: Math.min(...times),
      runs: times.length,
      device: "webgpu",
      losses,
    };
  } finally {
    x.dispose();
    y.dispose();
    opt.dispose();
    model.dispose();
    await flushErrors();
  }
}

// ------------------------------------------------------------------------ main

const { values } = parseArgs({
  args: Deno.args,
  options: { quick: { type: "boolean" }, json: { type: "string" } },
});
const quick = values.quick ?? false;
const matmulSizes = quick ? [{ n: 256, reps: 5 }] : DEFAULT_MATMUL;
const mlpReps = quick ? 5 : 15;

const start = await startComparison(gpu().label, quick);

const details: Record<string, Record<string, MatmulTiming | StepTiming>> = {};
const log = (m: string) => console.log(`  ${m}`);
const keepMatmul = (row: string, who: string, n: number) => (r: MatmulTiming) => {
  (details[row] ??= {})[who] = r;
  log(
    `${who} matmul ${n}: median ${r.ms.toFixed(1)} ms (min ${r.minMs.toFixed(1)}, ${r.runs} runs)` +
      ` = ${r.gflops.toPrecision(3)} GFLOP/s on ${r.device}; max rel err ` +
      r.maxRelErr.toExponential(1),
  );
};
const keepStep = (row: string, who: string) => (r: StepTiming) => {
  (details[row] ??= {})[who] = r;
  log(
    `${who} MLP step: median ${r.ms.toFixed(1)} ms (min ${r.minMs.toFixed(1)}, ${r.runs} runs)` +
      ` on ${r.device}; first losses [${
        r.losses.map((v) => v.toFixed(5))
      }] match the CPU reference`,
  );
};

const t0 = performance.now();
const rows: Row[] = [];
for (const { n, reps } of matmulSizes) {
  const name = `matmul ${n}×${n}×${n} f32`;
  const gf = (r: MatmulTiming) => r.gflops;
  const ours = await attempt(() => oursMatmul(n, reps), gf, keepMatmul(name, "ours", n));
  const tfjs = await attempt(() => tfjsMatmul(n, reps), gf, keepMatmul(name, "tfjs", n));
  const jax = await attempt(() => jaxMatmul(n, reps), gf, keepMatmul(name, "jax-js", n));
  rows.push({ name, unit: "GFLOP/s", ours, tfjs, jax });
}
{
  const name = "MLP 784-128-10 train step, batch 64";
  const ms = (r: StepTiming) => r.ms;
  const ours = await attempt(() => oursMlpStep(mlpReps), ms, keepStep(name, "ours"));
  const tfjs = await attempt(() => tfjsMlpStep(mlpReps), ms, keepStep(name, "tfjs"));
  const jax = await attempt(() => jaxMlpStep(mlpReps), ms, keepStep(name, "jax-js"));
  rows.push({ name, unit: "ms", ours, tfjs, jax });
}
await finishComparison({ start, quick, t0, timed: "runs", rows, details, json: values.json });
