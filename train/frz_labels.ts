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
 * deno task frz:labels [--out runs/frz-labels] [--quick] [--only NAME,...]
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
  type UnitRecord,
} from "../smartfrz/labels.ts";
import { prepareData } from "./datasets.ts";
import { buildModel, type BuiltModel } from "./models.ts";
import { makeOptimizer, parseTrainArgs, schedule, type TrainArgs, warmupSteps } from "./main.ts";
import { train } from "./trainer.ts";

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
}

/**
 * The workloads: architectures that are not the comparison's (`frz:compare`
 * trains resnet18 and bert-mini), sized to run on a CPU adapter.
 */
export const WORKLOADS: LabelWorkload[] = [
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
  for await (const b of data.test.batches()) pb ??= b;
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

async function trainRun(
  w: LabelWorkload,
  seed: number,
  epochs: number,
  makeHooks: (s: Setup) => Promise<LabelRecorder[]>,
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
  return { s, accuracy: history[history.length - 1].testAccuracy, hooks };
}

/** Trains (or loads) the workload's reference model; returns its state-dict path. */
async function reference(w: LabelWorkload, dir: string): Promise<string> {
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

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: "string", default: "runs/frz-labels" },
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      "Usage: deno task frz:labels [--out DIR] [--quick] [--only NAME,...]\n\n" +
        `Workloads: ${WORKLOADS.map((w) => w.name).join(", ")}`,
    );
    return 0;
  }
  await initGpu();
  console.log(`device: ${gpu().label}`);
  const only = values.only?.split(",");
  const workloads = (values.quick ? QUICK : WORKLOADS).filter((w) =>
    !only || only.includes(w.name)
  );
  const out = values.out!;
  for (const w of workloads) {
    const dir = `${out}/${w.name}`;
    await Deno.mkdir(dir, { recursive: true });
    const ref = await reference(w, dir);
    for (const seed of w.seeds) await recordRun(w, seed, dir, ref);
  }
  await writeIndex(out, values.quick ? QUICK : WORKLOADS);
  console.log(`dataset: ${out}/dataset.json`);
  return 0;
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
