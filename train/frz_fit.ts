/**
 * `deno task frz:fit`: trains the SmartFRZ predictor with this engine on the
 * runs `deno task frz:labels` recorded, and reports precision and recall of
 * "freeze" on runs held out by seed (the last seed of every workload) and by
 * architecture (each architecture's workloads left out in turn). The final predictor is fit
 * on every run and written with its card to `smartfrz/predictor.safetensors`
 * (`--save PATH` elsewhere).
 *
 * A sample is one unit's window of the last 30 snapshots at a snapshot
 * index n ≥ 30 of a run, labelled by the label rule at the last CKA probe at
 * or before n. Training draws balanced batches (as many "freeze" as "keep")
 * and augments each window with a random sign (and, for `--inputs raw`, a
 * random permutation of its 1,024 positions: they are random picks, so their
 * order carries nothing; sorted inputs ignore it anyway).
 * Held-out figures count only the probe points themselves.
 *
 * Runs recorded by `frz:labels --eval` (the comparison's architectures, other
 * seeds; `--eval DIR`, by default `runs/frz-eval` when it exists) are never
 * fit on: the final predictor is scored on them, and for each run the epochs
 * at which the online controller would freeze each unit are printed next to
 * the labels' oracle schedule. `--eval-only PREDICTOR` does only that (and
 * the same simulation on the label runs) for a saved predictor.
 *
 * ```
 * deno task frz:fit [--labels runs/frz-labels] [--steps 1200] [--holdout-steps 600] [--save PATH]
 *                   [--holdout seed,architecture|none] [--inputs sorted|raw]
 *                   [--eval runs/frz-eval|none] [--eval-only PREDICTOR]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { crossEntropy, keep, manualSeed, noGrad, optim, scope, tensor } from "../mod.ts";
import { gpu, initGpu } from "../engine/device.ts";
import { readSafetensorsFile } from "../engine/safetensors.ts";
import { saveSafetensors } from "../engine/checkpoint.ts";
import { convergenceLabels, DEFAULT_RULE, type LabelRule } from "../smartfrz/labels.ts";
import { FreezePredictor, loadPredictor, type PredictorInputs } from "../smartfrz/predictor.ts";
import { oracleSchedule } from "./frz_labels.ts";
import { Rng } from "../data/rng.ts";

const WINDOW = 30;

/** One unit of one recorded run. */
interface Series {
  workload: string;
  seed: number;
  unit: string;
  /** Steps per epoch and steps between snapshots of the run. */
  stepsPerEpoch: number;
  snapshotEvery: number;
  /** `[count, size]` snapshots. */
  snapshots: Float32Array;
  count: number;
  size: number;
  /** Snapshot count at each probe and the label there. */
  probeAt: number[];
  labels: boolean[];
}

/** A window: series, end (exclusive snapshot index), label, whether it is a probe point. */
interface Sample {
  s: Series;
  end: number;
  label: boolean;
  probe: boolean;
}

/** Loads every recorded run under `dir` with labels from `rule`. */
export async function loadSeries(dir: string, rule: LabelRule): Promise<Series[]> {
  // Every finished run: DIR/<workload>/s<seed>.safetensors (the runs in dataset.json, and any
  // finished since, so a fit can start while frz:labels is still recording).
  const index: { runs: { workload: string; seed: number; file: string }[] } = { runs: [] };
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (e) {
    throw new Error(`frz:fit: cannot read ${dir}: ${e instanceof Error ? e.message : e}`);
  }
  for (const w of entries.filter((e) => e.isDirectory).map((e) => e.name).sort()) {
    for (const e of [...Deno.readDirSync(`${dir}/${w}`)].map((e) => e.name).sort()) {
      const m = /^s(\d+)\.safetensors$/.exec(e);
      if (m) index.runs.push({ workload: w, seed: Number(m[1]), file: `${w}/${e}` });
    }
  }
  if (index.runs.length === 0) {
    throw new Error(`frz:fit: no recorded runs under ${dir} (run deno task frz:labels first)`);
  }
  const out: Series[] = [];
  for (const r of index.runs) {
    const f = await readSafetensorsFile(`${dir}/${r.file}`);
    const units = JSON.parse(f.metadata.units) as string[];
    const probeAt = Array.from(f.tensors["probe_at"].data);
    for (const u of units) {
      const snaps = f.tensors[`${u}.snapshots`];
      const cka = Array.from(f.tensors[`${u}.cka`].data);
      out.push({
        workload: r.workload,
        seed: r.seed,
        unit: u,
        stepsPerEpoch: Number(f.metadata.stepsPerEpoch),
        snapshotEvery: Number(f.metadata.snapshotEvery),
        snapshots: snaps.data as Float32Array,
        count: snaps.shape[0],
        size: snaps.shape[1],
        probeAt,
        labels: convergenceLabels(cka, rule),
      });
    }
  }
  return out;
}

/** Every window of the series (label: the last probe at or before its end). */
function samples(series: Series[]): Sample[] {
  const out: Sample[] = [];
  for (const s of series) {
    let p = -1;
    for (let end = WINDOW; end <= s.count; end++) {
      while (p + 1 < s.probeAt.length && s.probeAt[p + 1] <= end) p++;
      if (p < 0) continue;
      out.push({ s, end, label: s.labels[p], probe: s.probeAt[p] === end });
    }
  }
  return out;
}

/**
 * Packs windows into one `[B, WINDOW, size]` array, optionally augmented: a
 * random sign, and for a predictor reading raw inputs a random permutation of
 * the positions (sorted inputs do not depend on their order).
 */
function pack(batch: Sample[], rng: Rng | null, inputs: PredictorInputs): Float32Array {
  const size = batch[0].s.size;
  const out = new Float32Array(batch.length * WINDOW * size);
  batch.forEach((b, i) => {
    const perm = rng && inputs === "raw" ? rng.permutation(size) : null;
    const sign = rng && rng.next() < 0.5 ? -1 : 1;
    for (let t = 0; t < WINDOW; t++) {
      const src = (b.end - WINDOW + t) * size;
      const dst = (i * WINDOW + t) * size;
      for (let j = 0; j < size; j++) {
        out[dst + j] = sign * b.s.snapshots[src + (perm ? perm[j] : j)];
      }
    }
  });
  return out;
}

/** Trains a predictor on `train` for `steps` balanced batches. */
async function fit(
  train: Sample[],
  steps: number,
  seed: number,
  inputs: PredictorInputs,
  log: (l: string) => void,
) {
  manualSeed(seed);
  const rng = new Rng(seed);
  const size = train[0].s.size;
  const net = new FreezePredictor({ size, inputs });
  const opt = new optim.AdamW(net.parameters(), { lr: 1e-3, weightDecay: 0.01 });
  const pos = train.filter((s) => s.label), neg = train.filter((s) => !s.label);
  if (pos.length === 0 || neg.length === 0) {
    throw new Error(
      `frz:fit: the training windows hold ${pos.length} "freeze" and ${neg.length} "keep" labels; both are needed`,
    );
  }
  const B = 32;
  const lrAt = optim.cosineLR(1e-3, steps);
  let lossSum = keep(tensor([0]).sum());
  const t0 = performance.now();
  for (let step = 0; step < steps; step++) {
    opt.lr = lrAt(step);
    const batch: Sample[] = [];
    const labels = new Int32Array(B);
    for (let i = 0; i < B; i++) {
      const yes = i % 2 === 0;
      const from = yes ? pos : neg;
      batch.push(from[Math.floor(rng.next() * from.length)]);
      labels[i] = yes ? 1 : 0;
    }
    const x = pack(batch, rng, inputs);
    const l = scope(() => {
      const logits = net.forward(tensor(x, { shape: [B, WINDOW, size] }));
      const loss = crossEntropy(logits, tensor(labels, { dtype: "i32" }));
      loss.backward();
      opt.step();
      opt.zeroGrad();
      return keep(noGrad(() => lossSum.add(loss.detach())));
    });
    lossSum.dispose();
    lossSum = l;
    if ((step + 1) % 100 === 0 || step + 1 === steps) {
      const mean = (await lossSum.item()) / 100;
      lossSum.dispose();
      lossSum = keep(tensor([0]).sum());
      log(
        `  step ${step + 1}/${steps}: loss ${mean.toFixed(4)} (${
          ((performance.now() - t0) / 1000).toFixed(0)
        } s)`,
      );
    }
  }
  lossSum.dispose();
  net.eval();
  return net;
}

/** Precision, recall and counts of "freeze" at the probe points of `test`. */
async function score(net: FreezePredictor, test: Sample[]) {
  const probes = test.filter((s) => s.probe);
  let tp = 0, fp = 0, fn = 0, tn = 0;
  for (let i = 0; i < probes.length; i += 64) {
    const batch = probes.slice(i, i + 64);
    const x = tensor(pack(batch, null, net.inputs), {
      shape: [batch.length, WINDOW, batch[0].s.size],
    });
    const p = await net.freezeProbability(x);
    x.dispose();
    batch.forEach((b, k) => {
      const yes = p[k] > 0.5;
      if (yes && b.label) tp++;
      else if (yes) fp++;
      else if (b.label) fn++;
      else tn++;
    });
  }
  return {
    precision: tp / Math.max(tp + fp, 1),
    recall: tp / Math.max(tp + fn, 1),
    tp,
    fp,
    fn,
    tn,
  };
}

function fmt(r: Awaited<ReturnType<typeof score>>): string {
  return `precision ${(100 * r.precision).toFixed(1)}%, recall ${(100 * r.recall).toFixed(1)}% ` +
    `(tp ${r.tp}, fp ${r.fp}, fn ${r.fn}, tn ${r.tn})`;
}

/** P(freeze) of each window (batches of 64). */
async function probabilities(net: FreezePredictor, ws: Sample[]): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < ws.length; i += 64) {
    const batch = ws.slice(i, i + 64);
    const x = tensor(pack(batch, null, net.inputs), {
      shape: [batch.length, WINDOW, batch[0].s.size],
    });
    out.push(...await net.freezeProbability(x));
    x.dispose();
  }
  return out;
}

/**
 * What the online controller would do on each recorded run (asking at every
 * epoch's end, front to back, P(freeze) > 0.5), next to the labels' oracle
 * schedule: one line per run with each unit's freeze epoch, and each unit's
 * P(freeze) at every epoch's end.
 */
async function simulate(net: FreezePredictor, series: Series[]): Promise<string[]> {
  const lines: string[] = [];
  const runs = [...new Set(series.map((s) => `${s.workload}/s${s.seed}`))];
  for (const run of runs) {
    const units = series.filter((s) => `${s.workload}/s${s.seed}` === run);
    const { stepsPerEpoch: spe, snapshotEvery: every } = units[0];
    const epochs = Math.round((units[0].count * every) / spe);
    const ends: number[] = [];
    for (let e = 1; e <= epochs; e++) ends.push(Math.floor((e * spe) / every));
    const probs: number[][] = [];
    for (const u of units) {
      const ws = ends.filter((n) => n >= WINDOW && n <= u.count)
        .map((end) => ({ s: u, end, label: false, probe: false }));
      const p = ws.length ? await probabilities(net, ws) : [];
      probs.push(ends.map((n) => (n >= WINDOW && n <= u.count ? p.shift()! : NaN)));
    }
    // Front to back: at each epoch's end the leading run of active units with P > 0.5 freezes.
    const predicted = units.map(() => Infinity);
    let next = 0;
    ends.forEach((_, e) => {
      while (next < units.length && probs[next][e] > 0.5) predicted[next++] = e + 1;
    });
    const oracle = oracleSchedule(units.map((u) => u.labels), units[0].probeAt, every)
      .map((step) => step / spe);
    const ep = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "never");
    lines.push(
      `${run} (${spe} steps/epoch, a snapshot every ${every}): freeze epoch predicted / labels: ` +
        units.map((u, i) => `${u.unit} ${ep(predicted[i])} / ${ep(oracle[i])}`).join(", "),
    );
    units.forEach((u, i) =>
      lines.push(
        `  ${u.unit} P(freeze) at epoch ends: ${
          probs[i].map((p) => (Number.isNaN(p) ? "-" : p.toFixed(2))).join(" ")
        }`,
      )
    );
  }
  return lines;
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      labels: { type: "string", default: "runs/frz-labels" },
      steps: { type: "string", default: "1200" },
      "holdout-steps": { type: "string", default: "600" },
      save: { type: "string" },
      holdout: { type: "string", default: "seed,architecture" },
      inputs: { type: "string", default: "sorted" },
      seed: { type: "string", default: "0" },
      eval: { type: "string" },
      "eval-only": { type: "string" },
    },
  });
  await initGpu();
  console.log(`device: ${gpu().label}`);
  const count = (flag: string, v: string | undefined) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) {
      throw new Error(`--${flag}: expected a positive integer, got "${v}"`);
    }
    return n;
  };
  const steps = count("steps", values.steps);
  const holdoutSteps = count("holdout-steps", values["holdout-steps"]);
  const seed = Number(values.seed);
  const inputs = values.inputs as PredictorInputs;
  if (inputs !== "sorted" && inputs !== "raw") {
    throw new Error(`--inputs: expected sorted or raw, got "${inputs}"`);
  }
  // Evaluation runs (frz:labels --eval): scored, never fit on.
  // Read before any fitting, so that a wrong --eval fails at once; the default directory
  // counts only when it holds finished runs.
  const es = values.eval === "none"
    ? []
    : values.eval
    ? await loadSeries(values.eval, DEFAULT_RULE)
    : await loadSeries("runs/frz-eval", DEFAULT_RULE).catch(() => []);
  const evaluate = async (net: FreezePredictor, report: Record<string, string>) => {
    if (!es.length) return;
    for (const w of [...new Set(es.map((s) => s.workload))]) {
      const r = await score(net, samples(es.filter((s) => s.workload === w)));
      console.log(`evaluation run ${w} (never fit on): ${fmt(r)}`);
      report[`eval:${w}`] = fmt(r);
    }
    for (const l of await simulate(net, es)) console.log(l);
  };
  if (values["eval-only"]) {
    const { predictor } = await loadPredictor(values["eval-only"]);
    await evaluate(predictor, {});
    for (const l of await simulate(predictor, await loadSeries(values.labels!, DEFAULT_RULE))) {
      console.log(l);
    }
    predictor.dispose();
    return 0;
  }
  const series = await loadSeries(values.labels!, DEFAULT_RULE);
  const all = samples(series);
  const workloads = [...new Set(series.map((s) => s.workload))];
  console.log(
    `${series.length} unit series from ${workloads.length} workloads; ${all.length} windows, ` +
      `${all.filter((s) => s.label).length} labelled "freeze"; rule ${
        JSON.stringify(DEFAULT_RULE)
      }`,
  );
  const report: Record<string, string> = {};
  const holdouts = values.holdout === "none" ? [] : values.holdout!.split(",");
  for (const h of holdouts) {
    if (h !== "seed" && h !== "architecture") {
      throw new Error(`--holdout: expected seed, architecture or none, got "${h}"`);
    }
  }
  if (holdouts.length) report.holdoutSteps = String(holdoutSteps);
  if (holdouts.includes("seed")) {
    // Held out by seed: the last seed of every workload.
    const lastSeed = new Map<string, number>();
    for (const s of series) {
      lastSeed.set(s.workload, Math.max(lastSeed.get(s.workload) ?? 0, s.seed));
    }
    const heldSeed = (s: Sample) => s.s.seed === lastSeed.get(s.s.workload);
    console.log("held out by seed:");
    const a = await fit(all.filter((s) => !heldSeed(s)), holdoutSteps, seed, inputs, console.log);
    const r = await score(a, all.filter(heldSeed));
    a.dispose();
    console.log(`  ${fmt(r)}`);
    report.heldOutBySeed = fmt(r);
  }
  if (holdouts.includes("architecture")) {
    // Held out by architecture: each in turn, with every workload of it (mlp3-fashion and
    // mlp3-fashion-b32 are one architecture, "mlp3").
    const arch = (w: string) => w.split("-")[0];
    for (const a of [...new Set(workloads.map(arch))]) {
      console.log(`held out: ${a}`);
      const b = await fit(
        all.filter((s) => arch(s.s.workload) !== a),
        holdoutSteps,
        seed,
        inputs,
        console.log,
      );
      const rb = await score(b, all.filter((s) => arch(s.s.workload) === a));
      b.dispose();
      console.log(`  ${fmt(rb)}`);
      report[`heldOut:${a}`] = fmt(rb);
    }
  }
  console.log("final predictor (every run):");
  const net = await fit(all, steps, seed, inputs, console.log);
  await evaluate(net, report);
  const save = values.save ??
    new URL("../smartfrz/predictor.safetensors", import.meta.url).pathname;
  await saveSafetensors(save, net.stateDict(), {
    format: "frost FreezePredictor",
    inputs,
    data: `deno task frz:labels: ${workloads.join(", ")}`,
    runs: series.filter((s, i, a) =>
      a.findIndex((t) => t.workload === s.workload && t.seed === s.seed) === i
    )
      .map((s) => `${s.workload}/s${s.seed}`).join(", "),
    rule: JSON.stringify(DEFAULT_RULE),
    steps: String(steps),
    device: gpu().label,
    date: new Date().toISOString().slice(0, 10),
    ...report,
  });
  console.log(`saved ${save}`);
  return 0;
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
