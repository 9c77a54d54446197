/**
 * `deno task bench` suite for memory-bound kernels: unary and binary
 * elementwise ops (add, mul, relu, gelu, exp) over 2^16 and 2^20 f32
 * elements; a broadcast add `[1024,1024] + [1024]` next to the same-shape add;
 * sums of a `[1024,1024]` matrix along each axis; softmax over `[256,1000]`
 * rows (ImageNet-sized logits).
 *
 * Each measured iteration records `reps` ops (shown as "×reps" in the name)
 * and ends with `await synchronize()` (bench/gpu_timing.ts), which submits
 * them and waits for the GPU, so the time covers the GPU work. Inputs are made once.
 *
 * @module
 */

import { add, exp, gelu, mul, randn, relu, softmax, sum } from "../mod.ts";
import { gpuBench } from "./gpu_timing.ts";

for (const log2 of [16, 20]) {
  const n = 2 ** log2;
  const a = randn([n]);
  const b = randn([n]);
  const group = `elementwise 2^${log2}`;
  gpuBench(`add 2^${log2}`, group, 8, () => add(a, b), true);
  gpuBench(`mul 2^${log2}`, group, 8, () => mul(a, b));
  gpuBench(`relu 2^${log2}`, group, 8, () => relu(a));
  gpuBench(`gelu (erf) 2^${log2}`, group, 8, () => gelu(a));
  gpuBench(`exp 2^${log2}`, group, 8, () => exp(a));
}

{
  const x = randn([1024, 1024]);
  const y = randn([1024, 1024]);
  const row = randn([1024]);
  const group = "[1024,1024] broadcast and reduce";
  gpuBench("add [1024,1024] + [1024,1024]", group, 2, () => add(x, y), true);
  gpuBench("add [1024,1024] + [1024] (broadcast)", group, 2, () => add(x, row));
  gpuBench("sum [1024,1024] over axis 1 (row sums)", group, 2, () => sum(x, 1));
  gpuBench("sum [1024,1024] over axis 0 (column sums)", group, 2, () => sum(x, 0));
}

{
  const logits = randn([256, 1000]);
  gpuBench("softmax [256,1000] over the last axis", "softmax", 8, () => softmax(logits), true);
}
