/**
 * Kernels of linear centered kernel alignment (engine/ops/cka.ts): column
 * centering, and a two-pass reduction of three sums of products into the
 * final ratio `s0 / sqrt(s1 · s2)`.
 *
 * @module
 */

import type { KernelProgram } from "./program.ts";

/** Invocations in a workgroup of the centering kernels. */
export const CENTER_WG = 64;

/**
 * Rows one centering invocation reads or writes at most. llvmpipe stops a
 * shader invocation's loops after 65,535 iterations in all (measured: a column
 * of 30,000 rows centered in three loops came out right up to row 5,532, i.e.
 * iteration 65,532, and zero after), so a column of more rows is taken in
 * chunks.
 */
export const CENTER_CHUNK = 4096;

const CENTER_U = /* wgsl */ `
struct U { n: u32, p: u32, pc: u32, R: u32, cols: u32, parts: u32, pad0: u32, pad1: u32 }
`;

const CENTER_ENTRY = /* wgsl */ `
@compute @workgroup_size(${CENTER_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = (wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y) * ${CENTER_WG}u + lid;`;

/**
 * Means of chunks of {@link CENTER_CHUNK} rows of a row-major `[n, p]` f32
 * matrix: `out[c·p + j]` is the mean of rows `[c·CHUNK, min(n, (c+1)·CHUNK))`
 * of column `j`, one invocation per (chunk, column), taken in two passes like
 * {@link centerColumnsProgram}'s. Uniforms as there (`parts` chunks); the
 * grid may be folded.
 */
export function centerChunkMeansProgram(): KernelProgram {
  return {
    name: "center_chunk_means",
    key: "center_chunk_means",
    inputs: 1,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `${CENTER_U}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
${CENTER_ENTRY}
  if (o >= u.p * u.parts) { return; }
  let c = o / u.p;
  let j = o - c * u.p;
  let r0 = c * ${CENTER_CHUNK}u;
  let r1 = min(u.n, r0 + ${CENTER_CHUNK}u);
  let cnt = f32(r1 - r0);
  var s = 0.0;
  for (var i = r0; i < r1; i++) { s += x[i * u.p + j]; }
  let m1 = s / cnt;
  var r = 0.0;
  for (var i = r0; i < r1; i++) { r += x[i * u.p + j] - m1; }
  out[o] = m1 + r / cnt;
}`,
  };
}

/**
 * Column centering of a row-major `[n, p]` f32 matrix. The mean is taken in
 * two passes, `m1 = Σx/n`, then `m = m1 + Σ(x − m1)/n`, which removes most of
 * the rounding error of the first sum (the residuals are small, so their sum
 * is accurate) and centers a constant column to exact zeros.
 *
 * The output is written in column blocks with zero padding, so that the
 * products that follow can be batched over blocks of their reduction axis
 * (see engine/ops/cka.ts): element `(i, j)` goes to `out[(b·R + i)·pc + jj]`
 * with `b = j / pc`, `jj = j % pc`, for `cols = blocks·pc ≥ p` columns and
 * `R ≥ n` rows; padded columns (`j ≥ p`) and rows (`i ≥ n`) are written as
 * zeros. With `pc = p` and `R = n` this is the plain `[n, p]` layout.
 *
 * - `chunked = false` (for `R ≤` {@link CENTER_CHUNK}): one invocation per
 *   output column, reading the whole column.
 * - `chunked = true`: a second input holds the `[parts, p]` chunk means of
 *   {@link centerChunkMeansProgram}, combined in two passes (weighted by the
 *   chunk sizes) into the column mean, and there is one invocation per
 *   (chunk of {@link CENTER_CHUNK} output rows, output column).
 *
 * Uniforms: `n, p, pc, R, cols, parts`. The grid may be folded (see
 * `foldGrid`): extra invocations return at once.
 */
export function centerColumnsProgram(chunked: boolean): KernelProgram {
  const mean = chunked
    ? `let w = o / u.cols;
  let j = o - w * u.cols;
  let r0 = w * ${CENTER_CHUNK}u;
  let r1 = min(u.R, r0 + ${CENTER_CHUNK}u);
  var m = 0.0;
  if (j < u.p) {
    let cnt = f32(u.n);
    var s = 0.0;
    for (var c = 0u; c < u.parts; c++) {
      s += f32(min(${CENTER_CHUNK}u, u.n - c * ${CENTER_CHUNK}u)) * means[c * u.p + j];
    }
    let m1 = s / cnt;
    var r = 0.0;
    for (var c = 0u; c < u.parts; c++) {
      r += f32(min(${CENTER_CHUNK}u, u.n - c * ${CENTER_CHUNK}u)) * (means[c * u.p + j] - m1);
    }
    m = m1 + r / cnt;
  }`
    : `let j = o;
  let r0 = 0u;
  let r1 = u.R;
  var m = 0.0;
  if (j < u.p) {
    let cnt = f32(u.n);
    var s = 0.0;
    for (var i = 0u; i < u.n; i++) { s += x[i * u.p + j]; }
    let m1 = s / cnt;
    var r = 0.0;
    for (var i = 0u; i < u.n; i++) { r += x[i * u.p + j] - m1; }
    m = m1 + r / cnt;
  }`;
  const io = chunked
    ? `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> means: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> u: U;`
    : `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> u: U;`;
  // Invocations: one per (chunk of output rows, output column), or per output column.
  const count = chunked ? `u.cols * ((u.R + ${CENTER_CHUNK - 1}u) / ${CENTER_CHUNK}u)` : "u.cols";
  return {
    name: chunked ? "center_columns_chunked" : "center_columns",
    key: chunked ? "center_columns_chunked" : "center_columns",
    inputs: chunked ? 2 : 1,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `${CENTER_U}
${io}
${CENTER_ENTRY}
  if (o >= ${count}) { return; }
  ${mean}
  let b = j / u.pc;
  let base = b * u.R * u.pc + (j - b * u.pc);
  if (j >= u.p) {
    for (var i = r0; i < r1; i++) { out[base + i * u.pc] = 0.0; }
    return;
  }
  let n1 = min(u.n, r1);
  for (var i = r0; i < n1; i++) { out[base + i * u.pc] = x[i * u.p + j] - m; }
  for (var i = max(r0, u.n); i < r1; i++) { out[base + i * u.pc] = 0.0; }
}`,
  };
}

/** Invocations in a workgroup of the two reduction kernels. */
export const CKA_WG = 64;

/** Which three sums {@link ckaPartialsProgram} takes. */
export type CkaForm = "gram" | "feature";

/**
 * First pass of the reduction: each of the (many) workgroups strides over the
 * elements and writes its three partial sums to `out[3·g .. 3·g+2]` (a `[G, 3]`
 * array), tree-reduced in workgroup memory. Each input holds a batch of
 * blocks, `[ba, na]` and so on, whose sum is the matrix meant (the products
 * are split over blocks of their reduction axis): element `i` of `K` is
 * `Σ_k ka[k·na + i]`.
 *
 * - `"gram"`: inputs `K` (`ba` blocks), `L` (`bb` blocks), of the same length
 *   `na`: `s0 = Σ K∘L`, `s1 = Σ K²`, `s2 = Σ L²`.
 * - `"feature"`: inputs `C`, `A`, `B` of lengths `na`, `nb`, `nc` and `ba`,
 *   `bb`, `bc` blocks: `s0 = Σ C²`, `s1 = Σ A²`, `s2 = Σ B²`.
 *
 * Uniforms: `na, nb, nc, G, ba, bb, bc, 0` (`G` workgroups launched, all along x).
 */
export function ckaPartialsProgram(form: CkaForm): KernelProgram {
  const gram = form === "gram";
  const body = gram
    ? `for (var i = start; i < u.na; i += stride) {
    var a = 0.0; var b = 0.0;
    for (var k = 0u; k < u.ba; k++) { a += ka[k * u.na + i]; }
    for (var k = 0u; k < u.bb; k++) { b += kb[k * u.na + i]; }
    s0 += a * b; s1 += a * a; s2 += b * b;
  }`
    : `for (var i = start; i < u.na; i += stride) {
    var a = 0.0; for (var k = 0u; k < u.ba; k++) { a += ka[k * u.na + i]; } s0 += a * a;
  }
  for (var i = start; i < u.nb; i += stride) {
    var a = 0.0; for (var k = 0u; k < u.bb; k++) { a += kb[k * u.nb + i]; } s1 += a * a;
  }
  for (var i = start; i < u.nc; i += stride) {
    var a = 0.0; for (var k = 0u; k < u.bc; k++) { a += kc[k * u.nc + i]; } s2 += a * a;
  }`;
  const bindings = gram
    ? `@group(0) @binding(0) var<storage, read> ka: array<f32>;
@group(0) @binding(1) var<storage, read> kb: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> u: U;`
    : `@group(0) @binding(0) var<storage, read> ka: array<f32>;
@group(0) @binding(1) var<storage, read> kb: array<f32>;
@group(0) @binding(2) var<storage, read> kc: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> u: U;`;
  return {
    name: `cka_partials_${form}`,
    key: `cka_partials_${form}`,
    inputs: gram ? 2 : 3,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `struct U { na: u32, nb: u32, nc: u32, G: u32, ba: u32, bb: u32, bc: u32, pad: u32 }
${bindings}
var<workgroup> sh: array<vec3<f32>, ${CKA_WG}>;
@compute @workgroup_size(${CKA_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let start = wid.x * ${CKA_WG}u + lid;
  let stride = u.G * ${CKA_WG}u;
  var s0 = 0.0; var s1 = 0.0; var s2 = 0.0;
  ${body}
  sh[lid] = vec3<f32>(s0, s1, s2);
  workgroupBarrier();
  for (var s = ${CKA_WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { sh[lid] = sh[lid] + sh[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let t = sh[0];
    out[3u * wid.x] = t.x; out[3u * wid.x + 1u] = t.y; out[3u * wid.x + 2u] = t.z;
  }
}`,
  };
}

/**
 * Second pass: one workgroup sums the `[G, 3]` partials and writes
 * `out[0] = s0 / (sqrt(s1) · sqrt(s2))` (the square roots taken apart so that
 * the product cannot overflow), or NaN when `s1` or `s2` is zero (a constant
 * input: 0/0). Uniforms: `G, 0, 0, 0`.
 */
export function ckaFinalProgram(): KernelProgram {
  return {
    name: "cka_final",
    key: "cka_final",
    inputs: 1,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `struct U { G: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<storage, read> part: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
var<workgroup> sh: array<vec3<f32>, ${CKA_WG}>;
@compute @workgroup_size(${CKA_WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  var t = vec3<f32>(0.0);
  for (var g = lid; g < u.G; g += ${CKA_WG}u) {
    t += vec3<f32>(part[3u * g], part[3u * g + 1u], part[3u * g + 2u]);
  }
  sh[lid] = t;
  workgroupBarrier();
  for (var s = ${CKA_WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { sh[lid] = sh[lid] + sh[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let r = sh[0];
    let nan = bitcast<f32>(0x7fc00000u);
    // Written with a branch, not select(): WGSL compilers may assume floats are never NaN.
    if (r.y > 0.0 && r.z > 0.0) {
      out[0] = r.x / (sqrt(r.y) * sqrt(r.z));
    } else {
      out[0] = nan;
    }
  }
}`,
  };
}
