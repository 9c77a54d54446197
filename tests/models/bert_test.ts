import assert from "node:assert/strict";
import { crossEntropy, manualSeed, type Tensor, tensor } from "../../mod.ts";
import {
  bert,
  BERT_CONFIGS,
  type BertConfig,
  type BertForSequenceClassification,
  bertForSequenceClassification,
  BertLayer,
  BertModel,
  bertNumParameters,
  bertStateDictShapes,
} from "../../models/mod.ts";
import {
  assertScaledClose,
  checkTransformerParity,
  fixtureTensors,
  options,
  parityFixture,
  stateShapes,
  transformerKeys,
} from "./parity.ts";
import { tapeNodes } from "../helpers/tape_nodes.ts";

const ARCHS = ["bert_base_uncased", "bert_base_uncased_seqcls2", "bert_tiny"];

Deno.test("bertStateDictShapes gives transformers' keys, shapes and parameter counts (BERT-base 109,482,240)", async () => {
  const archs = await transformerKeys();
  for (const name of ARCHS) {
    const { config, state_dict, num_params } = archs[name];
    const seq = config.fn === "bertForSequenceClassification";
    const opts = { sequenceClassification: seq };
    assert.deepEqual(bertStateDictShapes(options(config), opts), state_dict, name);
    assert.equal(bertNumParameters(options(config), opts), num_params, name);
  }
  assert.equal(bertNumParameters(), 109_482_240);
  assert.equal(bertNumParameters(BERT_CONFIGS["bert-base"]), 109_482_240);
});

Deno.test("a built BERT registers exactly bertStateDictShapes' keys, and transformers' non-persistent buffers", async () => {
  const { bert_tiny } = await transformerKeys();
  const cfg = options(bert_tiny.config) as Partial<BertConfig>;
  const cls = bertForSequenceClassification(cfg);
  const enc = bert(cfg);
  const bare = bert(cfg, { addPoolingLayer: false });
  try {
    assert.deepEqual(stateShapes(cls), bert_tiny.state_dict);
    assert.equal(cls.numParameters(), bert_tiny.num_params);
    assert.deepEqual(cls.namedBuffers().map(([k]) => k), bert_tiny.non_persistent_buffers);
    assert.deepEqual(stateShapes(enc), bertStateDictShapes(cfg));
    assert.deepEqual(stateShapes(bare), bertStateDictShapes(cfg, { addPoolingLayer: false }));
    assert.equal(bare.pooler, null);
    // transformers' module tree: the names SmartFRZ's units and checkpoints rely on.
    assert.ok(cls.bert.encoder.layer.at(1) instanceof BertLayer);
    assert.deepEqual(
      cls.bert.namedModules().slice(0, 12).map(([k]) => k),
      [
        "",
        "embeddings",
        "embeddings.word_embeddings",
        "embeddings.position_embeddings",
        "embeddings.token_type_embeddings",
        "embeddings.LayerNorm",
        "embeddings.dropout",
        "encoder",
        "encoder.layer",
        "encoder.layer.0",
        "encoder.layer.0.attention",
        "encoder.layer.0.attention.self",
      ],
    );
  } finally {
    for (const m of [cls, enc, bare]) m.dispose();
  }
});

Deno.test("BERT_CONFIGS hold Google's BERT sizes", () => {
  const rows = Object.entries(BERT_CONFIGS).map(([k, c]) => [
    k,
    c.num_hidden_layers,
    c.hidden_size,
    c.num_attention_heads,
    c.intermediate_size,
    c.vocab_size,
  ]);
  assert.deepEqual(rows, [
    ["bert-tiny", 2, 128, 2, 512, 30522],
    ["bert-mini", 4, 256, 4, 1024, 30522],
    ["bert-small", 4, 512, 8, 2048, 30522],
    ["bert-medium", 8, 512, 8, 2048, 30522],
    ["bert-base", 12, 768, 12, 3072, 30522],
  ]);
  assert.equal(bertNumParameters(BERT_CONFIGS["bert-mini"]), 11_170_560);
});

/** Runs a BERT classifier on the fixture's input file. */
function runBert(model: unknown, io: Record<string, Tensor>): Tensor {
  return (model as BertForSequenceClassification).forward(io.input_ids, {
    tokenTypeIds: io.token_type_ids,
    attentionMask: io.attention_mask,
  });
}

Deno.test("a tiny BertForSequenceClassification gives transformers' logits, loss and every gradient", async () => {
  await checkTransformerParity({
    name: "bert_tiny",
    build: (o) => bertForSequenceClassification(o as Partial<BertConfig>),
    run: runBert,
    labels: "labels",
    extraEval: async (model, io, fx) => {
      // Default arguments: token types 0, every position attended.
      const y = (model as BertForSequenceClassification).forward(io.input_ids);
      assertScaledClose(await y.toArray(), fx.eval_logits_defaults!.data, 1e-4, "defaults");
      y.dispose();
    },
  });
});

Deno.test("BERT loads old checkpoints: position_ids dropped, LayerNorm gamma/beta renamed, bert. prefix handled", async () => {
  const fx = await parityFixture("bert_tiny");
  const sd = await fixtureTensors("bert_tiny");
  const io = await fixtureTensors("bert_tiny", "_input");
  const cfg = options(fx.model.config) as Partial<BertConfig>;
  const old: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(sd)) {
    old[
      k.replace(/LayerNorm\.weight$/, "LayerNorm.gamma").replace(
        /LayerNorm\.bias$/,
        "LayerNorm.beta",
      )
    ] = v;
  }
  const positionIds = tensor(new Int32Array(16).map((_, i) => i), { shape: [1, 16], dtype: "i32" });
  old["bert.embeddings.position_ids"] = positionIds;
  const cls = bertForSequenceClassification(cfg);
  const enc = new BertModel(cfg);
  try {
    assert.throws(
      () => cls.loadStateDict({ ...sd, "bert.pooler.extra": positionIds }),
      /unexpected keys: "bert\.pooler\.extra"/,
    );
    const r = cls.loadStateDict(old);
    assert.deepEqual(r.missingKeys, []);
    assert.deepEqual(r.unexpectedKeys, []);
    assert.equal(r.notes.filter((n) => n.startsWith("renamed")).length, 10); // 5 LayerNorms
    assert.ok(
      r.notes.includes(
        'renamed "bert.embeddings.LayerNorm.gamma" to "bert.embeddings.LayerNorm.weight"',
      ),
    );
    assert.ok(r.notes.some((n) => n.startsWith('dropped "bert.embeddings.position_ids"')));
    const logits = cls.eval().forward(io.input_ids, {
      tokenTypeIds: io.token_type_ids,
      attentionMask: io.attention_mask,
    });
    assertScaledClose(await logits.toArray(), fx.eval_logits.data, 1e-4, "old checkpoint logits");

    // The classifier's checkpoint into the bare encoder: prefix removed, head keys unexpected.
    assert.throws(
      () => enc.loadStateDict(old),
      /unexpected keys: "classifier\.bias", "classifier\.weight"/,
    );
    const r2 = enc.loadStateDict(old, { strict: false });
    assert.deepEqual(r2.unexpectedKeys, ["classifier.bias", "classifier.weight"]);
    assert.ok(r2.notes.includes('removed the prefix "bert." from 39 keys'), r2.notes.join("\n"));
    // And back: the encoder's keys into the classifier get the prefix (the classifier is missing).
    const r3 = cls.loadStateDict(enc.stateDict(), { strict: false });
    assert.deepEqual(r3.missingKeys, ["classifier.weight", "classifier.bias"]);
    assert.ok(r3.notes.includes('added the prefix "bert." to 39 keys'));
  } finally {
    for (const t of [...Object.values(sd), ...Object.values(io), positionIds]) t.dispose();
    cls.dispose();
    enc.dispose();
  }
});

Deno.test("BERT rejects bad inputs and configurations with messages naming the model and shapes", () => {
  const model = bertForSequenceClassification({
    vocab_size: 20,
    hidden_size: 8,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    intermediate_size: 16,
    max_position_embeddings: 6,
  });
  const ids = tensor([1, 2, 3, 4, 5, 6], { shape: [2, 3], dtype: "i32" });
  const long = tensor(new Int32Array(7), { shape: [1, 7], dtype: "i32" });
  const f = tensor([1, 2, 3], { shape: [1, 3] });
  const flat = tensor([1, 2, 3], { dtype: "i32" });
  try {
    assert.throws(
      () => model.forward(f),
      /BertForSequenceClassification: input_ids must be an i32 \[batch, seq\] tensor, got f32 \[1, 3\]/,
    );
    assert.throws(
      () => model.forward(flat),
      /input_ids must be an i32 \[batch, seq\] tensor, got i32 \[3\]/,
    );
    assert.throws(
      () => model.forward(long),
      /sequence length 7 \(input_ids \[1, 7\]\) is longer than max_position_embeddings 6/,
    );
    assert.throws(
      () => model.forward(ids, { tokenTypeIds: flat }),
      /token_type_ids must be i32 \[2, 3\] like input_ids, got i32 \[3\]/,
    );
    assert.throws(
      () => model.forward(ids, { attentionMask: long }),
      /attention_mask must be \[2, 3\] like input_ids, got i32 \[1, 7\]/,
    );
    assert.throws(() => model.bert.forward(f), /^TypeError: BertModel: input_ids/);
  } finally {
    for (const t of [ids, long, f, flat]) t.dispose();
    model.dispose();
  }
  assert.throws(() => bert({ hidden_act: "relu" as "gelu" }), /hidden_act "relu" is not supported/);
  assert.throws(
    () => bert({ hidden_size: 10, num_attention_heads: 4 }),
    /hidden_size 10 is not a multiple of num_attention_heads 4/,
  );
  assert.throws(
    () => bert({ num_hidden_layers: 0 }),
    /num_hidden_layers must be an integer ≥ 1, got 0/,
  );
  assert.throws(() => bert({ hidden_dropout_prob: 1 }), /hidden_dropout_prob must be in \[0, 1\)/);
  assert.throws(
    () => bert({ vocab_size: 10, pad_token_id: 10 }),
    /pad_token_id must be null or an id in \[0, 10\)/,
  );
});

Deno.test("freezing the embeddings and the first BERT layer cuts the tape before the second layer", async () => {
  const model = bertForSequenceClassification({
    vocab_size: 30,
    hidden_size: 8,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    intermediate_size: 16,
    max_position_embeddings: 8,
  });
  const ids = tensor([1, 2, 3, 4, 5, 0], { shape: [2, 3], dtype: "i32" });
  const mask = tensor([1, 1, 1, 1, 1, 0], { shape: [2, 3], dtype: "i32" });
  const labels = tensor([0, 1], { dtype: "i32" });
  try {
    const ops = () => {
      const loss = crossEntropy(model.forward(ids, { attentionMask: mask }), labels);
      const nodes = tapeNodes(loss);
      return { loss, nodes, count: (op: string) => nodes.filter((n) => n.op === op).length };
    };
    const full = ops();
    assert.equal(full.count("embedding"), 3);
    assert.equal(full.count("layerNorm"), 5);
    full.loss.dispose();

    model.bert.embeddings.freeze();
    model.bert.encoder.layer.at(0).freeze();
    const cut = ops();
    assert.equal(cut.count("embedding"), 0);
    assert.equal(cut.count("layerNorm"), 2, "only the second layer's two LayerNorms are recorded");
    const frozen = new Set([
      ...model.bert.embeddings.parameters(),
      ...model.bert.encoder.layer.at(0).parameters(),
    ]);
    for (const n of cut.nodes) {
      for (const i of n.inputs) {
        assert.ok(!frozen.has(i), `a ${n.op} node reads a frozen parameter`);
      }
    }
    cut.loss.backward();
    for (const p of frozen) assert.equal(p.grad, null);
    for (const p of model.bert.encoder.layer.at(1).parameters()) assert.ok(p.grad);
    assert.ok((await model.classifier.weight.grad!.toArray()).some((v) => v !== 0));
    cut.loss.dispose();
  } finally {
    for (const t of [ids, mask, labels]) t.dispose();
    model.dispose();
  }
});

Deno.test("BERT initialisation follows transformers: N(0, 0.02) weights, zero biases and padding row, LayerNorm 1/0", async () => {
  const model = bertForSequenceClassification({
    vocab_size: 64,
    hidden_size: 64,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    intermediate_size: 128,
    max_position_embeddings: 32,
    pad_token_id: 3,
  });
  try {
    const sd = model.stateDict();
    const std = (a: ArrayLike<number>) => {
      let s = 0;
      for (let i = 0; i < a.length; i++) s += a[i] * a[i];
      return Math.sqrt(s / a.length);
    };
    for (
      const k of [
        "bert.encoder.layer.0.intermediate.dense.weight",
        "bert.embeddings.position_embeddings.weight",
        "classifier.weight",
      ]
    ) {
      const s = std(await sd[k].toArray());
      assert.ok(Math.abs(s / 0.02 - 1) < 0.1, `${k}: std ${s}`);
    }
    const word = await sd["bert.embeddings.word_embeddings.weight"].toArray();
    assert.deepEqual([...word.slice(3 * 64, 4 * 64)], new Array(64).fill(0));
    assert.ok(word.slice(2 * 64, 3 * 64).every((v) => v !== 0));
    for (const [k, t] of Object.entries(sd)) {
      const a = [...await t.toArray()];
      if (k.endsWith("LayerNorm.weight")) assert.ok(a.every((v) => v === 1), k);
      else if (k.endsWith(".bias")) assert.ok(a.every((v) => v === 0), k);
    }
  } finally {
    model.dispose();
  }
});

Deno.test("BERT dropout (hidden, attention, classifier) acts in train mode only, reproducibly under manualSeed", async () => {
  const model = bertForSequenceClassification({
    vocab_size: 30,
    hidden_size: 8,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    intermediate_size: 16,
    max_position_embeddings: 8,
    hidden_dropout_prob: 0.3,
    attention_probs_dropout_prob: 0.3,
  });
  const ids = tensor([1, 2, 3, 4, 5, 6], { shape: [2, 3], dtype: "i32" });
  try {
    const run = async () => [...await model.forward(ids).toArray()];
    model.eval();
    const e1 = await run();
    assert.deepEqual(await run(), e1);
    model.train();
    manualSeed(7);
    const t1 = await run();
    manualSeed(7);
    assert.deepEqual(await run(), t1);
    assert.notDeepEqual(t1, e1);
  } finally {
    ids.dispose();
    model.dispose();
  }
});
