/**
 * Loader for image datasets stored as one folder per class, the layout of
 * torchvision's `ImageFolder` and of ImageNet once its validation images are
 * sorted into class folders:
 *
 * ```text
 * DIR/train/<class>/**\/*.png|jpg|jpeg
 * DIR/test/<class>/...   or   DIR/val/<class>/...
 * ```
 *
 * Classes are the train split's sub-folder names sorted by code unit, and
 * files are taken in sorted order (recursing into sub-folders), as
 * `ImageFolder` does, so labels match a PyTorch run on the same folder.
 * Unlike `ImageFolder`, names starting with "." (`.ipynb_checkpoints`,
 * `.DS_Store`) are skipped. Every image is decoded (see
 * {@link decodeImage}), converted to the requested channels and resized to
 * one fixed size, so the whole split must fit in memory.
 *
 * @module
 */

import { join } from "node:path";
import { decodeImage, toPlanar } from "./decode_image.ts";
import type { ImageDataset, ImageSet, LabelArray } from "./image_set.ts";
import { resample, type ResampleMode } from "./resample.ts";

/** File extensions read as images (compared case-insensitively; ImageNet uses `.JPEG`). */
export const IMAGE_EXTENSIONS: readonly string[] = Object.freeze([".png", ".jpg", ".jpeg"]);

/** How an image is fitted to the output size. */
export type ImageFit = "stretch" | "center-crop";

/** Options for {@link loadImageFolderSplit}. */
export interface ImageFolderSplitOptions {
  /** Output size: one number for a square, or `[height, width]`. Required. */
  size: number | readonly [number, number];
  /** Output channels: 1 (grey), 3 (RGB, default) or 4 (RGBA). */
  channels?: 1 | 3 | 4;
  /** Resampling filter (default `"bilinear"`, Pillow's antialiased one as torchvision uses). */
  resample?: ResampleMode;
  /**
   * `"stretch"` (default) resizes the whole image to the size, ignoring its
   * aspect ratio; `"center-crop"` resizes so the image covers the size and
   * cuts the overflow equally from both sides (torchvision's
   * `Resize(s)` + `CenterCrop(s)`, without the intermediate rounding).
   */
  fit?: ImageFit;
  /** Keep at most this many images per class (the first in sorted order), e.g. for a quick subset. */
  maxPerClass?: number;
  /** Class names to label by; default: this folder's sub-folders, sorted. */
  classes?: readonly string[];
}

/** Options for {@link loadImageFolder}. */
export interface LoadImageFolderOptions extends Omit<ImageFolderSplitOptions, "classes"> {
  /** Directory holding `train/` and `test/` or `val/`. */
  dir: string;
  /** Held-out split folder: default `test` when it exists, else `val`. */
  testSplit?: "test" | "val";
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Visible entries of a directory, sorted, with symlinks resolved (as `os.walk(followlinks=True)`). */
async function listDir(dir: string): Promise<{ dirs: string[]; files: string[] }> {
  const dirs: string[] = [];
  const files: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.name.startsWith(".")) continue;
      let { isDirectory, isFile } = e;
      if (e.isSymlink) {
        const s = await Deno.stat(join(dir, e.name)).catch(() => undefined);
        isDirectory = s?.isDirectory ?? false;
        isFile = s?.isFile ?? false;
      }
      if (isDirectory) dirs.push(e.name);
      else if (isFile) files.push(e.name);
    }
  } catch (e) {
    throw new Error(`${dir}: cannot list directory (${e instanceof Error ? e.message : e})`);
  }
  return { dirs: dirs.sort(byCodeUnit), files: files.sort(byCodeUnit) };
}

function isImageName(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/** Image files under `dir`, recursively, in `ImageFolder`'s order (sorted walk). */
async function imageFiles(dir: string, out: string[] = []): Promise<string[]> {
  const { dirs, files } = await listDir(dir);
  for (const f of files) if (isImageName(f)) out.push(join(dir, f));
  for (const d of dirs) await imageFiles(join(dir, d), out);
  return out;
}

/**
 * The class names of a split folder: its sub-folders (hidden ones skipped),
 * sorted as torchvision's `ImageFolder.find_classes` sorts them.
 *
 * @param dir A split folder such as `DIR/train`.
 * @returns Sorted sub-folder names.
 *
 * @example
 * ```ts
 * import { findClasses } from "./image_folder.ts";
 *
 * const dir = await Deno.makeTempDir();
 * for (const c of ["zebra", "ant", "Bee"]) await Deno.mkdir(`${dir}/${c}`);
 * console.log(await findClasses(dir)); // ["Bee", "ant", "zebra"]
 * ```
 */
export async function findClasses(dir: string): Promise<string[]> {
  return (await listDir(dir)).dirs;
}

function outputSize(size: ImageFolderSplitOptions["size"]): [number, number] {
  const [h, w] = typeof size === "number" ? [size, size] : size ?? [];
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) {
    throw new Error(
      `image folder: size must be a positive integer or [height, width], got ${
        JSON.stringify(size)
      }`,
    );
  }
  return [h, w];
}

/**
 * Loads one split folder (`<class>/**\/*.png|jpg|jpeg`) into an
 * {@link ImageSet}: every image decoded, converted to `channels`, resized
 * to `size`, as NCHW bytes.
 *
 * @param dir The split folder, e.g. `DIR/train`.
 * @param opts Output size (required), channels, filter, fit, subset, classes.
 * @returns The images with labels indexing `classes`.
 * @throws Error naming the folder when it has no classes or a class has no
 *   images, the class folder not in `opts.classes`, or the image file that
 *   is corrupt, truncated or not a PNG/JPEG.
 *
 * @example
 * ```ts
 * import { loadImageFolderSplit } from "./image_folder.ts";
 * // deno-lint-ignore no-import-prefix
 * import { encode } from "npm:fast-png@8.0.0";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/cat`);
 * const png = encode({ width: 4, height: 2, data: new Uint8Array(8 * 3).fill(200), channels: 3 });
 * await Deno.writeFile(`${dir}/cat/0.png`, png);
 * const set = await loadImageFolderSplit(dir, { size: 2 });
 * console.log(set.n, set.channels, set.height, set.width, set.images[0]); // 1 3 2 2 200
 * ```
 */
export async function loadImageFolderSplit(
  dir: string,
  opts: ImageFolderSplitOptions,
): Promise<ImageSet> {
  const [height, width] = outputSize(opts.size);
  const channels = opts.channels ?? 3;
  if (channels !== 1 && channels !== 3 && channels !== 4) {
    throw new Error(`image folder: channels must be 1, 3 or 4, got ${channels}`);
  }
  const mode = opts.resample ?? "bilinear";
  if (mode !== "nearest" && mode !== "bilinear" && mode !== "area") {
    throw new Error(`image folder: resample must be nearest, bilinear or area, got ${mode}`);
  }
  const fit = opts.fit ?? "stretch";
  if (fit !== "stretch" && fit !== "center-crop") {
    throw new Error(`image folder: fit must be stretch or center-crop, got ${fit}`);
  }
  const max = opts.maxPerClass ?? Infinity;
  if (!(max >= 1) || (max !== Infinity && !Number.isInteger(max))) {
    throw new Error(`image folder: maxPerClass must be a positive integer, got ${max}`);
  }
  if (!(await isDir(dir))) throw new Error(`${dir}: no such directory`);
  const found = await findClasses(dir);
  if (found.length === 0) {
    throw new Error(`${dir}: no class folders (expected ${dir}/<class>/<image>.png|jpg|jpeg)`);
  }
  const classes = opts.classes ? [...opts.classes] : found;
  if (classes.length > 65536) throw new Error(`${dir}: ${classes.length} classes, at most 65536`);
  const index = new Map(classes.map((c, i) => [c, i]));
  const unknown = found.filter((c) => !index.has(c));
  if (unknown.length > 0) {
    throw new Error(
      `${dir}: class folder(s) ${unknown.slice(0, 5).join(", ")}${
        unknown.length > 5 ? ` and ${unknown.length - 5} more` : ""
      } not among the ${classes.length} training classes`,
    );
  }
  const paths: string[] = [];
  const classOf: number[] = [];
  const empty: string[] = [];
  for (const c of found) {
    const files = (await imageFiles(join(dir, c))).slice(0, max);
    if (files.length === 0) empty.push(c);
    for (const f of files) {
      paths.push(f);
      classOf.push(index.get(c)!);
    }
  }
  if (empty.length > 0) {
    throw new Error(
      `${dir}: no ${IMAGE_EXTENSIONS.join("/")} files in class folder(s) ${
        empty.slice(0, 5).join(", ")
      }${empty.length > 5 ? ` and ${empty.length - 5} more` : ""}`,
    );
  }
  const n = paths.length;
  const per = channels * height * width;
  const images = new Uint8Array(n * per);
  const labels: LabelArray = classes.length <= 256 ? new Uint8Array(n) : new Uint16Array(n);
  // Reads run a few files ahead so disk latency overlaps with the (synchronous) decoding.
  const ahead = 8;
  const reads: Promise<Uint8Array>[] = [];
  const read = (i: number) => {
    const p = Deno.readFile(paths[i]).catch((e) => {
      throw new Error(`${paths[i]}: cannot read (${e instanceof Error ? e.message : e})`);
    });
    // Marked handled: a read-ahead that fails while an earlier file is decoded must not
    // surface as an unhandled rejection; it is rethrown when its turn comes.
    p.catch(() => {});
    return p;
  };
  for (let i = 0; i < Math.min(ahead, n); i++) reads.push(read(i));
  for (let i = 0; i < n; i++) {
    if (i + ahead < n) reads.push(read(i + ahead));
    const img = decodeImage(await reads[i], paths[i]);
    delete reads[i];
    const planar = toPlanar(img, channels);
    let region = { x: 0, y: 0, width: img.width, height: img.height };
    if (fit === "center-crop") {
      // The largest centred box with the output's aspect ratio.
      const s = Math.min(img.width / width, img.height / height);
      const cw = width * s, ch = height * s;
      region = { x: (img.width - cw) / 2, y: (img.height - ch) / 2, width: cw, height: ch };
    }
    const out = images.subarray(i * per, (i + 1) * per);
    if (img.width === width && img.height === height) {
      out.set(planar);
    } else {
      const r = resample(planar, channels, img.height, img.width, height, width, {
        mode,
        region,
      });
      for (let k = 0; k < per; k++) out[k] = Math.min(255, Math.max(0, Math.round(r[k])));
    }
    labels[i] = classOf[i];
  }
  return { images, labels, n, height, width, channels, classes };
}

/**
 * Loads an image-folder dataset: `DIR/train/<class>/*` for training and
 * `DIR/test/<class>/*` (or `DIR/val/<class>/*`) for testing, each image
 * decoded, converted to `channels` and resized to `size`. The test split is
 * labelled with the training classes; it may lack some of them but must not
 * add any.
 *
 * @param opts Directory, output size (required) and the options of {@link loadImageFolderSplit}.
 * @returns Both splits (NCHW bytes) and a `source` naming the folders read.
 * @throws Error listing the missing split folders, or as {@link loadImageFolderSplit}.
 *
 * @example
 * ```ts ignore
 * import { loadImageFolder } from "./image_folder.ts";
 *
 * // ImageNet with val/ sorted into class folders, downsampled to 64x64 RGB.
 * const { train, test } = await loadImageFolder({ dir: "./imagenet", size: 64, resample: "area" });
 * console.log(train.classes.length, test.n); // 1000 50000
 * ```
 */
export async function loadImageFolder(opts: LoadImageFolderOptions): Promise<ImageDataset> {
  const { dir, testSplit, ...split } = opts;
  outputSize(opts.size);
  const trainDir = join(dir, "train");
  const candidates = testSplit !== undefined ? [testSplit] : ["test", "val"];
  if (!(await isDir(trainDir))) {
    throw new Error(
      `${dir}: missing train/ folder (expected ${dir}/train/<class>/<image> and ` +
        `${candidates.map((c) => `${dir}/${c}/<class>/<image>`).join(" or ")})`,
    );
  }
  let testDir: string | undefined;
  for (const c of candidates) {
    if (await isDir(join(dir, c))) {
      testDir = join(dir, c);
      break;
    }
  }
  if (testDir === undefined) {
    throw new Error(
      `${dir}: missing ${candidates.map((c) => `${c}/`).join(" or ")} folder for the test split`,
    );
  }
  const train = await loadImageFolderSplit(trainDir, split);
  const test = await loadImageFolderSplit(testDir, { ...split, classes: train.classes });
  return { train, test, source: `${trainDir} + ${testDir}` };
}
