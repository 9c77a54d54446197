/**
 * Shape ops. Views (share memory, no copy): `reshape`, `flatten`, `squeeze`,
 * `unsqueeze`. Copies: `permute`, `transpose`, `slice`, `expand`, `concat`,
 * `split`, `pad`. All data movement goes through one strided-copy kernel.
 *
 * @module
 */

import { checkShape, fmtShape, type Shape, sizeOf, Tensor } from "../tensor.ts";
import { record, type VjpRule } from "../autograd.ts";
import { run, vecLanes } from "../dispatch.ts";
import { COPY_CHUNK, COPY_RANK, stridedCopyProgram } from "../../kernels/copy.ts";
import { elementwiseGroups } from "../../kernels/elementwise.ts";
import { broadcastShapes, broadcastStrides, full } from "./elementwise.ts";
import { sumTo } from "./reduce.ts";

function stridesOf(shape: Shape): number[] {
  const s: number[] = new Array(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Records one strided copy from `src` into `dst`. */
function copy(
  src: Tensor,
  dst: Tensor,
  shape: Shape,
  inStrides: number[],
  outStrides: number[],
  inBase = 0,
  outBase = 0,
): void {
  const n = sizeOf(shape);
  if (n === 0) return;
  // Drop size-1 axes, and merge neighbours that are contiguous on both sides (fewer
  // divisions per element, and a longer innermost run for the kernel's chunks).
  const dims: [number, number, number][] = [];
  shape.forEach((s, i) => {
    if (s === 1) return;
    const last = dims.at(-1);
    if (last && last[1] === inStrides[i] * s && last[2] === outStrides[i] * s) {
      last[0] *= s;
      last[1] = inStrides[i];
      last[2] = outStrides[i];
    } else dims.push([s, inStrides[i], outStrides[i]]);
  });
  let [inner, isRun, osRun] = dims.pop() ?? [1, 0, 0];
  if (dims.length > COPY_RANK) {
    throw new RangeError(`copy: rank ${dims.length + 1} is above ${COPY_RANK + 1}`);
  }
  // vec4 elements when the innermost run is contiguous on both sides and every size, stride
  // and base is a multiple of 4 (a quarter of the storage accesses for the same bytes).
  const strides = dims.flatMap(([, is, os]) => [is, os]);
  const q = isRun === 1 && osRun === 1
    ? vecLanes(inner, inBase, outBase, src.storage.bytes / 4, dst.storage.bytes / 4, ...strides)
    : 1;
  inner /= q;
  const chunks = Math.ceil(inner / COPY_CHUNK);
  const items = (n / q / inner) * chunks;
  const u = new Uint32Array(8 + 3 * COPY_RANK);
  u.set([items, dims.length, inBase / q, outBase / q, inner, chunks, isRun, osRun]);
  dims.forEach(([s, is, os], i) => {
    u[8 + i] = s;
    u[8 + COPY_RANK + i] = is / q;
    u[8 + 2 * COPY_RANK + i] = os / q;
  });
  run(stridedCopyProgram(q === 4), {
    inputs: [src.storage],
    outputs: [dst.storage],
    uniforms: u,
    workgroups: elementwiseGroups(items),
    bytes: 8 * n,
  });
}

function axis(op: string, a: number, rank: number): number {
  const k = a < 0 ? a + rank : a;
  if (!Number.isInteger(k) || k < 0 || k >= rank) {
    throw new RangeError(`${op}: axis ${a} is out of range for rank ${rank}`);
  }
  return k;
}

/**
 * The same data with another shape (a view: no copy). One size may be -1.
 *
 * @example
 * ```ts
 * import { arange, reshape } from "../../mod.ts";
 * console.log(reshape(arange(6), [2, -1]).shape); // [2, 3]
 * ```
 */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const s = [...shape];
  const hole = s.indexOf(-1);
  if (hole >= 0) {
    const rest = sizeOf(s.filter((_, i) => i !== hole));
    if (rest === 0 || x.size % rest !== 0) {
      throw new RangeError(`reshape: cannot reshape ${fmtShape(x.shape)} into ${fmtShape(shape)}`);
    }
    s[hole] = x.size / rest;
  }
  checkShape(s, "reshape");
  if (sizeOf(s) !== x.size) {
    throw new RangeError(
      `reshape: cannot reshape ${fmtShape(x.shape)} (${x.size} elements) into ${fmtShape(shape)}`,
    );
  }
  const out = new Tensor(x.storage.retain(), s, x.dtype);
  record("reshape", {}, [x], out);
  return out;
}

/** Flattens axes `start..end` (inclusive) into one (a view). */
export function flatten(x: Tensor, start = 0, end = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const a = axis("flatten", start, x.ndim);
  const b = axis("flatten", end, x.ndim);
  const s = [...x.shape.slice(0, a), sizeOf(x.shape.slice(a, b + 1)), ...x.shape.slice(b + 1)];
  return reshape(x, s);
}

/** Removes size-1 axes (all, or just `axis`) (a view). */
export function squeeze(x: Tensor, ax?: number): Tensor {
  if (ax === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const k = axis("squeeze", ax, x.ndim);
  if (x.shape[k] !== 1) return reshape(x, x.shape);
  return reshape(x, x.shape.filter((_, i) => i !== k));
}

/** Inserts a size-1 axis at `ax` (a view). */
export function unsqueeze(x: Tensor, ax: number): Tensor {
  const k = axis("unsqueeze", ax, x.ndim + 1);
  const s = [...x.shape];
  s.splice(k, 0, 1);
  return reshape(x, s);
}

/**
 * Reorders axes (a copy).
 *
 * @example
 * ```ts
 * import { permute, zeros } from "../../mod.ts";
 * console.log(permute(zeros([2, 3, 4]), [2, 0, 1]).shape); // [4, 2, 3]
 * ```
 */
export function permute(x: Tensor, perm: number[]): Tensor {
  if (
    perm.length !== x.ndim || new Set(perm.map((p) => axis("permute", p, x.ndim))).size !== x.ndim
  ) {
    throw new RangeError(
      `permute: [${perm}] is not a permutation of the axes of ${fmtShape(x.shape)}`,
    );
  }
  const p = perm.map((a) => axis("permute", a, x.ndim));
  const shape = p.map((a) => x.shape[a]);
  const out = Tensor.empty(shape, x.dtype);
  const st = stridesOf(x.shape);
  copy(x, out, shape, p.map((a) => st[a]), stridesOf(shape));
  record("permute", { perm: p }, [x], out);
  return out;
}

/** Swaps two axes (a copy). */
export function transpose(x: Tensor, d0 = -2, d1 = -1): Tensor {
  const p = x.shape.map((_, i) => i);
  const a = axis("transpose", d0, x.ndim);
  const b = axis("transpose", d1, x.ndim);
  [p[a], p[b]] = [p[b], p[a]];
  return permute(x, p);
}

/**
 * `x[starts[0]:ends[0], starts[1]:ends[1], ...]` over the leading axes listed (a copy).
 * Negative indices count from the end.
 */
export function slice(x: Tensor, starts: number[], ends: number[]): Tensor {
  if (starts.length !== ends.length || starts.length > x.ndim) {
    throw new RangeError(
      `slice: starts [${starts}] and ends [${ends}] do not fit ${fmtShape(x.shape)}`,
    );
  }
  const st: number[] = [];
  const shape = x.shape.map((d, i) => {
    if (i >= starts.length) {
      st.push(0);
      return d;
    }
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
    const a = clamp(starts[i]);
    const b = Math.max(clamp(ends[i]), a);
    st.push(a);
    return b - a;
  });
  const out = Tensor.empty(shape, x.dtype);
  const xs = stridesOf(x.shape);
  copy(x, out, shape, xs, stridesOf(shape), st.reduce((p, a, i) => p + a * xs[i], 0));
  record("slice", { starts: st }, [x], out);
  return out;
}

/** Broadcasts `x` to `shape` (a copy). */
export function expand(x: Tensor, shape: Shape): Tensor {
  const s = shape.map((d, i) => (d === -1 ? x.shape[i - (shape.length - x.ndim)] : d));
  const b = broadcastShapes("expand", x.shape, s);
  if (b.some((d, i) => d !== s[i])) {
    throw new RangeError(`expand: ${fmtShape(x.shape)} cannot be expanded to ${fmtShape(shape)}`);
  }
  const out = Tensor.empty(s, x.dtype);
  copy(x, out, s, broadcastStrides(x.shape, s), stridesOf(s));
  record("expand", {}, [x], out);
  return out;
}

/**
 * Joins tensors along `axis` (a copy).
 *
 * @example
 * ```ts
 * import { concat, ones, zeros } from "../../mod.ts";
 * console.log(concat([zeros([2, 1]), ones([2, 3])], 1).shape); // [2, 4]
 * ```
 */
export function concat(xs: Tensor[], ax = 0): Tensor {
  if (xs.length === 0) throw new RangeError("concat: no tensors given");
  const k = axis("concat", ax, xs[0].ndim);
  for (const t of xs) {
    if (
      t.ndim !== xs[0].ndim || t.dtype !== xs[0].dtype ||
      t.shape.some((d, i) => i !== k && d !== xs[0].shape[i])
    ) {
      throw new RangeError(
        `concat: shapes ${
          xs.map((t) => `${fmtShape(t.shape)} ${t.dtype}`).join(", ")
        } differ outside axis ${ax}`,
      );
    }
  }
  const shape = [...xs[0].shape];
  shape[k] = xs.reduce((p, t) => p + t.shape[k], 0);
  const out = Tensor.empty(shape, xs[0].dtype);
  const os = stridesOf(shape);
  let at = 0;
  for (const t of xs) {
    copy(t, out, t.shape, stridesOf(t.shape), os, 0, at * os[k]);
    at += t.shape[k];
  }
  record("concat", { axis: k, sizes: xs.map((t) => t.shape[k]) }, xs, out);
  return out;
}

/** Splits along `axis` into pieces of the given sizes (copies). */
export function split(x: Tensor, sizes: number[], ax = 0): Tensor[] {
  const k = axis("split", ax, x.ndim);
  if (sizes.reduce((a, b) => a + b, 0) !== x.shape[k]) {
    throw new RangeError(
      `split: sizes [${sizes}] do not add up to ${x.shape[k]} (axis ${ax} of ${fmtShape(x.shape)})`,
    );
  }
  let at = 0;
  return sizes.map((s) => {
    const starts = x.shape.map((_, i) => (i === k ? at : 0));
    const ends = x.shape.map((d, i) => (i === k ? at + s : d));
    at += s;
    return slice(x, starts, ends);
  });
}

/**
 * Pads with a constant: `pads[i] = [before, after]` for axis i (missing trailing axes unpadded).
 *
 * @example
 * ```ts
 * import { ones, pad } from "../../mod.ts";
 * console.log(pad(ones([2, 2]), [[1, 1], [0, 2]]).shape); // [4, 4]
 * ```
 */
export function pad(x: Tensor, pads: [number, number][], value = 0): Tensor {
  if (
    pads.length > x.ndim ||
    pads.some(([a, b]) => !Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b < 0)
  ) {
    throw new RangeError(
      `pad: pads ${JSON.stringify(pads)} do not fit ${fmtShape(x.shape)} (non-negative integers)`,
    );
  }
  const before = x.shape.map((_, i) => pads[i]?.[0] ?? 0);
  const shape = x.shape.map((d, i) => d + before[i] + (pads[i]?.[1] ?? 0));
  const out = full(shape, value, x.dtype);
  const os = stridesOf(shape);
  copy(x, out, x.shape, stridesOf(x.shape), os, 0, before.reduce((p, b, i) => p + b * os[i], 0));
  record("pad", { before }, [x], out);
  return out;
}

/** Writes `g` into a zero tensor of `shape` at offsets `starts` (backward of slice). */
function embed(g: Tensor, shape: Shape, starts: number[]): Tensor {
  const out = full(shape, 0, g.dtype);
  const os = stridesOf(shape);
  copy(g, out, g.shape, stridesOf(g.shape), os, 0, starts.reduce((p, s, i) => p + s * os[i], 0));
  return out;
}

/** Backward rules of the shape ops. */
export const reshapeVjp: VjpRule<"reshape"> = (node, g) => [reshape(g, node.inputShapes[0])];
/** @internal */
export const permuteVjp: VjpRule<"permute"> = (node, g) => {
  const inv: number[] = [];
  node.attrs.perm.forEach((p, i) => (inv[p] = i));
  return [permute(g, inv)];
};
/** @internal */
export const sliceVjp: VjpRule<"slice"> = (
  node,
  g,
) => [embed(g, node.inputShapes[0], node.attrs.starts)];
/** @internal */
export const expandVjp: VjpRule<"expand"> = (node, g) => [sumTo(g, node.inputShapes[0])];
/** @internal */
export const concatVjp: VjpRule<"concat"> = (node, g) => {
  const pieces = split(g, node.attrs.sizes, node.attrs.axis);
  return pieces.map((p, i) => {
    if (node.needs[i]) return p;
    p.dispose();
    return null;
  });
};
/** @internal */
export const padVjp: VjpRule<"pad"> = (node, g) => {
  const s = node.inputShapes[0];
  const b = node.attrs.before;
  return [slice(g, b, b.map((v, i) => v + s[i]))];
};
