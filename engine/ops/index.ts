/**
 * Indexing: index-select, gather and scatter-add (i32 indices).
 *
 * @module
 */

import { fmtShape, type Shape, sizeOf, Tensor } from "../tensor.ts";
import { record, type VjpRule } from "../autograd.ts";
import { run } from "../dispatch.ts";
import { gatherIntoProgram, gatherProgram, scatterAddProgram } from "../../kernels/index.ts";
import { full, mul } from "./elementwise.ts";

function axisOf(op: string, axis: number, x: Tensor): number {
  const a = axis < 0 ? axis + x.ndim : axis;
  if (!Number.isInteger(a) || a < 0 || a >= x.ndim) {
    throw new RangeError(`${op}: axis ${axis} is out of range for ${fmtShape(x.shape)}`);
  }
  return a;
}

function uniforms(n: number, J: number, inner: number, D: number, s: [number, number, number]) {
  return new Uint32Array([n, J, inner, D, s[0], s[1], s[2], 0]);
}

function gatherRaw(
  x: Tensor,
  a: number,
  index: Tensor,
  outShape: Shape,
  strides: [number, number, number],
) {
  const out = Tensor.empty(outShape, x.dtype);
  const n = sizeOf(outShape);
  const inner = sizeOf(x.shape.slice(a + 1));
  if (n > 0) {
    run(gatherProgram(x.dtype), {
      inputs: [x.storage, index.storage],
      outputs: [out.storage],
      uniforms: uniforms(n, outShape[a], inner, x.shape[a], strides),
      workgroups: Math.ceil(n / 64),
      bytes: 12 * n,
    });
  }
  return out;
}

/**
 * Picks the entries `index` (1-D, i32) along `axis`, like `torch.index_select`.
 * Out-of-range indices read 0.
 *
 * @example
 * ```ts
 * import { indexSelect, tensor } from "../../mod.ts";
 * const x = tensor([1, 2, 3, 4, 5, 6], { shape: [3, 2] });
 * console.log(await indexSelect(x, 0, tensor([2, 0], { dtype: "i32" })).toArray()); // [5, 6, 1, 2]
 * ```
 */
export function indexSelect(x: Tensor, axis: number, index: Tensor): Tensor {
  const a = axisOf("indexSelect", axis, x);
  if (index.ndim !== 1 || index.dtype !== "i32") {
    throw new TypeError(
      `indexSelect: index must be a 1-D i32 tensor, got ${fmtShape(index.shape)} ${index.dtype}`,
    );
  }
  const shape = [...x.shape];
  shape[a] = index.shape[0];
  const out = gatherRaw(x, a, index, shape, [0, 1, 0]);
  record("indexSelect", { axis: a }, [x], out, () => [index]);
  return out;
}

/**
 * `out[..., j, ...] = x[..., index[..., j, ...], ...]` along `axis`, like
 * `torch.gather` with an index of the output's shape (equal to x's outside `axis`).
 */
export function gather(x: Tensor, axis: number, index: Tensor): Tensor {
  const a = axisOf("gather", axis, x);
  if (
    index.dtype !== "i32" || index.ndim !== x.ndim ||
    index.shape.some((d, i) => i !== a && d !== x.shape[i])
  ) {
    throw new RangeError(
      `gather: index ${fmtShape(index.shape)} ${index.dtype} must be i32 and match ${
        fmtShape(x.shape)
      } outside axis ${axis}`,
    );
  }
  const inner = sizeOf(x.shape.slice(a + 1));
  const J = index.shape[a];
  const out = gatherRaw(x, a, index, index.shape, [J * inner, inner, 1]);
  record("indexSelect", { axis: a }, [x], out, () => [index]);
  return out;
}

/**
 * `base` plus `src` added at `index` along `axis` (a new tensor): the adjoint
 * of gather. `index` is 1-D (index-select style) or has `src`'s shape (gather
 * style). Out-of-range indices are skipped.
 *
 * @example
 * ```ts
 * import { scatterAdd, tensor, zeros } from "../../mod.ts";
 * const r = scatterAdd(zeros([3]), 0, tensor([0, 0, 2], { dtype: "i32" }), tensor([1, 2, 3]));
 * console.log(await r.toArray()); // [3, 0, 3]
 * ```
 */
export function scatterAdd(base: Tensor, axis: number, index: Tensor, src: Tensor): Tensor {
  const a = axisOf("scatterAdd", axis, base);
  const ok = base.dtype === "f32" && src.dtype === "f32" && index.dtype === "i32" &&
    src.ndim === base.ndim &&
    src.shape.every((d, i) => i === a || d === base.shape[i]) &&
    (index.ndim === 1
      ? index.shape[0] === src.shape[a]
      : index.shape.every((d, i) => d === src.shape[i]));
  if (!ok) {
    throw new RangeError(
      `scatterAdd: base ${fmtShape(base.shape)} ${base.dtype}, index ${
        fmtShape(index.shape)
      } ${index.dtype} and src ${fmtShape(src.shape)} ${src.dtype} do not fit along axis ${axis}`,
    );
  }
  const out = mul(base, 1);
  const inner = sizeOf(base.shape.slice(a + 1));
  const J = src.shape[a];
  const strides: [number, number, number] = index.ndim === 1 && base.ndim > 1
    ? [0, 1, 0]
    : [J * inner, inner, 1];
  const n = src.size;
  if (n > 0) {
    run(scatterAddProgram(), {
      inputs: [src.storage, index.storage],
      outputs: [out.storage],
      uniforms: uniforms(n, J, inner, base.shape[a], strides),
      workgroups: Math.ceil(n / 64),
      bytes: 12 * n,
    });
  }
  record("scatterAdd", { axis: a }, [base, src], out, () => [index]);
  return out;
}

/** Backward of index-select and gather: scatter-add the gradient back. */
export const indexSelectVjp: VjpRule<"indexSelect"> = (node, g) => {
  const [index] = node.saved;
  const z = full(node.inputShapes[0], 0);
  const r = scatterAdd(z, node.attrs.axis, index, g);
  z.dispose();
  return [r];
};

/** Backward of scatter-add: identity for base, gather for src. */
export const scatterAddVjp: VjpRule<"scatterAdd"> = (node, g) => {
  const [index] = node.saved;
  const a = node.attrs.axis;
  const gsrc = node.needs[1]
    ? (index.ndim === 1 && g.ndim > 1 ? indexSelect(g, a, index) : gather(g, a, index))
    : null;
  return [node.needs[0] ? g : null, gsrc];
};

/**
 * Writes `x.flat[index[j]]` into `dst.flat[offset + j]` for every j, in place
 * and off the tape (no gradient flows): a gather into a range of an existing
 * f32 tensor, used to record weight snapshots without reading weights back.
 * `index` is 1-D i32 with entries in `[0, x.size)`.
 *
 * @example
 * ```ts
 * import { tensor, zeros } from "../../mod.ts";
 * import { gatherInto } from "./index.ts";
 * const ring = zeros([2, 3]);
 * gatherInto(ring, 3, tensor([10, 20, 30, 40]), tensor([3, 0, 0], { dtype: "i32" }));
 * console.log(await ring.toArray()); // [0, 0, 0, 40, 10, 10]
 * ```
 */
export function gatherInto(dst: Tensor, offset: number, x: Tensor, index: Tensor): void {
  const n = index.size;
  if (
    dst.dtype !== "f32" || x.dtype !== "f32" || index.dtype !== "i32" || index.ndim !== 1 ||
    !Number.isInteger(offset) || offset < 0 || offset + n > dst.size
  ) {
    throw new RangeError(
      `gatherInto: dst ${fmtShape(dst.shape)} ${dst.dtype} at offset ${offset}, x ${
        fmtShape(x.shape)
      } ${x.dtype}, index ${fmtShape(index.shape)} ${index.dtype}: need f32 tensors, a 1-D i32 ` +
        "index and offset + index length within dst",
    );
  }
  if (n === 0) return;
  run(gatherIntoProgram(), {
    inputs: [x.storage, index.storage],
    outputs: [dst.storage],
    uniforms: new Uint32Array([n, offset, 0, 0]),
    workgroups: Math.ceil(n / 64),
    bytes: 12 * n,
  });
}
