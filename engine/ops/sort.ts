/**
 * Sorting values along the last axis (kernels/sort.ts).
 *
 * @module
 */

import { fmtShape, Tensor } from "../tensor.ts";
import { isGradEnabled } from "../autograd.ts";
import { run } from "../dispatch.ts";
import { gpu } from "../device.ts";
import { SORT_WG, sortCopyProgram, sortStageProgram } from "../../kernels/sort.ts";

/**
 * The values of `x` sorted ascending along the last axis (NaN last, as in
 * PyTorch). Not differentiable: it refuses an input that requires grad while
 * the tape records.
 *
 * @example
 * ```ts
 * import { sort, tensor } from "../../mod.ts";
 * console.log(await sort(tensor([3, 1, 2, 9, 7, 8], { shape: [2, 3] })).toArray()); // [1, 2, 3, 7, 8, 9]
 * ```
 */
export function sort(x: Tensor): Tensor {
  if (x.dtype !== "f32") throw new TypeError(`sort: expected f32, got ${x.dtype}`);
  if (x.requiresGrad && isGradEnabled()) {
    throw new TypeError(
      `sort: not differentiable; its input ${
        fmtShape(x.shape)
      } requires grad (use noGrad or detach)`,
    );
  }
  const n = x.shape.at(-1) ?? 1;
  const rows = n === 0 ? 0 : x.size / n;
  let p = 1;
  while (p < n) p *= 2;
  if (4 * rows * p > gpu().limits.maxStorageBufferBindingSize) {
    throw new RangeError(
      `sort: ${fmtShape(x.shape)} padded to rows of ${p} is above this adapter's ` +
        "maxStorageBufferBindingSize",
    );
  }
  const out = Tensor.empty(x.shape, "f32");
  if (rows === 0) return out;
  // Padded rows sort in a work buffer; rows already a power of two sort in `out`.
  const work = p === n ? out : Tensor.empty([rows, p], "f32");
  run(sortCopyProgram(), {
    inputs: [x.storage],
    outputs: [work.storage],
    uniforms: new Uint32Array([rows, n, p, 0]),
    workgroups: Math.ceil((rows * p) / SORT_WG),
    bytes: 4 * (x.size + rows * p),
  });
  const stage = sortStageProgram();
  const pairs = Math.ceil((rows * p) / 2 / SORT_WG);
  for (let k = 2; k <= p; k *= 2) {
    for (let j = k / 2; j >= 1; j /= 2) {
      run(stage, {
        inputs: [],
        outputs: [work.storage],
        uniforms: new Uint32Array([rows, p, k, j]),
        workgroups: pairs,
        bytes: 16 * rows * (p / 2),
      });
    }
  }
  if (work !== out) {
    run(sortCopyProgram(), {
      inputs: [work.storage],
      outputs: [out.storage],
      uniforms: new Uint32Array([rows, p, n, 0]),
      workgroups: Math.ceil(x.size / SORT_WG),
      bytes: 8 * x.size,
    });
    work.dispose();
  }
  return out;
}
