/**
 * 2-D pooling kernels over NCHW planes: max (with argmax indices), average and
 * adaptive average, forward and backward.
 *
 * Every kernel runs one invocation per output element of the pass: forward
 * per pooled output, backward per *input* element, which gathers the
 * gradient of every window that contains it. The gather makes the backward
 * deterministic (no float atomics, a fixed summation order) and writes each
 * input gradient exactly once, so no zero-fill pass is needed. Without
 * dilation the windows holding input row `ih` are the output rows
 * `oh ∈ (⌊(ih + pad − k)/s⌋, ⌊(ih + pad)/s⌋]` (usually one or two); with
 * dilation, window offset `kh` holds it for `oh = (ih + pad − kh·d)/s` when
 * that divides exactly, so an invocation visits kH·kW candidates at most.
 *
 * Semantics follow PyTorch's CPU kernels (aten/src/ATen/native/cpu/
 * MaxPoolKernel.cpp, AvgPoolKernel.cpp, AdaptiveAvgPoolKernel.cpp):
 * - max: padding acts as −∞ (never selected), the first maximum of a window
 *   wins (strict `>`), a NaN always wins (the last NaN of the window), and
 *   indices are flat positions `ih·W + iw` within the input plane;
 * - average: a window is clipped to `[−pad, H + pad)` for the padded divisor
 *   and to `[0, H)` for the sum and the unpadded divisor;
 * - adaptive average: output `i` averages `[⌊i·H/OH⌋, ⌈(i+1)·H/OH⌉)`.
 *
 * @module
 */

import { isNanWgsl, type KernelProgram } from "./program.ts";

/** Invocations per workgroup. */
export const POOL_WG = 64;

/**
 * Uniform block shared by the pooling kernels (16 u32 = 64 bytes): `n` is the
 * number of invocations, `H×W` the input plane, `OH×OW` the output plane, then
 * kernel size, stride, padding and dilation per axis, `countIncludePad` (0/1),
 * `divisor` (0: none; else avg pooling's `divisor_override`), and `planeBase`,
 * the first plane of a backward dispatch (see {@link POOL_TILE}).
 */
export const POOL_UNIFORMS = [
  "n",
  "H",
  "W",
  "OH",
  "OW",
  "kH",
  "kW",
  "sH",
  "sW",
  "pH",
  "pW",
  "dH",
  "dW",
  "countIncludePad",
  "divisor",
  "planeBase",
] as const;

const U = /* wgsl */ `
struct U {
  ${POOL_UNIFORMS.map((k) => `${k}: u32`).join(", ")}
}
`;

const HEAD = /* wgsl */ `
@compute @workgroup_size(${POOL_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y) * ${POOL_WG}u + lid;
  if (i >= u.n) { return; }`;

/** Splits linear index `i` of an `[planes, A, B]` array into `(plane, a, b)`. */
const SPLIT = /* wgsl */ `
fn split3(i: u32, A: u32, B: u32) -> vec3<u32> {
  let b = i % B;
  let t = i / B;
  return vec3<u32>(t / A, t % A, b);
}
`;

/**
 * Backward kernels run on tiles of 8 columns × 8·{@link POOL_TILE_ROWS} rows
 * of the input plane: workgroup `(tile column, tile row, plane − planeBase)`,
 * each invocation one column and every 8th row of its tile. Positions come
 * from shifts instead of the three integer divisions of a linear index
 * (llvmpipe scalarises vector integer division), and the rows per invocation
 * cut the workgroup count 4×: llvmpipe pays per workgroup, and a 1-load
 * kernel over 16,384 8×8 tiles ran ~2× slower than the elementwise kernels.
 * Dispatches cover at most 65,535 planes each. The kernel supplies
 * `fn grad(ih: u32, iw: u32, plane: u32) -> f32`.
 */
export const POOL_TILE = 8;
/** Rows each backward invocation handles (see {@link POOL_TILE}). */
export const POOL_TILE_ROWS = 4;

const TILE_MAIN = /* wgsl */ `
@compute @workgroup_size(${POOL_TILE * POOL_TILE})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let iw = wid.x * ${POOL_TILE}u + lid % ${POOL_TILE}u;
  if (iw >= u.W) { return; }
  let plane = wid.z + u.planeBase;
  let h0 = wid.y * ${POOL_TILE * POOL_TILE_ROWS}u + lid / ${POOL_TILE}u;
  for (var r = 0u; r < ${POOL_TILE_ROWS}u; r++) {
    let ih = h0 + r * ${POOL_TILE}u;
    if (ih >= u.H) { break; }
    dx[(plane * u.H + ih) * u.W + iw] = grad(ih, iw, plane);
  }
}`;

/**
 * `[lo, hi)`: the outputs whose undilated window (size k, stride s, padding
 * p) holds input position i: `o·s − p ≤ i < o·s − p + k`, within `[0, O)`.
 */
const OUT_RANGE = /* wgsl */ `
fn outRange(i: u32, k: u32, s: u32, p: u32, O: u32) -> vec2<u32> {
  let t = i + p;
  let lo = select(0u, (t - k) / s + 1u, t >= k);
  return vec2<u32>(lo, min(t / s + 1u, O));
}
`;

/**
 * Output of the candidate window that would hold input position `i` at
 * window offset `k` along one axis (`k·dilation` from the window start), or -1.
 */
const WINDOW_OF = /* wgsl */ `
fn windowOf(i: u32, k: u32, s: u32, p: u32, d: u32, O: u32) -> i32 {
  let t = i32(i + p) - i32(k * d);
  if (t < 0 || u32(t) % s != 0u) { return -1; }
  let o = u32(t) / s;
  return select(-1, i32(o), o < O);
}
`;

/**
 * Max pooling forward: `out[p, oh, ow]` is the maximum of the dilated window,
 * `idx` (when `withIndices`) the flat input position it came from.
 */
export function maxPoolForwardProgram(withIndices: boolean): KernelProgram {
  return {
    name: "max_pool2d",
    key: `max_pool2d_fwd_${withIndices}`,
    inputs: 1,
    outputs: withIndices ? 2 : 1,
    uniforms: true,
    wgsl: () =>
      `alias T = f32;
${U}
${SPLIT}
${isNanWgsl("f32")}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${
        withIndices
          ? `@group(0) @binding(2) var<storage, read_write> idx: array<i32>;
@group(0) @binding(3) var<uniform> u: U;`
          : "@group(0) @binding(2) var<uniform> u: U;"
      }
${HEAD}
  let q = split3(i, u.OH, u.OW);
  let H = i32(u.H);
  let W = i32(u.W);
  var h0 = i32(q.y * u.sH) - i32(u.pH);
  let h1 = min(h0 + i32((u.kH - 1u) * u.dH + 1u), H);
  while (h0 < 0) { h0 += i32(u.dH); }
  var w0 = i32(q.z * u.sW) - i32(u.pW);
  let w1 = min(w0 + i32((u.kW - 1u) * u.dW + 1u), W);
  while (w0 < 0) { w0 += i32(u.dW); }
  let base = q.x * u.H * u.W;
  var best = bitcast<f32>(0xff800000u);
  var at = h0 * W + w0;
  for (var ih = h0; ih < h1; ih += i32(u.dH)) {
    for (var iw = w0; iw < w1; iw += i32(u.dW)) {
      let k = ih * W + iw;
      let v = x[base + u32(k)];
      if (isNan_(v) || (!isNan_(best) && v > best)) {
        best = v;
        at = k;
      }
    }
  }
  out[i] = best;
  ${withIndices ? "idx[i] = at;" : ""}
}`,
  };
}

/**
 * Max pooling backward: `dx[p, ih, iw]` sums `g` over the windows whose argmax
 * is there; without dilation the candidate windows come from {@link OUT_RANGE},
 * with it from each window offset (a separate pipeline, not a branch:
 * llvmpipe would run both sides).
 */
export function maxPoolBackwardProgram(dilated: boolean): KernelProgram {
  const loops = dilated
    ? `for (var kh = 0u; kh < u.kH; kh++) {
    let oh = windowOf(ih, kh, u.sH, u.pH, u.dH, u.OH);
    if (oh < 0) { continue; }
    for (var kw = 0u; kw < u.kW; kw++) {
      let ow = windowOf(iw, kw, u.sW, u.pW, u.dW, u.OW);
      if (ow < 0) { continue; }
      let o = base + u32(oh) * u.OW + u32(ow);
      if (idx[o] == me) { acc += g[o]; }
    }
  }`
    : `let rh = outRange(ih, u.kH, u.sH, u.pH, u.OH);
  let rw = outRange(iw, u.kW, u.sW, u.pW, u.OW);
  for (var oh = rh.x; oh < rh.y; oh++) {
    for (var ow = rw.x; ow < rw.y; ow++) {
      let o = base + oh * u.OW + ow;
      if (idx[o] == me) { acc += g[o]; }
    }
  }`;
  return {
    name: "max_pool2d_backward",
    key: `max_pool2d_bwd_${dilated}`,
    inputs: 2,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `${U}
${WINDOW_OF}
${OUT_RANGE}
@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read> idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
fn grad(ih: u32, iw: u32, plane: u32) -> f32 {
  let me = i32(ih * u.W + iw);
  let base = plane * u.OH * u.OW;
  var acc = 0.0;
  ${loops}
  return acc;
}
${TILE_MAIN}`,
  };
}

/**
 * Max pooling backward for windows that cannot overlap (`(k − 1)·d + 1 ≤ s`
 * on both axes): each input is in at most one window, so every output writes
 * its gradient to its argmax in a zero-filled `dx`, with no write conflict.
 * That is one invocation per output instead of per input (4× fewer for 2×2
 * pooling).
 */
export function maxPoolScatterProgram(): KernelProgram {
  return {
    name: "max_pool2d_backward",
    key: "max_pool2d_bwd_scatter",
    inputs: 2,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `${U}
@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read> idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
${HEAD}
  let plane = i / (u.OH * u.OW);
  dx[plane * u.H * u.W + u32(idx[i])] = g[i];
}`,
  };
}

/** PyTorch's divisor and clipped row/column range of average-pooling window (oh, ow). */
const AVG_WINDOW = /* wgsl */ `
struct Win { h0: i32, h1: i32, w0: i32, w1: i32, div: f32 }
fn avgWindow(oh: u32, ow: u32) -> Win {
  var h0 = i32(oh * u.sH) - i32(u.pH);
  var h1 = min(h0 + i32(u.kH), i32(u.H + u.pH));
  var w0 = i32(ow * u.sW) - i32(u.pW);
  var w1 = min(w0 + i32(u.kW), i32(u.W + u.pW));
  let padded = (h1 - h0) * (w1 - w0);
  h0 = max(h0, 0);
  w0 = max(w0, 0);
  h1 = min(h1, i32(u.H));
  w1 = min(w1, i32(u.W));
  var div = select((h1 - h0) * (w1 - w0), padded, u.countIncludePad != 0u);
  if (u.divisor != 0u) { div = i32(u.divisor); }
  return Win(h0, h1, w0, w1, f32(div));
}
`;

/** Average pooling forward (an empty clipped window gives 0, as in PyTorch). */
export function avgPoolForwardProgram(): KernelProgram {
  return {
    name: "avg_pool2d",
    key: "avg_pool2d_fwd",
    inputs: 1,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `${U}
${SPLIT}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
${AVG_WINDOW}
${HEAD}
  let q = split3(i, u.OH, u.OW);
  let w = avgWindow(q.y, q.z);
  if (w.h0 >= w.h1 || w.w0 >= w.w1) { out[i] = 0.0; return; }
  let base = q.x * u.H * u.W;
  var acc = 0.0;
  for (var ih = w.h0; ih < w.h1; ih++) {
    for (var iw = w.w0; iw < w.w1; iw++) { acc += x[base + u32(ih) * u.W + u32(iw)]; }
  }
  out[i] = acc / w.div;
}`,
  };
}

/** Average pooling backward: each input sums `g / divisor` over the windows that hold it. */
export function avgPoolBackwardProgram(): KernelProgram {
  return {
    name: "avg_pool2d_backward",
    key: "avg_pool2d_bwd",
    inputs: 1,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `${U}
${OUT_RANGE}
@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
${AVG_WINDOW}
fn grad(ih: u32, iw: u32, plane: u32) -> f32 {
  let base = plane * u.OH * u.OW;
  let rh = outRange(ih, u.kH, u.sH, u.pH, u.OH);
  let rw = outRange(iw, u.kW, u.sW, u.pW, u.OW);
  var acc = 0.0;
  for (var oh = rh.x; oh < rh.y; oh++) {
    for (var ow = rw.x; ow < rw.y; ow++) {
      acc += g[base + oh * u.OW + ow] / avgWindow(oh, ow).div;
    }
  }
  return acc;
}
${TILE_MAIN}`,
  };
}

/** `[⌊i·n/o⌋, ⌈(i+1)·n/o⌉)`: the input range of adaptive output `i` (n inputs, o outputs). */
const ADAPTIVE = /* wgsl */ `
fn aStart(i: u32, n: u32, o: u32) -> u32 { return (i * n) / o; }
fn aEnd(i: u32, n: u32, o: u32) -> u32 { return ((i + 1u) * n + o - 1u) / o; }
`;

/** Adaptive average pooling forward. */
export function adaptiveAvgPoolForwardProgram(): KernelProgram {
  return {
    name: "adaptive_avg_pool2d",
    key: "adaptive_avg_pool2d_fwd",
    inputs: 1,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `${U}
${SPLIT}
${ADAPTIVE}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
${HEAD}
  let q = split3(i, u.OH, u.OW);
  let h0 = aStart(q.y, u.H, u.OH);
  let h1 = aEnd(q.y, u.H, u.OH);
  let w0 = aStart(q.z, u.W, u.OW);
  let w1 = aEnd(q.z, u.W, u.OW);
  let base = q.x * u.H * u.W;
  var acc = 0.0;
  for (var ih = h0; ih < h1; ih++) {
    for (var iw = w0; iw < w1; iw++) { acc += x[base + ih * u.W + iw]; }
  }
  out[i] = acc / f32((h1 - h0) * (w1 - w0));
}`,
  };
}

/**
 * Adaptive average pooling backward. The outputs whose range holds input `i`
 * are `[⌊i·o/n⌋, ⌈(i+1)·o/n⌉)` (the same formula with the roles swapped);
 * each candidate is still checked against its own range. `global` (a 1×1
 * output, the usual classifier head) is a separate pipeline rather than a
 * branch: llvmpipe runs both sides of a branch it cannot prove uniform.
 */
export function adaptiveAvgPoolBackwardProgram(global: boolean): KernelProgram {
  const body = global ? "return g[plane] / f32(u.H * u.W);" : `let base = plane * u.OH * u.OW;
  let ow0 = aStart(iw, u.OW, u.W);
  let ow1 = aEnd(iw, u.OW, u.W);
  var acc = 0.0;
  for (var oh = aStart(ih, u.OH, u.H); oh < aEnd(ih, u.OH, u.H); oh++) {
    let h0 = aStart(oh, u.H, u.OH);
    let h1 = aEnd(oh, u.H, u.OH);
    if (ih < h0 || ih >= h1) { continue; }
    for (var ow = ow0; ow < ow1; ow++) {
      let w0 = aStart(ow, u.W, u.OW);
      let w1 = aEnd(ow, u.W, u.OW);
      if (iw < w0 || iw >= w1) { continue; }
      acc += g[base + oh * u.OW + ow] / f32((h1 - h0) * (w1 - w0));
    }
  }
  return acc;`;
  return {
    name: "adaptive_avg_pool2d_backward",
    key: `adaptive_avg_pool2d_bwd_${global}`,
    inputs: 1,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `${U}
${ADAPTIVE}
@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
fn grad(ih: u32, iw: u32, plane: u32) -> f32 {
  ${body}
}
${TILE_MAIN}`,
  };
}
