/**
 * The SmartFRZ online controller (Li et al., ICLR 2023): after optimizer
 * steps it records each active unit's tailored weight snapshot
 * ({@link WeightHistory}); at each decision point it asks the
 * {@link FreezePredictor} whether the first active units have converged and
 * freezes them, front to back. Nothing unfreezes.
 *
 * Freezing a unit sets `requiresGrad = false` on its parameters, frees their
 * gradients and optimizer state (pass the optimizer), keeps the unit in
 * evaluation mode (batch norm on its running statistics, dropout off: see
 * `units.ts`), stops its history and frees its buffers, and writes a
 * `freeze` record to the run's log.
 *
 * @module
 */

import { noGrad } from "../engine/autograd.ts";
import { concat, reshape } from "../engine/ops/shape.ts";
import { scope } from "../engine/tensor.ts";
import type { EpochResult, StepContext, TrainerHook } from "./hooks.ts";
import { WeightHistory, type WeightHistoryState } from "./history.ts";
import { type FreezePredictor, loadPredictor } from "./predictor.ts";
import { type FreezeOptions, type FreezeUnit, FrozenPrefix } from "./units.ts";

/** Options of {@link SmartFRZ}. */
export interface SmartFRZOptions extends FreezeOptions {
  /** The predictor (default: {@link loadPredictor}'s shipped weights, through {@link SmartFRZ.create}). */
  predictor: FreezePredictor;
  /** Optimisation steps per epoch: snapshots are spread evenly over an epoch. */
  stepsPerEpoch: number;
  /** Snapshots kept per unit and taken per epoch (default 30, the paper's). */
  window?: number;
  /** Steps between snapshots (default ⌊stepsPerEpoch / window⌋, at least 1). */
  snapshotEvery?: number;
  /** When to decide: at each epoch's end (default) or every this many steps. */
  decideEvery?: "epoch" | number;
  /** P(freeze) above which a unit freezes (default 0.5). */
  threshold?: number;
  /**
   * Freeze a unit only when every unit before it is frozen (default true, the
   * paper's). With false, any unit the predictor calls converged freezes.
   */
  frontToBack?: boolean;
  /** Seed of the sampled weight positions (default 0). */
  seed?: number;
}

/** One decision about one unit. */
export interface FreezeDecision {
  /** Global step of the decision. */
  step: number;
  /** Epoch of the decision. */
  epoch: number;
  /** Unit name. */
  unit: string;
  /** The predictor's P(freeze). */
  probability: number;
  /** Whether the unit froze. */
  frozen: boolean;
}

interface SmartFRZState {
  history: WeightHistoryState;
  decisions: FreezeDecision[];
}

/**
 * The SmartFRZ controller, as a trainer hook; in a hand-written loop call
 * `onStepEnd` after each `optimizer.step()` and `onEpochEnd` after each epoch.
 *
 * @example
 * ```ts ignore
 * const frz = await SmartFRZ.create(unitsOf(model), { stepsPerEpoch: 469, optimizer });
 * await train({ ..., hooks: [frz] });
 * console.log(frz.decisions.filter((d) => d.frozen));
 * ```
 */
export class SmartFRZ extends FrozenPrefix implements TrainerHook {
  /** The weight history. */
  readonly history: WeightHistory;
  /** Every decision so far (for reports). */
  decisions: FreezeDecision[] = [];
  readonly #predictor: FreezePredictor;
  readonly #snapshotEvery: number;
  readonly #decideEvery: "epoch" | number;
  readonly #threshold: number;
  readonly #frontToBack: boolean;

  /**
   * @param units The model's units, front to back.
   * @param o Predictor, epoch length and policy.
   */
  constructor(units: FreezeUnit[], o: SmartFRZOptions) {
    super(units, o);
    if (!(o.stepsPerEpoch >= 1)) {
      throw new RangeError(`SmartFRZ: stepsPerEpoch must be ≥ 1, got ${o.stepsPerEpoch}`);
    }
    const window = o.window ?? 30;
    this.history = new WeightHistory(units, {
      size: o.predictor.size,
      window,
      seed: o.seed ?? 0,
    });
    this.#predictor = o.predictor;
    this.#snapshotEvery = o.snapshotEvery ?? Math.max(1, Math.floor(o.stepsPerEpoch / window));
    this.#decideEvery = o.decideEvery ?? "epoch";
    this.#threshold = o.threshold ?? 0.5;
    this.#frontToBack = o.frontToBack ?? true;
  }

  /** A controller with the shipped predictor (see {@link loadPredictor}). */
  static async create(
    units: FreezeUnit[],
    o: Omit<SmartFRZOptions, "predictor"> & { predictor?: FreezePredictor },
  ): Promise<SmartFRZ> {
    if (o.predictor) return new SmartFRZ(units, { ...o, predictor: o.predictor });
    const frz = new SmartFRZ(units, { ...o, predictor: (await loadPredictor()).predictor });
    frz.#ownsPredictor = true;
    return frz;
  }

  /** Whether dispose() also frees the predictor (one that create() loaded). */
  #ownsPredictor = false;

  /** Records snapshots (and decides, with `decideEvery` in steps). */
  async onStepEnd(ctx: StepContext): Promise<void> {
    if (ctx.step % this.#snapshotEvery === 0) this.history.record();
    if (typeof this.#decideEvery === "number" && ctx.step % this.#decideEvery === 0) {
      await this.decide(ctx);
    }
  }

  /** Decides at the epoch's end (the default). */
  async onEpochEnd(_r: EpochResult, ctx: StepContext): Promise<void> {
    if (this.#decideEvery === "epoch") await this.decide(ctx);
  }

  /**
   * Asks the predictor about the active units with a full window and freezes
   * the converged ones (the leading run of them, front to back by default).
   * Returns the units frozen.
   */
  async decide(ctx: StepContext): Promise<FreezeUnit[]> {
    const asked: number[] = [];
    for (let i = 0; i < this.units.length; i++) {
      if (this.isFrozen(i) || !this.history.ready(i)) continue;
      // Front to back: only units whose predecessors are frozen or asked now may freeze.
      if (this.#frontToBack && asked.length === 0 && i !== this.count) break;
      if (this.#frontToBack && asked.length > 0 && asked[asked.length - 1] !== i - 1) break;
      asked.push(i);
    }
    if (asked.length === 0) return [];
    const windows = noGrad(() =>
      scope(() => {
        const ws = asked.map((i) => {
          const w = this.history.window(i)!;
          return reshape(w, [1, ...w.shape]);
        });
        return ws.length === 1 ? ws[0] : concat(ws, 0);
      })
    );
    let probs: number[];
    try {
      probs = await this.#predictor.freezeProbability(windows);
    } finally {
      windows.dispose();
    }
    const frozen: FreezeUnit[] = [];
    let blocked = false;
    asked.forEach((i, k) => {
      const p = probs[k];
      const yes = p > this.#threshold && !(this.#frontToBack && blocked);
      if (!yes) blocked = true;
      this.decisions.push({
        step: ctx.step,
        epoch: ctx.epoch,
        unit: this.units[i].name,
        probability: p,
        frozen: yes,
      });
      if (!yes) return;
      const u = this.freezeAt(i);
      frozen.push(u);
      ctx.log({
        type: "freeze",
        step: ctx.step,
        epoch: ctx.epoch,
        layer: u.name,
        index: this.frozen().length,
        method: "smartfrz",
        probability: p,
      });
    });
    return frozen;
  }

  /** A frozen unit's history is released. */
  protected override onFreeze(i: number): void {
    this.history.release(i);
  }

  /** History and decisions, for checkpoints. */
  async state(): Promise<SmartFRZState> {
    return { history: await this.history.state(), decisions: this.decisions };
  }

  /** Restores {@link SmartFRZ.state} (after the frozen units were restored). */
  restoreState(s: unknown): void {
    const st = s as SmartFRZState | null;
    if (!st) return;
    this.history.restore(st.history);
    this.decisions = st.decisions ?? [];
  }

  /** Frees the history (and the predictor when {@link SmartFRZ.create} loaded it). */
  dispose(): void {
    this.history.dispose();
    if (this.#ownsPredictor) this.#predictor.dispose();
  }
}
