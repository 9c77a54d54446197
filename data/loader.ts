/**
 * Seeded, resumable mini-batch iteration over an {@link ImageSet}.
 *
 * The order of epoch `e` is a pure function of `(seed, e)` (see
 * {@link EpochLoader}, which keeps the epoch, position and order). Augmentation
 * of sample `i` in epoch `e` draws from `augmentRng(seed, e, i)`. So a
 * loader's whole position is two integers (epoch, samples consumed in it),
 * and a run resumed from a checkpoint sees exactly the batches it would have
 * seen, augmented ones included.
 *
 * @module
 */

import {
  type Augment,
  augmentRng,
  channelStats,
  type FloatImage,
  type SampleShape,
} from "./augment.ts";
import { EpochLoader, type EpochLoaderOptions } from "./epoch_loader.ts";
import type { ImageSet } from "./image_set.ts";

export type { LoaderState } from "./epoch_loader.ts";

/** Fashion-MNIST training-set pixel mean, on the 0..1 scale. */
export const FASHION_MNIST_MEAN = 0.2860;
/** Fashion-MNIST training-set pixel standard deviation, on the 0..1 scale. */
export const FASHION_MNIST_STD = 0.3530;

/** Options for {@link BatchLoader}. */
export interface BatchLoaderOptions extends EpochLoaderOptions {
  /**
   * Mean subtracted from pixels scaled to 0..1: one value for every channel
   * or one per channel (e.g. `CIFAR10_MEAN`); default {@link FASHION_MNIST_MEAN}.
   */
  mean?: number | readonly number[];
  /**
   * Divisor applied after subtracting the mean: one value or one per channel
   * (e.g. `CIFAR10_STD`); default {@link FASHION_MNIST_STD}.
   */
  std?: number | readonly number[];
  /**
   * Augmentation steps applied in order to each sample (pixels on the 0..1
   * scale) before normalisation, while the batch is built; sample `i` of
   * epoch `e` draws from `augmentRng(seed, e, i)`. Default: none.
   */
  augment?: readonly Augment[];
  /** Build batch i+1 while the consumer works on batch i (default true). */
  prefetch?: boolean;
}

/** One mini-batch. */
export interface Batch {
  /** Normalised pixels, `size` samples of {@link BatchLoader.sampleShape}, NCHW. */
  x: Float32Array;
  /** Labels, `size` of them. */
  y: Int32Array;
  /** Number of samples in this batch. */
  size: number;
  /** Dataset indices of the samples, in batch order. */
  indices: Uint32Array;
}

/**
 * Batch iterator with seeded per-epoch shuffling, normalisation to float32,
 * one-ahead prefetch and save/restore of its position.
 *
 * @example
 * ```ts
 * import { BatchLoader, loadFashionMnist } from "./mod.ts";
 *
 * const { train } = await loadFashionMnist();
 * const loader = new BatchLoader(train, { batchSize: 128, shuffle: true, seed: 1 });
 * for (let e = 0; e < 2; e++) {
 *   for await (const { x, y, size } of loader.batches()) {
 *     // x: Float32Array(size*1*28*28), y: Int32Array(size)
 *   }
 * }
 * const checkpoint = loader.state(); // { epoch: 2, position: 0, seed: 1 }
 * ```
 */
export class BatchLoader extends EpochLoader<ImageSet, Batch> {
  /** Whether batch i+1 is built while batch i is in use. */
  readonly prefetch: boolean;
  /** Augmentation steps applied to each sample, in order (empty: none). */
  readonly augment: readonly Augment[];
  /** Per-channel lookup tables byte -> normalised value, 256 entries per channel. */
  #lut: Float32Array;
  #mean: number[];
  #std: number[];
  #outShape: [number, number, number];

  /**
   * Creates a loader positioned at the start of epoch 0.
   *
   * @param set Images and labels to iterate over.
   * @param opts Batch size and iteration options.
   *
   * @example
   * ```ts
   * import { BatchLoader, type ImageSet } from "./mod.ts";
   *
   * const set: ImageSet = {
   *   images: new Uint8Array(4 * 4), labels: new Uint8Array([0, 1, 0, 1]),
   *   n: 4, height: 2, width: 2, channels: 1, classes: ["a", "b"],
   * };
   * const loader = new BatchLoader(set, { batchSize: 3, mean: 0, std: 1 });
   * console.log(loader.batchesPerEpoch); // 2
   * ```
   */
  constructor(set: ImageSet, opts: BatchLoaderOptions) {
    const prefetch = opts.prefetch ?? true;
    super("BatchLoader", set, opts, prefetch);
    const augment = [...(opts.augment ?? [])];
    const per = set.channels * set.height * set.width;
    if (set.images.length !== set.n * per || set.labels.length !== set.n) {
      throw new Error(
        `BatchLoader: ImageSet sizes disagree: n=${set.n}, ${set.channels}x${set.height}x` +
          `${set.width}, ${set.images.length} pixels, ${set.labels.length} labels`,
      );
    }
    this.prefetch = prefetch;
    this.augment = augment;
    let shape: [number, number, number] = [set.channels, set.height, set.width];
    for (const a of augment) {
      try {
        shape = a.outputShape(shape);
      } catch (e) {
        throw new Error(`BatchLoader: augment ${a.name}: ${e instanceof Error ? e.message : e}`);
      }
    }
    this.#outShape = shape;
    try {
      ({ mean: this.#mean, std: this.#std } = channelStats(
        opts.mean ?? FASHION_MNIST_MEAN,
        opts.std ?? FASHION_MNIST_STD,
        shape[0],
      ));
    } catch (e) {
      throw new Error(`BatchLoader: ${e instanceof Error ? e.message : e}`);
    }
    // 256 possible byte values: normalising through a table costs one load per pixel.
    this.#lut = new Float32Array(augment.length === 0 ? 256 * set.channels : 0);
    if (augment.length === 0) {
      for (let c = 0; c < set.channels; c++) {
        for (let v = 0; v < 256; v++) {
          this.#lut[c * 256 + v] = (v / 255 - this.#mean[c]) / this.#std[c];
        }
      }
    }
  }

  /**
   * The shape of one sample in a batch, `[channels, height, width]`: the
   * set's, as changed by the augment steps (crops, resizes).
   *
   * @example
   * ```ts
   * import { BatchLoader, type ImageSet, randomCrop } from "./mod.ts";
   *
   * const set: ImageSet = {
   *   images: new Uint8Array(2 * 3 * 8 * 8), labels: new Uint8Array(2),
   *   n: 2, height: 8, width: 8, channels: 3, classes: ["a"],
   * };
   * const loader = new BatchLoader(set, { batchSize: 2, mean: 0.5, std: 0.25, augment: [randomCrop(6)] });
   * console.log(loader.sampleShape); // [3, 6, 6]
   * ```
   */
  get sampleShape(): SampleShape {
    return [...this.#outShape];
  }

  /** Fills a batch with `order[start .. start+size)` of epoch `epoch`. */
  protected override buildBatch(
    order: Uint32Array,
    start: number,
    size: number,
    epoch: number,
  ): Batch {
    const { images, labels, channels, height, width } = this.set;
    const hw = height * width;
    const per = channels * hw;
    const [oc, oh, ow] = this.#outShape;
    const outPer = oc * oh * ow;
    const lut = this.#lut;
    const x = new Float32Array(size * outPer);
    const y = new Int32Array(size);
    const indices = order.slice(start, start + size);
    for (let b = 0; b < size; b++) {
      const i = indices[b];
      y[b] = labels[i];
      const src = i * per;
      const dst = b * outPer;
      if (this.augment.length === 0) {
        for (let c = 0; c < channels; c++) {
          const s = src + c * hw, d = dst + c * hw, l = c * 256;
          for (let p = 0; p < hw; p++) x[d + p] = lut[l + images[s + p]];
        }
        continue;
      }
      const data = new Float32Array(per);
      for (let p = 0; p < per; p++) data[p] = images[src + p] / 255;
      let img: FloatImage = { data, channels, height, width };
      const rng = augmentRng(this.seed, epoch, i);
      for (const a of this.augment) img = a.apply(img, rng);
      if (img.channels !== oc || img.height !== oh || img.width !== ow) {
        throw new Error(
          `BatchLoader: augments produced a ${img.channels}x${img.height}x${img.width} sample, ` +
            `their outputShape() said ${oc}x${oh}x${ow}`,
        );
      }
      const ohw = oh * ow;
      for (let c = 0; c < oc; c++) {
        const m = this.#mean[c], sd = this.#std[c];
        const s = c * ohw, d = dst + c * ohw;
        for (let p = 0; p < ohw; p++) x[d + p] = (img.data[s + p] - m) / sd;
      }
    }
    return { x, y, size, indices };
  }
}
