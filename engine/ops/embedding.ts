/**
 * Embedding lookup ({@link embedding}) and its backward rule, on the gather
 * and scatter-add kernels of kernels/index.ts.
 *
 * The op is recorded on its own (not as an index-select) for two reasons:
 * the padding row must get no gradient, and the gradient is scattered
 * straight into one zero-filled `[num, dim]` tensor, without the copy of the
 * base that `scatterAdd()` makes.
 *
 * @module
 */

import { fmtShape, Tensor } from "../tensor.ts";
import { record, type VjpRule } from "../autograd.ts";
import { run } from "../dispatch.ts";
import { gatherProgram, scatterAddProgram } from "../../kernels/index.ts";
import { full, ne, where } from "./elementwise.ts";

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
 * Uniforms of the index kernels for an index-select of `J` rows of width
 * `dim` from a `[D, dim]` table (layout in kernels/index.ts).
 */
function indexUniforms(J: number, dim: number, D: number): Uint32Array {
  return new Uint32Array([J * dim, J, dim, D, 0, 1, 0, 0]);
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
 * contribute no gradient (the index kernels never touch memory outside the
 * table). PyTorch raises an IndexError instead.
 *
 * @param ids Integer ids, i32, any shape (0-d too).
 * @param weight The `[num, dim]` table, f32.
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
  const paddingIdx = normalisePadding(opts.paddingIdx ?? null, num, weight);
  const out = Tensor.empty([...ids.shape, dim]);
  const J = ids.size;
  if (J * dim > 0) {
    run(gatherProgram("f32"), {
      inputs: [weight.storage, ids.storage],
      outputs: [out.storage],
      uniforms: indexUniforms(J, dim, num),
      workgroups: Math.ceil((J * dim) / 64),
      bytes: 4 * (2 * J * dim + J),
    });
  }
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

/**
 * Backward of embedding: scatter-add of the gradient rows into zeros, with
 * the padding id replaced by -1 first (the kernel skips out-of-range ids).
 */
export const embeddingVjp: VjpRule<"embedding"> = (node, g) => {
  const [ids] = node.saved;
  const [num, dim] = node.inputShapes[0];
  const grad = full([num, dim], 0);
  const p = node.attrs.paddingIdx;
  let index = ids;
  if (p >= 0 && ids.size > 0) {
    const keep = ne(ids, p);
    const none = full([], -1, "i32");
    index = where(keep, ids, none);
    keep.dispose();
    none.dispose();
  }
  const J = ids.size;
  if (J * dim > 0) {
    run(scatterAddProgram(), {
      inputs: [g.storage, index.storage],
      outputs: [grad.storage],
      uniforms: indexUniforms(J, dim, num),
      workgroups: Math.ceil((J * dim) / 64),
      bytes: 4 * (3 * J * dim + J),
    });
  }
  if (index !== ids) index.dispose();
  return [grad];
};
