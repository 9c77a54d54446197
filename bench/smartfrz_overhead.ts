/**
 * What SmartFRZ itself costs: one training step, one weight snapshot of every
 * unit (the gather kernels, waited for) and one decision (windows gathered,
 * the predictor run, probabilities read back) are timed on the same model
 * and batch in one process; the overhead of an epoch is then
 * (30 snapshots + 1 decision) / (steps per epoch × step time).
 *
 * ```sh
 * deno run -A bench/smartfrz_overhead.ts                          # resnet18 width 8, batch 128
 * deno run -A bench/smartfrz_overhead.ts --model bert-mini --batch 32 --steps-per-epoch 148
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { optim, synchronize } from "../mod.ts";
import { gpu, initGpu } from "../engine/device.ts";
import { benchModel } from "./bench_model.ts";
import { SmartFRZ } from "../smartfrz/smartfrz.ts";
import { median } from "./peers_ref.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", default: "resnet18" },
    batch: { type: "string", default: "128" },
    tokens: { type: "string", default: "64" },
    width: { type: "string", default: "8" },
    "steps-per-epoch": { type: "string", default: "157" },
    reps: { type: "string", default: "5" },
  },
});
const name = values.model!;
const B = Number(values.batch);
const T = Number(values.tokens);
const reps = Number(values.reps);
const stepsPerEpoch = Number(values["steps-per-epoch"]);
await initGpu();

const { built, step: stepWith } = benchModel(name, {
  batch: B,
  tokens: T,
  width: Number(values.width),
});
const opt = new optim.SGD(built.model.parameters(), { lr: 1e-3, momentum: 0.9 });
// threshold > 1: the controller decides but never freezes, so every decision asks every unit.
const frz = await SmartFRZ.create(built.units, { stepsPerEpoch, optimizer: opt, threshold: 2 });
const ctx = { step: 0, epoch: 1, stepsPerEpoch, log: () => {} };

const step = () => stepWith(opt);

async function time(fn: () => void | Promise<unknown>, n: number): Promise<number> {
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    await synchronize();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

console.log(`${built.description} on ${gpu().label}, batch ${B}, ${stepsPerEpoch} steps per epoch`);
step();
await synchronize();
const stepMs = await time(step, reps);
frz.history.record();
await synchronize();
// Snapshots are recorded between steps without waiting: time 20 of them, then one wait.
const recordMs = (await time(() => {
  for (let i = 0; i < 20; i++) frz.history.record();
}, 3)) / 20;
// Fill the windows, then time decisions (the first compiles the predictor's kernels).
for (let i = 0; i < 30; i++) frz.history.record();
await frz.decide(ctx);
const decideMs = await time(() => frz.decide(ctx), reps);
const epochMs = stepsPerEpoch * stepMs;
const overhead = 30 * recordMs + decideMs;
console.log(`training step          ${stepMs.toFixed(1).padStart(8)} ms`);
console.log(`snapshot (all units)   ${recordMs.toFixed(2).padStart(8)} ms  × 30 per epoch`);
console.log(
  `decision (${built.units.length} units)    ${decideMs.toFixed(1).padStart(8)} ms  × 1 per epoch`,
);
console.log(
  `overhead per epoch     ${overhead.toFixed(0).padStart(8)} ms of ${epochMs.toFixed(0)} ms = ${
    (100 * overhead / epochMs).toFixed(2)
  }%`,
);
frz.dispose();
