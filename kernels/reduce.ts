/**
 * Reductions over any set of axes: sum, max, min, argmax.
 *
 * The op layer coalesces the input into "kept" and "reduced" axis groups with
 * strides, passed as uniforms. Two schedules: one invocation per output (many
 * outputs, short reductions), or one workgroup per output with a shared-memory
 * tree (few outputs, long reductions).
 *
 * @module
 */

import { isNanWgsl, type KernelProgram, type WgslScalar } from "./program.ts";

/** Reduction kinds. */
export type ReduceFn = "sum" | "max" | "min" | "argmax";

/** Invocations in a workgroup of the tree schedule. */
export const REDUCE_WG = 64;

function identity(fn: ReduceFn, t: WgslScalar): string {
  if (fn === "sum") return "T(0)";
  const big = t === "f32"
    ? "bitcast<f32>(0x7f800000u)"
    : t === "i32"
    ? "2147483647"
    : "4294967295u";
  const small = t === "f32"
    ? "bitcast<f32>(0xff800000u)"
    : t === "i32"
    ? "(-2147483647 - 1)"
    : "0u";
  return fn === "min" ? big : small;
}

const COMMON = /* wgsl */ `
struct U {
  nOut: u32, nRed: u32, keptRank: u32, redRank: u32,
  keptShape: array<vec4<u32>, 2>, keptStride: array<vec4<u32>, 2>,
  redShape: array<vec4<u32>, 2>, redStride: array<vec4<u32>, 2>,
  parts: u32,
}
fn dim(v: array<vec4<u32>, 2>, d: u32) -> u32 { return v[d >> 2u][d & 3u]; }
fn baseOf(o: u32) -> u32 {
  var r = o; var off = 0u;
  for (var d = i32(u.keptRank) - 1; d >= 0; d--) {
    let s = dim(u.keptShape, u32(d));
    off += (r % s) * dim(u.keptStride, u32(d));
    r = r / s;
  }
  return off;
}
fn redOffset(j: u32) -> u32 {
  var r = j; var off = 0u;
  for (var d = i32(u.redRank) - 1; d >= 0; d--) {
    let s = dim(u.redShape, u32(d));
    off += (r % s) * dim(u.redStride, u32(d));
    r = r / s;
  }
  return off;
}
`;

function combine(fn: ReduceFn): string {
  switch (fn) {
    case "sum":
      return "acc = acc + v;";
    case "max": // NaN propagates, as in PyTorch's amax
      return "acc = select(max(acc, v), acc + v, isNan_(acc) || isNan_(v));";
    case "min":
      return "acc = select(min(acc, v), acc + v, isNan_(acc) || isNan_(v));";
    case "argmax": // first index of the maximum; NaN counts as the maximum (PyTorch)
      return "if (v > acc || (isNan_(v) && !isNan_(acc))) { acc = v; best = j; }";
  }
}

/** Rows one invocation of {@link reduceColumnsProgram} reduces. */
export const COLUMN_ROWS = 256;

/**
 * Column reduction of a row-major `[rows, cols]` block: one invocation per
 * (column, part of {@link COLUMN_ROWS} rows), writing `[parts, cols]` partial
 * results. The addresses need no index arithmetic (the general kernels pay
 * integer divisions per element, which llvmpipe runs lane by lane): bias
 * gradients of [4096, 512] went from 58 ms to ~8 ms. With `vec` (sums over a
 * multiple of 4 columns), each invocation owns 4 neighbouring columns and
 * loads them as one vec4 (`cols` in the uniforms then counts vec4s).
 */
export function reduceColumnsProgram(
  fn: Exclude<ReduceFn, "argmax">,
  dtype: WgslScalar,
  vec = false,
): KernelProgram {
  if (vec && fn !== "sum") throw new Error("reduceColumnsProgram: vec4 form for sums only");
  const t = vec ? "vec4<T>" : "T";
  return {
    name: `reduce_${fn}_cols`,
    key: `reduce_cols_${fn}_${dtype}_${vec}`,
    inputs: 1,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `alias T = ${dtype};
${isNanWgsl(dtype)}
struct U { rows: u32, cols: u32, parts: u32, pad: u32 }
@group(0) @binding(0) var<storage, read> x: array<${t}>;
@group(0) @binding(1) var<storage, read_write> out: array<${t}>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (o >= u.cols * u.parts) { return; }
  let part = o / u.cols;
  let c = o - part * u.cols;
  let r1 = min(u.rows, (part + 1u) * ${COLUMN_ROWS}u);
  var acc = ${vec ? `${t}(${identity(fn, dtype)})` : identity(fn, dtype)};
  for (var r = part * ${COLUMN_ROWS}u; r < r1; r++) { let v = x[r * u.cols + c]; ${combine(fn)} }
  out[o] = acc;
}`,
  };
}

/** One invocation per output element. */
export function reduceRowsProgram(fn: ReduceFn, dtype: WgslScalar): KernelProgram {
  const outT = fn === "argmax" ? "i32" : "T";
  return {
    name: `reduce_${fn}`,
    key: `reduce_rows_${fn}_${dtype}`,
    inputs: 1,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `alias T = ${dtype};
${COMMON}
${isNanWgsl(dtype)}
@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> out: array<${outT}>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (o >= u.nOut) { return; }
  let base = baseOf(o);
  var acc = ${identity(fn, dtype)};
  var best = 0u;
  if (u.redRank == 1u) {
    let st = dim(u.redStride, 0u);
    for (var j = 0u; j < u.nRed; j++) { let v = x[base + j * st]; ${combine(fn)} }
  } else {
    for (var j = 0u; j < u.nRed; j++) { let v = x[base + redOffset(j)]; ${combine(fn)} }
  }
  out[o] = ${fn === "argmax" ? "i32(best)" : "acc"};
}`,
  };
}

/** One workgroup per output element, tree-reduced in workgroup memory. */
export function reduceTreeProgram(fn: ReduceFn, dtype: WgslScalar): KernelProgram {
  const outT = fn === "argmax" ? "i32" : "T";
  const merge = fn === "sum"
    ? "sv[lid] = sv[lid] + sv[lid + s];"
    : fn === "max"
    ? "let a = sv[lid]; let b = sv[lid + s]; sv[lid] = select(max(a, b), a + b, isNan_(a) || isNan_(b));"
    : fn === "min"
    ? "let a = sv[lid]; let b = sv[lid + s]; sv[lid] = select(min(a, b), a + b, isNan_(a) || isNan_(b));"
    : `let a = sv[lid]; let b = sv[lid + s];
      if (b > a || (isNan_(b) && !isNan_(a)) || (b == a && si[lid + s] < si[lid])) { sv[lid] = b; si[lid] = si[lid + s]; }`;
  return {
    name: `reduce_${fn}`,
    key: `reduce_tree_${fn}_${dtype}`,
    inputs: 1,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `alias T = ${dtype};
${COMMON}
${isNanWgsl(dtype)}
@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> out: array<${outT}>;
@group(0) @binding(2) var<uniform> u: U;
var<workgroup> sv: array<T, ${REDUCE_WG}>;
var<workgroup> si: array<u32, ${REDUCE_WG}>;
@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  // With parts > 1, several workgroups share one output, each taking every
  // parts-th block of the reduction and writing its own partial result.
  let w = wid.x + wid.y * nwg.x;
  let o = w / u.parts;
  let part = w % u.parts;
  let valid = o < u.nOut;
  let base = select(0u, baseOf(o), valid);
  var acc = ${identity(fn, dtype)};
  var best = 0u;
  if (valid) {
    for (var j = part * ${REDUCE_WG}u + lid; j < u.nRed; j += ${REDUCE_WG}u * u.parts) {
      let v = x[base + redOffset(j)]; ${combine(fn)}
    }
  }
  sv[lid] = acc;
  si[lid] = best;
  workgroupBarrier();
  for (var s = ${REDUCE_WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      ${merge}
    }
    workgroupBarrier();
  }
  if (lid == 0u && valid) { out[w] = ${fn === "argmax" ? "i32(si[0])" : "sv[0]"}; }
}`,
  };
}
