import assert from "node:assert/strict";
import {
  encodeTextDataset,
  encodeTextSet,
  type TextBatch,
  TextBatchLoader,
  type TextSet,
} from "../../data/text_set.ts";
import { BatchLoader } from "../../data/loader.ts";
import type { ImageSet } from "../../data/image_set.ts";
import { WordPieceTokenizer } from "../../data/wordpiece.ts";
import { loadSpamAssassin } from "../../data/spam_assassin.ts";

/** ids: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4 a=5 b=6 c=7. */
const tok = new WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c"]);

/** n rows; row i is "a" repeated (i % 7) + 1 times, label i % 3. */
function makeSet(n: number, maxLength = 8): TextSet {
  const examples = Array.from({ length: n }, (_, i) => ({
    textA: Array((i % 7) + 1).fill("a").join(" "),
    label: i % 3,
  }));
  return encodeTextSet(examples, tok, { maxLength, classes: ["x", "y", "z"] });
}

async function epoch(loader: TextBatchLoader): Promise<TextBatch[]> {
  const out: TextBatch[] = [];
  for await (const b of loader.batches()) out.push(b);
  return out;
}

const order = (batches: TextBatch[]) => batches.flatMap((b) => [...b.indices]);

Deno.test("encodeTextSet() packs [CLS] A [SEP] B [SEP] rows, labels, lengths and truncation counts", () => {
  const set = encodeTextSet(
    [
      { textA: "a b", label: 1 },
      { textA: "a", textB: "c c", label: 0 },
      { textA: "a a a a a a a", label: 2 },
    ],
    tok,
    { maxLength: 6 },
  );
  assert.equal(set.n, 3);
  assert.equal(set.seqLength, 6);
  assert.deepEqual([...set.inputIds], [2, 5, 6, 3, 0, 0, 2, 5, 3, 7, 7, 3, 2, 5, 5, 5, 5, 3]);
  assert.deepEqual([...set.tokenTypeIds], [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...set.attentionMask], [1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual([...set.labels], [1, 0, 2]);
  assert.deepEqual([...set.lengths], [4, 6, 6]);
  assert.equal(set.truncated, 1);
  assert.deepEqual(set.classes, ["0", "1", "2"]);
  const short = encodeTextSet([{ textA: "a", label: 0 }], tok, {
    maxLength: 6,
    padding: "longest",
  });
  assert.equal(short.seqLength, 3);
});

Deno.test("encodeTextSet() rejects labels that are negative, fractional or beyond the classes", () => {
  assert.throws(
    () => encodeTextSet([{ textA: "a", label: -1 }], tok, { maxLength: 4 }),
    /example 0/,
  );
  assert.throws(() => encodeTextSet([{ textA: "a", label: 0.5 }], tok, { maxLength: 4 }), /0\.5/);
  assert.throws(
    () => encodeTextSet([{ textA: "a", label: 2 }], tok, { maxLength: 4, classes: ["n", "p"] }),
    /label 2, but there are 2 classes/,
  );
});

Deno.test("encodeTextDataset() encodes both splits with the dataset's classes", () => {
  const ds = {
    train: [{ textA: "a", label: 1 }, { textA: "b", label: 0 }],
    test: [{ textA: "c", textB: "a", label: 1 }],
    classes: ["no", "yes"],
    source: "inline",
  };
  const e = encodeTextDataset(ds, tok, { maxLength: 5 });
  assert.deepEqual([e.train.n, e.test.n, e.test.seqLength], [2, 1, 5]);
  assert.deepEqual(e.test.classes, ["no", "yes"]);
  assert.deepEqual([...e.test.inputIds], [2, 7, 3, 5, 3]);
  assert.equal(e.source, "inline");
});

Deno.test("TextBatchLoader yields every row once per epoch, in the image BatchLoader's order", async () => {
  const set = makeSet(23);
  const loader = new TextBatchLoader(set, { batchSize: 5, shuffle: true, seed: 9 });
  const images: ImageSet = {
    images: new Uint8Array(23),
    labels: new Uint8Array(23),
    n: 23,
    height: 1,
    width: 1,
    channels: 1,
    classes: ["a"],
  };
  const imageLoader = new BatchLoader(images, { batchSize: 5, shuffle: true, seed: 9 });
  assert.equal(loader.batchesPerEpoch, 5);
  for (let e = 0; e < 3; e++) {
    const batches = await epoch(loader);
    assert.deepEqual(batches.map((b) => b.size), [5, 5, 5, 5, 3]);
    assert.deepEqual(order(batches), [...imageLoader.order(e)]);
    assert.deepEqual(order(batches).sort((x, y) => x - y), Array.from({ length: 23 }, (_, i) => i));
    for (const b of batches) {
      assert.equal(b.seqLength, 8);
      for (let r = 0; r < b.size; r++) {
        const i = b.indices[r];
        assert.equal(b.y[r], set.labels[i]);
        assert.deepEqual(
          [...b.inputIds.subarray(r * 8, r * 8 + 8)],
          [...set.inputIds.subarray(i * 8, i * 8 + 8)],
        );
        assert.deepEqual(
          [...b.attentionMask.subarray(r * 8, r * 8 + 8)],
          [...set.attentionMask.subarray(i * 8, i * 8 + 8)],
        );
      }
    }
    assert.deepEqual(loader.state(), { epoch: e + 1, position: 0, seed: 9 });
  }
  const plain = new TextBatchLoader(set, { batchSize: 10 });
  assert.deepEqual(order(await epoch(plain)), Array.from({ length: 23 }, (_, i) => i));
});

Deno.test("TextBatchLoader resumes mid-epoch from state() with the exact remaining batches", async () => {
  const set = makeSet(30);
  const a = new TextBatchLoader(set, { batchSize: 4, shuffle: true, seed: 3 });
  await epoch(a);
  const seen: TextBatch[] = [];
  for await (const b of a.batches()) {
    seen.push(b);
    if (seen.length === 3) break;
  }
  const saved = JSON.parse(JSON.stringify(a.state()));
  assert.deepEqual(saved, { epoch: 1, position: 12, seed: 3 });
  const rest = await epoch(a);
  const b = new TextBatchLoader(set, { batchSize: 4, shuffle: true, seed: 3 });
  b.restore(saved);
  const resumed = await epoch(b);
  assert.deepEqual(order(resumed), order(rest));
  assert.deepEqual(resumed.map((x) => [...x.inputIds]), rest.map((x) => [...x.inputIds]));
  assert.deepEqual(order([...seen, ...rest]), [...a.order(1)]);
  assert.throws(() => b.restore({ epoch: 0, position: 0, seed: 4 }), /saved with seed 4/);
  assert.throws(() => b.restore({ epoch: 0, position: 31 }), /outside 0\.\.30/);
  assert.throws(() => b.restore({ epoch: -1, position: 0 }), /bad epoch/);
});

Deno.test("TextBatchLoader with dropLast yields only full batches", async () => {
  const loader = new TextBatchLoader(makeSet(23), { batchSize: 5, dropLast: true, shuffle: true });
  assert.equal(loader.batchesPerEpoch, 4);
  const batches = await epoch(loader);
  assert.deepEqual(batches.map((b) => b.size), [5, 5, 5, 5]);
  assert.equal(new Set(order(batches)).size, 20);
});

Deno.test("TextBatchLoader with dynamicPadding cuts batches to their longest row", async () => {
  // Rows have 3..9 real tokens in a 16-wide set.
  const set = makeSet(14, 16);
  const loader = new TextBatchLoader(set, { batchSize: 2, dynamicPadding: true, padMultiple: 4 });
  for (const b of await epoch(loader)) {
    const longest = Math.max(...[...b.indices].map((i) => set.lengths[i]));
    assert.equal(b.seqLength, Math.ceil(longest / 4) * 4);
    assert.equal(b.inputIds.length, b.size * b.seqLength);
    for (let r = 0; r < b.size; r++) {
      const i = b.indices[r];
      assert.deepEqual(
        [...b.inputIds.subarray(r * b.seqLength, (r + 1) * b.seqLength)],
        [...set.inputIds.subarray(i * 16, i * 16 + b.seqLength)],
      );
    }
  }
  const wide = new TextBatchLoader(makeSet(3, 6), { batchSize: 3, dynamicPadding: true });
  assert.equal((await epoch(wide))[0].seqLength, 6);
});

Deno.test("TextBatchLoader checks its options and refuses overlapping iterations", async () => {
  const set = makeSet(4);
  assert.throws(() => new TextBatchLoader(set, { batchSize: 0 }), /batchSize/);
  assert.throws(() => new TextBatchLoader(set, { batchSize: 1, padMultiple: 0 }), /padMultiple/);
  assert.throws(
    () => new TextBatchLoader({ ...set, labels: new Int32Array(3) }, { batchSize: 1 }),
    /sizes disagree/,
  );
  const loader = new TextBatchLoader(set, { batchSize: 1 });
  const it = loader.batches();
  await it.next();
  await assert.rejects(() => loader.batches().next(), /another iteration is running/);
  assert.throws(() => loader.restore({ epoch: 0, position: 0 }), /iteration is running/);
  await it.return();
});

Deno.test("the SpamAssassin corpus encodes with bert-base-uncased into well-formed rows", async () => {
  const bert = await WordPieceTokenizer.fromBertTokenizerPackage();
  const ds = await loadSpamAssassin();
  const t0 = performance.now();
  const { train, test } = encodeTextDataset(ds, bert, { maxLength: 128 });
  const ms = performance.now() - t0;
  // About 0.3 s here; the bound only catches a tokenizer that reads whole e-mails again.
  assert.ok(ms < 10_000, `encoding took ${ms.toFixed(0)} ms`);
  assert.deepEqual([train.n, test.n, train.seqLength], [4733, 1183, 128]);
  assert.deepEqual(train.classes, ["ham", "spam"]);
  assert.equal(train.truncated + test.truncated, 5017);
  for (const set of [train, test]) {
    for (let i = 0; i < set.n; i++) {
      const row = set.inputIds.subarray(i * 128, (i + 1) * 128);
      const len = set.lengths[i];
      assert.equal(row[0], 101);
      assert.equal(row[len - 1], 102);
      assert.ok(row.subarray(len).every((v) => v === 0));
      assert.equal(
        set.attentionMask.subarray(i * 128, (i + 1) * 128).reduce((s, v) => s + v, 0),
        len,
      );
    }
  }
  const first = ds.train.findIndex((e) => e.id === "easy-ham-1/00001");
  assert.equal(
    bert.decode(train.inputIds.subarray(first * 128, first * 128 + 8)),
    "[CLS] re : new sequences window date :",
  );
});
