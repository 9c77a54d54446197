import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  type Truncation,
  vocabFromBertTokenizerJson,
  WordPieceTokenizer,
} from "../../data/wordpiece.ts";

const SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
/** ids: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4, then `words` from 5. */
const tiny = (words: string[], opts = {}) => new WordPieceTokenizer([...SPECIALS, ...words], opts);

const bert = await WordPieceTokenizer.fromBertTokenizerPackage();

Deno.test("vocabFromBertTokenizerJson() reproduces bert-base-uncased's vocab.txt exactly", () => {
  assert.equal(bert.vocabSize, 30522);
  const text = bert.toVocabText();
  const bytes = new TextEncoder().encode(text);
  // vocab.txt of bert-base-uncased: 231508 bytes, 5828 continuation tokens; the
  // digest pins the conversion (checked line by line against public copies).
  assert.equal(bytes.length, 231508);
  assert.equal(bert.vocab.filter((t) => t.startsWith("##")).length, 5828);
  assert.equal(
    createHash("sha256").update(bytes).digest("hex"),
    "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
  );
  const ids: Record<string, number> = {
    "[PAD]": 0,
    "[unused0]": 1,
    "[unused1]": 2,
    "[unused98]": 99,
    "[UNK]": 100,
    "[CLS]": 101,
    "[SEP]": 102,
    "[MASK]": 103,
    "[unused99]": 104,
    "[unused993]": 998,
    "!": 999,
    "[": 1031,
    "the": 1996,
    "##s": 2015,
    "##[": 29634,
    "##～": 30521,
  };
  for (const [t, id] of Object.entries(ids)) assert.equal(bert.tokenToId(t), id, t);
  assert.deepEqual(
    [bert.padId, bert.unkId, bert.clsId, bert.sepId, bert.maskId],
    [0, 100, 101, 102, 103],
  );
});

Deno.test("vocabFromBertTokenizerJson() maps ▁x to x, bare x to ##x, keeps specials", () => {
  assert.deepEqual(
    vocabFromBertTokenizerJson(["[PAD]", "▁", "[unused1]", "[CLS]", "▁[", "[", "▁a", "b"]),
    ["[PAD]", "[unused0]", "[unused1]", "[CLS]", "[", "##[", "a", "##b"],
  );
});

Deno.test("WordPieceTokenizer gives bert-base-uncased's ids for known texts", () => {
  assert.deepEqual(bert.tokenizeToIds("i like strawberries"), [1045, 2066, 13137, 20968]);
  assert.deepEqual(bert.tokenize("i like strawberries"), ["i", "like", "straw", "##berries"]);
  assert.deepEqual(bert.tokenizeToIds("hello world"), [7592, 2088]);
  assert.deepEqual(bert.tokenize("unaffable"), ["una", "##ffa", "##ble"]);
  assert.deepEqual(bert.tokenizeToIds("unaffable"), [14477, 20961, 3468]);
  assert.deepEqual(bert.tokenize("Héllo, WORLD!"), ["hello", ",", "world", "!"]);
  assert.deepEqual(bert.tokenizeToIds("Héllo, WORLD!"), [7592, 1010, 2088, 999]);
  assert.deepEqual(
    bert.tokenizeToIds("The quick brown fox jumped over the lazy dog."),
    [1996, 4248, 2829, 4419, 5598, 2058, 1996, 13971, 3899, 1012],
  );
  assert.deepEqual(bert.tokenize("don't"), ["don", "'", "t"]);
  assert.deepEqual(bert.tokenize("Naïve CAFÉ 我"), ["naive", "cafe", "我"]);
  assert.deepEqual(
    bert.encode("hello world", undefined, { maxLength: 6, padding: "max_length" }),
    {
      inputIds: [101, 7592, 2088, 102, 0, 0],
      tokenTypeIds: [0, 0, 0, 0, 0, 0],
      attentionMask: [1, 1, 1, 1, 0, 0],
    },
  );
});

Deno.test("WordPiece takes the longest match first and continues with ## pieces", () => {
  const tok = tiny(["un", "una", "##aff", "##ffa", "##able", "##ble", "##a"]);
  // "una" beats "un"; then "##ffa" (longest at that point), then "##ble".
  assert.deepEqual(tok.tokenize("unaffable"), ["una", "##ffa", "##ble"]);
  // A word whose remainder has no piece is one [UNK], not a partial split.
  assert.deepEqual(tok.tokenize("unx una"), ["[UNK]", "una"]);
  // Continuation pieces never start a word.
  assert.deepEqual(tok.tokenize("able"), ["[UNK]"]);
});

Deno.test("WordPiece turns words longer than maxCharsPerWord (code points) into [UNK]", () => {
  const tok = tiny(["a", "##a", "😀", "##😀"]);
  assert.equal(tok.tokenize("a".repeat(100)).length, 100);
  assert.deepEqual(tok.tokenize("a".repeat(101)), ["[UNK]"]);
  // 100 astral characters are 200 UTF-16 units but still 100 characters.
  assert.equal(tok.tokenize("😀".repeat(100)).length, 100);
  assert.deepEqual(tok.tokenize("😀".repeat(101)), ["[UNK]"]);
  assert.deepEqual(tiny(["a", "##a"], { maxCharsPerWord: 3 }).tokenize("aaa aaaa"), [
    "a",
    "##a",
    "##a",
    "[UNK]",
  ]);
});

Deno.test("BasicTokenizer drops control characters, NUL and U+FFFD and splits on Unicode spaces", () => {
  const tok = tiny(["ab", "c", "d", "e"]);
  assert.deepEqual(tok.tokenize("a\u0000b a\ufffdb a\u0007b a\u200bb a\u00adb"), [
    "ab",
    "ab",
    "ab",
    "ab",
    "ab",
  ]);
  assert.deepEqual(tok.tokenize("c\td\ne\r\nc\u00a0d\u3000e\u2028c\u2003d"), [
    "c",
    "d",
    "e",
    "c",
    "d",
    "e",
    "c",
    "d",
  ]);
  assert.deepEqual(tok.tokenize("  \t\n "), []);
});

Deno.test("BasicTokenizer splits ASCII symbols and Unicode punctuation into words of their own", () => {
  // $ ^ ` ~ + < = > | are symbols (S*) in Unicode but punctuation for BERT.
  const marks = ["$", "^", "`", "~", "+", "<", "=", ">", "|", "¿", "—", "「", "#", "@"];
  const tok = tiny(["a", "b", ...marks]);
  for (const m of marks) assert.deepEqual(tok.tokenize(`a${m}b`), ["a", m, "b"], m);
  // Non-punctuation symbols such as © (So) stay inside the word.
  assert.deepEqual(tiny(["a©b"]).tokenize("a©b"), ["a©b"]);
});

Deno.test("BasicTokenizer cuts around CJK ideographs but not kana or Hangul", () => {
  // lowerCase off: NFD would turn が into か + U+3099 (then dropped) and 한 into jamo.
  const tok = tiny(["中", "文", "x", "ひらがな", "한국"], { lowerCase: false });
  assert.deepEqual(tok.tokenize("x中文x"), ["x", "中", "文", "x"]);
  assert.deepEqual(tok.tokenize("ひらがな 한국"), ["ひらがな", "한국"]);
});

Deno.test("BasicTokenizer lower-cases and strips accents only with lowerCase", () => {
  const words = ["hello", "Héllo", "cafe"];
  assert.deepEqual(tiny(words).tokenize("HÉLLO Cafe\u0301"), ["hello", "cafe"]);
  assert.deepEqual(tiny(words, { lowerCase: false }).tokenize("Héllo"), ["Héllo"]);
  assert.deepEqual(tiny(words, { lowerCase: false }).tokenize("hello HELLO"), ["hello", "[UNK]"]);
});

Deno.test("special tokens written in the text are kept whole", () => {
  const tok = tiny(["a", "b", "["]);
  assert.deepEqual(tok.tokenize("a[MASK]b [CLS] [ a"), ["a", "[MASK]", "b", "[CLS]", "[", "a"]);
  assert.deepEqual(tok.tokenize("[mask]"), ["[", "[UNK]", "[UNK]"]);
});

/** Hugging Face's longest_first as documented: drop one token at a time from the longer part, B on ties. */
function referenceTruncate(a: number[], b: number[], room: number): [number[], number[]] {
  a = [...a];
  b = [...b];
  while (a.length + b.length > room) {
    if (a.length > b.length) a.pop();
    else b.pop();
  }
  return [a, b];
}

Deno.test("encode() truncates pairs longest_first like Hugging Face, with [CLS] A [SEP] B [SEP] types", () => {
  const words = Array.from({ length: 30 }, (_, i) => `w${i}`);
  const tok = tiny(words);
  const id = (w: string) => tok.tokenToId(w)!;
  for (
    const [la, lb, max] of [[10, 3, 9], [3, 10, 9], [8, 8, 10], [8, 8, 11], [20, 25, 16], [
      2,
      2,
      16,
    ]]
  ) {
    const a = words.slice(0, la), b = words.slice(30 - lb);
    const e = tok.encode(a.join(" "), b.join(" "), { maxLength: max });
    const [ra, rb] = referenceTruncate(a.map(id), b.map(id), max - 3);
    assert.deepEqual(e.inputIds, [2, ...ra, 3, ...rb, 3], `${la} ${lb} ${max}`);
    assert.deepEqual(e.tokenTypeIds, [
      ...Array(ra.length + 2).fill(0),
      ...Array(rb.length + 1).fill(1),
    ]);
    assert.deepEqual(e.attentionMask, Array(e.inputIds.length).fill(1));
  }
});

Deno.test("encode() only_first/only_second truncate one part and throw when it is too short", () => {
  const tok = tiny(["a", "b"]);
  const a = "a a a a a", b = "b b b";
  const opts = (truncation: Truncation) => ({ maxLength: 8, truncation });
  assert.deepEqual(tok.encode(a, b, opts("only_first")).inputIds, [2, 5, 5, 3, 6, 6, 6, 3]);
  assert.throws(() => tok.encode(a, b, opts("only_second")), /only_second.*must remove 3 tokens/);
  assert.deepEqual(tok.encode(b, a, opts("only_second")).inputIds, [2, 6, 6, 6, 3, 5, 5, 3]);
  assert.deepEqual(tok.encode(a + " a a", undefined, opts("only_first")).inputIds, [
    2,
    5,
    5,
    5,
    5,
    5,
    5,
    3,
  ]);
  assert.throws(() => tok.encode(a, undefined, opts("only_second")), /needs a text pair/);
  assert.throws(() => tok.encode(a, b, { maxLength: 3 }), /maxLength must be an integer >= 4/);
});

Deno.test("encode() pads to max_length and leaves sequences unpadded otherwise", () => {
  const tok = tiny(["a"]);
  assert.deepEqual(tok.encode("a", "a", { maxLength: 7, padding: "max_length" }), {
    inputIds: [2, 5, 3, 5, 3, 0, 0],
    tokenTypeIds: [0, 0, 0, 1, 1, 0, 0],
    attentionMask: [1, 1, 1, 1, 1, 0, 0],
  });
  assert.deepEqual(tok.encode("a", undefined, { maxLength: 7 }).inputIds, [2, 5, 3]);
  assert.deepEqual(tok.encode("a a", undefined, { addSpecialTokens: false }).inputIds, [5, 5]);
});

Deno.test("encodeBatch() packs rows into [n, T] Int32Arrays padded to the longest or max_length", () => {
  const tok = tiny(["a", "b"]);
  const inputs = ["a", ["a b", "b"], "a a a a a a"] as const;
  const longest = tok.encodeBatch(inputs, { maxLength: 6 });
  assert.equal(longest.n, 3);
  assert.equal(longest.seqLength, 6);
  assert.deepEqual([...longest.lengths], [3, 6, 6]);
  assert.deepEqual([...longest.truncated], [0, 0, 1]);
  assert.deepEqual([...longest.inputIds], [2, 5, 3, 0, 0, 0, 2, 5, 6, 3, 6, 3, 2, 5, 5, 5, 5, 3]);
  assert.deepEqual([...longest.tokenTypeIds], [
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
  ]);
  assert.deepEqual(
    [...longest.attentionMask],
    [1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
  );
  const full = tok.encodeBatch(["a"], { maxLength: 5, padding: "max_length" });
  assert.deepEqual([...full.inputIds], [2, 5, 3, 0, 0]);
  assert.equal(tok.encodeBatch(["a", "a b"]).seqLength, 4);
  assert.throws(() => tok.encodeBatch(["a"], { padding: false }), /need padding/);
  assert.throws(() => tok.encodeBatch(["a"], { padding: "max_length" }), /needs maxLength/);
});

Deno.test("tokenizeToIds() with a limit returns the same prefix as a full tokenization", () => {
  const text = "Hello, world! ".repeat(50) + "unaffable";
  const full = bert.tokenizeToIds(text);
  for (const limit of [1, 2, 7, 60]) {
    const part = bert.tokenizeToIds(text, limit);
    assert.ok(part.length >= limit && part.length < limit + 4, `${limit}: ${part.length}`);
    assert.deepEqual(part, full.slice(0, part.length));
  }
});

Deno.test("decode() glues ## pieces, drops specials on request and cleans up spaces", () => {
  const ids = bert.encode("Hello, World! I don't like unaffable dogs.").inputIds;
  assert.equal(
    bert.decode(ids),
    "[CLS] hello, world! i don't like unaffable dogs. [SEP]",
  );
  assert.equal(
    bert.decode(ids, { skipSpecialTokens: true, cleanUpSpaces: false }),
    "hello , world ! i don ' t like unaffable dogs .",
  );
  assert.throws(() => bert.decode([30522]), /outside 0\.\.30521/);
});

Deno.test("fromVocabText() reads vocab.txt lines (CRLF too) and checks the vocabulary", () => {
  const tok = WordPieceTokenizer.fromVocabText(
    "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n[MASK]\r\nhi\r\n",
  );
  assert.equal(tok.vocabSize, 6);
  assert.deepEqual(tok.encode("Hi").inputIds, [2, 5, 3]);
  assert.throws(
    () => WordPieceTokenizer.fromVocabText("[PAD]\n[UNK]\n[CLS]\n[SEP]\n"),
    /no \[MASK\]/,
  );
  assert.throws(
    () => WordPieceTokenizer.fromVocabText("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\na\n"),
    /"a" at ids 5 and 6/,
  );
});
