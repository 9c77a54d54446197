import assert from "node:assert/strict";
import { logSoftmax, tensor } from "../../../mod.ts";
import * as nn from "../../../engine/nn/mod.ts";

interface JsonTensor {
  shape: number[];
  data: number[];
}

interface CeCase {
  name: string;
  reduction: "mean" | "sum";
  label_smoothing: number;
  ignore_index: number;
  labels: JsonTensor;
  loss: JsonTensor;
  dlogits: JsonTensor;
}

function close(a: number, b: number, tol: number): boolean {
  return Math.abs(a - b) <= tol * (1 + Math.abs(b));
}

Deno.test("nllLoss(logSoftmax(x)) matches PyTorch's cross-entropy loss and gradient", async () => {
  const fx = JSON.parse(
    await Deno.readTextFile(new URL("../../fixtures/cross_entropy.json", import.meta.url)),
  ) as { logits: JsonTensor; cases: CeCase[] };
  for (const c of fx.cases.filter((c) => c.label_smoothing === 0)) {
    const x = tensor(fx.logits.data, { shape: fx.logits.shape, requiresGrad: true });
    const labels = tensor(c.labels.data, { dtype: "i32" });
    const loss = nn.nllLoss(logSoftmax(x), labels, {
      reduction: c.reduction,
      ignoreIndex: c.ignore_index,
    });
    const got = await loss.item();
    assert.ok(close(got, c.loss.data[0], 1e-5), `${c.name}: ${got} vs ${c.loss.data[0]}`);
    loss.backward();
    const dx = await x.grad!.toArray();
    c.dlogits.data.forEach((v, i) => {
      assert.ok(close(dx[i], v, 1e-5), `${c.name} dlogits[${i}]: ${dx[i]} vs ${v}`);
    });
  }
});

Deno.test("nllLoss with reduction none gives per-row losses, zero where ignored", async () => {
  const lp = tensor([-0.1, -2.3, -1.6, -0.2, -0.7, -0.7], { shape: [3, 2] });
  const rows = nn.nllLoss(lp, tensor([0, 1, -100], { dtype: "i32" }), { reduction: "none" });
  assert.deepEqual(Array.from(await rows.toArray()), [0.1, 0.2, 0].map(Math.fround));
  assert.throws(() => nn.nllLoss(lp, tensor([0, 1, 0])), /labels must be i32/);
});

Deno.test("mseLoss matches its definition for each reduction, with gradient 2(a-b)/n", async () => {
  const a = tensor([1, 2, 3, 4], { shape: [2, 2], requiresGrad: true });
  const b = tensor([0, 2, 5, 1], { shape: [2, 2] });
  assert.equal(await nn.mseLoss(a, b, { reduction: "sum" }).item(), 1 + 0 + 4 + 9);
  assert.deepEqual(
    Array.from(await nn.mseLoss(a, b, { reduction: "none" }).toArray()),
    [1, 0, 4, 9],
  );
  const loss = nn.mseLoss(a, b);
  assert.equal(await loss.item(), 14 / 4);
  loss.backward();
  assert.deepEqual(Array.from(await a.grad!.toArray()), [0.5, 0, -1, 1.5]);
  assert.throws(() => nn.mseLoss(a, tensor([1, 2])), /input \[2, 2\] and target \[2\] differ/);
});

Deno.test("crossEntropy is re-exported from the ops", async () => {
  const logits = tensor([2, 0, 0, 0, 2, 0], { shape: [2, 3] });
  const loss = nn.crossEntropy(logits, tensor([0, 1], { dtype: "i32" }));
  const expected = Math.log(Math.exp(2) + 2) - 2;
  assert.ok(close(await loss.item(), expected, 1e-6));
});
