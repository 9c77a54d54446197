/**
 * The datasets `deno task train --dataset NAME` can read, with the loaders
 * and augmentation each one trains with.
 *
 * @module
 */

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

/** Names accepted by `--dataset`. */
export const DATASETS = ["fashion-mnist", "mnist", "cifar10", "cifar100", "folder"];

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
}

/** Loaded data and its loaders. */
export interface PreparedData {
  /** Both splits and where they came from. */
  ds: ImageDataset;
  /** Training batches (shuffled, augmented). */
  train: BatchLoader;
  /** Held-out batches. */
  test: BatchLoader;
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
  const train = new BatchLoader(ds.train, {
    batchSize: a.batchSize,
    shuffle: true,
    seed: a.seed,
    mean,
    std,
    augment,
  });
  const test = new BatchLoader(ds.test, { batchSize: 500, mean, std });
  return { ds, train, test };
}
