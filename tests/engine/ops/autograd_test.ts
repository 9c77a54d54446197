/**
 * Autograd behaviour: what the tape records and saves, when it frees, and how
 * scopes interact with graphs.
 *
 * Memory assertions read `memoryStats()` within one synchronous stretch (no
 * await between the readings): the FinalizationRegistry that releases leaked
 * tensors of other tests runs only between tasks, so it cannot shift the counts.
 */

import assert from "node:assert/strict";
import {
  concat,
  crossEntropy,
  dropout,
  indexSelect,
  keep,
  matmul,
  memoryStats,
  noGrad,
  randn,
  relu,
  scope,
  softmax,
  sum,
  type Tensor,
  tensor,
} from "../../../mod.ts";
import { assertClose, Rng } from "../../helpers/reference.ts";
import { upload } from "../../helpers/gpu.ts";

const activation = () => memoryStats().byCategory.activation;

function param(shape: number[], seed: number, requiresGrad = true): Tensor {
  return upload(new Rng(seed).nonzero(shape, 0.1, 1), { requiresGrad });
}

Deno.test("an op whose inputs need no grad records no node and saves nothing", () => {
  const x = param([4, 3], 1, false);
  const w = param([3, 5], 2, false);
  const labels = tensor([0, 1, 2, 3], { dtype: "i32" });
  const before = activation();
  const outs = [
    x.mul(w.sum()),
    x.exp(),
    matmul(x, w, { act: "relu" }),
    softmax(x),
    sum(x, 1),
    x.max(0),
    x.reshape([12]),
    x.transpose(),
    concat([x, x]),
    indexSelect(x, 0, tensor([1, 1], { dtype: "i32" })),
    crossEntropy(matmul(x, w), labels),
    dropout(x, 0.5),
  ];
  for (const o of outs) {
    assert.equal(o.node, null, `${o} recorded a node`);
    assert.equal(o.requiresGrad, false);
  }
  assert.equal(activation(), before, "no tensor was saved for backward");
  assert.equal(x.storage.savedBy, 0);
  assert.equal(x.storage.category, "temporary");
});

Deno.test("noGrad() records nothing even when inputs require grad", () => {
  const w = param([3], 3);
  const before = activation();
  const y = noGrad(() => w.mul(2).exp().sum());
  assert.equal(y.node, null);
  assert.equal(y.requiresGrad, false);
  assert.equal(activation(), before);
});

Deno.test("a frozen first layer records nothing and only the trainable layer saves its input", async () => {
  const x = param([8, 6], 4, false);
  const w1 = param([6, 5], 5, false); // frozen
  const b1 = param([5], 6, false);
  const w2 = param([5, 3], 7); // trainable
  const before = activation();
  const h = relu(matmul(x, w1, { bias: b1 }));
  const hf = matmul(x, w1, { bias: b1, act: "relu" });
  assert.equal(h.node, null);
  assert.equal(hf.node, null);
  assert.equal(activation(), before, "the frozen layer saved nothing");
  const out = matmul(h, w2);
  assert.notEqual(out.node, null);
  assert.deepEqual(out.node!.needs, [false, true]);
  // The weight gradient needs only the layer input h: w2 itself is not kept.
  assert.ok(out.node!.saved.every((t) => t.storage === h.storage));
  assert.equal(w2.storage.savedBy, 0);
  assert.equal(activation(), before + h.storage.capacity);
  const loss = out.sum();
  loss.backward();
  assert.equal(activation(), before, "backward released the saved input");
  assert.equal(w1.grad, null);
  assert.equal(b1.grad, null);
  assert.notEqual(w2.grad, null);
  // d(sum(h·w2))/dw2 = hᵀ·1.
  const hv = await h.toArray();
  const g = await w2.grad!.toArray();
  for (let k = 0; k < 5; k++) {
    let col = 0;
    for (let i = 0; i < 8; i++) col += hv[i * 5 + k];
    for (let j = 0; j < 3; j++) assertClose([g[k * 3 + j]], [col], { rtol: 1e-5 });
  }
});

Deno.test("backward() frees every saved tensor: activation bytes return to their level", () => {
  const x = param([16, 8], 8, false);
  const w1 = param([8, 12], 9);
  const b1 = param([12], 10);
  const w2 = param([12, 4], 11);
  const labels = tensor([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3], { dtype: "i32" });
  const before = activation();
  const h = matmul(x, w1, { bias: b1, act: "gelu" });
  const y = softmax(matmul(dropout(h, 0.2), w2)).mul(3).add(h.sum(1, true).tanh());
  const loss = crossEntropy(y, labels);
  assert.ok(activation() > before, "the forward saved activations");
  const node = loss.node!;
  loss.backward();
  assert.equal(activation(), before);
  assert.equal(node.freed, true);
  assert.deepEqual(node.saved, []);
  for (const p of [w1, b1, w2]) assert.equal(p.grad!.storage.category, "gradient");
});

Deno.test("backward() twice through a freed graph throws", () => {
  const w = param([3], 12);
  const loss = w.exp().sum();
  loss.backward();
  assert.throws(() => loss.backward(), /already freed/);
  // A second graph over the same leaf works.
  w.exp().sum().backward();
});

Deno.test("gradients accumulate across two backward() calls", async () => {
  const w = param([5], 13);
  w.mul(w).sum().backward();
  const once = await w.grad!.toArray();
  const first = w.grad!;
  w.mul(w).sum().backward();
  assert.ok(first.disposed, "the previous gradient tensor was replaced, not leaked");
  const twice = await w.grad!.toArray();
  assertClose(twice, Array.from(once, (v) => 2 * v), { rtol: 1e-6 });
});

Deno.test("a tensor used twice in one graph gets the sum of both gradients", async () => {
  const x = tensor([0.5, -1, 2], { requiresGrad: true });
  x.mul(x).add(x.exp()).sum().backward();
  assertClose(await x.grad!.toArray(), [0.5, -1, 2].map((v) => 2 * v + Math.exp(v)), {
    rtol: 1e-5,
  });
});

Deno.test("backward() handles a deep chain without overflowing the stack", async () => {
  const x = tensor([1], { requiresGrad: true });
  let y = x;
  for (let i = 0; i < 3000; i++) y = y.add(1);
  y.mul(3).sum().backward();
  assert.deepEqual(Array.from(await x.grad!.toArray()), [3]);
});

Deno.test("scope() disposes intermediates but keeps returned tensors and their graph", async () => {
  const x = param([4], 14);
  const inside: Tensor[] = [];
  const before = activation();
  const { loss, kept } = scope(() => {
    const h = x.mul(2);
    const e = h.exp();
    inside.push(h, e);
    const k = keep(e.add(1));
    return { loss: e.sum(), kept: k };
  });
  assert.ok(inside.every((t) => t.disposed), "intermediates were disposed");
  assert.equal(loss.disposed, false);
  assert.equal(kept.disposed, false);
  assert.notEqual(loss.node, null, "the returned tensor keeps its graph");
  assert.ok(activation() > before, "saved tensors of the live graph are kept");
  loss.backward();
  assert.equal(activation(), before);
  const xv = await x.toArray();
  assertClose(await x.grad!.toArray(), Array.from(xv, (v) => 2 * Math.exp(2 * v)), { rtol: 1e-5 });
  assertClose(await kept.toArray(), Array.from(xv, (v) => Math.exp(2 * v) + 1), { rtol: 1e-5 });
});

Deno.test("scope() frees the saved tensors of a graph it drops", () => {
  const x = param([4], 15);
  const before = activation();
  const n = scope(() => {
    x.mul(2).exp().softmax().sum();
    return 1;
  });
  assert.equal(n, 1);
  assert.equal(activation(), before);
});

Deno.test("nested scopes hand returned tensors to the enclosing scope", () => {
  const inner: Tensor[] = [];
  const outer = scope(() => {
    const a = scope(() => randn([3]).mul(2));
    inner.push(a);
    const b = a.add(1);
    return b;
  });
  assert.equal(inner[0].disposed, true, "the inner result is disposed by the outer scope");
  assert.equal(outer.disposed, false);
});

Deno.test("detach() gives a leaf outside the graph that shares memory", () => {
  const x = param([3], 16);
  const y = x.mul(2);
  const d = y.detach();
  assert.equal(d.node, null);
  assert.equal(d.requiresGrad, false);
  assert.equal(d.isLeaf, true);
  assert.equal(d.storage, y.storage);
  assert.equal(d.exp().node, null);
});
