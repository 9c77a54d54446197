/**
 * Training data for the SmartFRZ predictor (Li et al., ICLR 2023, §3.4): a
 * run records every tailored weight snapshot of each unit and, at probe
 * points, the linear CKA between each unit's output and the same unit of a
 * fully trained reference model on a fixed probe batch. A unit is labelled
 * converged at a probe point when its CKA has stopped changing (the variance
 * over a trailing window of probes is below a threshold) and is above a
 * floor ({@link convergenceLabels}).
 *
 * @module
 */

import { noGrad } from "../engine/autograd.ts";
import { cka } from "../engine/ops/cka.ts";
import { reshape } from "../engine/ops/shape.ts";
import { keep, scope, type Tensor } from "../engine/tensor.ts";
import type { StepContext, TrainerHook } from "./hooks.ts";
import { WeightHistory } from "./history.ts";
import { type FreezeUnit, unitOutput } from "./units.ts";

/**
 * Runs `forward` (without a tape) and returns each unit's output, flattened
 * to `[n, features]` (views of the outputs, kept: the caller disposes them).
 *
 * @example
 * ```ts
 * import { nn, randn } from "../mod.ts";
 * import { captureUnitOutputs, unitsOf } from "./mod.ts";
 * const net = new nn.Sequential(new nn.Linear(8, 6), new nn.ReLU(), new nn.Linear(6, 2));
 * const x = randn([5, 8]);
 * const outs = captureUnitOutputs(unitsOf(net), () => net.forward(x));
 * console.log(outs.map((t) => t.shape)); // [[5, 6]]
 * ```
 */
export function captureUnitOutputs(units: FreezeUnit[], forward: () => Tensor): Tensor[] {
  const outs: (Tensor | null)[] = units.map(() => null);
  const removers = units.map((u, i) =>
    unitOutput(u).registerForwardHook((_m, _in, out) => {
      outs[i]?.dispose();
      outs[i] = keep(reshape(out, [out.shape[0], -1]));
    })
  );
  try {
    noGrad(() =>
      scope(() => {
        forward(); // the logits are released with the scope
      })
    );
  } finally {
    for (const r of removers) r();
  }
  return outs.map((t, i) => {
    if (!t) throw new Error(`captureUnitOutputs: unit "${units[i].name}" produced no output`);
    return t;
  });
}

/** The rule that turns a unit's CKA curve into labels. */
export interface LabelRule {
  /** Probe points in the trailing window (default 6). */
  window: number;
  /** Largest variance of CKA over the window for "converged" (default 1e-4). */
  maxVariance: number;
  /**
   * Smallest CKA for "converged", as a fraction of the unit's CKA at the end
   * of the run: a reference trained from another seed never reaches 1, and
   * how close it gets differs by layer (0.999 for a ResNet stem, 0.91 for its
   * last stage, measured here; some layers even end below where they began).
   */
  floor: number;
}

/** The rule `frz:labels` uses (chosen by the sweep in smartfrz/README.md). */
export const DEFAULT_RULE: LabelRule = { window: 6, maxVariance: 1e-4, floor: 0.995 };

/**
 * Labels of one CKA curve: `true` at probe `t` when the last `window` values
 * (up to `t`) vary by less than `maxVariance` (population variance) and
 * `cka[t] ≥ floor · cka[last]`; `false` before a full window.
 *
 * @example
 * ```ts
 * import { convergenceLabels } from "./labels.ts";
 * const curve = [0.5, 0.8, 0.95, 0.97, 0.971, 0.972, 0.972];
 * console.log(convergenceLabels(curve, { window: 3, maxVariance: 1e-4, floor: 0.98 }));
 * // [false, false, false, false, true, true, true]
 * ```
 */
export function convergenceLabels(cka: ArrayLike<number>, rule: LabelRule): boolean[] {
  const floor = rule.floor * cka[cka.length - 1];
  const out: boolean[] = [];
  for (let t = 0; t < cka.length; t++) {
    if (t + 1 < rule.window) {
      out.push(false);
      continue;
    }
    let m = 0;
    for (let k = t + 1 - rule.window; k <= t; k++) m += cka[k];
    m /= rule.window;
    let v = 0;
    for (let k = t + 1 - rule.window; k <= t; k++) v += (cka[k] - m) ** 2;
    v /= rule.window;
    out.push(v < rule.maxVariance && cka[t] >= floor);
  }
  return out;
}

/** Options of {@link LabelRecorder}. */
export interface LabelRecorderOptions {
  /** The model's units. */
  units: FreezeUnit[];
  /** Runs the model on the probe batch (the recorder captures the units' outputs). */
  probe: () => Tensor;
  /** The reference model's unit outputs on the same probe batch, `[n, features]` each. */
  reference: Tensor[];
  /** Switches the model between training and evaluation (probes run in eval mode). */
  mode: { train(): unknown; eval(): unknown };
  /** Optimisation steps per epoch. */
  stepsPerEpoch: number;
  /** Epochs of the run (sizes the snapshot buffers). */
  epochs: number;
  /** Snapshots per epoch (default 30). */
  snapshotsPerEpoch?: number;
  /** Probe points per epoch (default 3; must divide `snapshotsPerEpoch`). */
  probesPerEpoch?: number;
  /** Weights per snapshot (default 1,024). */
  size?: number;
  /** Seed of the sampled positions. */
  seed?: number;
}

/** What a recorded run holds for one unit. */
export interface UnitRecord {
  /** Unit name. */
  name: string;
  /** Snapshots `[count, size]`, row-major. */
  snapshots: Float32Array;
  /** Number of snapshots. */
  count: number;
  /** CKA with the reference at each probe point. */
  cka: number[];
}

/**
 * A trainer hook that records snapshots every `⌊steps/snapshotsPerEpoch⌋`
 * steps (the same spacing the online controller uses) and the units' CKA
 * with the reference model every `snapshotsPerEpoch / probesPerEpoch`
 * snapshots; {@link LabelRecorder.result} reads it all back at the end.
 */
export class LabelRecorder implements TrainerHook {
  readonly #o: LabelRecorderOptions;
  readonly #history: WeightHistory;
  /** Steps between snapshots. */
  readonly snapshotEvery: number;
  readonly #probeEvery: number;
  /** Snapshot index (1-based count) at each probe point. */
  readonly probeAt: number[] = [];
  readonly #cka: Tensor[][] = [];

  /** @param o Units, probe, reference and spacing. */
  constructor(o: LabelRecorderOptions) {
    this.#o = o;
    const per = o.snapshotsPerEpoch ?? 30;
    const probes = o.probesPerEpoch ?? 3;
    if (per % probes !== 0) {
      throw new RangeError(`LabelRecorder: ${probes} probes do not divide ${per} snapshots`);
    }
    this.snapshotEvery = Math.max(1, Math.floor(o.stepsPerEpoch / per));
    this.#probeEvery = per / probes;
    const total = Math.floor(o.stepsPerEpoch * o.epochs / this.snapshotEvery) + 1;
    this.#history = new WeightHistory(o.units, { size: o.size, window: total, seed: o.seed });
  }

  /** Takes snapshots, and probes every `probeEvery` snapshots. */
  onStepEnd(ctx: StepContext): void {
    if (ctx.step % this.snapshotEvery !== 0) return;
    this.#history.record();
    const n = this.#history.count(0);
    if (n % this.#probeEvery !== 0) return;
    this.#o.mode.eval();
    const outs = captureUnitOutputs(this.#o.units, this.#o.probe);
    this.#o.mode.train();
    this.#cka.push(outs.map((t, i) => {
      const c = keep(cka(t, this.#o.reference[i]));
      t.dispose();
      return c;
    }));
    this.probeAt.push(n);
  }

  /** Reads everything back and frees the GPU buffers. */
  async result(): Promise<UnitRecord[]> {
    const cka = await Promise.all(
      this.#cka.map((row) => Promise.all(row.map((t) => t.item()))),
    );
    for (const row of this.#cka) for (const t of row) t.dispose();
    const out = await Promise.all(this.#o.units.map(async (u, i) => {
      const count = this.#history.count(i);
      const snaps = this.#history.snapshots(i);
      const data = new Float32Array(await snaps.toArray());
      snaps.dispose();
      return { name: u.name, snapshots: data, count, cka: cka.map((r) => r[i]) };
    }));
    this.#history.dispose();
    return out;
  }
}
