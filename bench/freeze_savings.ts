/**
 * What freezing a prefix of a model's units saves: one training step (forward,
 * backward, AdamW update) timed and its peak GPU memory measured with the first
 * k units frozen, k = 0 (full training) .. all units, on the same model and
 * the same batch, in one process. The rows are the ceiling of what any
 * front-to-back freezing method (linear, AutoFreeze, SmartFRZ) can save on
 * this adapter.
 *
 * ```sh
 * deno run -A bench/freeze_savings.ts                      # bert-mini, batch 32 × 64 tokens
 * deno run -A bench/freeze_savings.ts --model resnet18 --width 16 --batch 32
 * deno run -A bench/freeze_savings.ts --reps 5 --json out.json
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { memoryStats, optim, resetPeakMemory, synchronize } from "../mod.ts";
import { gpu, initGpu } from "../engine/device.ts";
import { benchModel } from "./bench_model.ts";
import { FrozenPrefix } from "../smartfrz/units.ts";
import { median } from "./peers_ref.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", default: "bert-mini" },
    batch: { type: "string", default: "32" },
    tokens: { type: "string", default: "64" },
    width: { type: "string", default: "16" },
    reps: { type: "string", default: "3" },
    json: { type: "string" },
  },
});
const name = values.model!;
const B = Number(values.batch);
const T = Number(values.tokens);
const reps = Number(values.reps);
await initGpu();

const { built, step: stepWith } = benchModel(name, {
  batch: B,
  tokens: T,
  width: Number(values.width),
});
const opt = new optim.AdamW(built.model.parameters(), { lr: 1e-4 });
const prefix = new FrozenPrefix(built.units);

const step = () => stepWith(opt);

console.log(`${built.description} on ${gpu().label}, batch ${B}`);
const rows: { frozen: string; ms: number; peakMiB: number; savedTime: string; savedMem: string }[] =
  [];
for (let k = 0; k <= built.units.length; k++) {
  if (k > 0) prefix.freezeNext();
  step(); // compiles what this configuration needs
  await synchronize();
  resetPeakMemory();
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    step();
    await synchronize();
    times.push(performance.now() - t0);
  }
  const ms = median(times);
  const peakMiB = memoryStats().peakBytes / 2 ** 20;
  const base = rows[0] ?? { ms, peakMiB };
  const pct = (v: number, b: number) => `${(100 * (1 - v / b)).toFixed(1)}%`;
  rows.push({
    frozen: k === 0 ? "none" : `${k} (…${built.units[k - 1].name})`,
    ms,
    peakMiB,
    savedTime: pct(ms, base.ms),
    savedMem: pct(peakMiB, base.peakMiB),
  });
  const r = rows[rows.length - 1];
  console.log(
    `frozen ${r.frozen.padEnd(24)} step ${r.ms.toFixed(0).padStart(7)} ms (saves ${
      r.savedTime.padStart(6)
    }), peak ${r.peakMiB.toFixed(1).padStart(7)} MiB (saves ${r.savedMem.padStart(6)})`,
  );
}
if (values.json) {
  await Deno.writeTextFile(
    values.json,
    JSON.stringify(
      { model: built.description, batch: B, device: gpu().label, rows },
      null,
      2,
    ),
  );
}
