/**
 * `deno task frz:labels`: the training data of the SmartFRZ predictor. For
 * each workload it trains a reference model (or loads it), then fresh runs
 * that record every tailored weight snapshot of each unit and, three times per
 * epoch, the linear CKA between each unit's output and the reference model's
 * same unit on a fixed probe batch of held-out inputs. Each finished run is
 * saved (`OUT/<workload>/s<seed>.safetensors`) and skipped when the command
 * is run again, so it may be stopped at any moment. At the end it writes
 * `OUT/dataset.json`: the runs, the label rule and each unit's labels.
 *
 * ```
 * deno task frz:labels [--out runs/frz-labels] [--quick] [--eval] [--only NAME,...]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { manualSeed, type Tensor, tensor } from "../mod.ts";
import { gpu, initGpu } from "../engine/device.ts";
import { readSafetensorsFile } from "../engine/safetensors.ts";
import { loadSafetensors, saveSafetensors } from "../engine/checkpoint.ts";
import {
  captureUnitOutputs,
  convergenceLabels,
  DEFAULT_RULE,
  LabelRecorder,
  type LabelRule,
  type UnitRecord,
} from "../smartfrz/labels.ts";
import { prepareData } from "./datasets.ts";
import { buildModel, type BuiltModel } from "./models.ts";
import { makeOptimizer, parseTrainArgs, schedule, type TrainArgs, warmupSteps } from "./main.ts";
import { train, type TrainerHook } from "./trainer.ts";
import { FrozenPrefix } from "../smartfrz/units.ts";
import { WORKLOADS as COMPARE_WORKLOADS } from "./frz_compare.ts";
import type { StepContext } from "../smartfrz/hooks.ts";

/** One kind of training run the labels come from. */
export interface LabelWorkload {
  /** Name (a directory under OUT). */
  name: string;
  /** `deno task train` flags. */
  flags: string[];
  /** Seeds of the recorded runs. */
  seeds: number[];
  /** Epochs of the reference model (the recorded runs use `--epochs` from flags). */
  referenceEpochs: number;
  /**
   * Another workload of the same model and data whose reference model this
   * one shares (its file is trained, or loaded, under that workload's name).
   */
  referenceOf?: string;
}

/** Four small architectures, at the CLI's default batch sizes. */
const BASE: LabelWorkload[] = [
  {
    name: "mlp3-fashion",
    flags: ["--model", "mlp3", "--hidden", "256", "--train-limit", "10000", "--epochs", "10"],
    seeds: [1, 2, 3],
    referenceEpochs: 15,
  },
  {
    name: "resnet10w8-fashion",
    flags: [
      "--model",
      "resnet10",
      "--width",
      "8",
      "--train-limit",
      "4096",
      "--epochs",
      "8",
    ],
    seeds: [1, 2],
    referenceEpochs: 12,
  },
  {
    name: "vggmini-fashion",
    flags: ["--model", "vgg-mini", "--train-limit", "4096", "--epochs", "8"],
    seeds: [1, 2],
    referenceEpochs: 12,
  },
  {
    name: "berttiny-spam",
    flags: [
      "--model",
      "bert-tiny",
      "--dataset",
      "spam",
      "--max-length",
      "64",
      "--train-limit",
      "2000",
      "--epochs",
      "8",
    ],
    seeds: [1, 2],
    referenceEpochs: 12,
  },
];

/**
 * The same four again at a smaller batch (16 for BERT, 32 otherwise), sharing
 * their reference models: 125-313 steps per epoch, so that the predictor also
 * sees windows 4-10 steps apart (the comparison's ResNet-18 takes a snapshot
 * every 5 steps; the runs above every 1-2).
 */
const DENSE: LabelWorkload[] = BASE.map((w) => {
  const batch = w.flags.includes("bert-tiny") ? 16 : 32;
  return {
    ...w,
    name: `${w.name}-b${batch}`,
    flags: [...w.flags, "--batch-size", String(batch)],
    seeds: [1, 2],
    referenceOf: w.name,
  };
});

/**
 * The workloads: architectures that are not the comparison's (`frz:compare`
 * trains resnet18 and bert-mini), sized to run on a CPU adapter.
 */
export const WORKLOADS: LabelWorkload[] = [...BASE, ...DENSE];

/**
 * Workloads recorded only to check a predictor on the comparison's own
 * architectures (`deno task frz:labels --eval`, into `runs/frz-eval`):
 * `frz:fit --eval` scores its predictor on them and never fits on them. Their
 * seeds are not the comparison's (1-3).
 */
export const EVAL_WORKLOADS: LabelWorkload[] = [
  {
    name: "resnet18w8-fashion",
    flags: COMPARE_WORKLOADS.find((w) => w.name === "resnet18-fashion")!.flags,
    seeds: [11],
    referenceEpochs: 15,
  },
];

const QUICK: LabelWorkload[] = [
  {
    name: "quick-mlp3",
    flags: ["--model", "mlp3", "--hidden", "32", "--train-limit", "1024", "--epochs", "3"],
    seeds: [1],
    referenceEpochs: 3,
  },
];

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Builds model, data and optimizer for one run (as `deno task train` would). */
async function setup(w: LabelWorkload, seed: number, epochs: number) {
  const args = parseTrainArgs([...w.flags, "--seed", String(seed), "--epochs", String(epochs)])!;
  const data = await prepareData(args);
  manualSeed(args.seed);
  const [channels, height, width] = data.train.sampleShape;
  const shape = { channels, height, width, classes: data.classes.length, text: data.text };
  const built = buildModel(args.model, shape, args);
  const total = args.epochs * data.train.batchesPerEpoch;
  const a: TrainArgs = { ...args, warmup: warmupSteps(args, total) };
  const optimizer = makeOptimizer(a, built.model.parameters());
  // The probe: the first held-out batch (500 images or 256 texts), never trained on.
  let pb = null;
  for await (const b of data.test.batches()) {
    pb = b;
    break;
  }
  const probeShape = [pb!.size, ...(pb!.shape ?? built.sampleShape)];
  const probeWith = (m: BuiltModel) => () => {
    const x = tensor(pb!.x, { shape: probeShape });
    return m.forward ? m.forward(x) : m.model.forward(x);
  };
  return {
    args: a,
    data,
    built,
    optimizer,
    total,
    probeWith,
    rebuild: () => buildModel(args.model, shape, args),
  };
}

type Setup = Awaited<ReturnType<typeof setup>>;

async function trainRun<H extends TrainerHook>(
  w: LabelWorkload,
  seed: number,
  epochs: number,
  makeHooks: (s: Setup) => Promise<H[]>,
) {
  const s = await setup(w, seed, epochs);
  const hooks = await makeHooks(s);
  const history = await train({
    model: s.built.model,
    optimizer: s.optimizer,
    train: s.data.train,
    test: s.data.test,
    sampleShape: s.built.sampleShape,
    forward: s.built.forward,
    epochs,
    lrAt: schedule(s.args, s.total),
    evalEvery: epochs,
    hooks,
    progress: false,
    print: (l) => console.log(`  ${l}`),
  });
  return { s, accuracy: history[history.length - 1].testAccuracy, hooks, history };
}

/** Trains (or loads) the workload's reference model; returns its state-dict path. */
async function reference(w: LabelWorkload, out: string, all: LabelWorkload[]): Promise<string> {
  if (w.referenceOf) {
    const of = all.find((o) => o.name === w.referenceOf);
    if (!of) throw new Error(`frz:labels: ${w.name}: no workload "${w.referenceOf}" to share`);
    return reference(of, out, all);
  }
  const dir = `${out}/${w.name}`;
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}/reference.safetensors`;
  if (await exists(path)) return path;
  console.log(`${w.name}: reference model (seed 1000, ${w.referenceEpochs} epochs)`);
  const { s, accuracy } = await trainRun(w, 1000, w.referenceEpochs, () => Promise.resolve([]));
  await saveSafetensors(`${path}.tmp`, s.built.model.stateDict(), {
    accuracy: String(accuracy),
    epochs: String(w.referenceEpochs),
  });
  await Deno.rename(`${path}.tmp`, path);
  s.built.model.dispose();
  return path;
}

/** One recorded run, saved to `dir/s<seed>.safetensors`. */
async function recordRun(w: LabelWorkload, seed: number, dir: string, refPath: string) {
  const path = `${dir}/s${seed}.safetensors`;
  if (await exists(path)) {
    console.log(`${w.name} seed ${seed}: done before (${path})`);
    return;
  }
  const epochs = parseTrainArgs(w.flags)!.epochs;
  console.log(`${w.name} seed ${seed}: recording ${epochs} epochs`);
  const t0 = performance.now();
  let refOuts: Tensor[] = [];
  const { s, accuracy, hooks } = await trainRun(w, seed, epochs, async (s) => {
    // The reference's unit outputs on the probe batch, computed once and kept.
    const ref = s.rebuild();
    const sd = await loadSafetensors(refPath);
    ref.model.loadStateDict(sd);
    for (const t of Object.values(sd)) t.dispose();
    ref.model.eval();
    refOuts = captureUnitOutputs(ref.units, s.probeWith(ref));
    ref.model.dispose();
    return [
      new LabelRecorder({
        units: s.built.units,
        probe: s.probeWith(s.built),
        reference: refOuts,
        mode: s.built.model,
        stepsPerEpoch: s.data.train.batchesPerEpoch,
        epochs,
        seed,
      }),
    ];
  });
  const rec = hooks[0];
  const units: UnitRecord[] = await rec.result();
  for (const t of refOuts) t.dispose();
  const tensors: Record<string, Tensor> = {
    probe_at: tensor(Int32Array.from(rec.probeAt), { dtype: "i32" }),
  };
  for (const u of units) {
    tensors[`${u.name}.snapshots`] = tensor(u.snapshots, {
      shape: [u.count, u.snapshots.length / Math.max(u.count, 1)],
    });
    tensors[`${u.name}.cka`] = tensor(Float32Array.from(u.cka));
  }
  await saveSafetensors(`${path}.tmp`, tensors, {
    workload: w.name,
    flags: JSON.stringify(w.flags),
    seed: String(seed),
    accuracy: String(accuracy),
    stepsPerEpoch: String(s.data.train.batchesPerEpoch),
    snapshotEvery: String(rec.snapshotEvery),
    units: JSON.stringify(units.map((u) => u.name)),
    seconds: ((performance.now() - t0) / 1000).toFixed(1),
  });
  await Deno.rename(`${path}.tmp`, path);
  for (const t of Object.values(tensors)) t.dispose();
  s.built.model.dispose();
  const cka = units.map((u) => `${u.name} ${u.cka.at(-1)?.toFixed(3)}`).join(", ");
  console.log(`  saved ${path}: accuracy ${(100 * accuracy).toFixed(2)}%, final CKA ${cka}`);
}

/** Writes `OUT/dataset.json` from the saved runs. */
async function writeIndex(out: string, workloads: LabelWorkload[]): Promise<void> {
  const runs = [];
  for (const w of workloads) {
    for (const seed of w.seeds) {
      const path = `${out}/${w.name}/s${seed}.safetensors`;
      if (!(await exists(path))) continue;
      const f = await readSafetensorsFile(path);
      const meta = f.metadata;
      const units = JSON.parse(meta.units) as string[];
      runs.push({
        workload: w.name,
        seed,
        file: `${w.name}/s${seed}.safetensors`,
        accuracy: Number(meta.accuracy),
        stepsPerEpoch: Number(meta.stepsPerEpoch),
        snapshotEvery: Number(meta.snapshotEvery),
        units: units.map((u) => {
          const c = Array.from(f.tensors[`${u}.cka`].data as Float32Array);
          return { name: u, cka: c, labels: convergenceLabels(c, DEFAULT_RULE) };
        }),
        probeAt: Array.from(f.tensors["probe_at"].data as Int32Array),
      });
    }
  }
  await Deno.writeTextFile(
    `${out}/dataset.json`,
    JSON.stringify({ rule: DEFAULT_RULE, device: gpu().label, runs }, null, 1) + "\n",
  );
}

/** Freezes unit i after step `at[i]` (front to back; Infinity: never). */
class ScheduledFreezing extends FrozenPrefix implements TrainerHook {
  readonly #at: number[];
  constructor(
    units: ConstructorParameters<typeof FrozenPrefix>[0],
    at: number[],
    optimizer: Setup["optimizer"],
  ) {
    super(units, { optimizer });
    this.#at = at;
  }
  onStepEnd(ctx: StepContext): void {
    while (this.count < this.units.length && ctx.step >= this.#at[this.count]) this.freezeNext();
  }
}

/** The rules the sweep tries (window 6 probes ≈ 1.5-2 epochs). */
export const SWEEP_RULES: LabelRule[] = [
  { window: 6, maxVariance: 1e-3, floor: 0.98 },
  { window: 6, maxVariance: 1e-4, floor: 0.98 },
  { window: 6, maxVariance: 1e-5, floor: 0.98 },
  { window: 6, maxVariance: 1e-6, floor: 0.98 },
  { window: 6, maxVariance: 1e-4, floor: 0.9 },
  { window: 6, maxVariance: 1e-4, floor: 0.995 },
];

/**
 * Freeze steps a rule gives a recorded run: each unit at its first
 * "converged" probe, never before the unit in front of it.
 */
export function oracleSchedule(
  labels: boolean[][],
  probeAt: number[],
  snapshotEvery: number,
): number[] {
  let prev = 0;
  return labels.map((ls) => {
    const first = ls.findIndex((v, p) => v && probeAt[p] * snapshotEvery >= prev);
    prev = first < 0 || !Number.isFinite(prev) ? Infinity : probeAt[first] * snapshotEvery;
    return prev;
  });
}

/**
 * The label-rule sweep: for each rule and recorded run, trains the run again
 * with its units frozen where the rule's labels say (an oracle schedule), and
 * once without freezing; writes accuracy, training time and FLOPs to
 * `OUT/sweep.json` (finished entries are skipped on a restart).
 */
async function sweep(out: string, workloads: LabelWorkload[], rules: LabelRule[]): Promise<void> {
  const path = `${out}/sweep.json`;
  const done: Record<string, unknown>[] = await Deno.readTextFile(path).then(
    (t) => JSON.parse(t).entries,
    () => [],
  );
  const key = (w: string, seed: number, rule: LabelRule | null) =>
    `${w}/${seed}/${rule ? JSON.stringify(rule) : "none"}`;
  const have = new Set(done.map((e) => e.key as string));
  for (const w of workloads) {
    for (const seed of w.seeds) {
      const file = `${out}/${w.name}/s${seed}.safetensors`;
      if (!(await exists(file))) continue;
      const f = await readSafetensorsFile(file);
      const units = JSON.parse(f.metadata.units) as string[];
      const probeAt = Array.from(f.tensors["probe_at"].data);
      const every = Number(f.metadata.snapshotEvery);
      const cka = units.map((u) => Array.from(f.tensors[`${u}.cka`].data));
      const epochs = parseTrainArgs(w.flags)!.epochs;
      let warm = false;
      for (const rule of [null, ...rules]) {
        const k = key(w.name, seed, rule);
        if (have.has(k)) continue;
        if (!warm) {
          // One epoch first, thrown away: it compiles every pipeline, which the timed runs
          // would otherwise pay unequally (only the first run in this process would).
          console.log(`sweep ${w.name}: warm-up epoch`);
          (await trainRun(w, seed, 1, () => Promise.resolve([]))).s.built.model.dispose();
          warm = true;
        }
        const at = rule
          ? oracleSchedule(cka.map((c) => convergenceLabels(c, rule)), probeAt, every)
          : units.map(() => Infinity);
        console.log(
          `sweep ${w.name} seed ${seed} rule ${
            rule ? JSON.stringify(rule) : "none"
          }: freeze at steps ${at.join(", ")}`,
        );
        const { history, s } = await trainRun(
          w,
          seed,
          epochs,
          (s) => Promise.resolve([new ScheduledFreezing(s.built.units, at, s.optimizer)]),
        );
        s.built.model.dispose();
        done.push({
          key: k,
          workload: w.name,
          seed,
          rule,
          freezeSteps: at.map((x) => (Number.isFinite(x) ? x : null)),
          stepsPerEpoch: s.data.train.batchesPerEpoch,
          accuracy: history[history.length - 1].testAccuracy,
          seconds: history.reduce((a, r) => a + r.seconds, 0),
          flops: history.reduce((a, r) => a + (r.flops ?? 0), 0),
        });
        await Deno.writeTextFile(
          `${path}.tmp`,
          JSON.stringify({ device: gpu().label, entries: done }, null, 1) + "\n",
        );
        await Deno.rename(`${path}.tmp`, path);
      }
    }
  }
  // Summary: per workload and rule, mean accuracy and savings against "none" of the same seed.
  for (const w of workloads) {
    const base = new Map(
      done.filter((e) => e.workload === w.name && e.rule === null).map((e) => [e.seed, e]),
    );
    for (const rule of rules) {
      const es = done.filter((e) =>
        e.workload === w.name && JSON.stringify(e.rule) === JSON.stringify(rule) && base.has(e.seed)
      );
      if (!es.length) continue;
      const m = (f: (e: Record<string, number>) => number) =>
        es.reduce((a, e) => a + f(e as Record<string, number>), 0) / es.length;
      const b = (e: Record<string, number>) => base.get(e.seed as number) as Record<string, number>;
      console.log(
        `${w.name} ${JSON.stringify(rule)}: accuracy ${
          (100 * m((e) => e.accuracy - b(e).accuracy)).toFixed(2)
        } pt against none, ` +
          `time saved ${(100 * m((e) => 1 - e.seconds / b(e).seconds)).toFixed(1)}%, FLOPs saved ${
            (100 * m((e) => 1 - e.flops / b(e).flops)).toFixed(1)
          }% (${es.length} seeds)`,
      );
    }
  }
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: "string" },
      quick: { type: "boolean", default: false },
      eval: { type: "boolean", default: false },
      only: { type: "string" },
      sweep: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      "Usage: deno task frz:labels [--out DIR] [--quick] [--eval] [--only NAME,...] [--sweep]\n\n" +
        "--sweep retrains the recorded runs with oracle freezing schedules from each candidate " +
        "label rule and reports accuracy and savings.\n" +
        "--eval records the evaluation workloads (the comparison's architectures, other seeds) " +
        "into runs/frz-eval; frz:fit --eval scores its predictor on them.\n\n" +
        `Workloads: ${WORKLOADS.map((w) => w.name).join(", ")}\n` +
        `Evaluation workloads: ${EVAL_WORKLOADS.map((w) => w.name).join(", ")}`,
    );
    return 0;
  }
  await initGpu();
  console.log(`device: ${gpu().label}`);
  const only = values.only?.split(",");
  const all = values.quick ? QUICK : values.eval ? EVAL_WORKLOADS : WORKLOADS;
  const workloads = all.filter((w) => !only || only.includes(w.name));
  const out = values.out ?? (values.eval ? "runs/frz-eval" : "runs/frz-labels");
  if (values.sweep) {
    await sweep(out, workloads, SWEEP_RULES);
    return 0;
  }
  for (const w of workloads) {
    const dir = `${out}/${w.name}`;
    await Deno.mkdir(dir, { recursive: true });
    const ref = await reference(w, out, all);
    for (const seed of w.seeds) await recordRun(w, seed, dir, ref);
  }
  await writeIndex(out, all);
  console.log(`dataset: ${out}/dataset.json`);
  return 0;
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
