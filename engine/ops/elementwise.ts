/**
 * Elementwise ops with broadcasting (NumPy rules), their backward rules, and casts.
 *
 * @module
 */

import { fmtShape, type Shape, sizeOf, Tensor } from "../tensor.ts";
import type { DType } from "../tensor.ts";
import { record, type VjpRule } from "../autograd.ts";
import { bindingChunks, clearBuffer, rangeOf, run, vecLanes } from "../dispatch.ts";
import {
  arangeProgram,
  type BinaryFn,
  binaryProgram,
  type BroadcastMode,
  castProgram,
  COMPARISONS,
  elementwiseGroups,
  fillProgram,
  INT_UNARY,
  MAX_RANK,
  type ScalarFn,
  scalarProgram,
  type UnaryFn,
  unaryGradProgram,
  unaryProgram,
  whereProgram,
} from "../../kernels/elementwise.ts";
import { sumTo } from "./reduce.ts";

// ------------------------------------------------------------ broadcasting

/** The broadcast shape of several shapes, or an error naming the op and all shapes. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const d = s[s.length - 1 - i];
      const o = rank - 1 - i;
      if (out[o] === 1) out[o] = d;
      else if (d !== 1 && d !== out[o]) {
        throw new RangeError(
          `${op}: shapes ${shapes.map(fmtShape).join(" and ")} cannot be broadcast together`,
        );
      }
    }
  }
  return out;
}

/** Strides of `shape` read as if broadcast to `out` (0 on broadcast axes). */
export function broadcastStrides(shape: Shape, out: Shape): number[] {
  const strides = new Array<number>(out.length).fill(0);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const o = out.length - shape.length + i;
    strides[o] = shape[i] === 1 ? 0 : s;
    s *= shape[i];
  }
  return strides;
}

/** Packs up to 8 u32 values into a vec4 pair, as the kernels' uniforms expect. */
function pack8(dst: Uint32Array, at: number, v: readonly number[]): void {
  for (let i = 0; i < MAX_RANK; i++) dst[at + i] = i < v.length ? v[i] : 0;
}

function checkRank(op: string, shape: Shape): void {
  if (shape.length > MAX_RANK) {
    throw new RangeError(`${op}: rank ${shape.length} exceeds the supported ${MAX_RANK}`);
  }
}

// ------------------------------------------------------------ unary

function unary(fn: UnaryFn, x: Tensor): Tensor {
  if (x.dtype !== "f32" && !INT_UNARY.has(fn)) {
    throw new TypeError(`${fn}: expected an f32 tensor, got ${x.dtype} ${fmtShape(x.shape)}`);
  }
  const out = Tensor.empty(x.shape, x.dtype);
  for (const [start, n] of bindingChunks(x.size)) {
    if (n === 0) continue;
    const q = vecLanes(n);
    run(unaryProgram(fn, x.dtype, q === 4), {
      inputs: [rangeOf(x.storage, start, n)],
      outputs: [rangeOf(out.storage, start, n)],
      uniforms: new Uint32Array([n / q]),
      workgroups: elementwiseGroups(n / q),
      bytes: 8 * n,
      flops: n,
    });
  }
  record("unary", { fn }, [x], out, () => [x, out]);
  return out;
}

/** Elementwise negation. @example ```ts ignore
 * neg(x) ``` */
export const neg = (x: Tensor): Tensor => unary("neg", x);
/** Absolute value. */
export const abs = (x: Tensor): Tensor => unary("abs", x);
/** Exponential. */
export const exp = (x: Tensor): Tensor => unary("exp", x);
/** Natural logarithm. */
export const log = (x: Tensor): Tensor => unary("log", x);
/** Square root. */
export const sqrt = (x: Tensor): Tensor => unary("sqrt", x);
/** Reciprocal square root. */
export const rsqrt = (x: Tensor): Tensor => unary("rsqrt", x);
/** Hyperbolic tangent. */
export const tanh = (x: Tensor): Tensor => unary("tanh", x);
/** Logistic sigmoid. */
export const sigmoid = (x: Tensor): Tensor => unary("sigmoid", x);
/** Rectified linear unit. */
export const relu = (x: Tensor): Tensor => unary("relu", x);
/** ReLU clipped at 6 (MobileNet). */
export const relu6 = (x: Tensor): Tensor => unary("relu6", x);
/** Sine. */
export const sin = (x: Tensor): Tensor => unary("sin", x);
/** Cosine. */
export const cos = (x: Tensor): Tensor => unary("cos", x);
/** GELU: `x·Φ(x)` (erf form), or PyTorch's `approximate="tanh"` form. */
export const gelu = (x: Tensor, approximate: "none" | "tanh" = "none"): Tensor =>
  unary(approximate === "tanh" ? "gelu_tanh" : "gelu", x);

/** dx for a unary op from x, y and g (one fused kernel). */
/** `g · f'(x)` in one fused kernel (also used by matmul's fused relu epilogue). */
export function unaryGrad(fn: UnaryFn, x: Tensor, y: Tensor, g: Tensor): Tensor {
  const out = Tensor.empty(x.shape, "f32");
  for (const [start, n] of bindingChunks(x.size)) {
    if (n === 0) continue;
    const r = (t: Tensor) => rangeOf(t.storage, start, n);
    const q = vecLanes(n);
    run(unaryGradProgram(fn, q === 4), {
      inputs: [r(x), r(y), r(g)],
      outputs: [r(out)],
      uniforms: new Uint32Array([n / q]),
      workgroups: elementwiseGroups(n / q),
      bytes: 16 * n,
    });
  }
  return out;
}

// ------------------------------------------------------------ binary

/** Picks the cheapest indexing that serves this broadcast (see BroadcastMode). */
function broadcastMode(a: Shape, b: Shape, out: Shape): BroadcastMode {
  const n = sizeOf(out);
  const isTail = (s: Shape) => {
    const t = s.slice(s.findIndex((d) => d !== 1) < 0 ? s.length : s.findIndex((d) => d !== 1));
    return t.length <= out.length && t.every((d, i) => d === out[out.length - t.length + i]);
  };
  if (sizeOf(a) === n && sizeOf(b) === n) return "same";
  if (sizeOf(a) === n && isTail(b)) return "tailB";
  if (sizeOf(b) === n && isTail(a)) return "tailA";
  return "general";
}

function binaryUniforms(
  tail: number,
  n: number,
  out: Shape,
  sa: number[],
  sb: number[],
): Uint32Array {
  const u = new Uint32Array(4 + 3 * MAX_RANK);
  u[0] = n;
  u[1] = out.length;
  u[2] = Math.max(tail, 1);
  pack8(u, 4, out);
  pack8(u, 4 + MAX_RANK, sa);
  pack8(u, 4 + 2 * MAX_RANK, sb);
  return u;
}

function binary(fn: BinaryFn, a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== b.dtype) {
    throw new TypeError(
      `${fn}: dtypes differ (${a.dtype} ${fmtShape(a.shape)} and ${b.dtype} ${
        fmtShape(b.shape)
      }); cast() one of them`,
    );
  }
  if (fn === "pow" && a.dtype !== "f32") {
    throw new TypeError(`pow: expected f32 tensors, got ${a.dtype}`);
  }
  const shape = broadcastShapes(fn, a.shape, b.shape);
  checkRank(fn, shape);
  const outDtype: DType = COMPARISONS.has(fn) ? "u32" : a.dtype;
  const out = Tensor.empty(shape, outDtype);
  const n = sizeOf(shape);
  const mode = broadcastMode(a.shape, b.shape, shape);
  // Same-shape operands above one binding's limit run piecewise (e.g. a 411 MB weight's update).
  const pieces = mode === "same" ? bindingChunks(n) : [[0, n] as [number, number]];
  for (const [start, count] of pieces) {
    if (count === 0) continue;
    const r = (t: Tensor) => mode === "same" ? rangeOf(t.storage, start, count) : t.storage;
    const tail = mode === "tailA" ? a.size : b.size;
    const q = mode !== "general" ? vecLanes(count, tail) : 1;
    run(binaryProgram(fn, a.dtype, mode, q === 4), {
      inputs: [r(a), r(b)],
      outputs: [r(out)],
      uniforms: binaryUniforms(
        tail / q,
        count / q,
        shape,
        broadcastStrides(a.shape, shape),
        broadcastStrides(b.shape, shape),
      ),
      workgroups: elementwiseGroups(count / q),
      bytes: 12 * count,
      flops: count,
    });
  }
  if (!COMPARISONS.has(fn)) {
    record("binary", { fn }, [a, b], out, (needs) => {
      switch (fn) {
        case "add":
        case "sub":
          return [];
        case "mul":
          return [needs[1] ? a : b, needs[0] ? b : a];
        case "div":
          return [a, b];
        default:
          return [a, b, out];
      }
    });
  }
  return out;
}

function scalar(fn: ScalarFn, a: Tensor, s: number): Tensor {
  // An integer tensor with a fractional number computes in f32, as PyTorch's type promotion does.
  if (a.dtype !== "f32" && !Number.isInteger(s)) {
    const af = cast(a, "f32");
    const r = scalar(fn, af, s);
    af.dispose();
    return r;
  }
  const outDtype: DType = COMPARISONS.has(fn) ? "u32" : a.dtype;
  if (fn === "pow" && a.dtype !== "f32") {
    throw new TypeError(`pow: expected an f32 tensor, got ${a.dtype}`);
  }
  const out = Tensor.empty(a.shape, outDtype);
  for (const [start, n] of bindingChunks(a.size)) {
    if (n === 0) continue;
    const u = new ArrayBuffer(16);
    const q = vecLanes(n);
    new Uint32Array(u)[0] = n / q;
    new Float32Array(u)[1] = s;
    new Int32Array(u)[2] = Math.trunc(s);
    run(scalarProgram(fn, a.dtype, q === 4), {
      inputs: [rangeOf(a.storage, start, n)],
      outputs: [rangeOf(out.storage, start, n)],
      uniforms: new Uint8Array(u),
      workgroups: elementwiseGroups(n / q),
      bytes: 8 * n,
      flops: n,
    });
  }
  if (!COMPARISONS.has(fn)) {
    record("scalar", { fn, s }, [a], out, () => {
      if (fn === "pow" || fn === "rdiv") return [a, out];
      if (fn === "maximum" || fn === "minimum") return [a];
      return [];
    });
  }
  return out;
}

type Operand = Tensor | number;

function dispatch2(fn: BinaryFn & ScalarFn, rfn: ScalarFn | null, a: Operand, b: Operand): Tensor {
  if (a instanceof Tensor && b instanceof Tensor) return binary(fn, a, b);
  if (a instanceof Tensor) return scalar(fn, a, b as number);
  if (b instanceof Tensor) {
    if (rfn) return scalar(rfn, b, a);
    return binary(fn, full([], a, b.dtype), b);
  }
  throw new TypeError(`${fn}: at least one operand must be a Tensor`);
}

/** `a + b` with broadcasting; either may be a number. */
export const add = (a: Operand, b: Operand): Tensor => dispatch2("add", "add", a, b);
/** `a - b` with broadcasting. */
export const sub = (a: Operand, b: Operand): Tensor => dispatch2("sub", "rsub", a, b);
/** `a * b` with broadcasting. */
export const mul = (a: Operand, b: Operand): Tensor => dispatch2("mul", "mul", a, b);
/** `a / b` with broadcasting. */
export const div = (a: Operand, b: Operand): Tensor => dispatch2("div", "rdiv", a, b);
/** `a ** b` with broadcasting. */
export const pow = (a: Operand, b: Operand): Tensor => dispatch2("pow", null, a, b);
/** Elementwise maximum. */
export const maximum = (a: Operand, b: Operand): Tensor => dispatch2("maximum", "maximum", a, b);
/** Elementwise minimum. */
export const minimum = (a: Operand, b: Operand): Tensor => dispatch2("minimum", "minimum", a, b);
/** `a == b` as a u32 0/1 mask. */
export const eq = (a: Operand, b: Operand): Tensor => dispatch2("eq", "eq", a, b);
/** `a != b` as a u32 0/1 mask. */
export const ne = (a: Operand, b: Operand): Tensor => dispatch2("ne", "ne", a, b);
/** `a < b` as a u32 0/1 mask. */
export const lt = (a: Operand, b: Operand): Tensor => dispatch2("lt", "gt", a, b);
/** `a <= b` as a u32 0/1 mask. */
export const le = (a: Operand, b: Operand): Tensor => dispatch2("le", "ge", a, b);
/** `a > b` as a u32 0/1 mask. */
export const gt = (a: Operand, b: Operand): Tensor => dispatch2("gt", "lt", a, b);
/** `a >= b` as a u32 0/1 mask. */
export const ge = (a: Operand, b: Operand): Tensor => dispatch2("ge", "le", a, b);

/**
 * `cond ? a : b` elementwise, broadcasting all three; `cond` is a mask of any
 * dtype (nonzero is true).
 *
 * @example
 * ```ts
 * import { tensor, where } from "../../mod.ts";
 * const x = tensor([-1, 2, -3]);
 * console.log(await where(x.gt(0), x, tensor([0])).toArray()); // [0, 2, 0]
 * ```
 */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== b.dtype) {
    throw new TypeError(`where: a and b dtypes differ (${a.dtype} and ${b.dtype})`);
  }
  if (cond.dtype === "f32") {
    const mask = ne(cond, 0);
    const r = where(mask, a, b);
    mask.dispose(); // the tape keeps its own reference when it needs one
    return r;
  }
  const shape = broadcastShapes("where", cond.shape, a.shape, b.shape);
  checkRank("where", shape);
  const out = Tensor.empty(shape, a.dtype);
  const n = sizeOf(shape);
  if (n > 0) {
    const u = new Uint32Array(4 + 4 * MAX_RANK);
    u[0] = n;
    u[1] = shape.length;
    pack8(u, 4, shape);
    pack8(u, 4 + MAX_RANK, broadcastStrides(cond.shape, shape));
    pack8(u, 4 + 2 * MAX_RANK, broadcastStrides(a.shape, shape));
    pack8(u, 4 + 3 * MAX_RANK, broadcastStrides(b.shape, shape));
    run(whereProgram(a.dtype), {
      inputs: [cond.storage, a.storage, b.storage],
      outputs: [out.storage],
      uniforms: u,
      workgroups: elementwiseGroups(n),
      bytes: 16 * n,
    });
  }
  record("where", {}, [a, b, cond], out, () => [cond]);
  return out;
}

/**
 * Converts to another dtype (not differentiable). Float → int truncates toward zero.
 *
 * @example
 * ```ts
 * import { tensor } from "../../mod.ts";
 * console.log(await tensor([1.7, -1.7]).cast("i32").toArray()); // [1, -1]
 * ```
 */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return mul(x, 1);
  const out = Tensor.empty(x.shape, dtype);
  for (const [start, n] of bindingChunks(x.size)) {
    if (n === 0) continue;
    run(castProgram(x.dtype, dtype), {
      inputs: [rangeOf(x.storage, start, n)],
      outputs: [rangeOf(out.storage, start, n)],
      uniforms: new Uint32Array([n]),
      workgroups: elementwiseGroups(n),
    });
  }
  return out;
}

// ------------------------------------------------------------ creation

function bitsOf(value: number, dtype: DType): number {
  const buf = new ArrayBuffer(4);
  if (dtype === "f32") new Float32Array(buf)[0] = value;
  else if (dtype === "i32") new Int32Array(buf)[0] = value;
  else new Uint32Array(buf)[0] = value;
  return new Uint32Array(buf)[0];
}

/**
 * A tensor filled with `value`.
 *
 * @example
 * ```ts
 * import { full } from "../../mod.ts";
 * console.log(await full([2], 7).toArray()); // [7, 7]
 * ```
 */
export function full(shape: Shape, value: number, dtype: DType = "f32"): Tensor {
  const out = Tensor.empty(shape, dtype);
  if (bitsOf(value, dtype) === 0) {
    // All-zero bits (+0, 0): a clear, not a kernel.
    clearBuffer(out.storage, 0, 4 * out.size);
    return out;
  }
  for (const [start, n] of bindingChunks(out.size)) {
    if (n === 0) continue;
    run(fillProgram(), {
      inputs: [],
      outputs: [rangeOf(out.storage, start, n)],
      uniforms: new Uint32Array([n, bitsOf(value, dtype)]),
      workgroups: elementwiseGroups(n),
      bytes: 4 * n,
    });
  }
  return out;
}

/** A tensor of zeros. */
export const zeros = (shape: Shape, dtype: DType = "f32"): Tensor => full(shape, 0, dtype);
/** A tensor of ones. */
export const ones = (shape: Shape, dtype: DType = "f32"): Tensor => full(shape, 1, dtype);

/**
 * `[start, start + step, ...)` below `end`, like `torch.arange`.
 *
 * @example
 * ```ts
 * import { arange } from "../../mod.ts";
 * console.log(await arange(0, 5).toArray()); // [0, 1, 2, 3, 4]
 * ```
 */
export function arange(start: number, end?: number, step = 1, dtype?: DType): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0) throw new RangeError("arange: step must be nonzero");
  const n = Math.max(0, Math.ceil((end - start) / step));
  const dt: DType = dtype ?? ([start, end, step].every(Number.isInteger) ? "i32" : "f32");
  const out = Tensor.empty([n], dt);
  if (n > 0) {
    const u = new ArrayBuffer(16);
    new Uint32Array(u)[0] = n;
    new Float32Array(u)[1] = start;
    new Float32Array(u)[2] = step;
    run(arangeProgram(dt === "u32" ? "u32" : dt), {
      inputs: [],
      outputs: [out.storage],
      uniforms: new Uint8Array(u),
      workgroups: elementwiseGroups(n),
    });
  }
  return out;
}

// ------------------------------------------------------------ backward rules

/** Backward of unary functions: one fused kernel `g · f'(x)`. */
export const unaryVjp: VjpRule<"unary"> = (node, g) => {
  const [x, y] = node.saved;
  return [unaryGrad(node.attrs.fn, x, y, g)];
};

/** Backward of binary ops; broadcast operands get their gradient summed back. */
export const binaryVjp: VjpRule<"binary"> = (node, g) => {
  const [sa, sb] = node.inputShapes;
  const [na, nb] = node.needs;
  const s = node.saved;
  let ga: Tensor | null = null;
  let gb: Tensor | null = null;
  switch (node.attrs.fn) {
    case "add":
      ga = na ? g : null;
      gb = nb ? g : null;
      break;
    case "sub":
      ga = na ? g : null;
      gb = nb ? neg(g) : null;
      break;
    case "mul":
      ga = na ? mul(g, s[1]) : null;
      gb = nb ? mul(g, s[0]) : null;
      break;
    case "div": {
      const [a, b] = s;
      ga = na ? div(g, b) : null;
      gb = nb ? neg(div(mul(g, a), mul(b, b))) : null;
      break;
    }
    case "pow": {
      const [a, b, out] = s;
      ga = na ? mul(g, mul(b, pow(a, sub(b, 1)))) : null;
      // d/db a^b = a^b ln a; defined as 0 where a^b is 0 (as PyTorch does for a = 0).
      gb = nb ? mul(g, where(eq(out, 0), zeros([]), mul(out, log(a)))) : null;
      break;
    }
    case "maximum":
    case "minimum": {
      const [a, b, out] = s;
      // Ties split the gradient evenly, as PyTorch does.
      const ea = cast(eq(a, out), "f32");
      const eb = cast(eq(b, out), "f32");
      const tot = add(ea, eb);
      ga = na ? div(mul(g, ea), tot) : null;
      gb = nb ? div(mul(g, eb), tot) : null;
      break;
    }
    default:
      throw new Error(`binary backward: ${node.attrs.fn} is not differentiable`);
  }
  return [ga && sumTo(ga, sa), gb && sumTo(gb, sb)];
};

/** Backward of tensor-scalar ops. */
export const scalarVjp: VjpRule<"scalar"> = (node, g) => {
  const { fn, s } = node.attrs;
  const x = node.saved;
  switch (fn) {
    case "add":
    case "sub":
      return [g];
    case "rsub":
      return [neg(g)];
    case "mul":
      return [mul(g, s)];
    case "div":
      return [mul(g, 1 / s)];
    case "rdiv": // d(s/x) = -s/x² = -out/x
      return [neg(div(mul(g, x[1]), x[0]))];
    case "pow":
      return [mul(g, mul(pow(x[0], s - 1), s))];
    case "maximum":
    case "minimum": {
      const hit = cast(eq(x[0], s), "f32");
      const on = cast(fn === "maximum" ? gt(x[0], s) : lt(x[0], s), "f32");
      return [mul(g, add(on, mul(hit, 0.5)))];
    }
    default:
      throw new Error(`scalar backward: ${fn} is not differentiable`);
  }
};

/** Backward of where: the gradient goes to the branch that was chosen. */
export const whereVjp: VjpRule<"where"> = (node, g) => {
  const [cond] = node.saved;
  const z = zeros([]);
  const [sa, sb] = node.inputShapes;
  return [
    node.needs[0] ? sumTo(where(cond, g, z), sa) : null,
    node.needs[1] ? sumTo(where(cond, z, g), sb) : null,
    null,
  ];
};
