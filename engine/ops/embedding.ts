/**
 * Embedding lookup ({@link embedding}) and its backward rule, with row-copy
 * kernels (kernels/embedding.ts).
 *
 * The op is recorded on its own (not as an index-select) so that the padding
 * row gets no gradient and the gradient is scattered straight into one
 * zero-filled `[num, dim]` tensor, without the copy of the base that
 * `scatterAdd()` makes.
 *
 * @module
 */

import { fmtShape, Tensor } from "../tensor.ts";
import { record, type VjpRule } from "../autograd.ts";
import { run } from "../dispatch.ts";
import {
  EMB_WG,
  embeddingGradProgram,
  embeddingProgram,
  embeddingUniforms,
} from "../../kernels/embedding.ts";
import type { KernelProgram } from "../../kernels/program.ts";
import { full } from "./elementwise.ts";

/**
 * Widest row: 64 lanes with at most 1024 columns each (the kernels' loop
 * bound; with the backward's compare-and-swap retries, at most 9 per column
 * when all 8 lanes of a SIMD group hit one address, it stays far below
 * llvmpipe's 65,535 loop passes per invocation: `LOOP_BUDGET`, kernels/program.ts).
 */
const MAX_DIM = EMB_WG * 1024;

/** Lanes per row: the row width rounded up to a power of two, at most a workgroup. */
function lanesPerRow(dim: number): number {
  let L = 1;
  while (L < EMB_WG && L < dim) L *= 2;
  return L;
}

/** Dispatch of one embedding kernel over `J` ids. */
function dispatchRows(
  program: KernelProgram,
  inputs: Tensor[],
  out: Tensor,
  J: number,
  num: number,
  dim: number,
  pad: number,
): void {
  if (J * dim === 0) return;
  const L = lanesPerRow(dim);
  run(program, {
    inputs: inputs.map((t) => t.storage),
    outputs: [out.storage],
    uniforms: embeddingUniforms({ J, dim, num, L, pad }),
    workgroups: Math.ceil(J / (EMB_WG / L)),
    bytes: 4 * (2 * J * dim + J),
  });
}

/** Options of {@link embedding}. */
export interface EmbeddingOptions {
  /**
   * Row of `weight` that receives no gradient (PyTorch's `padding_idx`);
   * negative values count from the end. Its row is still looked up as is:
   * `nn.Embedding` is what initialises it to zeros.
   */
  paddingIdx?: number | null;
}

/**
 * Rows of `weight [num, dim]` picked by integer `ids` (i32, any shape):
 * `out[..., :] = weight[ids[...], :]`, shaped `[...ids.shape, dim]`, like
 * `torch.nn.functional.embedding`.
 *
 * Backward scatter-adds the output gradient into a zero `[num, dim]`
 * gradient; the row `paddingIdx` gets none.
 *
 * Out-of-range ids (negative or ≥ num) are not checked: ids live on the GPU,
 * and reading them back would stall. Their output rows are zeros and they
 * contribute no gradient (the kernels never touch memory outside the
 * table). PyTorch raises an IndexError instead.
 *
 * @param ids Integer ids, i32, any shape (0-d too).
 * @param weight The `[num, dim]` table, f32; `dim ≤ 65536`.
 * @param opts `paddingIdx`.
 * @returns `[...ids.shape, dim]`.
 *
 * @example
 * ```ts
 * import { embedding, tensor } from "../../mod.ts";
 * const table = tensor([0, 0, 1, 2, 3, 4], { shape: [3, 2] });
 * const ids = tensor([2, 1, 2], { dtype: "i32" });
 * const out = embedding(ids, table, { paddingIdx: 0 });
 * console.log(out.shape, await out.toArray()); // [3, 2] [3, 4, 1, 2, 3, 4]
 * ```
 */
export function embedding(ids: Tensor, weight: Tensor, opts: EmbeddingOptions = {}): Tensor {
  if (ids.dtype !== "i32") {
    throw new TypeError(
      `embedding: ids must be an i32 tensor, got ${ids.dtype} ${fmtShape(ids.shape)}`,
    );
  }
  if (weight.dtype !== "f32" || weight.ndim !== 2) {
    throw new RangeError(
      `embedding: weight must be an f32 [num, dim] tensor, got ${weight.dtype} ${
        fmtShape(weight.shape)
      }`,
    );
  }
  const [num, dim] = weight.shape;
  if (dim > MAX_DIM) {
    throw new RangeError(
      `embedding: rows of ${dim} values (weight ${
        fmtShape(weight.shape)
      }) are wider than the ${MAX_DIM} supported`,
    );
  }
  const paddingIdx = normalisePadding(opts.paddingIdx ?? null, num, weight);
  const out = Tensor.empty([...ids.shape, dim]);
  dispatchRows(embeddingProgram(), [weight, ids], out, ids.size, num, dim, -1);
  record("embedding", { paddingIdx }, [weight], out, () => [ids]);
  return out;
}

/** `paddingIdx` as a row in `[0, num)`, or -1 for none. */
function normalisePadding(p: number | null, num: number, weight: Tensor): number {
  if (p === null) return -1;
  if (!Number.isInteger(p) || p < -num || p >= num) {
    throw new RangeError(
      `embedding: paddingIdx ${p} is out of range for weight ${
        fmtShape(weight.shape)
      } (expected an integer in [${-num}, ${num}))`,
    );
  }
  return p < 0 ? p + num : p;
}

/** Backward of embedding: scatter-add of the gradient rows into zeros, skipping the padding row. */
export const embeddingVjp: VjpRule<"embedding"> = (node, g) => {
  const [ids] = node.saved;
  const [num, dim] = node.inputShapes[0];
  const grad = full([num, dim], 0);
  dispatchRows(embeddingGradProgram(), [g, ids], grad, ids.size, num, dim, node.attrs.paddingIdx);
  return [grad];
};
