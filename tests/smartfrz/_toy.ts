/** A separable toy image set for the freezing tests: class c brightens pixel band c of 8×8 images. */
import type { ImageSet } from "../../data/image_set.ts";
import { BatchLoader } from "../../data/loader.ts";

/** `n` images of 8×8 pixels in 4 classes, pseudo-random noise from `seed`. */
export function toy(n: number, seed: number): ImageSet {
  const images = new Uint8Array(n * 64);
  const labels = new Uint8Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    labels[i] = i % 4;
    for (let p = 0; p < 64; p++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      images[i * 64 + p] = Math.floor(p / 16) === i % 4 ? 180 + (s >>> 27) : s >>> 27;
    }
  }
  return { images, labels, n, height: 8, width: 8, channels: 1, classes: ["a", "b", "c", "d"] };
}

/** The toy training set (256 images, shuffled batches of 32) and its held-out set (64 images). */
export function toyLoaders(): { train: BatchLoader; test: BatchLoader } {
  return {
    train: new BatchLoader(toy(256, 1), {
      batchSize: 32,
      shuffle: true,
      seed: 3,
      mean: 0,
      std: 255,
    }),
    test: new BatchLoader(toy(64, 2), { batchSize: 64, mean: 0, std: 255 }),
  };
}
