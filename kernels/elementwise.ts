/**
 * Elementwise kernels: unary functions and their derivatives, binary ops with
 * broadcasting, ops with a scalar operand, `where`, casts and fills.
 *
 * Every kernel is a grid-stride loop over the output so that one dispatch of a
 * bounded number of workgroups covers any size. Broadcasting is expressed by
 * strides (0 on a broadcast axis) passed as uniforms, so one pipeline serves
 * every shape of a given rank bound.
 *
 * @module
 */

import { isNanWgsl, type KernelProgram, type WgslScalar } from "./program.ts";

/** Unary functions. */
export type UnaryFn =
  | "neg"
  | "abs"
  | "exp"
  | "log"
  | "sqrt"
  | "rsqrt"
  | "tanh"
  | "sigmoid"
  | "relu"
  | "relu6"
  | "gelu"
  | "gelu_tanh"
  | "sin"
  | "cos";

/** Binary functions (both operands tensors). */
export type BinaryFn =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "pow"
  | "maximum"
  | "minimum"
  | "eq"
  | "ne"
  | "lt"
  | "le"
  | "gt"
  | "ge";

/** Functions of a tensor and a scalar `s` (`rsub` is s − x, `rdiv` is s / x). */
export type ScalarFn =
  | "add"
  | "mul"
  | "sub"
  | "rsub"
  | "div"
  | "rdiv"
  | "pow"
  | "maximum"
  | "minimum"
  | "eq"
  | "ne"
  | "lt"
  | "le"
  | "gt"
  | "ge";

/** Comparisons produce u32 0/1 masks. */
export const COMPARISONS: ReadonlySet<string> = new Set(["eq", "ne", "lt", "le", "gt", "ge"]);

/** Largest rank the broadcasting kernels handle. */
export const MAX_RANK = 8;
/** Invocations per workgroup of the elementwise kernels. */
export const WG = 64;
/** Elements each invocation handles before the grid-stride loop wraps (sizes the grid). */
const PER_THREAD = 4;

/** Workgroups to launch for `n` output elements. */
export function elementwiseGroups(n: number): number {
  return Math.max(1, Math.min(Math.ceil(n / (WG * PER_THREAD)), 65535 * 4));
}

// Abramowitz & Stegun 7.1.26 has max error 1.5e-7, below f32 resolution near 1.
// tanh via exp(-2|x|) avoids the overflow to NaN some drivers' tanh shows at |x| > 44.
const MATH = /* wgsl */ `
fn erf_(x: f32) -> f32 {
  let s = sign(x);
  let a = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
  return s * y;
}
fn tanh_(x: f32) -> f32 {
  let e = exp(-2.0 * abs(x));
  return sign(x) * (1.0 - e) / (1.0 + e);
}
fn sigmoid_(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}
const SQRT1_2 = 0.70710678118654752;
const INV_SQRT_2PI = 0.39894228040143268;
const GELU_C = 0.79788456080286536;
`;

const UNARY: Record<UnaryFn, string> = {
  neg: "-x",
  abs: "abs(x)",
  exp: "exp(x)",
  log: "log(x)",
  sqrt: "sqrt(x)",
  rsqrt: "inverseSqrt(x)",
  tanh: "tanh_(x)",
  sigmoid: "sigmoid_(x)",
  // NaN stays NaN (PyTorch propagates it): max()/clamp() may drop it, and on wgpu's GL
  // backend Mesa evaluates NaN < 0 as true, so NaN is tested from the bits.
  relu: "select(select(x, T(0), x < T(0)), x, isNan_(x))",
  relu6: "select(select(select(x, T(6), x > T(6)), T(0), x < T(0)), x, isNan_(x))",
  gelu: "0.5 * x * (1.0 + erf_(x * SQRT1_2))",
  gelu_tanh: "0.5 * x * (1.0 + tanh_(GELU_C * (x + 0.044715 * x * x * x)))",
  sin: "sin(x)",
  cos: "cos(x)",
};

/** Unary functions defined for integer tensors. */
export const INT_UNARY: ReadonlySet<UnaryFn> = new Set(["neg", "abs", "relu"]);

// d/dx of each unary function, from x, y = f(x) and the upstream gradient g.
const UNARY_GRAD: Record<UnaryFn, string> = {
  neg: "-g",
  abs: "g * sign(x)",
  exp: "g * y",
  log: "g / x",
  sqrt: "g * 0.5 / y",
  rsqrt: "g * -0.5 * y * y * y",
  tanh: "g * (1.0 - y * y)",
  sigmoid: "g * y * (1.0 - y)",
  // NaN inputs get no gradient, as in PyTorch (x > 0 is false for NaN, except on GL: see relu).
  relu: "select(0.0, g, x > 0.0 && !isNan_(x))",
  relu6: "select(0.0, g, x > 0.0 && x < 6.0 && !isNan_(x))",
  gelu: "g * (0.5 * (1.0 + erf_(x * SQRT1_2)) + x * INV_SQRT_2PI * exp(-0.5 * x * x))",
  gelu_tanh:
    "g * (0.5 * (1.0 + tanh_(GELU_C * (x + 0.044715 * x * x * x))) + 0.5 * x * (1.0 - tanh_(GELU_C * (x + 0.044715 * x * x * x)) * tanh_(GELU_C * (x + 0.044715 * x * x * x))) * GELU_C * (1.0 + 3.0 * 0.044715 * x * x))",
  sin: "g * cos(x)",
  cos: "-g * sin(x)",
};

const BINARY: Record<BinaryFn, string> = {
  add: "a + b",
  sub: "a - b",
  mul: "a * b",
  div: "a / b",
  pow: "pow_(a, b)",
  maximum: "select(max(a, b), a + b, isNan_(a) || isNan_(b))",
  minimum: "select(min(a, b), a + b, isNan_(a) || isNan_(b))",
  // Comparisons with NaN are false except !=, as IEEE and PyTorch have it.
  eq: "u32(a == b && !isNan_(a) && !isNan_(b))",
  ne: "u32(a != b || isNan_(a) || isNan_(b))",
  lt: "u32(a < b && !isNan_(a) && !isNan_(b))",
  le: "u32(a <= b && !isNan_(a) && !isNan_(b))",
  gt: "u32(a > b && !isNan_(a) && !isNan_(b))",
  ge: "u32(a >= b && !isNan_(a) && !isNan_(b))",
};

// WGSL's pow() is undefined for a negative base; PyTorch gives the real result
// for integral exponents, so mirror that.
const POW = /* wgsl */ `
fn pow_(a: f32, b: f32) -> f32 {
  if (a >= 0.0) { return pow(a, b); }
  if (b == round(b)) {
    let m = pow(-a, b);
    return select(m, -m, (i32(b) & 1) == 1);
  }
  return bitcast<f32>(0x7fc00000u);
}
`;

const SCALAR: Record<ScalarFn, string> = {
  add: "x + s",
  mul: "x * s",
  sub: "x - s",
  rsub: "s - x",
  div: "x / s",
  rdiv: "s / x",
  pow: "pow_(x, s)",
  maximum: "select(max(x, s), x + s, isNan_(x) || isNan_(s))",
  minimum: "select(min(x, s), x + s, isNan_(x) || isNan_(s))",
  eq: "u32(x == s && !isNan_(x) && !isNan_(s))",
  ne: "u32(x != s || isNan_(x) || isNan_(s))",
  lt: "u32(x < s && !isNan_(x) && !isNan_(s))",
  le: "u32(x <= s && !isNan_(x) && !isNan_(s))",
  gt: "u32(x > s && !isNan_(x) && !isNan_(s))",
  ge: "u32(x >= s && !isNan_(x) && !isNan_(s))",
};

const LOOP_HEAD = /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let stride = nwg.x * nwg.y * nwg.z * ${WG}u;
  for (var i = (wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y) * ${WG}u + lid; i < u.n; i += stride) {`;

/**
 * Loop body of a vec4 kernel (why vec4: `vecLanes` in engine/dispatch.ts): the
 * scalar expression `expr` (which reads the scalar names in `names`)
 * evaluated per component of the vec4 loads `${name}v`, written to `ov`.
 */
function perComponent(names: string[], expr: string): string {
  return ["x", "y", "z", "w"].map((c) =>
    `{ ${names.map((n) => `let ${n} = ${n}v.${c};`).join(" ")} ov.${c} = ${expr}; }`
  ).join("\n    ");
}

/** `array<T>` or `array<vec4<T>>`. */
const arr = (t: string, vec: boolean) => (vec ? `array<vec4<${t}>>` : `array<${t}>`);

const IDX_FNS = /* wgsl */ `
fn dim(v: array<vec4<u32>, 2>, d: u32) -> u32 { return v[d >> 2u][d & 3u]; }
`;

/**
 * `out = f(x)` over a contiguous tensor; `vec`: 4 elements per load (the
 * uniform `n` then counts vec4s).
 */
export function unaryProgram(fn: UnaryFn, dtype: WgslScalar, vec = false): KernelProgram {
  return {
    name: `unary_${fn}`,
    key: `unary_${fn}_${dtype}_${vec}`,
    inputs: 1,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `alias T = ${dtype};
${MATH}
${isNanWgsl(dtype)}
struct U { n: u32 }
@group(0) @binding(0) var<storage, read> a: ${arr("T", vec)};
@group(0) @binding(1) var<storage, read_write> out: ${arr("T", vec)};
@group(0) @binding(2) var<uniform> u: U;
${LOOP_HEAD}
    ${
        vec
          ? `let xv = a[i];
    var ov: vec4<T>;
    ${perComponent(["x"], UNARY[fn])}
    out[i] = ov;`
          : `let x = a[i];
    out[i] = ${UNARY[fn]};`
      }
  }
}`,
  };
}

/** `dx = g · f'(x)` for a unary `f`, reading x, y = f(x) and g (all contiguous, f32; `vec`: vec4s). */
export function unaryGradProgram(fn: UnaryFn, vec = false): KernelProgram {
  const a = arr("f32", vec);
  return {
    name: `unary_${fn}_grad`,
    key: `unary_grad_${fn}_${vec}`,
    inputs: 3,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `alias T = f32;
${MATH}
${isNanWgsl("f32")}
struct U { n: u32 }
@group(0) @binding(0) var<storage, read> xs: ${a};
@group(0) @binding(1) var<storage, read> ys: ${a};
@group(0) @binding(2) var<storage, read> gs: ${a};
@group(0) @binding(3) var<storage, read_write> out: ${a};
@group(0) @binding(4) var<uniform> u: U;
${LOOP_HEAD}
    ${
        vec
          ? `let xv = xs[i];
    let yv = ys[i];
    let gv = gs[i];
    var ov: vec4<f32>;
    ${perComponent(["x", "y", "g"], UNARY_GRAD[fn])}
    out[i] = ov;`
          : `let x = xs[i];
    let y = ys[i];
    let g = gs[i];
    out[i] = ${UNARY_GRAD[fn]};`
      }
  }
}`,
  };
}

/**
 * How the operands of a binary op map onto the output:
 * - `same`: both have the output's size (no index arithmetic);
 * - `tailA` / `tailB`: that operand repeats along the leading axes (its shape is
 *   a suffix of the output's, e.g. a bias `[N]` against `[M, N]`): index `i % size`;
 * - `general`: strides per axis.
 * The special cases matter on CPU-emulated GPUs, where the integer divisions of
 * the general case cost more than the arithmetic (measured: broadcast add
 * [1024,1024]+[1024] 5.8× slower than the same-shape add before `tailB`).
 */
export type BroadcastMode = "same" | "tailA" | "tailB" | "general";

/**
 * `out = a ∘ b` with broadcasting (see {@link BroadcastMode}); `vec` (all but
 * `general`, with `n` and `tail` multiples of 4): 4 elements per load, the
 * uniforms `n` and `tail` counting vec4s.
 */
export function binaryProgram(
  fn: BinaryFn,
  dtype: WgslScalar,
  mode: BroadcastMode,
  vec = false,
): KernelProgram {
  if (vec && mode === "general") throw new Error("binaryProgram: no vec4 form of broadcasting");
  const outT = COMPARISONS.has(fn) ? "u32" : "T";
  const v = vec ? "v" : "";
  const body = mode === "same"
    ? `let a${v} = x[i]; let b${v} = y[i];`
    : mode === "tailA"
    ? `let a${v} = x[i % u.tail]; let b${v} = y[i];`
    : mode === "tailB"
    ? `let a${v} = x[i]; let b${v} = y[i % u.tail];`
    : `var r = i; var ia = 0u; var ib = 0u;
    for (var d = i32(u.rank) - 1; d >= 0; d--) {
      let s = dim(u.shape, u32(d));
      let c = r % s;
      r = r / s;
      ia += c * dim(u.sa, u32(d));
      ib += c * dim(u.sb, u32(d));
    }
    let a = x[ia]; let b = y[ib];`;
  return {
    name: `binary_${fn}`,
    key: `binary_${fn}_${dtype}_${mode}_${vec}`,
    inputs: 2,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `alias T = ${dtype};
${dtype === "f32" ? POW : ""}
${isNanWgsl(dtype)}
${IDX_FNS}
struct U { n: u32, rank: u32, tail: u32, pad: u32, shape: array<vec4<u32>, 2>, sa: array<vec4<u32>, 2>, sb: array<vec4<u32>, 2> }
@group(0) @binding(0) var<storage, read> x: ${arr("T", vec)};
@group(0) @binding(1) var<storage, read> y: ${arr("T", vec)};
@group(0) @binding(2) var<storage, read_write> out: ${arr(outT, vec)};
@group(0) @binding(3) var<uniform> u: U;
${LOOP_HEAD}
    ${body}
    ${
        vec
          ? `var ov: vec4<${outT}>;
    ${perComponent(["a", "b"], BINARY[fn])}
    out[i] = ov;`
          : `out[i] = ${BINARY[fn]};`
      }
  }
}`,
  };
}

/**
 * `out = f(x, s)` for a scalar `s` passed as a uniform (so no recompile per
 * value); `vec`: 4 elements per load (`n` counts vec4s).
 */
export function scalarProgram(fn: ScalarFn, dtype: WgslScalar, vec = false): KernelProgram {
  const outT = COMPARISONS.has(fn) ? "u32" : "T";
  return {
    name: `scalar_${fn}`,
    key: `scalar_${fn}_${dtype}_${vec}`,
    inputs: 1,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `alias T = ${dtype};
${dtype === "f32" ? POW : ""}
${isNanWgsl(dtype)}
struct U { n: u32, sf: f32, si: i32 }
@group(0) @binding(0) var<storage, read> a: ${arr("T", vec)};
@group(0) @binding(1) var<storage, read_write> out: ${arr(outT, vec)};
@group(0) @binding(2) var<uniform> u: U;
${LOOP_HEAD}
    let s = ${dtype === "f32" ? "u.sf" : dtype === "i32" ? "u.si" : "u32(u.si)"};
    ${
        vec
          ? `let xv = a[i];
    var ov: vec4<${outT}>;
    ${perComponent(["x"], SCALAR[fn])}
    out[i] = ov;`
          : `let x = a[i];
    out[i] = ${SCALAR[fn]};`
      }
  }
}`,
  };
}

/** `out = cond ? a : b` with broadcasting of all three; cond is any 32-bit type (nonzero is true). */
export function whereProgram(dtype: WgslScalar): KernelProgram {
  return {
    name: "where",
    key: `where_${dtype}`,
    inputs: 3,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `alias T = ${dtype};
${IDX_FNS}
struct U { n: u32, rank: u32, shape: array<vec4<u32>, 2>, sc: array<vec4<u32>, 2>, sa: array<vec4<u32>, 2>, sb: array<vec4<u32>, 2> }
@group(0) @binding(0) var<storage, read> c: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> y: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;
@group(0) @binding(4) var<uniform> u: U;
${LOOP_HEAD}
    var r = i; var ic = 0u; var ia = 0u; var ib = 0u;
    for (var d = i32(u.rank) - 1; d >= 0; d--) {
      let s = dim(u.shape, u32(d));
      let k = r % s;
      r = r / s;
      ic += k * dim(u.sc, u32(d));
      ia += k * dim(u.sa, u32(d));
      ib += k * dim(u.sb, u32(d));
    }
    out[i] = select(y[ib], x[ia], c[ic] != 0u);
  }
}`,
  };
}

/** Converts between dtypes (float → int truncates toward zero, as PyTorch does). */
export function castProgram(from: WgslScalar, to: WgslScalar): KernelProgram {
  return {
    name: `cast_${from}_${to}`,
    key: `cast_${from}_${to}`,
    inputs: 1,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `struct U { n: u32 }
@group(0) @binding(0) var<storage, read> a: array<${from}>;
@group(0) @binding(1) var<storage, read_write> out: array<${to}>;
@group(0) @binding(2) var<uniform> u: U;
${LOOP_HEAD}
    out[i] = ${to}(a[i]);
  }
}`,
  };
}

/** Fills a buffer with one value (bits passed as u32, so every dtype shares the kernel). */
export function fillProgram(): KernelProgram {
  return {
    name: "fill",
    key: "fill",
    inputs: 0,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `struct U { n: u32, bits: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<uniform> u: U;
${LOOP_HEAD}
    out[i] = u.bits;
  }
}`,
  };
}

/** `out[i] = start + i * step` (f32 or i32). */
export function arangeProgram(dtype: WgslScalar): KernelProgram {
  return {
    name: "arange",
    key: `arange_${dtype}`,
    inputs: 0,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `struct U { n: u32, start: f32, step: f32 }
@group(0) @binding(0) var<storage, read_write> out: array<${dtype}>;
@group(0) @binding(1) var<uniform> u: U;
${LOOP_HEAD}
    out[i] = ${dtype}(u.start + f32(i) * u.step);
  }
}`,
  };
}
