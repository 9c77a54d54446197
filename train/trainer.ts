/**
 * The trainer: one loop for every model. It runs epochs of optimisation
 * steps, evaluates on held-out data, and calls hooks at step and epoch
 * boundaries (where freezing controllers and checkpointing attach).
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
  crossEntropy,
  eq,
  keep,
  memoryStats,
  noGrad,
  resetPeakMemory,
  scope,
  sum,
  type Tensor,
  tensor,
  zeros,
} from "../mod.ts";
import type { Batch } from "../data/loader.ts";
import { ProgressBar } from "./progress.ts";

/** The parts of a model the trainer uses. */
export interface TrainableModel {
  /** Forward pass to logits `[N, classes]`. */
  forward(x: Tensor): Tensor;
  /** Switches to training mode (dropout, batch statistics). */
  train(): unknown;
  /** Switches to evaluation mode. */
  eval(): unknown;
}

/** The parts of an optimizer the trainer uses. */
export interface TrainerOptimizer {
  /** Applies one update from the accumulated gradients. */
  step(): void;
  /** Releases the gradients. */
  zeroGrad(): void;
  /** Learning rate of every parameter group (set by the schedule). */
  lr: number;
}

/** A source of batches, iterated once per epoch. */
export interface BatchSource {
  /** Batches of one epoch. */
  batches(): AsyncIterable<Batch>;
  /** Number of batches in one epoch. */
  readonly batchesPerEpoch: number;
  /** Samples per batch. */
  readonly batchSize: number;
}

/** Figures of one finished epoch. */
export interface EpochResult {
  /** 1-based epoch number. */
  epoch: number;
  /** Mean training loss over the epoch. */
  trainLoss: number;
  /** Accuracy on the held-out set, in [0, 1]. */
  testAccuracy: number;
  /** Wall time of the epoch's training steps, seconds. */
  seconds: number;
  /** Peak GPU bytes during the epoch. */
  peakBytes: number;
  /** Training samples per second. */
  samplesPerSecond: number;
}

/** Context handed to hooks. */
export interface StepContext {
  /** Global step (1-based, counting all epochs). */
  step: number;
  /** 1-based epoch. */
  epoch: number;
}

/** Callbacks at step and epoch boundaries. */
export interface TrainerHook {
  /** After each optimisation step. */
  onStepEnd?(ctx: StepContext): void | Promise<void>;
  /** After each epoch's evaluation. */
  onEpochEnd?(result: EpochResult): void | Promise<void>;
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
  /** Number of epochs. */
  epochs: number;
  /** Learning rate for a global step (0-based), if scheduled. */
  lrAt?: (step: number) => number;
  /** Steps between loss read-backs (default 50). */
  logEvery?: number;
  /** Hooks. */
  hooks?: TrainerHook[];
  /** Where progress and summaries go (default: stderr bar, stdout lines). */
  print?: (line: string) => void;
  /** Show a progress bar (default true). */
  progress?: boolean;
}

/**
 * Trains and evaluates; returns the per-epoch results.
 *
 * @example
 * ```ts ignore
 * const results = await train({ model, optimizer, train: trainLoader, test: testLoader,
 *   sampleShape: [784], epochs: 3 });
 * ```
 */
export async function train(o: TrainerOptions): Promise<EpochResult[]> {
  const print = o.print ?? console.log;
  const logEvery = o.logEvery ?? 50;
  const results: EpochResult[] = [];
  let step = 0;
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    o.model.train();
    resetPeakMemory();
    const bar = o.progress === false
      ? null
      : new ProgressBar(`epoch ${epoch}/${o.epochs}`, o.train.batchesPerEpoch, o.train.batchSize);
    let lossSum = keep(zeros([]));
    let windowSum = keep(zeros([]));
    let windowSteps = 0;
    let samples = 0;
    let inEpoch = 0;
    let lastLoss: number | undefined;
    const t0 = performance.now();
    for await (const batch of o.train.batches()) {
      if (o.lrAt) o.optimizer.lr = o.lrAt(step);
      const loss = scope(() => {
        const x = tensor(batch.x, { shape: [batch.size, ...o.sampleShape] });
        const y = tensor(batch.y, { shape: [batch.size], dtype: "i32" });
        const l = crossEntropy(o.model.forward(x), y);
        l.backward();
        o.optimizer.step();
        o.optimizer.zeroGrad();
        return l.detach();
      });
      const [a, b] = noGrad(() => [keep(add(lossSum, loss)), keep(add(windowSum, loss))]);
      loss.dispose();
      lossSum.dispose();
      windowSum.dispose();
      lossSum = a;
      windowSum = b;
      windowSteps++;
      step++;
      inEpoch++;
      samples += batch.size;
      if (inEpoch % logEvery === 0 || inEpoch === o.train.batchesPerEpoch) {
        lastLoss = (await windowSum.item()) / windowSteps;
        if (!Number.isFinite(lastLoss)) {
          throw new Error(
            `training diverged: loss is ${lastLoss} at step ${step} (epoch ${epoch})`,
          );
        }
        windowSum.dispose();
        windowSum = keep(zeros([]));
        windowSteps = 0;
      }
      bar?.update(inEpoch, { loss: lastLoss });
      for (const h of o.hooks ?? []) await h.onStepEnd?.({ step, epoch });
    }
    const trainLoss = (await lossSum.item()) / Math.max(inEpoch, 1);
    const seconds = (performance.now() - t0) / 1000;
    bar?.done();
    lossSum.dispose();
    windowSum.dispose();
    const testAccuracy = await evaluate(o.model, o.test, o.sampleShape);
    const r: EpochResult = {
      epoch,
      trainLoss,
      testAccuracy,
      seconds,
      peakBytes: memoryStats().peakBytes,
      samplesPerSecond: samples / seconds,
    };
    results.push(r);
    print(
      `epoch ${epoch}: train loss ${trainLoss.toFixed(4)}, test accuracy ${
        (100 * testAccuracy).toFixed(2)
      }%, ` +
        `${seconds.toFixed(1)} s (${r.samplesPerSecond.toFixed(0)} samples/s), peak GPU memory ${
          (r.peakBytes / 2 ** 20).toFixed(1)
        } MiB`,
    );
    for (const h of o.hooks ?? []) await h.onEpochEnd?.(r);
  }
  return results;
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
  model: TrainableModel,
  data: BatchSource,
  sampleShape: number[],
): Promise<number> {
  model.eval();
  let correct = keep(zeros([]));
  let n = 0;
  for await (const batch of data.batches()) {
    const next = scope(() =>
      noGrad(() => {
        const x = tensor(batch.x, { shape: [batch.size, ...sampleShape] });
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
