/**
 * Gradient clipping by global L2 norm, entirely on the GPU.
 *
 * @module
 */

import { scope, type Tensor } from "../tensor.ts";
import type { Storage } from "../memory.ts";
import { noGrad } from "../autograd.ts";
import { bindingChunks, rangeOf, run } from "../dispatch.ts";
import { add, mul, sqrt, zeros } from "../ops/elementwise.ts";
import { sum } from "../ops/reduce.ts";
import { elementwiseGroups } from "../../kernels/elementwise.ts";
import { clipScaleProgram } from "../../kernels/optimizer.ts";

/**
 * Scales the gradients of `params` in place so that their global L2 norm is at
 * most `maxNorm`, as `torch.nn.utils.clip_grad_norm_` does: with
 * `norm = √(Σ‖g‖²)` over every parameter whose `grad` is not null, each
 * gradient is multiplied by `min(1, maxNorm / (norm + 1e-6))`.
 *
 * Nothing is read back: the norm is reduced on the GPU and one small kernel per
 * gradient reads it from GPU memory, so clipping adds no CPU–GPU sync. Returns
 * the norm before clipping (a 0-d tensor, owned by the caller or its scope).
 *
 * @example
 * ```ts
 * import { tensor } from "../../mod.ts";
 * import { clipGradNorm } from "./clip.ts";
 * const w = tensor([3, 4], { requiresGrad: true });
 * w.mul(w).mul(0.5).sum().backward(); // grad = w = [3, 4], norm 5
 * const norm = clipGradNorm([w], 1);
 * console.log(await norm.item(), await w.grad!.toArray()); // 5, ≈ [0.6, 0.8]
 * ```
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number): Tensor {
  if (typeof maxNorm !== "number" || !(maxNorm >= 0)) {
    throw new RangeError(`clipGradNorm: maxNorm must be a number ≥ 0, got ${maxNorm}`);
  }
  const grads: Tensor[] = [];
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    if (g.disposed) throw new Error(`clipGradNorm: the grad of ${p} was disposed`);
    if (g.dtype !== "f32") throw new TypeError(`clipGradNorm: the grad of ${p} is ${g.dtype}`);
    grads.push(g);
  }
  const norm = noGrad(() =>
    scope(() => {
      let total: Tensor | null = null;
      for (const g of grads) {
        const s = sum(mul(g, g));
        total = total ? add(total, s) : s;
      }
      return total ? sqrt(total) : zeros([]);
    })
  );
  // Leaf gradients may share memory (backward hands the same upstream gradient
  // to both inputs of an add), so each storage is scaled once.
  const done = new Set<Storage>();
  for (const g of grads) {
    const s = g.storage;
    if (done.has(s) || g.size === 0) continue;
    done.add(s);
    for (const [start, n] of bindingChunks(g.size)) {
      const u = new ArrayBuffer(8);
      new Uint32Array(u)[0] = n;
      new Float32Array(u)[1] = maxNorm;
      run(clipScaleProgram(), {
        inputs: [norm.storage],
        outputs: [rangeOf(s, start, n)],
        uniforms: new Uint8Array(u),
        workgroups: elementwiseGroups(n),
        flops: n,
        bytes: 8 * n,
      });
    }
  }
  return norm;
}
