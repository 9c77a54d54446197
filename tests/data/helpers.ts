/**
 * Test helpers: encode arrays in the exact IDX byte layout and write small
 * (Fashion-)MNIST-shaped datasets to a directory.
 *
 * @module
 */

import { gzipSync } from "node:zlib";
import { join } from "node:path";

/** IDX type codes by name. */
export const IDX_TYPE = { u8: 0x08, i8: 0x09, i16: 0x0b, i32: 0x0c, f32: 0x0d, f64: 0x0e } as const;

const SIZE: Record<number, number> = { 0x08: 1, 0x09: 1, 0x0b: 2, 0x0c: 4, 0x0d: 4, 0x0e: 8 };

/**
 * Encodes `values` (row-major) as an IDX file with the given type and shape,
 * big-endian as the format requires.
 *
 * @example
 * ```ts
 * import { encodeIdx, IDX_TYPE } from "./helpers.ts";
 *
 * const bytes = encodeIdx(IDX_TYPE.u8, [2], [1, 2]);
 * console.log(bytes.length); // 4 + 4 + 2
 * ```
 */
export function encodeIdx(type: number, shape: number[], values: ArrayLike<number>): Uint8Array {
  const size = SIZE[type];
  const header = 4 + 4 * shape.length;
  const out = new Uint8Array(header + values.length * size);
  const v = new DataView(out.buffer);
  out[2] = type;
  out[3] = shape.length;
  shape.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  for (let i = 0; i < values.length; i++) {
    const o = header + i * size;
    const x = values[i];
    switch (type) {
      case 0x08:
        v.setUint8(o, x);
        break;
      case 0x09:
        v.setInt8(o, x);
        break;
      case 0x0b:
        v.setInt16(o, x);
        break;
      case 0x0c:
        v.setInt32(o, x);
        break;
      case 0x0d:
        v.setFloat32(o, x);
        break;
      case 0x0e:
        v.setFloat64(o, x);
        break;
    }
  }
  return out;
}

/**
 * Gzips bytes the way the official `.gz` downloads are.
 *
 * @example
 * ```ts
 * import { gzip } from "./helpers.ts";
 *
 * console.log(gzip(new Uint8Array([1]))[0] === 0x1f); // true
 * ```
 */
export function gzip(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(gzipSync(bytes));
}

/** A small synthetic split: image `i` has every pixel `(i * 7 + label) % 256`. */
export interface TinySplit {
  images: Uint8Array;
  labels: Uint8Array;
  n: number;
}

/**
 * Makes a deterministic split of `n` 28x28 images with labels `i % 10`.
 *
 * @example
 * ```ts
 * import { tinySplit } from "./helpers.ts";
 *
 * console.log(tinySplit(3).labels); // Uint8Array [0, 1, 2]
 * ```
 */
export function tinySplit(n: number, side = 28): TinySplit {
  const images = new Uint8Array(n * side * side);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 10;
    images.fill((i * 7 + labels[i]) % 256, i * side * side, (i + 1) * side * side);
  }
  return { images, labels, n };
}

/**
 * Writes the four standard IDX files of a tiny dataset into `dir`, gzipped
 * (with a `.gz` suffix) or plain.
 *
 * @example
 * ```ts
 * import { writeIdxDataset } from "./helpers.ts";
 *
 * const dir = await Deno.makeTempDir();
 * await writeIdxDataset(dir, { train: 20, test: 5, gz: true });
 * ```
 */
export async function writeIdxDataset(
  dir: string,
  opts: { train: number; test: number; gz: boolean; side?: number },
): Promise<{ train: TinySplit; test: TinySplit }> {
  const side = opts.side ?? 28;
  const train = tinySplit(opts.train, side);
  const test = tinySplit(opts.test, side);
  const files: [string, Uint8Array][] = [
    ["train-images-idx3-ubyte", encodeIdx(IDX_TYPE.u8, [train.n, side, side], train.images)],
    ["train-labels-idx1-ubyte", encodeIdx(IDX_TYPE.u8, [train.n], train.labels)],
    ["t10k-images-idx3-ubyte", encodeIdx(IDX_TYPE.u8, [test.n, side, side], test.images)],
    ["t10k-labels-idx1-ubyte", encodeIdx(IDX_TYPE.u8, [test.n], test.labels)],
  ];
  for (const [name, bytes] of files) {
    await Deno.writeFile(
      join(dir, opts.gz ? `${name}.gz` : name),
      opts.gz ? gzip(bytes) : bytes,
    );
  }
  return { train, test };
}

/** Pixel `p` of CIFAR record `k` (k counted across all files written together). */
export function cifarPixel(k: number, p: number): number {
  return (k * 31 + p * 7) % 256;
}

/**
 * Encodes CIFAR binary records: per record its label bytes (`labels[k]`,
 * 1 for CIFAR-10, `[coarse, fine]` for CIFAR-100) then 3072 pixel bytes
 * `cifarPixel(first + k, p)`.
 *
 * @example
 * ```ts
 * import { cifarRecords } from "./helpers.ts";
 *
 * console.log(cifarRecords([[3], [4]]).length); // 2 * 3073
 * ```
 */
export function cifarRecords(labels: number[][], first = 0): Uint8Array {
  const lb = labels[0]?.length ?? 1;
  const rec = lb + 3072;
  const out = new Uint8Array(labels.length * rec);
  labels.forEach((l, k) => {
    out.set(l, k * rec);
    for (let p = 0; p < 3072; p++) out[k * rec + lb + p] = cifarPixel(first + k, p);
  });
  return out;
}
