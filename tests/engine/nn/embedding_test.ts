/**
 * nn.Embedding: PyTorch's names, N(0, 1) init with a zero padding row, repr,
 * state dict, and a padding row that stays zero through training steps.
 */

import assert from "node:assert/strict";
import { manualSeed, nn, optim, randn, tensor } from "../../../mod.ts";
import { assertClose } from "../../helpers/reference.ts";

Deno.test("nn.Embedding has PyTorch's name, shape and repr, and N(0, 1) init", async () => {
  manualSeed(7);
  const emb = new nn.Embedding(1000, 16);
  assert.deepEqual(Object.keys(emb.stateDict()), ["weight"]);
  assert.deepEqual(emb.weight.shape, [1000, 16]);
  assert.equal(String(emb), "Embedding(1000, 16)");
  const w = Array.from(await emb.weight.toArray());
  const mean = w.reduce((a, v) => a + v, 0) / w.length;
  const std = Math.sqrt(w.reduce((a, v) => a + (v - mean) ** 2, 0) / w.length);
  // 16000 samples: the mean's standard error is 0.008, the std's 0.006.
  assert.ok(Math.abs(mean) < 0.04, `mean ${mean}`);
  assert.ok(Math.abs(std - 1) < 0.03, `std ${std}`);
});

Deno.test("nn.Embedding zeroes its padding row (negative index resolved) and keeps it zero when trained", async () => {
  const emb = new nn.Embedding(5, 3, { paddingIdx: -2 });
  assert.equal(emb.paddingIdx, 3);
  assert.equal(String(emb), "Embedding(5, 3, padding_idx=3)");
  const w0 = await emb.weight.toArray();
  // +0, as PyTorch's fill_(0), not −0.
  assert.ok(Array.from(w0.slice(9, 12)).every((v) => Object.is(v, 0)));
  assert.ok(Array.from(w0.slice(0, 9)).every((v) => v !== 0));
  const opt = new optim.SGD(emb.parameters(), { lr: 0.5, momentum: 0.9 });
  const ids = tensor([3, 1, 3, 0, 4, 3], { shape: [2, 3], dtype: "i32" });
  for (let step = 0; step < 2; step++) {
    const out = emb.forward(ids);
    assert.deepEqual(out.shape, [2, 3, 3]);
    out.mul(out).sum().backward();
    assertClose((await emb.weight.grad!.toArray()).slice(9, 12), [0, 0, 0]);
    opt.step();
    opt.zeroGrad();
  }
  assertClose((await emb.weight.toArray()).slice(9, 12), [0, 0, 0]);
  // Rows 0, 1 and 4 were looked up and moved; row 2 was not.
  const w2 = await emb.weight.toArray();
  assert.deepEqual(Array.from(w2.slice(6, 9)), Array.from(w0.slice(6, 9)));
  assert.notDeepEqual(Array.from(w2.slice(3, 6)), Array.from(w0.slice(3, 6)));
});

Deno.test("nn.Embedding loads a state dict and rejects bad sizes, ids and padding indices", async () => {
  const emb = new nn.Embedding(3, 2);
  emb.loadStateDict({ weight: tensor([1, 2, 3, 4, 5, 6], { shape: [3, 2] }) });
  const out = emb.forward(tensor([2, 0], { dtype: "i32" }));
  assert.deepEqual(Array.from(await out.toArray()), [5, 6, 1, 2]);
  assert.throws(() => new nn.Embedding(0, 4), /Embedding: numEmbeddings must be an integer ≥ 1/);
  assert.throws(() => new nn.Embedding(4, 2.5), /Embedding: embeddingDim must be an integer ≥ 1/);
  assert.throws(
    () => new nn.Embedding(4, 2, { paddingIdx: 4 }),
    /Embedding: paddingIdx 4 is out of range for 4 embeddings/,
  );
  assert.throws(
    () => emb.forward(randn([2])),
    /Embedding\(3, 2\): expected i32 ids, got f32 \[2\]/,
  );
});
