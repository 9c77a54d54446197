/**
 * Tensors above `maxStorageBufferBindingSize` (128 MiB on llvmpipe): the
 * elementwise kernels, reductions, optimizers and matmul work on them in pieces
 * that each fit one binding. Sizes are just above the limit to keep this quick.
 */
import assert from "node:assert/strict";
import {
  full,
  manualSeed,
  matmul,
  optim,
  randn,
  relu,
  sum,
  type Tensor,
  tensor,
} from "../../mod.ts";
import { gpu } from "../../engine/device.ts";
import { readBuffer } from "../../engine/dispatch.ts";

const limit = () => gpu().limits.maxStorageBufferBindingSize / 4;

async function at(t: Tensor, i: number): Promise<number> {
  return new Float32Array(await readBuffer(t.storage, 4 * i, 4))[0];
}

Deno.test("elementwise ops, sum and SGD work on a tensor above one binding's limit", async () => {
  const n = limit() + 1000;
  const x = full([n], 2);
  const y = relu(x.mul(-1).add(5)); // 3 everywhere, over two pieces
  assert.equal(await at(y, 0), 3);
  assert.equal(await at(y, n - 1), 3);
  assert.equal(await at(y, limit()), 3);
  const s = sum(y);
  // f32 partial sums: exact up to the rounding of the final additions.
  assert.ok(Math.abs((await s.item()) - 3 * n) <= 1e-6 * 3 * n);
  const p = full([n], 1);
  p.requiresGrad = true;
  p.grad = full([n], 0.5);
  const opt = new optim.SGD([p], { lr: 0.1, momentum: 0.9 });
  opt.step();
  assert.ok(Math.abs((await at(p, n - 1)) - 0.95) < 1e-6);
  assert.ok(Math.abs((await at(p, 7)) - 0.95) < 1e-6);
  for (const t of [x, y, s, p]) t.dispose();
  opt.dispose();
});

Deno.test("randn over two pieces gives the values of one generator stream", async () => {
  const n = limit() + 64;
  manualSeed(5);
  const big = randn([n]);
  // The same stream drawn as two tensors: the first covers the big one's first piece.
  manualSeed(5);
  const first = randn([limit()]);
  const rest = randn([64]);
  assert.equal(await at(big, 17), await at(first, 17));
  assert.equal(await at(big, limit() + 3), await at(rest, 3));
  for (const t of [big, first, rest]) t.dispose();
});

Deno.test("matmul and its gradients work when the weight is above one binding's limit", async () => {
  // x [2, K] · Wᵀ with W [N, K] above the limit: like VGG11's 25,088 → 4,096 classifier.
  const K = 4099;
  const N = Math.ceil(limit() / K) + 3;
  manualSeed(9);
  const w = randn([N, K], 0, 0.01);
  w.requiresGrad = true;
  const xs = Float32Array.from({ length: 2 * K }, (_, i) => Math.sin(i));
  const x = tensor(xs, { shape: [2, K], requiresGrad: true });
  const y = matmul(x, w, { transB: true });
  assert.deepEqual(y.shape, [2, N]);
  // Check two output columns, one in each band, against a CPU dot product.
  for (const n of [5, N - 2]) {
    const row = new Float32Array(await readBuffer(w.storage, 4 * n * K, 4 * K));
    for (const m of [0, 1]) {
      let ref = 0;
      for (let k = 0; k < K; k++) ref += xs[m * K + k] * row[k];
      const got = await at(y, m * N + n);
      assert.ok(Math.abs(got - ref) < 1e-4 * (1 + Math.abs(ref)), `y[${m},${n}] ${got} vs ${ref}`);
    }
  }
  y.sum().backward();
  // d/dW of Σy is x's rows summed, for every output row; d/dx is W's rows summed.
  const gw = w.grad!;
  for (const n of [0, N - 1]) {
    for (const k of [0, K - 1]) {
      const ref = xs[k] + xs[K + k];
      assert.ok(Math.abs((await at(gw, n * K + k)) - ref) < 1e-5, `dW[${n},${k}]`);
    }
  }
  const gx = x.grad!;
  assert.deepEqual(gx.shape, [2, K]);
  const wAll = new Float32Array(await readBuffer(w.storage, 0, 4 * N * K));
  for (const k of [0, K - 1]) {
    let colSum = 0;
    for (let n = 0; n < N; n++) colSum += wAll[n * K + k];
    assert.ok(Math.abs((await at(gx, k)) - colSum) < 1e-4, `dx[0,${k}]`);
  }
  for (const t of [w, x, y, gw, gx]) t.dispose();
});
