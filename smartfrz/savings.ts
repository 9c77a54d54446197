/**
 * What freezing saved in one run, estimated from the run itself: the cost of
 * its steps taken with no unit frozen is the baseline, and the run's actual
 * time, FLOPs and peak memory are set against that baseline cost for all of
 * its steps. (`deno task frz:compare` measures against separate unfrozen runs
 * instead.)
 *
 * @module
 */

import type { EpochResult } from "./hooks.ts";

/** Savings of one run (fractions in [0, 1]; null when the run had no unfrozen epoch). */
export interface FreezeSavings {
  /** Epochs that ran with nothing frozen (the baseline). */
  baselineEpochs: number;
  /** Training seconds saved, as a fraction of the baseline estimate. */
  time: number;
  /** Training FLOPs saved, as a fraction of the baseline estimate. */
  flops: number;
  /** Peak GPU memory of the last epoch against the largest unfrozen epoch's. */
  peakBytes: number;
}

/**
 * Savings from a run's epoch results. The first epoch counts in the baseline
 * only when it is the only unfrozen one (it also compiles every pipeline).
 *
 * @example
 * ```ts
 * import { freezeSavings } from "./savings.ts";
 * const e = (epoch: number, seconds: number, flops: number, frozen: number) =>
 *   ({ epoch, seconds, flops, steps: 10, frozenLayers: frozen,
 *      trainLoss: 0, testAccuracy: 0, peakBytes: 100 - 10 * frozen, samplesPerSecond: 0 });
 * const s = freezeSavings([e(1, 12, 100, 0), e(2, 10, 100, 0), e(3, 5, 40, 2), e(4, 5, 40, 2)])!;
 * console.log(s.time.toFixed(2), s.flops.toFixed(2), s.peakBytes.toFixed(2)); // "0.20" "0.30" "0.20"
 * ```
 */
export function freezeSavings(results: EpochResult[]): FreezeSavings | null {
  // Unfrozen throughout: nothing frozen when the epoch ended (a freeze decided at its very end, as
  // SmartFRZ's, is counted after the result is taken). Epochs that froze mid-way are not baseline.
  const unfrozen = results.filter((r) => r.frozenLayers === 0 && r.steps);
  if (unfrozen.length === 0) return null;
  const base = unfrozen.length > 1 ? unfrozen.slice(1) : unfrozen;
  const steps = base.reduce((a, r) => a + r.steps!, 0);
  const secondsPerStep = base.reduce((a, r) => a + r.seconds, 0) / steps;
  const flopsPerStep = base.reduce((a, r) => a + (r.flops ?? 0), 0) / steps;
  const allSteps = results.reduce((a, r) => a + (r.steps ?? 0), 0);
  const seconds = results.reduce((a, r) => a + r.seconds, 0);
  const flops = results.reduce((a, r) => a + (r.flops ?? 0), 0);
  const peak = Math.max(...unfrozen.map((r) => r.peakBytes));
  return {
    baselineEpochs: base.length,
    time: 1 - seconds / (secondsPerStep * allSteps),
    flops: flopsPerStep > 0 ? 1 - flops / (flopsPerStep * allSteps) : 0,
    peakBytes: peak > 0 ? 1 - results[results.length - 1].peakBytes / peak : 0,
  };
}
