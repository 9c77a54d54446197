/**
 * Per-sample data augmentation on the CPU: random crop with padding,
 * horizontal flip, resize, and per-channel normalisation, as in the standard
 * CIFAR recipe (He et al., "Deep Residual Learning for Image Recognition",
 * 2016, §4.2: pad 4, random 32x32 crop, random flip).
 *
 * Augments work on {@link FloatImage}s, planar (CHW) float32 with pixels on
 * the 0..1 scale, and take their randomness from an {@link Rng} handed in,
 * so a sample's augmentation is a pure function of that generator's seed.
 * {@link BatchLoader} seeds it with {@link augmentRng}`(seed, epoch, index)`,
 * which makes augmented batches reproducible and resumable mid-epoch.
 *
 * @example
 * ```ts ignore
 * import {
 *   BatchLoader, CIFAR10_MEAN, CIFAR10_STD, loadCifar10, randomCrop, randomHorizontalFlip,
 * } from "./mod.ts";
 *
 * const { train, test } = await loadCifar10({ dir: "./datasets" });
 * const trainLoader = new BatchLoader(train, {
 *   batchSize: 128, shuffle: true, seed: 0, mean: CIFAR10_MEAN, std: CIFAR10_STD,
 *   augment: [randomCrop(32, { padding: 4 }), randomHorizontalFlip()],
 * });
 * const testLoader = new BatchLoader(test, { batchSize: 1000, mean: CIFAR10_MEAN, std: CIFAR10_STD });
 * ```
 *
 * @module
 */

import { resample, type ResampleMode } from "./resample.ts";
import { mixSeed, Rng } from "./rng.ts";

/** A planar float image: `channels` planes of `height * width` values, pixels on the 0..1 scale. */
export interface FloatImage {
  /** `channels * height * width` values, channel planes one after another. */
  data: Float32Array;
  /** Number of channel planes. */
  channels: number;
  /** Height in pixels. */
  height: number;
  /** Width in pixels. */
  width: number;
}

/** The shape of one sample: `[channels, height, width]`. */
export type SampleShape = readonly [channels: number, height: number, width: number];

/** One augmentation step. */
export interface Augment {
  /** Short description, e.g. `randomCrop(32, padding 4)`. */
  readonly name: string;
  /**
   * The shape `apply` returns for inputs of `shape`; lets a loader size its
   * batches up front. Throws if the step cannot take that shape.
   */
  outputShape(shape: SampleShape): [number, number, number];
  /**
   * Transforms one image. May modify and return `img` or return a new image;
   * must draw its randomness from `rng` only.
   */
  apply(img: FloatImage, rng: Rng): FloatImage;
}

/** CIFAR-10 training-set per-channel (R, G, B) mean, on the 0..1 scale. */
export const CIFAR10_MEAN: readonly number[] = Object.freeze([0.4914, 0.4822, 0.4465]);
/** CIFAR-10 training-set per-channel (R, G, B) standard deviation, on the 0..1 scale. */
export const CIFAR10_STD: readonly number[] = Object.freeze([0.2470, 0.2435, 0.2616]);
/** ImageNet per-channel (R, G, B) mean used by torchvision's pretrained models, 0..1 scale. */
export const IMAGENET_MEAN: readonly number[] = Object.freeze([0.485, 0.456, 0.406]);
/** ImageNet per-channel (R, G, B) standard deviation used by torchvision's pretrained models. */
export const IMAGENET_STD: readonly number[] = Object.freeze([0.229, 0.224, 0.225]);

/** Domain tag that keeps augmentation streams apart from the shuffles' `mixSeed(seed, epoch)`. */
const AUGMENT_STREAM = 0x61756721;

/**
 * The generator for sample `index`'s augmentation in epoch `epoch` of a run
 * seeded `seed`: independent of batch size, order and prefetching, so a run
 * resumed mid-epoch augments every remaining sample exactly as before.
 *
 * @param seed The loader's seed.
 * @param epoch Epoch index.
 * @param index The sample's index in the dataset.
 * @returns A fresh generator.
 *
 * @example
 * ```ts
 * import { augmentRng } from "./augment.ts";
 *
 * console.log(augmentRng(1, 0, 7).nextU32() === augmentRng(1, 0, 7).nextU32()); // true
 * ```
 */
export function augmentRng(seed: number, epoch: number, index: number): Rng {
  return new Rng(mixSeed(seed, AUGMENT_STREAM, epoch, index));
}

function sizePair(size: number | readonly [number, number], what: string): [number, number] {
  const [h, w] = typeof size === "number" ? [size, size] : size;
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) {
    throw new Error(`${what}: size must be a positive integer or [height, width], got ${size}`);
  }
  return [h, w];
}

/**
 * Random crop after zero padding (torchvision's `RandomCrop(size, padding)`
 * with constant fill): the image is padded by `padding` pixels of `fill` on
 * every side, then a `size` window is taken at a uniformly random offset
 * (top drawn first, then left).
 *
 * @param size Crop size: a number for a square, or `[height, width]`.
 * @param opts `padding` (default 0) and `fill` (default 0, black, on the 0..1 scale).
 * @returns The augment.
 *
 * @example
 * ```ts
 * import { randomCrop } from "./augment.ts";
 * import { Rng } from "./rng.ts";
 *
 * const img = { data: new Float32Array(32 * 32 * 3).fill(1), channels: 3, height: 32, width: 32 };
 * const out = randomCrop(32, { padding: 4 }).apply(img, new Rng(0));
 * console.log(out.height, out.width); // 32 32
 * ```
 */
export function randomCrop(
  size: number | readonly [number, number],
  opts: { padding?: number; fill?: number } = {},
): Augment {
  const [ch, cw] = sizePair(size, "randomCrop");
  const pad = opts.padding ?? 0;
  const fill = opts.fill ?? 0;
  if (!Number.isInteger(pad) || pad < 0) {
    throw new Error(`randomCrop: padding must be a non-negative integer, got ${pad}`);
  }
  if (!Number.isFinite(fill)) throw new Error(`randomCrop: fill must be finite, got ${fill}`);
  const outputShape = ([c, h, w]: SampleShape): [number, number, number] => {
    if (h + 2 * pad < ch || w + 2 * pad < cw) {
      throw new Error(
        `randomCrop: a ${ch}x${cw} crop does not fit a ${h}x${w} image padded by ${pad}`,
      );
    }
    return [c, ch, cw];
  };
  return {
    name: `randomCrop(${ch}x${cw}, padding ${pad})`,
    outputShape,
    apply(img, rng) {
      const { channels, height, width, data } = img;
      outputShape([channels, height, width]);
      const top = rng.int(height + 2 * pad - ch + 1) - pad;
      const left = rng.int(width + 2 * pad - cw + 1) - pad;
      const out = new Float32Array(channels * ch * cw);
      if (fill !== 0) out.fill(fill);
      // Columns of the window that fall inside the source image.
      const x0 = Math.max(0, -left);
      const x1 = Math.min(cw, width - left);
      for (let c = 0; c < channels; c++) {
        for (let y = 0; y < ch; y++) {
          const sy = top + y;
          if (sy < 0 || sy >= height || x1 <= x0) continue;
          const s = (c * height + sy) * width + left;
          out.set(data.subarray(s + x0, s + x1), (c * ch + y) * cw + x0);
        }
      }
      return { data: out, channels, height: ch, width: cw };
    },
  };
}

/**
 * Mirrors the image left-right with probability `p` (torchvision's
 * `RandomHorizontalFlip`). Draws one number per sample either way.
 *
 * @param p Flip probability in [0, 1] (default 0.5).
 * @returns The augment.
 *
 * @example
 * ```ts
 * import { randomHorizontalFlip } from "./augment.ts";
 * import { Rng } from "./rng.ts";
 *
 * const img = { data: new Float32Array([1, 2, 3]), channels: 1, height: 1, width: 3 };
 * console.log(randomHorizontalFlip(1).apply(img, new Rng(0)).data); // Float32Array [3, 2, 1]
 * ```
 */
export function randomHorizontalFlip(p = 0.5): Augment {
  if (!(p >= 0 && p <= 1)) throw new Error(`randomHorizontalFlip: p must be in [0, 1], got ${p}`);
  return {
    name: `randomHorizontalFlip(${p})`,
    outputShape: ([c, h, w]) => [c, h, w],
    apply(img, rng) {
      if (!(rng.next() < p)) return img;
      const { data, channels, height, width } = img;
      for (let r = 0; r < channels * height; r++) {
        data.subarray(r * width, (r + 1) * width).reverse();
      }
      return img;
    },
  };
}

/**
 * Resizes to a fixed size with the filters of {@link resample} (`"nearest"`,
 * `"bilinear"` as Pillow's, or `"area"`). Deterministic: draws nothing.
 *
 * @param size Output size: a number for a square, or `[height, width]`.
 * @param mode Filter (default `"bilinear"`).
 * @returns The augment.
 *
 * @example
 * ```ts
 * import { resize } from "./augment.ts";
 * import { Rng } from "./rng.ts";
 *
 * const img = { data: new Float32Array([0, 1]), channels: 1, height: 1, width: 2 };
 * console.log(resize([1, 4], "nearest").apply(img, new Rng(0)).data); // Float32Array [0, 0, 1, 1]
 * ```
 */
export function resize(
  size: number | readonly [number, number],
  mode: ResampleMode = "bilinear",
): Augment {
  const [h, w] = sizePair(size, "resize");
  if (mode !== "nearest" && mode !== "bilinear" && mode !== "area") {
    throw new Error(`resize: mode must be nearest, bilinear or area, got ${mode}`);
  }
  return {
    name: `resize(${h}x${w}, ${mode})`,
    outputShape: ([c]) => [c, h, w],
    apply(img) {
      if (img.height === h && img.width === w) return img;
      const data = resample(img.data, img.channels, img.height, img.width, h, w, { mode });
      return { data, channels: img.channels, height: h, width: w };
    },
  };
}

/**
 * Per-channel mean/std arrays from a scalar or an array of 1 or `channels`
 * values, checked (finite means, positive finite stds).
 *
 * @param mean A scalar, or one value per channel.
 * @param std A scalar, or one value per channel.
 * @param channels Number of channels.
 * @returns Both as arrays of length `channels`.
 *
 * @example
 * ```ts
 * import { channelStats } from "./augment.ts";
 *
 * console.log(channelStats(0.5, [0.2, 0.3, 0.4], 3)); // { mean: [0.5, 0.5, 0.5], std: [0.2, 0.3, 0.4] }
 * ```
 */
export function channelStats(
  mean: number | readonly number[],
  std: number | readonly number[],
  channels: number,
): { mean: number[]; std: number[] } {
  const expand = (v: number | readonly number[], what: string): number[] => {
    const a = typeof v === "number" ? [v] : [...v];
    if (a.length === 1) return new Array(channels).fill(a[0]);
    if (a.length !== channels) {
      throw new Error(`${what} has ${a.length} values for ${channels} channel(s)`);
    }
    return a;
  };
  const m = expand(mean, "mean");
  const s = expand(std, "std");
  if (!m.every(Number.isFinite) || !s.every((x) => x > 0 && Number.isFinite(x))) {
    throw new Error(`need finite mean and std > 0, got mean ${m}, std ${s}`);
  }
  return { mean: m, std: s };
}

/**
 * Normalises in place, channel by channel: `x = (x - mean[c]) / std[c]`
 * (torchvision's `Normalize`). Use it on images from {@link applyAugments};
 * {@link BatchLoader} already does this with its `mean`/`std` options.
 *
 * @param img Image on the 0..1 scale.
 * @param mean A scalar or one value per channel (e.g. {@link CIFAR10_MEAN}).
 * @param std A scalar or one value per channel (e.g. {@link CIFAR10_STD}).
 * @returns `img`, normalised.
 *
 * @example
 * ```ts
 * import { normalize } from "./augment.ts";
 *
 * const img = { data: new Float32Array([0.5, 1]), channels: 2, height: 1, width: 1 };
 * console.log(normalize(img, [0.5, 0], [1, 0.5]).data); // Float32Array [0, 2]
 * ```
 */
export function normalize(
  img: FloatImage,
  mean: number | readonly number[],
  std: number | readonly number[],
): FloatImage {
  const s = channelStats(mean, std, img.channels);
  const hw = img.height * img.width;
  for (let c = 0; c < img.channels; c++) {
    const plane = img.data.subarray(c * hw, (c + 1) * hw);
    const m = s.mean[c], d = s.std[c];
    for (let p = 0; p < hw; p++) plane[p] = (plane[p] - m) / d;
  }
  return img;
}

/**
 * Runs augments in order on one image.
 *
 * @param img The input image (may be modified).
 * @param augments The steps.
 * @param rng Source of randomness, e.g. {@link augmentRng}.
 * @returns The augmented image.
 *
 * @example
 * ```ts
 * import { applyAugments, augmentRng, randomCrop, randomHorizontalFlip } from "./augment.ts";
 *
 * const img = { data: new Float32Array(3 * 32 * 32), channels: 3, height: 32, width: 32 };
 * const out = applyAugments(img, [randomCrop(32, { padding: 4 }), randomHorizontalFlip()], augmentRng(0, 0, 0));
 * console.log(out.data.length); // 3072
 * ```
 */
export function applyAugments(img: FloatImage, augments: readonly Augment[], rng: Rng): FloatImage {
  for (const a of augments) img = a.apply(img, rng);
  return img;
}
