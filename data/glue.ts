/**
 * Loaders for GLUE-style TSV files: MRPC (sentence pairs, paraphrase or
 * not) and CoLA (single sentences, grammatical or not).
 *
 * The files are read the way GLUE's own code reads them: split on tabs with
 * quoting disabled (`csv.QUOTE_NONE`), so a `"` is an ordinary character of
 * a sentence. A UTF-8 byte-order mark at the start is dropped (GLUE's MRPC
 * `train.tsv` starts with one), `\r\n` line ends are accepted, and empty
 * lines are skipped. Any other row with the wrong number of columns or a
 * label other than `0`/`1` throws an error naming the file and its 1-based
 * line number.
 *
 * Test sets are the dev sets (`dev.tsv`): GLUE's `test.tsv` files have no
 * labels.
 *
 * @module
 */

import { join } from "node:path";
import type { TextDataset, TextExample } from "./text_dataset.ts";

/** The GLUE tasks {@link loadGlue} reads. */
export type GlueTask = "mrpc" | "cola";

/** Class names of MRPC, indexed by label. */
export const MRPC_CLASSES: readonly string[] = Object.freeze(["not_equivalent", "equivalent"]);

/** Class names of CoLA, indexed by label. */
export const COLA_CLASSES: readonly string[] = Object.freeze(["unacceptable", "acceptable"]);

/** The header line of MRPC's TSV files (GLUE and the original release alike). */
export const MRPC_HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String";

/** Options of the GLUE loaders. */
export interface LoadGlueOptions {
  /** The task's directory (e.g. `glue_data/MRPC`). */
  dir: string;
}

/** Splits a TSV file into rows of columns, with the 1-based line number of each row. */
function tsvRows(text: string): { line: number; cols: string[] }[] {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const rows: { line: number; cols: string[] }[] = [];
  body.split("\n").forEach((raw, i) => {
    const l = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (l !== "") rows.push({ line: i + 1, cols: l.split("\t") });
  });
  return rows;
}

function parseLabel(s: string, name: string, line: number): number {
  if (s === "0" || s === "1") return Number(s);
  throw new Error(`${name}:${line}: label must be 0 or 1, got ${JSON.stringify(s)}`);
}

function columns(cols: string[], n: number, name: string, line: number): void {
  if (cols.length !== n) {
    throw new Error(`${name}:${line}: expected ${n} tab-separated columns, got ${cols.length}`);
  }
}

/**
 * Parses an MRPC TSV file: the header `Quality\t#1 ID\t#2 ID\t#1 String\t#2 String`,
 * then one row per sentence pair (label 1 = paraphrase).
 *
 * @param text The file's contents.
 * @param name What to call the file in error messages.
 * @returns One example per row: `textA`, `textB` and the label.
 *
 * @example
 * ```ts
 * import { parseMrpcTsv } from "./glue.ts";
 *
 * const tsv = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tHe said \"hi\".\tHe greeted.\n";
 * console.log(parseMrpcTsv(tsv, "train.tsv"));
 * // [{ textA: 'He said "hi".', textB: "He greeted.", label: 1 }]
 * ```
 */
export function parseMrpcTsv(text: string, name: string): TextExample[] {
  const rows = tsvRows(text);
  if (rows.length === 0 || rows[0].cols.join("\t") !== MRPC_HEADER) {
    throw new Error(
      `${name}:${rows[0]?.line ?? 1}: expected the MRPC header ${JSON.stringify(MRPC_HEADER)}`,
    );
  }
  return rows.slice(1).map(({ line, cols }) => {
    columns(cols, 5, name, line);
    return { textA: cols[3], textB: cols[4], label: parseLabel(cols[0], name, line) };
  });
}

/**
 * Parses a CoLA TSV file (no header): columns source, label, original
 * judgement (`*` or empty), sentence.
 *
 * @param text The file's contents.
 * @param name What to call the file in error messages.
 * @returns One example per row: `textA` and the label (1 = acceptable).
 *
 * @example
 * ```ts
 * import { parseColaTsv } from "./glue.ts";
 *
 * const tsv = "gj04\t1\t\tOur friends won't buy this analysis.\ngj04\t0\t*\tThey drank the pub.\n";
 * console.log(parseColaTsv(tsv, "dev.tsv").map((e) => e.label)); // [1, 0]
 * ```
 */
export function parseColaTsv(text: string, name: string): TextExample[] {
  return tsvRows(text).map(({ line, cols }) => {
    columns(cols, 4, name, line);
    return { textA: cols[3], label: parseLabel(cols[1], name, line) };
  });
}

async function readText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`${path}: cannot read (${e instanceof Error ? e.message : e})`);
  }
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

/**
 * Loads MRPC from GLUE's `MRPC/` directory (`train.tsv`, `dev.tsv`; 3668
 * and 408 pairs in GLUE). A directory of the original Microsoft release
 * (`msr_paraphrase_train.txt`, `msr_paraphrase_test.txt`, same format, no
 * dev split) is read too, its labelled test file serving as the test split.
 *
 * @param opts `dir`: the directory.
 * @returns Train and test pairs, classes and the files read.
 *
 * @example
 * ```ts ignore
 * import { loadMrpc } from "./glue.ts";
 *
 * const { train, test, source } = await loadMrpc({ dir: "glue_data/MRPC" });
 * console.log(train.length, test.length, source); // 3668 408 glue_data/MRPC/{train,dev}.tsv
 * ```
 */
export async function loadMrpc(opts: LoadGlueOptions): Promise<TextDataset> {
  const { dir } = opts;
  let files: [string, string];
  if (await exists(join(dir, "train.tsv"))) files = ["train.tsv", "dev.tsv"];
  else if (await exists(join(dir, "msr_paraphrase_train.txt"))) {
    files = ["msr_paraphrase_train.txt", "msr_paraphrase_test.txt"];
  } else {
    throw new Error(
      `${dir}: no MRPC files (expected GLUE's train.tsv and dev.tsv, or the original ` +
        `msr_paraphrase_train.txt and msr_paraphrase_test.txt)`,
    );
  }
  // One after the other, so that errors name the train file first.
  const read = async (f: string) => parseMrpcTsv(await readText(join(dir, f)), join(dir, f));
  const train = await read(files[0]);
  const test = await read(files[1]);
  return { train, test, classes: [...MRPC_CLASSES], source: join(dir, `{${files.join(",")}}`) };
}

/**
 * Loads CoLA from GLUE's `CoLA/` directory (`train.tsv`, `dev.tsv`; 8551
 * and 1043 sentences in GLUE).
 *
 * @param opts `dir`: the directory.
 * @returns Train and test sentences, classes and the files read.
 *
 * @example
 * ```ts ignore
 * import { loadCola } from "./glue.ts";
 *
 * const { train, test } = await loadCola({ dir: "glue_data/CoLA" });
 * console.log(train.length, test.length); // 8551 1043
 * ```
 */
export async function loadCola(opts: LoadGlueOptions): Promise<TextDataset> {
  const { dir } = opts;
  const read = async (f: string) => parseColaTsv(await readText(join(dir, f)), join(dir, f));
  const train = await read("train.tsv");
  const test = await read("dev.tsv");
  return { train, test, classes: [...COLA_CLASSES], source: join(dir, "{train,dev}.tsv") };
}

/**
 * Loads a GLUE task by name from its directory.
 *
 * @param task `"mrpc"` or `"cola"`.
 * @param opts `dir`: the task's directory.
 * @returns The task's train and dev (as test) splits.
 *
 * @example
 * ```ts ignore
 * import { loadGlue } from "./glue.ts";
 *
 * const ds = await loadGlue("cola", { dir: "glue_data/CoLA" });
 * console.log(ds.classes); // ["unacceptable", "acceptable"]
 * ```
 */
export async function loadGlue(task: GlueTask, opts: LoadGlueOptions): Promise<TextDataset> {
  switch (task) {
    case "mrpc":
      return await loadMrpc(opts);
    case "cola":
      return await loadCola(opts);
    default:
      throw new Error(`loadGlue: unknown task ${JSON.stringify(task)} (known: mrpc, cola)`);
  }
}
