/**
 * Reductions over any set of axes (sum, mean, max, min, argmax, variance) and
 * `sumTo`, which folds a broadcast gradient back to an operand's shape.
 *
 * @module
 */

import { fmtShape, type Shape, sizeOf, Tensor } from "../tensor.ts";
import { record, type VjpRule } from "../autograd.ts";
import { run } from "../dispatch.ts";
import { type ReduceFn, reduceRowsProgram, reduceTreeProgram } from "../../kernels/reduce.ts";
import { MAX_RANK } from "../../kernels/elementwise.ts";
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
  // A long reduction into few outputs would run on a few workgroups, i.e. a few
  // CPU threads on llvmpipe (sum of 1M values: 101 ms, vs 19 ms for an add over
  // them): split it into P partial results first, then reduce those (52 ms).
  const P = fn !== "argmax" && nOut < 64 && red.length === 1 ? splitFactor(red[0][0]) : 0;
  if (P > 0) {
    const [d, st] = red[0];
    const partial = Tensor.empty([nOut, P], x.dtype);
    launch(fn, x, partial, [...kept, [P, (d / P) * st]], [[d / P, st]]);
    const out = Tensor.empty(shape, x.dtype);
    launch(fn, partial, out, nOut > 1 ? [[nOut, P]] : [], [[P, 1]]);
    partial.dispose();
    return out;
  }
  const out = Tensor.empty(shape, fn === "argmax" ? "i32" : x.dtype);
  if (nOut > 0) launch(fn, x, out, kept, red);
  return out;
}

/** A divisor of `d` between 16 and 256 (the number of partial results), or 0. */
function splitFactor(d: number): number {
  if (d < 8192) return 0;
  for (let p = 256; p >= 16; p--) if (d % p === 0) return p;
  return 0;
}

function launch(
  fn: ReduceFn,
  x: Tensor,
  out: Tensor,
  kept: [number, number][],
  red: [number, number][],
): void {
  const nOut = kept.reduce((p, [d]) => p * d, 1);
  const nRed = red.reduce((p, [d]) => p * d, 1);
  const u = new Uint32Array(4 + 4 * MAX_RANK);
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
  const tree = nRed >= 1024 && nOut < 4096;
  run(tree ? reduceTreeProgram(fn, x.dtype) : reduceRowsProgram(fn, x.dtype), {
    inputs: [x.storage],
    outputs: [out.storage],
    uniforms: u,
    workgroups: tree ? nOut : Math.ceil(nOut / 64),
    bytes: 4 * (nOut * nRed + nOut),
    flops: nOut * nRed,
  });
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
  return mul(sum(x, ax, keepdim), 1 / n);
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
  return mul(max(mul(x, -1), axes, keepdim), -1);
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
  const d = sub(x, mean(x, ax, true));
  return mul(sum(mul(d, d), ax, opts.keepdim ?? false), 1 / Math.max(n - c, 0));
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
