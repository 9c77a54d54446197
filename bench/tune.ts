/**
 * `deno task tune`: times every tile of the texture matmul on the products
 * the models of `deno task train` run (BERT-mini's linear layers forward and
 * backward, and square products), keeps the fastest per shape class for this
 * adapter, and writes them to the tuning file the engine reads
 * (engine/tune.ts: `FROST_TUNE_FILE`, else `~/.cache/frost/tune.json`).
 * Entries of other adapters in the file are kept.
 *
 *   deno task tune [--reps 3] [--dry-run]
 *
 * Times are GPU timestamps of the matmul kernel alone (the packing does not
 * depend on the tile), the minimum of `--reps` products after one untimed
 * product per tile, all tiles of a shape one after the other.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { dirname } from "node:path";
import * as F from "../mod.ts";
import { gpu } from "../engine/device.ts";
import { profile } from "../engine/profiler.ts";
import {
  defaultTexTile,
  matmulClass,
  parseTuning,
  setTuning,
  type TuningFile,
  tuningPath,
} from "../engine/tune.ts";
import { TEX_TILES } from "../kernels/matmul.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { reps: { type: "string", default: "3" }, "dry-run": { type: "boolean" } },
});
const reps = Number(values.reps);

/** `[M, K, N, transA, transB, what, batch]`: products of `batch` pairs of that shape. */
const SHAPES: [number, number, number, boolean, boolean, string, number?][] = [
  [2048, 256, 256, false, true, "BERT-mini q/k/v/out forward"],
  [2048, 256, 1024, false, true, "BERT-mini FFN up forward"],
  [2048, 1024, 256, false, true, "BERT-mini FFN down forward"],
  [2048, 256, 1024, false, false, "BERT-mini FFN down, input gradient"],
  [1024, 2048, 256, true, false, "BERT-mini FFN up, weight gradient"],
  [256, 2048, 256, true, false, "BERT-mini q/k/v/out weight gradient"],
  [256, 256, 256, false, false, "square 256"],
  [512, 512, 512, false, false, "square 512"],
  [1024, 1024, 1024, false, false, "square 1024"],
  [64, 64, 64, false, true, "BERT-mini attention q·kᵀ (32 sequences × 4 heads)", 128],
  [128, 64, 128, false, true, "128-token attention q·kᵀ (16 sequences × 8 heads)", 128],
];

const label = gpu().label;
console.log(`tuning the texture matmul on ${label}`);
const chosen: Record<string, string> = {};
const classCost: Record<string, number> = {};
let printed = 0;
const rows: string[] = [
  "| product | class | default ms | best tile | best ms | gain |",
  "|---|---|--:|---|--:|--:|",
];
for (const [M, K, N, transA, transB, what, batch = 1] of SHAPES) {
  const cls = matmulClass(M, N, K);
  const lead = batch > 1 ? [batch] : [];
  const a = F.randn([...lead, ...(transA ? [K, M] : [M, K])]);
  const b = F.randn([...lead, ...(transB ? [N, K] : [K, N])]);
  const ms: Record<string, number> = {};
  for (const name of Object.keys(TEX_TILES)) {
    setTuning({ format: 1, adapters: { [label]: { matmul_tex: { [cls]: name } } } });
    F.matmul(a, b, { transA, transB }).dispose(); // compile and warm up
    const { report } = await profile(() => {
      for (let i = 0; i < reps; i++) F.matmul(a, b, { transA, transB }).dispose();
    });
    const k = report.kernels.find((x) => x.name.startsWith("matmul_tex"));
    ms[name] = k ? k.totalMs / k.calls : Infinity;
  }
  a.dispose();
  b.dispose();
  const def = Object.keys(TEX_TILES).find((k) => TEX_TILES[k] === defaultTexTile(M, N))!;
  const best = Object.keys(ms).reduce((p, q) => (ms[q] < ms[p] ? q : p), def);
  // Several products may share a class: the costliest one measured decides.
  if (!(ms[def] <= classCost[cls])) {
    classCost[cls] = ms[def];
    chosen[cls] = best;
  }
  rows.push(
    `| ${what} [${batch > 1 ? `${batch}× ` : ""}${M}×${K}·${K}×${N}] | ${cls} | ${
      ms[def].toFixed(2)
    } | ${best} | ${ms[best].toFixed(2)} | ${(ms[def] / ms[best]).toFixed(2)}× |`,
  );
  console.log(rows.slice(printed).join("\n"));
  printed = rows.length;
}
setTuning(undefined);

const path = tuningPath();
let file: TuningFile = { format: 1, adapters: {} };
try {
  file = parseTuning(await Deno.readTextFile(path), path);
} catch (e) {
  if (!(e instanceof Deno.errors.NotFound)) {
    console.warn(`replacing ${path}: ${(e as Error).message}`);
  }
}
file.adapters[label] = { ...file.adapters[label], matmul_tex: chosen };
if (values["dry-run"]) {
  console.log(JSON.stringify(file, null, 2));
} else {
  await Deno.mkdir(dirname(path), { recursive: true });
  await Deno.writeTextFile(path, JSON.stringify(file, null, 2) + "\n");
  console.log(`wrote ${path}`);
}
