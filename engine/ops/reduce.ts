/**
 * Reductions over any set of axes (sum, mean, max, min, argmax, variance) and
 * `sumTo`, which folds a broadcast gradient back to an operand's shape.
 *
 * @module
 */

import { type DType, fmtShape, scope, type Shape, sizeOf, Tensor } from "../tensor.ts";
import { record, type VjpRule } from "../autograd.ts";
import {
  bindingChunks,
  type BufferRange,
  copyBuffer,
  rangeOf,
  run,
  vecLanes,
} from "../dispatch.ts";
import type { Storage } from "../memory.ts";
import {
  COLUMN_ROWS,
  REDUCE_WG,
  reduceColumnsProgram,
  type ReduceFn,
  reduceRowsProgram,
  reduceTreeProgram,
} from "../../kernels/reduce.ts";
import { MAX_RANK } from "../../kernels/elementwise.ts";
import { foldGrid } from "../../kernels/program.ts";
import { cast, div, eq, mul, sub } from "./elementwise.ts";
import { expand, reshape } from "./shape.ts";

/** Normalises axes (negative counts from the end; undefined means all). */
export function normAxes(op: string, shape: Shape, axes?: number | number[]): number[] {
  const list = axes === undefined
    ? shape.map((_, i) => i)
    : typeof axes === "number"
    ? [axes]
    : axes;
  const out = new Set<number>();
  for (const a of list) {
    const k = a < 0 ? a + Math.max(shape.length, 1) : a;
    if (!Number.isInteger(k) || k < 0 || k >= Math.max(shape.length, 1)) {
      throw new RangeError(`${op}: axis ${a} is out of range for shape ${fmtShape(shape)}`);
    }
    out.add(k);
  }
  return [...out].sort((x, y) => x - y);
}

function outShape(shape: Shape, axes: number[], keepdim: boolean): number[] {
  const r: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) r.push(d);
    else if (keepdim) r.push(1);
  });
  return r;
}

/** Splits axes into kept and reduced groups, merging neighbours that are contiguous. */
function groups(shape: Shape, axes: number[]) {
  const strides: number[] = [];
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  const kept: [number, number][] = [];
  const red: [number, number][] = [];
  shape.forEach((d, i) => {
    if (d === 1) return;
    const list = axes.includes(i) ? red : kept;
    const last = list.at(-1);
    // Two neighbours with last.stride == d * stride fold into one axis.
    if (last && last[1] === d * strides[i]) {
      last[0] *= d;
      last[1] = strides[i];
    } else list.push([d, strides[i]]);
  });
  return { kept, red };
}

function reduceRaw(fn: ReduceFn, x: Tensor, axes: number[], keepdim: boolean): Tensor {
  const shape = outShape(x.shape, axes, keepdim);
  const nOut = sizeOf(shape);
  const { kept, red } = groups(x.shape, axes);
  if (kept.length > MAX_RANK || red.length > MAX_RANK) {
    throw new RangeError(`${fn}: rank of ${fmtShape(x.shape)} is above ${MAX_RANK}`);
  }
  const nRed = red.reduce((p, [d]) => p * d, 1);
  if (nRed === 0 && fn !== "sum" && nOut > 0) {
    throw new RangeError(`${fn}: cannot reduce over an empty axis of ${fmtShape(x.shape)}`);
  }
  const outDtype = fn === "argmax" ? "i32" : x.dtype;
  const pieces = bindingChunks(x.size);
  if (pieces.length > 1) {
    // Above one binding's limit: reduce each piece to one value, then those.
    if (nOut !== 1 || fn === "argmax") {
      throw new RangeError(
        `${fn}: ${fmtShape(x.shape)} is above this adapter's maxStorageBufferBindingSize; ` +
          "only sum/max/min over all elements are done in pieces",
      );
    }
    const partial = Tensor.empty([pieces.length], x.dtype);
    pieces.forEach(([start, count], i) => {
      const r = reduceBinding(fn, rangeOf(x.storage, start, count), x.dtype, [], [[count, 1]], [1]);
      copyBuffer(r.storage, 0, partial.storage, 4 * i, 4);
      r.dispose();
    });
    const out = reduceBinding(fn, partial.storage, x.dtype, [], [[pieces.length, 1]], shape);
    partial.dispose();
    return out;
  }
  if (nOut === 0) return Tensor.empty(shape, outDtype);
  return reduceBinding(fn, x.storage, x.dtype, kept, red, shape);
}

/**
 * Most iterations one invocation makes over a reduction. Besides speed (few
 * outputs over long reductions would otherwise run on a few workgroups, i.e. a
 * few CPU threads on llvmpipe), this is a correctness bound: llvmpipe ends a
 * shader invocation's loops after 65,535 passes in all (`LOOP_BUDGET`,
 * kernels/program.ts), and the kernels make at most 10 passes per element
 * (their loop, and the index arithmetic's loop over up to 8 reduced axes).
 * It explains the wrong sum once measured here: a single workgroup summing
 * 4,000,037 ones (62,500 iterations of 3 passes per invocation) returned
 * 43,690 = 2 × 21,845, i.e. each lane stopped after 65,535 / 3 = 21,845 ones,
 * and of the tree merge that followed, whose loop ran once (as every loop
 * does once the budget is spent), only its first step remained. So the tree
 * schedule takes as many parts as this bound needs, whatever the length.
 */
const MAX_LOOP = 1024;

/** Reduces the columns of a row-major `[rows, cols]` binding, in parts of COLUMN_ROWS rows. */
function reduceColumns(
  fn: Exclude<ReduceFn, "argmax">,
  input: Storage | BufferRange,
  dtype: DType,
  rows: number,
  cols: number,
  shape: number[],
): Tensor {
  const parts = Math.max(1, Math.ceil(rows / COLUMN_ROWS));
  const out = Tensor.empty(parts > 1 ? [parts, cols] : shape, dtype);
  const q = fn === "sum" ? vecLanes(cols) : 1; // 4 columns per invocation, as a vec4
  run(reduceColumnsProgram(fn, dtype, q === 4), {
    inputs: [input],
    outputs: [out.storage],
    uniforms: new Uint32Array([rows, cols / q, parts, 0]),
    workgroups: foldGrid(Math.ceil((parts * cols) / q / 64)),
    bytes: 4 * (rows * cols + parts * cols),
    flops: rows * cols,
  });
  if (parts === 1) return out;
  const r = reduceColumns(fn, out.storage, dtype, parts, cols, shape);
  out.dispose();
  return r;
}

/** Reduces one binding into a new tensor of `shape`, in two passes when the reduction is long. */
function reduceBinding(
  fn: ReduceFn,
  input: Storage | BufferRange,
  dtype: DType,
  kept: [number, number][],
  red: [number, number][],
  shape: number[],
): Tensor {
  const nOut = kept.reduce((p, [d]) => p * d, 1);
  const nRed = red.reduce((p, [d]) => p * d, 1);
  if (
    fn !== "argmax" && kept.length === 1 && kept[0][1] === 1 && red.length === 1 &&
    red[0][1] === nOut && nOut >= 32
  ) {
    return reduceColumns(fn, input, dtype, nRed, nOut, shape);
  }
  const tree = nRed >= 1024;
  const parts = tree && fn !== "argmax" ? Math.ceil(nRed / (REDUCE_WG * MAX_LOOP)) : 1;
  if (fn === "argmax" && nRed > REDUCE_WG * MAX_LOOP) {
    throw new RangeError(
      `argmax: reductions longer than ${REDUCE_WG * MAX_LOOP} are not supported`,
    );
  }
  const out = Tensor.empty(parts > 1 ? [nOut * parts] : shape, fn === "argmax" ? "i32" : dtype);
  const u = new Uint32Array(4 + 4 * MAX_RANK + 4);
  u[0] = nOut;
  u[1] = nRed;
  u[2] = kept.length;
  u[3] = red.length;
  kept.forEach(([d, st], i) => {
    u[4 + i] = d;
    u[4 + MAX_RANK + i] = st;
  });
  red.forEach(([d, st], i) => {
    u[4 + 2 * MAX_RANK + i] = d;
    u[4 + 3 * MAX_RANK + i] = st;
  });
  u[4 + 4 * MAX_RANK] = parts;
  run(tree ? reduceTreeProgram(fn, dtype) : reduceRowsProgram(fn, dtype), {
    inputs: [input],
    outputs: [out.storage],
    uniforms: u,
    workgroups: tree ? nOut * parts : Math.ceil(nOut / 64),
    bytes: 4 * (nOut * nRed + nOut),
    flops: nOut * nRed,
  });
  if (parts === 1) return out;
  const r = reduceBinding(
    fn,
    out.storage,
    dtype,
    nOut > 1 ? [[nOut, parts]] : [],
    [[parts, 1]],
    shape,
  );
  out.dispose();
  return r;
}

/**
 * Sum over `axes` (all axes by default).
 *
 * @example
 * ```ts
 * import { sum, tensor } from "../../mod.ts";
 * console.log(await sum(tensor([1, 2, 3, 4], { shape: [2, 2] }), 1).toArray()); // [3, 7]
 * ```
 */
export function sum(x: Tensor, axes?: number | number[], keepdim = false): Tensor {
  const ax = normAxes("sum", x.shape, axes);
  const out = reduceRaw("sum", x, ax, keepdim);
  record("sum", { axes: ax, keepdim }, [x], out);
  return out;
}

/** Mean over `axes` (all axes by default). */
export function mean(x: Tensor, axes?: number | number[], keepdim = false): Tensor {
  if (x.dtype !== "f32") throw new TypeError(`mean: expected f32, got ${x.dtype}`);
  const ax = normAxes("mean", x.shape, axes);
  const n = ax.reduce((p, a) => p * (x.shape[a] ?? 1), 1);
  // Composites run in a scope so their intermediates are freed at once (the tape keeps its own).
  return scope(() => mul(sum(x, ax, keepdim), 1 / n));
}

/** Maximum over `axes`; ties share the gradient evenly. */
export function max(x: Tensor, axes?: number | number[], keepdim = false): Tensor {
  const ax = normAxes("max", x.shape, axes);
  const out = reduceRaw("max", x, ax, keepdim);
  record("max", { axes: ax, keepdim }, [x], out, () => [x, out]);
  return out;
}

/** Minimum over `axes`. */
export function min(x: Tensor, axes?: number | number[], keepdim = false): Tensor {
  // Integer negation wraps (−0 = 0 beats every nonzero u32, −INT_MIN = INT_MIN), so integer
  // tensors, which need no gradient, use the kernel's min directly.
  if (x.dtype !== "f32") return reduceRaw("min", x, normAxes("min", x.shape, axes), keepdim);
  return scope(() => mul(max(mul(x, -1), axes, keepdim), -1));
}

/** Index (i32) of the first maximum along `axis`; not differentiable. */
export function argmax(x: Tensor, axis: number, keepdim = false): Tensor {
  const ax = normAxes("argmax", x.shape, axis);
  return reduceRaw("argmax", x, ax, keepdim);
}

/** Variance over `axes`, dividing by `n - correction` (1 by default, as PyTorch). */
export function variance(
  x: Tensor,
  axes?: number | number[],
  opts: { correction?: number; keepdim?: boolean } = {},
): Tensor {
  const ax = normAxes("variance", x.shape, axes);
  const n = ax.reduce((p, a) => p * (x.shape[a] ?? 1), 1);
  const c = opts.correction ?? 1;
  return scope(() => {
    const d = sub(x, mean(x, ax, true));
    return mul(sum(mul(d, d), ax, opts.keepdim ?? false), 1 / Math.max(n - c, 0));
  });
}

/** Sums `g` down to `shape` (the inverse of broadcasting `shape` up to `g.shape`). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.shape.length - shape.length;
  const axes: number[] = [];
  g.shape.forEach((d, i) => {
    if (i < lead || (shape[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  const s = axes.length ? sum(g, axes, true) : g;
  return reshape(s, shape);
}

/** The shape `x` had with reduced axes kept as size 1. */
function keptShape(shape: Shape, axes: number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** Backward of sum: broadcast the gradient back. */
export const sumVjp: VjpRule<"sum"> = (node, g) => {
  const shape = node.inputShapes[0];
  return [expand(reshape(g, keptShape(shape, node.attrs.axes)), shape)];
};

/** Backward of max: the gradient is shared by the elements equal to the maximum. */
export const maxVjp: VjpRule<"max"> = (node, g) => {
  const [x, out] = node.saved;
  const ks = keptShape(x.shape, node.attrs.axes);
  const mask = cast(eq(x, reshape(out, ks)), "f32");
  const count = sum(mask, node.attrs.axes, true);
  return [mul(mask, div(reshape(g, ks), count))];
};
