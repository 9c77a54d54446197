/**
 * Seeded, resumable mini-batch iteration over an {@link ImageSet}.
 *
 * The order of epoch `e` is a pure function of `(seed, e)`: its permutation
 * comes from an {@link Rng} seeded with `mixSeed(seed, e)`. Augmentation of
 * sample `i` in epoch `e` draws from `augmentRng(seed, e, i)`. So a loader's
 * whole position is two integers (epoch, samples consumed in it), and a run
 * resumed from a checkpoint sees exactly the batches it would have seen,
 * augmented ones included.
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
import type { ImageSet } from "./image_set.ts";
import { mixSeed, Rng } from "./rng.ts";

/** Fashion-MNIST training-set pixel mean, on the 0..1 scale. */
export const FASHION_MNIST_MEAN = 0.2860;
/** Fashion-MNIST training-set pixel standard deviation, on the 0..1 scale. */
export const FASHION_MNIST_STD = 0.3530;

/** Options for {@link BatchLoader}. */
export interface BatchLoaderOptions {
  /** Samples per batch (the last one may be smaller unless `dropLast`). */
  batchSize: number;
  /** Reshuffle every epoch (default false: dataset order). */
  shuffle?: boolean;
  /** Seed of the shuffles (default 0). */
  seed?: number;
  /** Skip the final partial batch of each epoch (default false). */
  dropLast?: boolean;
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

/** Where a {@link BatchLoader} is: enough to resume the exact same order. */
export interface LoaderState {
  /** Epochs completed so far (0-based index of the current epoch). */
  epoch: number;
  /** Samples of the current epoch already handed out. */
  position: number;
  /** The loader's seed, so that restoring into a loader with another seed is caught. */
  seed: number;
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
export class BatchLoader {
  /** The samples iterated over. */
  readonly set: ImageSet;
  /** Samples per batch. */
  readonly batchSize: number;
  /** Whether each epoch has its own permutation. */
  readonly shuffle: boolean;
  /** Seed of the permutations. */
  readonly seed: number;
  /** Whether the final partial batch is skipped. */
  readonly dropLast: boolean;
  /** Whether batch i+1 is built while batch i is in use. */
  readonly prefetch: boolean;
  /** Augmentation steps applied to each sample, in order (empty: none). */
  readonly augment: readonly Augment[];
  /** Per-channel lookup tables byte -> normalised value, 256 entries per channel. */
  #lut: Float32Array;
  #mean: number[];
  #std: number[];
  #outShape: [number, number, number];
  #epoch = 0;
  #position = 0;
  #order: Uint32Array | undefined;
  #orderEpoch = -1;
  #running = false;

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
    const { batchSize, shuffle = false, seed = 0, dropLast = false, prefetch = true } = opts;
    const augment = [...(opts.augment ?? [])];
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new Error(`BatchLoader: batchSize must be a positive integer, got ${batchSize}`);
    }
    if (!Number.isFinite(seed)) throw new Error(`BatchLoader: seed must be finite, got ${seed}`);
    const per = set.channels * set.height * set.width;
    if (set.images.length !== set.n * per || set.labels.length !== set.n) {
      throw new Error(
        `BatchLoader: ImageSet sizes disagree: n=${set.n}, ${set.channels}x${set.height}x` +
          `${set.width}, ${set.images.length} pixels, ${set.labels.length} labels`,
      );
    }
    this.set = set;
    this.batchSize = batchSize;
    this.shuffle = shuffle;
    this.seed = seed;
    this.dropLast = dropLast;
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

  /**
   * Batches per epoch: `ceil(n / batchSize)`, or `floor` with `dropLast`.
   *
   * @example
   * ```ts
   * import { BatchLoader, type ImageSet } from "./mod.ts";
   *
   * const train: ImageSet = {
   *   images: new Uint8Array(60000 * 4), labels: new Uint8Array(60000),
   *   n: 60000, height: 2, width: 2, channels: 1, classes: ["a"],
   * };
   * console.log(new BatchLoader(train, { batchSize: 128, dropLast: true }).batchesPerEpoch); // 468
   * ```
   */
  get batchesPerEpoch(): number {
    const n = this.set.n;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Samples handed out per epoch (n, less the dropped tail with `dropLast`). */
  get #epochSamples(): number {
    return this.dropLast ? this.batchesPerEpoch * this.batchSize : this.set.n;
  }

  /**
   * The index of the current epoch (epochs completed so far).
   *
   * @example
   * ```ts
   * import { BatchLoader, type ImageSet } from "./mod.ts";
   *
   * const set: ImageSet = {
   *   images: new Uint8Array(40), labels: new Uint8Array(10),
   *   n: 10, height: 2, width: 2, channels: 1, classes: ["a"],
   * };
   * console.log(new BatchLoader(set, { batchSize: 8 }).epoch); // 0
   * ```
   */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * Samples of the current epoch already handed out.
   *
   * @example
   * ```ts
   * import { BatchLoader, type ImageSet } from "./mod.ts";
   *
   * const set: ImageSet = {
   *   images: new Uint8Array(40), labels: new Uint8Array(10),
   *   n: 10, height: 2, width: 2, channels: 1, classes: ["a"],
   * };
   * console.log(new BatchLoader(set, { batchSize: 8 }).position); // 0
   * ```
   */
  get position(): number {
    return this.#position;
  }

  /**
   * The sample order of an epoch: a permutation of 0..n-1 that depends only
   * on `(seed, epoch)`, or the identity without `shuffle`.
   *
   * @param epoch Epoch index.
   * @returns A `Uint32Array` of length n (shared; do not modify).
   *
   * @example
   * ```ts
   * import { BatchLoader, type ImageSet } from "./mod.ts";
   *
   * const set: ImageSet = {
   *   images: new Uint8Array(40), labels: new Uint8Array(10),
   *   n: 10, height: 2, width: 2, channels: 1, classes: ["a"],
   * };
   * const loader = new BatchLoader(set, { batchSize: 8, shuffle: true, seed: 3 });
   * console.log(loader.order(0).length === set.n); // true
   * ```
   */
  order(epoch: number): Uint32Array {
    if (this.#order === undefined || this.#orderEpoch !== epoch) {
      const n = this.set.n;
      this.#order = this.shuffle
        ? new Rng(mixSeed(this.seed, epoch)).permutation(n)
        : Uint32Array.from({ length: n }, (_, i) => i);
      this.#orderEpoch = epoch;
    }
    return this.#order;
  }

  /**
   * Where the loader is, for a checkpoint. Taken between batches, it means:
   * every batch handed out so far counts as consumed.
   *
   * @returns A JSON-safe snapshot.
   *
   * @example
   * ```ts
   * import { BatchLoader, type ImageSet } from "./mod.ts";
   *
   * const set: ImageSet = {
   *   images: new Uint8Array(40), labels: new Uint8Array(10),
   *   n: 10, height: 2, width: 2, channels: 1, classes: ["a"],
   * };
   * const loader = new BatchLoader(set, { batchSize: 8, seed: 5 });
   * console.log(loader.state()); // { epoch: 0, position: 0, seed: 5 }
   * ```
   */
  state(): LoaderState {
    return { epoch: this.#epoch, position: this.#position, seed: this.seed };
  }

  /**
   * Moves the loader to a saved position; the next batch is the one that
   * would have followed when the state was taken.
   *
   * @param s A value from {@link BatchLoader.state}; `seed` may be left out,
   *   but if present it must match this loader's.
   *
   * @example
   * ```ts
   * import { BatchLoader, type ImageSet } from "./mod.ts";
   *
   * const set: ImageSet = {
   *   images: new Uint8Array(40), labels: new Uint8Array(10),
   *   n: 10, height: 2, width: 2, channels: 1, classes: ["a"],
   * };
   * const loader = new BatchLoader(set, { batchSize: 8, shuffle: true, seed: 5 });
   * loader.restore({ epoch: 3, position: 8, seed: 5 });
   * ```
   */
  restore(s: { epoch: number; position: number; seed?: number }): void {
    if (this.#running) throw new Error("BatchLoader.restore: a batches() iteration is running");
    if (!Number.isInteger(s.epoch) || s.epoch < 0) {
      throw new Error(`BatchLoader.restore: bad epoch ${s.epoch}`);
    }
    if (!Number.isInteger(s.position) || s.position < 0 || s.position > this.set.n) {
      throw new Error(`BatchLoader.restore: position ${s.position} is outside 0..${this.set.n}`);
    }
    if (s.seed !== undefined && s.seed !== this.seed) {
      throw new Error(
        `BatchLoader.restore: state was saved with seed ${s.seed}, this loader has ${this.seed}`,
      );
    }
    this.#epoch = s.epoch;
    this.#position = s.position;
  }

  /** Fills a batch with `order[start .. start+size)` of epoch `epoch`. */
  #build(order: Uint32Array, start: number, size: number, epoch: number): Batch {
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

  /**
   * Iterates over the rest of the current epoch, then advances to the next
   * epoch. Breaking out early keeps the position after the last batch handed
   * out, so the next call continues from there.
   *
   * While the consumer holds batch i, batch i+1 is built in a timer task, so
   * its cost hides behind any awaited work (GPU submission, readback) the
   * consumer does; a consumer that never yields gets it built on demand.
   *
   * @returns An async iterator of batches.
   *
   * @example
   * ```ts
   * import { BatchLoader, type ImageSet } from "./mod.ts";
   *
   * const set: ImageSet = {
   *   images: new Uint8Array(40), labels: new Uint8Array(10),
   *   n: 10, height: 2, width: 2, channels: 1, classes: ["a"],
   * };
   * const loader = new BatchLoader(set, { batchSize: 64, shuffle: true, seed: 0 });
   * for await (const batch of loader.batches()) console.log(batch.size);
   * ```
   */
  async *batches(): AsyncGenerator<Batch, void, undefined> {
    if (this.#running) throw new Error("BatchLoader.batches: another iteration is running");
    this.#running = true;
    const end = this.#epochSamples;
    const epoch = this.#epoch;
    const order = this.order(epoch);
    let ahead: Prefetched | undefined;
    try {
      while (this.#position < end) {
        const start = this.#position;
        const size = Math.min(this.batchSize, end - start);
        const batch = ahead !== undefined && ahead.start === start
          ? await ahead.take()
          : this.#build(order, start, size, epoch);
        ahead?.cancel();
        ahead = undefined;
        const next = start + size;
        if (this.prefetch && next < end) {
          ahead = new Prefetched(
            next,
            () => this.#build(order, next, Math.min(this.batchSize, end - next), epoch),
          );
        }
        this.#position = next;
        yield batch;
      }
      this.#epoch = epoch + 1;
      this.#position = 0;
    } finally {
      ahead?.cancel();
      this.#running = false;
    }
  }

  /**
   * Same as {@link BatchLoader.batches}: one epoch (or its remainder).
   *
   * @example
   * ```ts
   * import { BatchLoader, type ImageSet } from "./mod.ts";
   *
   * const set: ImageSet = {
   *   images: new Uint8Array(40), labels: new Uint8Array(10),
   *   n: 10, height: 2, width: 2, channels: 1, classes: ["a"],
   * };
   * for await (const b of new BatchLoader(set, { batchSize: 32 })) console.log(b.y);
   * ```
   */
  [Symbol.asyncIterator](): AsyncGenerator<Batch, void, undefined> {
    return this.batches();
  }
}

/**
 * A batch scheduled to be built in a timer task. `take()` returns it, building
 * it right away if the timer has not fired yet, so a busy consumer never waits
 * on a timer (whose delay Deno clamps to 4 ms once nested).
 */
class Prefetched {
  readonly start: number;
  #make: () => Batch;
  #value: Batch | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(start: number, make: () => Batch) {
    this.start = start;
    this.#make = make;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#value = make();
    }, 0);
  }

  take(): Promise<Batch> {
    this.cancel();
    const v = this.#value ?? this.#make();
    this.#value = undefined;
    return Promise.resolve(v);
  }

  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
