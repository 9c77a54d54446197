/**
 * Linear (scheduled) freezing, a baseline of the SmartFRZ paper: unit i of L
 * stops training at the fraction t_i = t0 + (1 − t0)·i/L of all steps, a
 * schedule fixed in advance (the linear schedule of FreezeOut, Brock et al.
 * 2017, applied to blocks, front to back). The last unit freezes just before
 * the end, so every unit trains for at least t0 of the run.
 *
 * @module
 */

import type { StepContext, TrainerHook } from "./hooks.ts";
import { type FreezeOptions, type FreezeUnit, FrozenPrefix } from "./units.ts";

/** Options of {@link LinearFreezing}. */
export interface LinearFreezingOptions extends FreezeOptions {
  /** Total optimisation steps of the run. */
  totalSteps: number;
  /** Fraction of training before the first unit freezes (default 0.5). */
  start?: number;
}

/**
 * The linear freezing controller, as a trainer hook.
 *
 * @example
 * ```ts ignore
 * const hook = new LinearFreezing(units, { totalSteps: 1000 });
 * await train({ ..., hooks: [hook] });
 * ```
 */
export class LinearFreezing extends FrozenPrefix implements TrainerHook {
  readonly #at: number[];

  /**
   * @param units The model's units, front to back.
   * @param o The schedule.
   */
  constructor(units: FreezeUnit[], o: LinearFreezingOptions) {
    super(units, o);
    const t0 = o.start ?? 0.5;
    const L = units.length;
    this.#at = units.map((_, i) => Math.round((t0 + (1 - t0) * i / L) * o.totalSteps));
  }

  /** Freezes every unit whose time has come. */
  onStepEnd(ctx: StepContext): void {
    while (this.count < this.units.length && ctx.step >= this.#at[this.count]) {
      const u = this.freezeNext()!;
      ctx.log({
        type: "freeze",
        step: ctx.step,
        epoch: ctx.epoch,
        layer: u.name,
        index: this.count,
        method: "linear",
      });
    }
  }
}
