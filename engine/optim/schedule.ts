/**
 * Learning-rate schedules as pure functions of the step, and
 * {@link applySchedule} to drive an optimizer with one.
 *
 * A {@link Schedule} maps a 0-based step index to a learning rate: step 0 is
 * the rate of the first `opt.step()`. The formulas are PyTorch's closed forms
 * (`StepLR`, `CosineAnnealingLR`) and those of Hugging Face transformers
 * (`get_linear_schedule_with_warmup`, `get_cosine_schedule_with_warmup`), so
 * `schedule(k)` equals the `lr` a PyTorch scheduler gives after `k` calls of
 * `scheduler.step()`.
 *
 * @module
 */

import type { BaseOptions, Optimizer } from "./optimizer.ts";

/** A learning rate as a function of the 0-based step index. */
export type Schedule = (step: number) => number;

function checkStep(step: number, name: string): void {
  if (!Number.isInteger(step) || step < 0) {
    throw new RangeError(`${name}: step must be an integer ≥ 0, got ${step}`);
  }
}

function checkPositiveInt(v: number, what: string, name: string): void {
  if (!Number.isInteger(v) || v < 1) {
    throw new RangeError(`${name}: ${what} must be an integer ≥ 1, got ${v}`);
  }
}

/**
 * `base · gamma^⌊step / stepSize⌋` (PyTorch `StepLR`).
 *
 * @example
 * ```ts
 * import { stepLR } from "./schedule.ts";
 * const s = stepLR(0.1, 30, 0.1);
 * console.log(s(0), s(29), s(30)); // 0.1 0.1 0.01 (up to rounding)
 * ```
 */
export function stepLR(base: number, stepSize: number, gamma = 0.1): Schedule {
  checkPositiveInt(stepSize, "stepSize", "stepLR");
  return (step) => {
    checkStep(step, "stepLR");
    return base * gamma ** Math.floor(step / stepSize);
  };
}

/**
 * Cosine annealing from `base` to `minLr` over `totalSteps` steps:
 * `minLr + (base − minLr)·(1 + cos(π·step / totalSteps)) / 2` (the closed form
 * of PyTorch `CosineAnnealingLR`, `T_max = totalSteps`). As in PyTorch the
 * formula is not clamped: past `totalSteps` the rate rises again along the
 * cosine, so set `totalSteps` to the length of training.
 *
 * @example
 * ```ts
 * import { cosineLR } from "./schedule.ts";
 * const s = cosineLR(1, 100);
 * console.log(s(0), s(50), s(100)); // 1 0.5 0 (up to rounding)
 * ```
 */
export function cosineLR(base: number, totalSteps: number, minLr = 0): Schedule {
  checkPositiveInt(totalSteps, "totalSteps", "cosineLR");
  return (step) => {
    checkStep(step, "cosineLR");
    return minLr + (base - minLr) * (1 + Math.cos(Math.PI * step / totalSteps)) / 2;
  };
}

/**
 * Linear decay from `base` to 0 over `totalSteps` steps, then 0:
 * `base · max(0, (totalSteps − step) / max(1, totalSteps))` (the decay of
 * transformers' `get_linear_schedule_with_warmup`; use it after
 * {@link linearWarmup} with `totalSteps = training steps − warmup steps`).
 *
 * @example
 * ```ts
 * import { linearDecay } from "./schedule.ts";
 * const s = linearDecay(1, 10);
 * console.log(s(0), s(5), s(10), s(20)); // 1 0.5 0 0
 * ```
 */
export function linearDecay(base: number, totalSteps: number): Schedule {
  if (!Number.isInteger(totalSteps) || totalSteps < 0) {
    throw new RangeError(`linearDecay: totalSteps must be an integer ≥ 0, got ${totalSteps}`);
  }
  return (step) => {
    checkStep(step, "linearDecay");
    return base * Math.max(0, (totalSteps - step) / Math.max(1, totalSteps));
  };
}

/**
 * Linear warmup from 0: `base · step / max(1, warmupSteps)` for
 * `step < warmupSteps`; after that `then(step − warmupSteps)`, or `base` when
 * no `then` is given. The step passed to `then` restarts at 0 where warmup ends.
 *
 * - transformers `get_linear_schedule_with_warmup(W, T)`:
 *   `linearWarmup(base, W, linearDecay(base, T − W))`;
 * - transformers `get_cosine_schedule_with_warmup(W, T)`:
 *   `linearWarmup(base, W, cosineLR(base, T − W))`.
 *
 * @example
 * ```ts
 * import { cosineLR, linearWarmup } from "./schedule.ts";
 * const s = linearWarmup(1, 10, cosineLR(1, 90));
 * console.log(s(0), s(5), s(10), s(55), s(100)); // 0 0.5 1 0.5 0 (up to rounding)
 * ```
 */
export function linearWarmup(base: number, warmupSteps: number, then?: Schedule): Schedule {
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) {
    throw new RangeError(`linearWarmup: warmupSteps must be an integer ≥ 0, got ${warmupSteps}`);
  }
  return (step) => {
    checkStep(step, "linearWarmup");
    if (step < warmupSteps) return base * step / Math.max(1, warmupSteps);
    return then ? then(step - warmupSteps) : base;
  };
}

/**
 * Sets the optimizer's learning rates for step `step` (0-based; call it before
 * that step's `opt.step()`) and returns the rate set.
 *
 * Groups keep their ratio to the optimizer's default rate, as PyTorch
 * schedulers scale each group's own initial rate: a group created with
 * `lr = defaults.lr` gets `schedule(step)`, a group created with half of it
 * gets half. (Exact for multiplicative schedules; for a schedule with a floor
 * such as `cosineLR(…, minLr)` the floor is scaled too.)
 *
 * @example
 * ```ts ignore
 * const sched = linearWarmup(0.1, 100, cosineLR(0.1, 900));
 * for (let k = 0; k < 1000; k++) {
 *   applySchedule(opt, sched, k);
 *   // forward, backward, opt.step(), opt.zeroGrad()
 * }
 * ```
 */
export function applySchedule<O extends BaseOptions>(
  opt: Optimizer<O>,
  schedule: Schedule,
  step: number,
): number {
  const lr = schedule(step);
  if (!(lr >= 0) || !Number.isFinite(lr)) {
    throw new RangeError(`applySchedule: the schedule gave an invalid rate ${lr} at step ${step}`);
  }
  const ref = opt.defaults.lr;
  opt.paramGroups.forEach((g, i) => {
    const base = opt.baseLrs[i];
    g.lr = ref > 0 && base !== ref ? base * (lr / ref) : lr;
  });
  return lr;
}
