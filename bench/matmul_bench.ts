/**
 * `deno task bench` suite for matmul: square f32 products at 128, 256 and 512,
 * plain (`a·b`), with either operand transposed (`aᵀ·b`, the weight-gradient
 * layout; `a·bᵀ`, the `Linear` layout) and `a·bᵀ + bias` with the ReLU fused
 * in the epilogue (a `Linear` + `ReLU` forward).
 *
 * Each measured iteration records `reps` products (shown as "×reps" in the
 * name) and ends with `await flushErrors()`, which submits them and waits for
 * the GPU to finish, so the time covers the GPU work, not just recording. The
 * operands are made once per size. Sizes are kept small because llvmpipe on
 * two cores needs about 0.9 s for one 512³ product.
 *
 * @module
 */

import { matmul, type MatmulOptions, randn, scope, type Tensor } from "../mod.ts";
import { flushErrors } from "../engine/dispatch.ts";

/** Products per measured iteration, by size: enough to amortise one submit and wait. */
const REPS: Record<number, number> = { 128: 4, 256: 2, 512: 1 };

const variants: { label: string; opts: (bias: Tensor) => MatmulOptions }[] = [
  { label: "a·b", opts: () => ({}) },
  { label: "aᵀ·b", opts: () => ({ transA: true }) },
  { label: "a·bᵀ", opts: () => ({ transB: true }) },
  { label: "a·bᵀ + bias, relu", opts: (bias) => ({ transB: true, bias, act: "relu" }) },
];

for (const n of [128, 256, 512]) {
  const a = randn([n, n]);
  const b = randn([n, n]);
  const bias = randn([n]);
  const reps = REPS[n];
  for (const [i, v] of variants.entries()) {
    const opts = v.opts(bias);
    Deno.bench({
      name: `matmul ${n}³ ${v.label} ×${reps}`,
      group: `matmul ${n}`,
      baseline: i === 0,
      // Deno measures for at least 0.5 s anyway; these only cap the slow sizes.
      warmup: 1,
      n: n >= 512 ? 2 : 3,
      async fn(ctx) {
        ctx.start();
        for (let r = 0; r < reps; r++) scope(() => void matmul(a, b, opts));
        await flushErrors();
        ctx.end();
      },
    });
  }
}
