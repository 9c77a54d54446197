/**
 * The trainer: one loop for every model. It runs epochs of optimisation
 * steps, evaluates on held-out data, logs every figure to `log.jsonl`, writes
 * crash-safe checkpoints, resumes from them, and calls hooks at step and epoch
 * boundaries (where freezing controllers attach).
 *
 * The loss is accumulated on the GPU and read back only at the logging
 * interval: a read-back stalls the queue until every recorded kernel is done.
 *
 * @module
 */

import {
  add,
  argmax,
  cast,
  concat,
  crossEntropy,
  eq,
  flopCount,
  getRngState,
  keep,
  max,
  memoryStats,
  noGrad,
  resetPeakMemory,
  scope,
  setRngState,
  sum,
  type Tensor,
  tensor,
  zeros,
} from "../mod.ts";
import type { LoaderState } from "../data/loader.ts";
import type { OptimizerStateDict } from "../engine/optim/optimizer.ts";
import { type Checkpoint, saveCheckpoint, type TrainState, truncateLog } from "./checkpoint.ts";
import { ProgressBar } from "./progress.ts";
import type { EpochResult, StepContext, TrainerHook } from "../smartfrz/hooks.ts";

export type { EpochResult, StepContext, TrainerHook };

/** The parts of a model the trainer uses. */
export interface TrainableModel {
  /** Forward pass to logits `[N, classes]`. */
  forward(x: Tensor): Tensor;
  /** Switches to training mode (dropout, batch statistics). */
  train(): unknown;
  /** Switches to evaluation mode. */
  eval(): unknown;
  /** Parameters and buffers by PyTorch name. */
  stateDict(): Record<string, Tensor>;
  /** Loads what stateDict() gave. */
  loadStateDict(sd: Record<string, Tensor>): unknown;
  /** Trainable parameters. */
  parameters(): Tensor[];
}

/** The parts of an optimizer the trainer uses. */
export interface TrainerOptimizer {
  /** Applies one update from the accumulated gradients. */
  step(): void;
  /** Releases the gradients. */
  zeroGrad(): void;
  /** Learning rate of every parameter group (set by the schedule). */
  lr: number;
  /** State for checkpoints. */
  stateDict(): OptimizerStateDict;
  /** Restores stateDict()'s result. */
  loadStateDict(sd: OptimizerStateDict): void;
}

/**
 * One batch as the trainer consumes it: `size` samples packed in `x` (pixels as
 * f32, or token ids, token types and attention masks as i32 for text models)
 * and their labels.
 */
export interface TrainBatch {
  /** `size` samples of the model's sample shape. */
  x: Float32Array | Int32Array;
  /** Labels, `size` of them. */
  y: Int32Array;
  /** Number of samples. */
  size: number;
  /** This batch's sample shape, when it differs from the model's (e.g. shorter text rows). */
  shape?: readonly number[];
  /** Dataset indices of the samples, in batch order (forward caching needs them). */
  indices?: Uint32Array;
}

/** A source of batches, iterated once per epoch. */
export interface BatchSource {
  /** Batches of the rest of the current epoch. */
  batches(): AsyncIterable<TrainBatch>;
  /** Number of batches in one epoch. */
  readonly batchesPerEpoch: number;
  /** Samples per batch. */
  readonly batchSize: number;
  /** Position, for checkpoints. */
  state?(): LoaderState;
  /** Restores state(). */
  restore?(s: LoaderState): void;
}

/** Trainer settings. */
export interface TrainerOptions {
  /** The model. */
  model: TrainableModel;
  /** The optimizer over the model's parameters. */
  optimizer: TrainerOptimizer;
  /** Training batches. */
  train: BatchSource;
  /** Held-out batches (never trained on). */
  test: BatchSource;
  /** Shape of one sample as the model expects it, e.g. `[784]` or `[1, 28, 28]`. */
  sampleShape: number[];
  /**
   * Batch tensor to logits, when that is not `model.forward` (e.g. a text model that
   * unpacks token ids, token types and attention masks from one `[N, 3, T]` tensor).
   */
  forward?: (x: Tensor) => Tensor;
  /** Number of epochs. */
  epochs: number;
  /** Learning rate for a global step (0-based), if scheduled. */
  lrAt?: (step: number) => number;
  /** Steps between loss read-backs and log records (default 50). */
  logEvery?: number;
  /** Evaluate every this many epochs (default 1; the last epoch always is). */
  evalEvery?: number;
  /** Hooks. */
  hooks?: TrainerHook[];
  /** Where summaries go (default: stdout). */
  print?: (line: string) => void;
  /** Show a progress bar (default true). */
  progress?: boolean;
  /** Run directory: log.jsonl and checkpoints go there. */
  runDir?: string;
  /** Also checkpoint every this many steps (0: only at epoch ends). */
  checkpointEvery?: number;
  /** A checkpoint to continue from. */
  resume?: Checkpoint | null;
}

/** Thrown when the loss or the parameters stop being finite. */
export class DivergedError extends Error {
  /** Step at which it was noticed. */
  readonly step: number;
  /**
   * @param message What diverged.
   * @param step Step at which it was noticed.
   */
  constructor(message: string, step: number) {
    super(message);
    this.name = "DivergedError";
    this.step = step;
  }
}

/**
 * Trains and evaluates; returns the per-epoch results.
 *
 * @example
 * ```ts ignore
 * const results = await train({ model, optimizer, train: trainLoader, test: testLoader,
 *   sampleShape: [784], epochs: 3, runDir: "runs/mlp" });
 * ```
 */
export async function train(o: TrainerOptions): Promise<EpochResult[]> {
  const print = o.print ?? console.log;
  const logEvery = Math.max(1, o.logEvery ?? 50);
  const evalEvery = Math.max(1, o.evalEvery ?? 1);
  const hooks = o.hooks ?? [];
  const frozenNames = () => hooks.flatMap((h) => h.frozen?.() ?? []);
  const log = await openLog(o.runDir, o.resume?.state.logLines);
  const forward = o.forward ?? ((x: Tensor) => o.model.forward(x));
  const modeSwitch = { train: () => o.model.train(), eval: () => o.model.eval() };

  let step = 0;
  let history: EpochResult[] = [];
  // Running totals of the current epoch (restored on resume, so a resumed epoch's figures are whole).
  let epochAcc = { sum: 0, steps: 0, samples: 0, seconds: 0, flops: 0 };
  let window = { sum: 0, steps: 0 };
  // Wall-clock seconds of the run before this process (restored on resume).
  let wallBefore = 0;
  const wallStart = performance.now();
  const wall = () => wallBefore + (performance.now() - wallStart) / 1000;
  if (o.resume) {
    const s = o.resume.state;
    o.model.loadStateDict(o.resume.model);
    o.optimizer.loadStateDict(o.resume.optimizer);
    // Both loads copy: the checkpoint's own tensors are not needed any more.
    for (const t of Object.values(o.resume.model)) t.dispose();
    for (const t of Object.values(o.resume.optimizer.buffers)) t.dispose();
    setRngState(s.rng);
    o.train.restore?.(s.loader);
    for (const h of hooks) h.restoreFrozen?.(s.frozen);
    const hs = (s as TrainState & { hooks?: unknown[] }).hooks ?? [];
    hooks.forEach((h, i) => h.restoreState?.(hs[i]));
    step = s.step;
    history = s.history as EpochResult[];
    const extra = s as TrainState & { epochAcc?: typeof epochAcc; window?: typeof window };
    epochAcc = { ...epochAcc, ...extra.epochAcc };
    window = extra.window ?? window;
    wallBefore = (s as TrainState & { wall?: number }).wall ?? 0;
    print(`resumed from ${o.resume.dir} (step ${s.step}, epoch ${s.loader.epoch + 1})`);
  }

  const checkpoint = async (epochDone: number) => {
    if (!o.runDir || !o.train.state) return;
    await assertFinite(o.model.parameters(), step);
    // Views of the optimizer's live buffers: written, then released.
    const sd = o.optimizer.stateDict();
    const state: TrainState & {
      epochAcc: typeof epochAcc;
      window: typeof window;
      hooks: unknown[];
      wall: number;
    } = {
      epoch: epochDone,
      step,
      loader: o.train.state(),
      rng: getRngState(),
      optimizer: { step: sd.step, paramSteps: sd.paramSteps, lr: sd.lr },
      frozen: frozenNames(),
      logLines: log.lines,
      history,
      epochAcc,
      window,
      hooks: await Promise.all(hooks.map((h) => h.state?.() ?? null)),
      wall: wall(),
    };
    try {
      await saveCheckpoint(o.runDir, o.model.stateDict(), sd, state);
    } finally {
      for (const t of Object.values(sd.buffers)) t.dispose();
    }
  };

  const firstEpoch = (o.train.state?.().epoch ?? 0) + 1;
  for (let epoch = firstEpoch; epoch <= o.epochs; epoch++) {
    o.model.train();
    resetPeakMemory();
    const bar = o.progress === false
      ? null
      : new ProgressBar(`epoch ${epoch}/${o.epochs}`, o.train.batchesPerEpoch, o.train.batchSize);
    // GPU-side running sums, read back at the logging interval only.
    let lossSum = keep(zeros([]));
    let windowSum = keep(zeros([]));
    let inWindow = 0;
    let inEpoch = Math.round(epochAcc.steps);
    let t0 = performance.now();
    let f0 = flopCount();
    let lastLoss: number | undefined;
    const flushWindow = async () => {
      if (inWindow === 0) return;
      const [ws, es] = await Promise.all([windowSum.item(), lossSum.item()]);
      window.sum += ws;
      window.steps += inWindow;
      epochAcc.sum += es;
      for (const t of [windowSum, lossSum]) t.dispose();
      windowSum = keep(zeros([]));
      lossSum = keep(zeros([]));
      inWindow = 0;
    };
    for await (const batch of o.train.batches()) {
      if (o.lrAt) o.optimizer.lr = o.lrAt(step);
      for (const h of hooks) h.beforeForward?.(batch);
      const loss = scope(() => {
        const x = tensor(batch.x, { shape: [batch.size, ...(batch.shape ?? o.sampleShape)] });
        const y = tensor(batch.y, { shape: [batch.size], dtype: "i32" });
        const l = crossEntropy(forward(x), y);
        l.backward();
        for (const h of hooks) h.afterBackward?.({ step: step + 1, epoch });
        o.optimizer.step();
        o.optimizer.zeroGrad();
        return l.detach();
      });
      const [a, b] = noGrad(() => [keep(add(lossSum, loss)), keep(add(windowSum, loss))]);
      for (const t of [loss, lossSum, windowSum]) t.dispose();
      lossSum = a;
      windowSum = b;
      inWindow++;
      step++;
      inEpoch++;
      epochAcc.steps++;
      epochAcc.samples += batch.size;
      const ctx: StepContext = {
        step,
        epoch,
        stepsPerEpoch: o.train.batchesPerEpoch,
        log: (r) => log.write(r),
      };
      if (step % logEvery === 0 || inEpoch === o.train.batchesPerEpoch) {
        await flushWindow();
        lastLoss = window.sum / Math.max(window.steps, 1);
        if (!Number.isFinite(lastLoss)) {
          log.write({ type: "summary", stopped: "nan", step, epoch });
          throw new DivergedError(
            `the training loss became ${lastLoss} at step ${step} (epoch ${epoch})`,
            step,
          );
        }
        const m = memoryStats();
        log.write({
          type: "step",
          step,
          epoch,
          loss: lastLoss,
          lr: o.optimizer.lr,
          samplesPerSecond:
            epochAcc.samples / (epochAcc.seconds + (performance.now() - t0) / 1000) || 0,
          // Seconds of training so far in the run (finished epochs plus this one).
          elapsed: history.reduce((a, h) => a + h.seconds, 0) + epochAcc.seconds +
            (performance.now() - t0) / 1000,
          liveBytes: m.liveBytes,
          peakBytes: m.peakBytes,
          frozenLayers: frozenNames().length,
        });
        window = { sum: 0, steps: 0 };
      }
      bar?.update(inEpoch, { loss: lastLoss });
      for (const h of hooks) await h.onStepEnd?.(ctx);
      if (
        o.checkpointEvery && step % o.checkpointEvery === 0 && inEpoch < o.train.batchesPerEpoch
      ) {
        await flushWindow();
        const now = performance.now();
        epochAcc.seconds += (now - t0) / 1000;
        t0 = now;
        epochAcc.flops += flopCount() - f0;
        await checkpoint(epoch - 1);
        f0 = flopCount();
      }
    }
    await flushWindow();
    lossSum.dispose();
    windowSum.dispose();
    bar?.done();
    const seconds = epochAcc.seconds + (performance.now() - t0) / 1000;
    const flops = epochAcc.flops + flopCount() - f0;
    const trainLoss = epochAcc.sum / Math.max(epochAcc.steps, 1);
    const evaluate_ = epoch % evalEvery === 0 || epoch === o.epochs;
    const testAccuracy = evaluate_
      ? await evaluate({ ...modeSwitch, forward }, o.test, o.sampleShape)
      : NaN;
    const r: EpochResult = {
      epoch,
      trainLoss,
      testAccuracy,
      seconds,
      peakBytes: memoryStats().peakBytes,
      samplesPerSecond: epochAcc.samples / seconds,
      frozenLayers: frozenNames().length,
      steps: epochAcc.steps,
      flops,
      elapsed: wall(),
    };
    history.push(r);
    epochAcc = { sum: 0, steps: 0, samples: 0, seconds: 0, flops: 0 };
    log.write({ type: "epoch", ...r, testAccuracy: evaluate_ ? testAccuracy : null });
    print(
      `epoch ${epoch}: train loss ${trainLoss.toFixed(4)}, ` +
        (evaluate_ ? `test accuracy ${(100 * testAccuracy).toFixed(2)}%, ` : "") +
        `${seconds.toFixed(1)} s (${r.samplesPerSecond.toFixed(0)} samples/s), peak GPU memory ${
          (r.peakBytes / 2 ** 20).toFixed(1)
        } MiB, ${r.frozenLayers} layers frozen`,
    );
    const endCtx: StepContext = {
      step,
      epoch,
      stepsPerEpoch: o.train.batchesPerEpoch,
      log: (rec) => log.write(rec),
    };
    for (const h of hooks) await h.onEpochEnd?.(r, endCtx);
    await checkpoint(epoch);
  }
  log.close();
  return history;
}

/** Throws DivergedError if any parameter holds NaN or ±∞ (checked before a checkpoint is written). */
async function assertFinite(params: Tensor[], step: number): Promise<void> {
  if (params.length === 0) return;
  const worst = scope(() =>
    noGrad(() => max(concat(params.map((p) => max(p.abs()).reshape([1])), 0)))
  );
  const v = await worst.item();
  worst.dispose();
  if (!Number.isFinite(v)) {
    throw new DivergedError(`a parameter became ${v} by step ${step}`, step);
  }
}

interface RunLog {
  lines: number;
  write(r: Record<string, unknown>): void;
  close(): void;
}

/** Appends JSON lines to `runDir/log.jsonl` (cut back to `keep` lines when resuming). */
async function openLog(runDir: string | undefined, keepLines?: number): Promise<RunLog> {
  if (!runDir) return { lines: 0, write() {}, close() {} };
  const path = `${runDir}/log.jsonl`;
  if (keepLines !== undefined) await truncateLog(path, keepLines);
  else await Deno.writeTextFile(path, "");
  const file = await Deno.open(path, { append: true, create: true });
  const enc = new TextEncoder();
  const log: RunLog = {
    lines: keepLines ?? 0,
    write(r) {
      file.writeSync(enc.encode(JSON.stringify(r) + "\n"));
      log.lines++;
    },
    close() {
      file.close();
    },
  };
  return log;
}

/**
 * Accuracy of `model` on `data` (forward only, no tape), counted on the GPU.
 *
 * @example
 * ```ts ignore
 * const acc = await evaluate(model, testLoader, [784]);
 * ```
 */
export async function evaluate(
  model: Pick<TrainableModel, "forward" | "train" | "eval">,
  data: BatchSource,
  sampleShape: number[],
): Promise<number> {
  model.eval();
  let correct = keep(zeros([]));
  let n = 0;
  for await (const batch of data.batches()) {
    const next = scope(() =>
      noGrad(() => {
        const x = tensor(batch.x, { shape: [batch.size, ...(batch.shape ?? sampleShape)] });
        const y = tensor(batch.y, { shape: [batch.size], dtype: "i32" });
        const hits = sum(cast(eq(argmax(model.forward(x), 1), y), "f32"));
        return keep(add(correct, hits));
      })
    );
    correct.dispose();
    correct = next;
    n += batch.size;
  }
  const c = await correct.item();
  correct.dispose();
  model.train();
  return n === 0 ? 0 : c / n;
}
