/**
 * CIFAR-10 and CIFAR-100 loaders for the binary versions of the datasets
 * (Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009;
 * format as described on the dataset's page).
 *
 * A file is a plain sequence of fixed-size records, no header:
 * - CIFAR-10 (`data_batch_1.bin` .. `data_batch_5.bin`, `test_batch.bin`):
 *   1 label byte, then 3072 pixel bytes;
 * - CIFAR-100 (`train.bin`, `test.bin`): 1 coarse label byte, 1 fine label
 *   byte, then 3072 pixel bytes.
 *
 * The 3072 pixels are the red 32x32 plane, then green, then blue, each row by
 * row: already NCHW, so records are copied as they are.
 *
 * @module
 */

import { join } from "node:path";
import type { ImageDataset, ImageSet } from "./image_set.ts";

/** CIFAR-10 class names, indexed by label (as in `batches.meta.txt`). */
export const CIFAR10_CLASSES: readonly string[] = Object.freeze([
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
]);

/** CIFAR-100 fine class names, indexed by fine label (as in `fine_label_names.txt`). */
export const CIFAR100_FINE_CLASSES: readonly string[] = Object.freeze(
  (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus " +
    "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch " +
    "crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo " +
    "keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain " +
    "mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain " +
    "plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk " +
    "skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank " +
    "telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf " +
    "woman worm"
  ).split(" "),
);

/** CIFAR-100 coarse (superclass) names, indexed by coarse label (as in `coarse_label_names.txt`). */
export const CIFAR100_COARSE_CLASSES: readonly string[] = Object.freeze([
  "aquatic_mammals",
  "fish",
  "flowers",
  "food_containers",
  "fruit_and_vegetables",
  "household_electrical_devices",
  "household_furniture",
  "insects",
  "large_carnivores",
  "large_man-made_outdoor_things",
  "large_natural_outdoor_scenes",
  "large_omnivores_and_herbivores",
  "medium_mammals",
  "non-insect_invertebrates",
  "people",
  "reptiles",
  "small_mammals",
  "trees",
  "vehicles_1",
  "vehicles_2",
]);

/** The CIFAR-10 binary file names. */
export const CIFAR10_FILES: Readonly<{ train: readonly string[]; test: string; meta: string }> =
  Object.freeze({
    train: Object.freeze([1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`)),
    test: "test_batch.bin",
    meta: "batches.meta.txt",
  });

/** The CIFAR-100 binary file names. */
export const CIFAR100_FILES: Readonly<{
  train: string;
  test: string;
  fineMeta: string;
  coarseMeta: string;
}> = Object.freeze({
  train: "train.bin",
  test: "test.bin",
  fineMeta: "fine_label_names.txt",
  coarseMeta: "coarse_label_names.txt",
});

/** Side of a CIFAR image. */
const SIDE = 32;
/** Pixel bytes per record: 3 planes of 32x32. */
const PIXELS = 3 * SIDE * SIDE;

/** Options for {@link loadCifar10}. */
export interface LoadCifar10Options {
  /** `cifar-10-batches-bin/` itself, or the directory it was extracted into. */
  dir: string;
}

/** Options for {@link loadCifar100}. */
export interface LoadCifar100Options {
  /** `cifar-100-binary/` itself, or the directory it was extracted into. */
  dir: string;
  /** Which label to use: the 100 fine classes (default) or the 20 coarse superclasses. */
  labels?: "fine" | "coarse";
}

/** How to read one kind of CIFAR file. */
export interface CifarRecordFormat {
  /** Label bytes at the start of each record (1 for CIFAR-10, 2 for CIFAR-100). */
  labelBytes: number;
  /** Which of those bytes is the label to keep. */
  labelIndex: number;
  /** Class names; every kept label must be below their count. */
  classes: readonly string[];
  /** Dataset name for error messages, e.g. "CIFAR-10". */
  what: string;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function readFile(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new Error(`${path}: cannot read (${e instanceof Error ? e.message : e})`);
  }
}

/**
 * Parses the records of CIFAR binary files into one {@link ImageSet}, in
 * file order.
 *
 * @param files Each file's name (for error messages) and contents.
 * @param format Record layout and classes.
 * @returns The images (3x32x32, NCHW bytes) and the kept labels.
 * @throws Error naming the file when its size is not a whole number of
 *   records (or zero), and the file and record index when a label is out of range.
 *
 * @example
 * ```ts
 * import { CIFAR10_CLASSES, parseCifarRecords } from "./cifar.ts";
 *
 * const record = new Uint8Array(1 + 3072);
 * record[0] = 3; // cat
 * const set = parseCifarRecords([{ name: "one.bin", bytes: record }], {
 *   labelBytes: 1, labelIndex: 0, classes: CIFAR10_CLASSES, what: "CIFAR-10",
 * });
 * console.log(set.n, set.labels[0], set.classes[3]); // 1 3 cat
 * ```
 */
export function parseCifarRecords(
  files: readonly { name: string; bytes: Uint8Array }[],
  format: CifarRecordFormat,
): ImageSet {
  const { labelBytes, labelIndex, classes, what } = format;
  const rec = labelBytes + PIXELS;
  let n = 0;
  for (const { name, bytes } of files) {
    if (bytes.length === 0 || bytes.length % rec !== 0) {
      throw new Error(
        `${name}: size ${bytes.length} bytes is not a ${
          bytes.length === 0 ? "positive" : "whole"
        } ` +
          `number of ${rec}-byte ${what} records (${labelBytes} label byte${
            labelBytes > 1 ? "s" : ""
          } + ${PIXELS} pixel bytes each)`,
      );
    }
    n += bytes.length / rec;
  }
  const images = new Uint8Array(n * PIXELS);
  const labels = new Uint8Array(n);
  let k = 0;
  for (const { name, bytes } of files) {
    const count = bytes.length / rec;
    for (let r = 0; r < count; r++, k++) {
      const o = r * rec;
      const label = bytes[o + labelIndex];
      if (label >= classes.length) {
        throw new Error(
          `${name}: record ${r} has label ${label}, outside ${what}'s 0..${classes.length - 1}`,
        );
      }
      labels[k] = label;
      images.set(bytes.subarray(o + labelBytes, o + rec), k * PIXELS);
    }
  }
  return { images, labels, n, height: SIDE, width: SIDE, channels: 3, classes: [...classes] };
}

/**
 * Finds the directory holding `names`: `dir` itself or `dir/sub` (the folder
 * the archive extracts to). Throws, listing the missing files, when neither
 * has all of them.
 */
async function findDir(dir: string, sub: string, names: readonly string[], what: string) {
  const tried: { path: string; missing: string[] }[] = [];
  for (const path of [dir, join(dir, sub)]) {
    const missing: string[] = [];
    for (const name of names) if (!(await exists(join(path, name)))) missing.push(name);
    if (missing.length === 0) return path;
    tried.push({ path, missing });
  }
  // Report the candidate that came closest; ties go to `dir` itself.
  const best = tried[1].missing.length < tried[0].missing.length ? tried[1] : tried[0];
  throw new Error(
    `${best.path}: missing ${what} file(s) ${best.missing.join(", ")} ` +
      `(looked in ${dir} and ${join(dir, sub)}; the binary version is needed, not the Python or ` +
      `MATLAB one)`,
  );
}

/** Reads an optional label-names file: one name per line, blank lines ignored. */
async function readNames(
  path: string,
  fallback: readonly string[],
): Promise<readonly string[]> {
  if (!(await exists(path))) return fallback;
  const names = new TextDecoder().decode(await readFile(path)).split(/\r?\n/).map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length !== fallback.length) {
    throw new Error(`${path}: has ${names.length} class names, expected ${fallback.length}`);
  }
  return names;
}

/**
 * Loads CIFAR-10, binary version: 50000 training images (`data_batch_1.bin`
 * to `data_batch_5.bin`, in that order) and 10000 test images
 * (`test_batch.bin`), 3x32x32, 10 classes. Class names come from
 * `batches.meta.txt` when present, else {@link CIFAR10_CLASSES}.
 *
 * @param opts `dir`: `cifar-10-batches-bin/` or the directory containing it.
 * @returns Both splits (channels 3, 32x32, NCHW bytes) and the directory read.
 * @throws Error listing missing files, or naming a file with a bad size or label.
 *
 * @example
 * ```ts ignore
 * import { loadCifar10 } from "./cifar.ts";
 *
 * const { train, test } = await loadCifar10({ dir: "./datasets" }); // holds cifar-10-batches-bin/
 * console.log(train.n, test.n, train.channels); // 50000 10000 3
 * ```
 */
export async function loadCifar10(opts: LoadCifar10Options): Promise<ImageDataset> {
  const files = [...CIFAR10_FILES.train, CIFAR10_FILES.test];
  const dir = await findDir(opts.dir, "cifar-10-batches-bin", files, "CIFAR-10");
  const classes = await readNames(join(dir, CIFAR10_FILES.meta), CIFAR10_CLASSES);
  const format = { labelBytes: 1, labelIndex: 0, classes, what: "CIFAR-10" };
  const read = (names: readonly string[]) =>
    Promise.all(names.map(async (name) => {
      const path = join(dir, name);
      return { name: path, bytes: await readFile(path) };
    }));
  const train = parseCifarRecords(await read(CIFAR10_FILES.train), format);
  const test = parseCifarRecords(await read([CIFAR10_FILES.test]), format);
  return { train, test, source: dir };
}

/**
 * Loads CIFAR-100, binary version: 50000 training images (`train.bin`) and
 * 10000 test images (`test.bin`), 3x32x32, with the 100 fine labels or the
 * 20 coarse ones. Class names come from `fine_label_names.txt` /
 * `coarse_label_names.txt` when present, else {@link CIFAR100_FINE_CLASSES} /
 * {@link CIFAR100_COARSE_CLASSES}.
 *
 * @param opts `dir`: `cifar-100-binary/` or the directory containing it;
 *   `labels`: `"fine"` (default) or `"coarse"`.
 * @returns Both splits (channels 3, 32x32, NCHW bytes) and the directory read.
 * @throws Error listing missing files, or naming a file with a bad size or label.
 *
 * @example
 * ```ts ignore
 * import { loadCifar100 } from "./cifar.ts";
 *
 * const { train } = await loadCifar100({ dir: "./datasets", labels: "coarse" });
 * console.log(train.classes.length); // 20
 * ```
 */
export async function loadCifar100(opts: LoadCifar100Options): Promise<ImageDataset> {
  const kind = opts.labels ?? "fine";
  if (kind !== "fine" && kind !== "coarse") {
    throw new Error(`loadCifar100: labels must be "fine" or "coarse", got ${JSON.stringify(kind)}`);
  }
  const names = [CIFAR100_FILES.train, CIFAR100_FILES.test];
  const dir = await findDir(opts.dir, "cifar-100-binary", names, "CIFAR-100");
  const classes = kind === "fine"
    ? await readNames(join(dir, CIFAR100_FILES.fineMeta), CIFAR100_FINE_CLASSES)
    : await readNames(join(dir, CIFAR100_FILES.coarseMeta), CIFAR100_COARSE_CLASSES);
  const format = {
    labelBytes: 2,
    labelIndex: kind === "coarse" ? 0 : 1,
    classes,
    what: `CIFAR-100 (${kind})`,
  };
  const read = async (name: string) => {
    const path = join(dir, name);
    return parseCifarRecords([{ name: path, bytes: await readFile(path) }], format);
  };
  const [train, test] = await Promise.all([read(CIFAR100_FILES.train), read(CIFAR100_FILES.test)]);
  return { train, test, source: `${dir} (${kind} labels)` };
}
