/**
 * The interface between a training loop and a freezing controller: the
 * callbacks a controller implements and what the loop tells it. `deno task
 * train`'s trainer calls them; a hand-written loop can call the same methods
 * (`afterBackward` after `loss.backward()`, `onStepEnd` after
 * `optimizer.step()`, `onEpochEnd` after each evaluation).
 *
 * @module
 */

/** Figures of one finished epoch. */
export interface EpochResult {
  /** 1-based epoch number. */
  epoch: number;
  /** Mean training loss over the epoch. */
  trainLoss: number;
  /** Accuracy on the held-out set, in [0, 1] (NaN when not evaluated this epoch). */
  testAccuracy: number;
  /** Wall time of the epoch's training steps, seconds. */
  seconds: number;
  /** Peak GPU bytes during the epoch. */
  peakBytes: number;
  /** Training samples per second. */
  samplesPerSecond: number;
  /** Layers frozen at the end of the epoch. */
  frozenLayers: number;
  /** Optimisation steps in the epoch. */
  steps?: number;
  /** Floating-point operations of the epoch's training steps, counted from the kernels dispatched. */
  flops?: number;
  /**
   * Wall-clock seconds of the whole run up to the end of this epoch's
   * evaluation, across resumes (time before an interruption included).
   */
  elapsed?: number;
}

/** The batch fields a hook sees before the forward pass. */
export interface IndexedBatch {
  /** Samples in the batch. */
  size: number;
  /** Dataset indices of the samples, in batch order (when the loader has them). */
  indices?: Uint32Array;
}

/** Context handed to hooks. */
export interface StepContext {
  /** Global step (1-based, counting all epochs). */
  step: number;
  /** 1-based epoch. */
  epoch: number;
  /** Optimisation steps in one epoch. */
  stepsPerEpoch: number;
  /** Writes a record to the run's log (e.g. a freeze event). */
  log(record: Record<string, unknown>): void;
}

/** Callbacks at step and epoch boundaries. */
export interface TrainerHook {
  /** Before a training step's forward pass, with the batch's sample indices when the loader has them. */
  beforeForward?(batch: IndexedBatch): void;
  /** After backward, before the optimizer uses the gradients (synchronous: record GPU work only). */
  afterBackward?(ctx: { step: number; epoch: number }): void;
  /** After each optimisation step. */
  onStepEnd?(ctx: StepContext): void | Promise<void>;
  /** After each epoch's evaluation. */
  onEpochEnd?(result: EpochResult, ctx: StepContext): void | Promise<void>;
  /** Names of the modules this hook has frozen (saved in checkpoints, counted in logs). */
  frozen?(): string[];
  /** Restores frozen() from a checkpoint. */
  restoreFrozen?(names: string[]): void;
  /** Any other state the hook needs after a resume (JSON-serialisable; may read the GPU). */
  state?(): unknown | Promise<unknown>;
  /** Restores state(). */
  restoreState?(s: unknown): void;
}
