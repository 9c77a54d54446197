/**
 * `deno task bench` suite for transformer ops: scaled dot-product attention
 * forward, and forward + backward, at BERT-mini's shape (B=32, H=4, T=128,
 * D=64) and a BERT-base head count (B=8, H=12, T=128, D=64), with a u32
 * padding mask `[B, 1, 1, T]` (the last quarter of keys masked out); layer
 * norm (with weight and bias) forward, and forward + backward (dx, dweight,
 * dbias), over `[4096, 256]` and `[1024, 768]`; embedding lookup of 4096 ids
 * in a `[30522, 256]` table (BERT's vocabulary), forward and forward +
 * weight gradient.
 *
 * Each measured iteration records `reps` calls (shown as "×reps" in the name)
 * and ends with `await synchronize()` (bench/gpu_timing.ts), which submits
 * them and waits for the GPU, so the time covers the GPU work. Inputs are made once.
 *
 * @module
 */

import {
  embedding,
  layerNorm,
  ones,
  randn,
  scaledDotProductAttention,
  type Tensor,
  tensor,
} from "../mod.ts";
import { gpuBench } from "./gpu_timing.ts";

for (const [B, H, T, D] of [[32, 4, 128, 64], [8, 12, 128, 64]]) {
  const shape = [B, H, T, D];
  const [q, k, v] = [0, 1, 2].map(() => randn(shape));
  const keep = Uint32Array.from({ length: B * T }, (_, i) => +(i % T < T - (T >> 2)));
  const mask = tensor(keep, { shape: [B, 1, 1, T], dtype: "u32" });
  const group = `attention [${shape}]`;
  gpuBench(
    `attention forward [${shape}], padding mask`,
    group,
    2,
    () => void scaledDotProductAttention(q, k, v, { mask }),
    true,
  );
  gpuBench(`attention forward + backward [${shape}], padding mask`, group, 1, () => {
    const leaves = [q, k, v].map((t) => t.detach());
    for (const t of leaves) t.requiresGrad = true;
    const o = scaledDotProductAttention(leaves[0], leaves[1], leaves[2], { mask });
    o.backward(ones(o.shape));
    for (const t of leaves) (t.grad as Tensor).dispose();
  });
}

for (const [rows, C] of [[4096, 256], [1024, 768]]) {
  const x = randn([rows, C]);
  const [w, b] = [randn([C]), randn([C])];
  const group = `layer norm [${rows},${C}]`;
  gpuBench(`layerNorm forward [${rows},${C}]`, group, 4, () => void layerNorm(x, w, b), true);
  gpuBench(`layerNorm forward + backward [${rows},${C}]`, group, 1, () => {
    const leaves = [x, w, b].map((t) => t.detach());
    for (const t of leaves) t.requiresGrad = true;
    const y = layerNorm(leaves[0], leaves[1], leaves[2]);
    y.backward(ones(y.shape));
    for (const t of leaves) (t.grad as Tensor).dispose();
  });
}

{
  const table = randn([30522, 256]);
  const ids = tensor(Int32Array.from({ length: 4096 }, (_, i) => (i * 7919) % 30522), {
    dtype: "i32",
  });
  const group = "embedding [30522,256], 4096 ids";
  gpuBench("embedding forward", group, 4, () => void embedding(ids, table), true);
  gpuBench("embedding forward + weight gradient", group, 1, () => {
    const w = table.detach();
    w.requiresGrad = true;
    const y = embedding(ids, w, { paddingIdx: 0 });
    y.backward(ones(y.shape));
    (w.grad as Tensor).dispose();
  });
}
