/**
 * AutoFreeze (Liu et al., 2021, "AutoFreeze: Automatically Freezing Model
 * Blocks to Accelerate Fine-tuning"), a baseline of the SmartFRZ paper: each
 * active unit's gradients are accumulated over an interval of `interval`
 * steps (a single mini-batch's gradient is too noisy); at the interval's end
 * the norm of the accumulated gradient is compared with the previous
 * interval's; a unit whose relative change |‖g‖ₜ − ‖g‖ₜ₋₁| / ‖g‖ₜ₋₁ falls
 * below the `percentile`-th percentile of the active units' changes (the
 * median by default, the paper's choice) is considered converged, and the
 * leading run of converged units is frozen (front to back, never skipping a
 * unit; the last unit stays trainable).
 *
 * The accumulation is one GPU add per parameter per step (and one copy of the
 * active units' gradients in memory); the norms are read back only at the
 * interval's end. The sums are not checkpointed: after a resume the first,
 * partial interval is not compared (the next full one is compared with the
 * last full one before the interruption).
 *
 * @module
 */

import { add, keep, mul, noGrad, sqrt, sum, type Tensor, zeros } from "../engine/mod.ts";
import type { StepContext, TrainerHook } from "./hooks.ts";
import { type FreezeOptions, type FreezeUnit, FrozenPrefix, unitParameters } from "./units.ts";

/** Options of {@link AutoFreeze}. */
export interface AutoFreezeOptions extends FreezeOptions {
  /** Steps between evaluations (default 100). */
  interval?: number;
  /** Percentile of the change rates under which a unit counts as converged (default 50). */
  percentile?: number;
}

/**
 * The AutoFreeze controller, as a trainer hook.
 *
 * @example
 * ```ts ignore
 * const hook = new AutoFreeze(units, { interval: 200 });
 * await train({ ..., hooks: [hook] });
 * ```
 */
export class AutoFreeze extends FrozenPrefix implements TrainerHook {
  readonly #interval: number;
  readonly #percentile: number;
  #previous: number[] | null = null;

  /**
   * @param units The model's units, front to back.
   * @param o Interval and threshold.
   */
  constructor(units: FreezeUnit[], o: AutoFreezeOptions = {}) {
    super(units, o);
    this.#interval = o.interval ?? 100;
    this.#percentile = o.percentile ?? 50;
  }

  /** Per active unit, the gradients summed since the interval began (one tensor per parameter). */
  #acc: (Tensor | null)[][] = [];
  /** Steps summed into #acc (an interval cut short by a resume has fewer than `interval`). */
  #summed = 0;
  /** Norms of the accumulated gradients at an interval's end, waiting to be read. */
  #norms: Tensor[] | null = null;

  /** Called by the trainer after backward: adds the gradients to the interval's sums. */
  afterBackward(ctx: { step: number }): void {
    noGrad(() => {
      for (let u = this.count; u < this.units.length; u++) {
        const params = unitParameters(this.units[u]);
        const acc = this.#acc[u] ??= params.map(() => null);
        params.forEach((p, i) => {
          if (!p.grad) return;
          const prev = acc[i];
          acc[i] = keep(prev ? add(prev, p.grad) : mul(p.grad, 1));
          prev?.dispose();
        });
      }
      this.#summed++;
      if (ctx.step % this.#interval !== 0) return;
      if (this.#summed < this.#interval) {
        // A partial interval (the run resumed inside it): its norm is not comparable.
        this.#clearSums();
        return;
      }
      this.#norms = this.units.slice(this.count).map((_, k) => {
        const acc = this.#acc[this.count + k] ?? [];
        let s = zeros([]);
        for (const g of acc) {
          if (!g) continue;
          const next = add(s, sum(mul(g, g)));
          s.dispose();
          s = next;
        }
        const n = keep(sqrt(s));
        s.dispose();
        return n;
      });
      this.#clearSums();
    });
  }

  #clearSums(): void {
    for (const acc of this.#acc) for (const t of acc ?? []) t?.dispose();
    this.#acc = [];
    this.#summed = 0;
  }

  /** Frees the interval's sums. */
  dispose(): void {
    this.#clearSums();
    for (const t of this.#norms ?? []) t.dispose();
    this.#norms = null;
  }

  /** A frozen unit's sums are dropped. */
  protected override onFreeze(i: number): void {
    for (const t of this.#acc[i] ?? []) t?.dispose();
    this.#acc[i] = [];
  }

  /** Reads the norms at evaluation steps and freezes the converged prefix. */
  async onStepEnd(ctx: StepContext): Promise<void> {
    if (!this.#norms) return;
    const norms = await Promise.all(this.#norms.map((t) => t.item()));
    for (const t of this.#norms) t.dispose();
    this.#norms = null;
    const prev = this.#previous;
    this.#previous = norms;
    if (!prev || prev.length !== norms.length) return;
    const rates = norms.map((n, i) => Math.abs(n - prev[i]) / Math.max(prev[i], 1e-12));
    const sorted = [...rates].sort((a, b) => a - b);
    const threshold =
      sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * this.#percentile / 100))];
    let k = 0;
    // The last unit before the head stays trainable, as does anything behind a unit still changing.
    while (k < rates.length - 1 && rates[k] < threshold) k++;
    for (let i = 0; i < k; i++) {
      const u = this.freezeNext()!;
      ctx.log({
        type: "freeze",
        step: ctx.step,
        epoch: ctx.epoch,
        layer: u.name,
        index: this.count,
        method: "autofreeze",
      });
    }
    if (k > 0) this.#previous = norms.slice(k);
  }

  /** Controller state for checkpoints. */
  state(): unknown {
    return { previous: this.#previous };
  }

  /** Restores state(). */
  restoreState(s: unknown): void {
    this.#previous = (s as { previous: number[] | null })?.previous ?? null;
  }
}
