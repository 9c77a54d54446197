/**
 * Row-wise softmax / log-softmax (stable: the row maximum is subtracted), their
 * backward, and the fused cross-entropy with integer labels. One invocation
 * per row, two sweeps over it: the maximum and the sum of exponentials come
 * from one "online" sweep (the sum rescaled whenever the maximum grows, as in
 * kernels/attention.ts), the second writes.
 *
 * Row length. llvmpipe stops a shader invocation's loops after 65,535 passes
 * in all (`LOOP_BUDGET`, kernels/program.ts), and two sweeps of `n` cost
 * `2n + 2` passes, so these kernels serve rows of up to
 * {@link SOFTMAX_MAX_ROW} values (BERT's 30,522-word vocabulary included).
 * Longer rows take the ops' long-row paths (engine/ops/softmax.ts): row
 * statistics from the tree reductions, then elementwise kernels
 * ({@link crossEntropyRowsProgram}, {@link crossEntropyGradElementsProgram}).
 * With three sweeps, as before, a softmax over 30,000 values came out wrong.
 *
 * @module
 */

import { type KernelProgram, LOOP_BUDGET } from "./program.ts";

/** Longest row of the one-invocation-per-row kernels: two sweeps within llvmpipe's loop budget. */
export const SOFTMAX_MAX_ROW = Math.floor((LOOP_BUDGET - 3) / 2);

const ROWS = /* wgsl */ `
struct U { rows: u32, n: u32, ignore: i32, eps: f32 }
fn row(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * 64u + lid; }
const NEG_INF_BITS = 0xff800000u;
const LOWEST = -3.40282347e38;
`;

/**
 * WGSL of the online sweep over row `b` of `x`: leaves the maximum in `m` and
 * `z = Σ exp(x − m)`. Entries of −∞ take no part (a row of them gives `z = 0`),
 * and the running maximum starts at the lowest finite f32, so that
 * `exp(m − t)` stays a number.
 */
const ONLINE = /* wgsl */ `
  var m = LOWEST;
  var z = 0.0;
  for (var j = 0u; j < u.n; j++) {
    let t = x[b + j];
    let keep = bitcast<u32>(t) != NEG_INF_BITS;
    let mn = max(m, t);
    z = select(z, z * exp(m - mn) + exp(t - mn), keep);
    m = select(m, mn, keep);
  }`;

/** Softmax (or log-softmax) over the last axis of a `[rows, n]` view. */
export function softmaxProgram(log: boolean): KernelProgram {
  return {
    name: log ? "log_softmax" : "softmax",
    key: `softmax_${log}`,
    inputs: 1,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `${ROWS}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row(wid, nwg, lid);
  if (r >= u.rows) { return; }
  let b = r * u.n;
  ${ONLINE}
  ${
        log
          ? "let lse = m + log(z);\n  for (var j = 0u; j < u.n; j++) { y[b + j] = x[b + j] - lse; }"
          : "let inv = 1.0 / z;\n  for (var j = 0u; j < u.n; j++) { y[b + j] = exp(x[b + j] - m) * inv; }"
      }
}`,
  };
}

/** Backward of softmax (`y·(g − Σg·y)`) or log-softmax (`g − e^y·Σg`). */
export function softmaxGradProgram(log: boolean): KernelProgram {
  return {
    name: log ? "log_softmax_grad" : "softmax_grad",
    key: `softmax_grad_${log}`,
    inputs: 2,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `${ROWS}
@group(0) @binding(0) var<storage, read> y: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row(wid, nwg, lid);
  if (r >= u.rows) { return; }
  let b = r * u.n;
  var s = 0.0;
  ${
        log
          ? "for (var j = 0u; j < u.n; j++) { s += g[b + j]; }\n  for (var j = 0u; j < u.n; j++) { dx[b + j] = g[b + j] - exp(y[b + j]) * s; }"
          : "for (var j = 0u; j < u.n; j++) { s += g[b + j] * y[b + j]; }\n  for (var j = 0u; j < u.n; j++) { dx[b + j] = y[b + j] * (g[b + j] - s); }"
      }
}`,
  };
}

/**
 * Per-row cross-entropy with label smoothing ε:
 * `loss = lse − (1−ε)·x[y] − ε/C·Σx`, and 0 for rows whose label is the ignore
 * index. Also writes 1/0 per row for "counted", so `mean` divides by the
 * number of rows that count, as PyTorch does.
 */
export function crossEntropyProgram(): KernelProgram {
  return {
    name: "cross_entropy",
    key: "cross_entropy",
    inputs: 2,
    outputs: 2,
    uniforms: true,
    wgsl: () =>
      `${ROWS}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<i32>;
@group(0) @binding(2) var<storage, read_write> loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> counted: array<f32>;
@group(0) @binding(4) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row(wid, nwg, lid);
  if (r >= u.rows) { return; }
  let y = labels[r];
  if (y == u.ignore || y < 0 || u32(y) >= u.n) {
    // Out-of-range labels other than the ignore index poison the loss with NaN
    // rather than reading out of bounds.
    loss[r] = select(bitcast<f32>(0x7fc00000u), 0.0, y == u.ignore);
    counted[r] = 0.0;
    return;
  }
  let b = r * u.n;
  var m = x[b];
  var tot = 0.0;
  for (var j = 0u; j < u.n; j++) { m = max(m, x[b + j]); tot += x[b + j]; }
  var s = 0.0;
  for (var j = 0u; j < u.n; j++) { s += exp(x[b + j] - m); }
  let lse = m + log(s);
  loss[r] = lse - (1.0 - u.eps) * x[b + u32(y)] - u.eps / f32(u.n) * tot;
  counted[r] = 1.0;
}`,
  };
}

/** dlogits = (softmax − target)·g[row], 0 on ignored rows. */
export function crossEntropyGradProgram(): KernelProgram {
  return {
    name: "cross_entropy_grad",
    key: "cross_entropy_grad",
    inputs: 3,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `${ROWS}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<i32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row(wid, nwg, lid);
  if (r >= u.rows) { return; }
  let y = labels[r];
  let b = r * u.n;
  // Ignored rows write zeros in the same sweep, not in a loop of their own: the lanes of a SIMD
  // group run both sides of a branch, so that loop would add to every lane's loop budget.
  let ignored = y == u.ignore || y < 0 || u32(y) >= u.n;
  ${ONLINE}
  let inv = 1.0 / z;
  let gr = g[r];
  let off = u.eps / f32(u.n);
  for (var j = 0u; j < u.n; j++) {
    let t = select(0.0, 1.0 - u.eps, j == u32(y)) + off;
    dx[b + j] = select((exp(x[b + j] - m) * inv - t) * gr, 0.0, ignored);
  }
}`,
  };
}

/**
 * The per-row cross-entropy of rows longer than {@link SOFTMAX_MAX_ROW}, from
 * their log-sum-exp `lse` and sum `tot` (reduced by the op): the loss and
 * "counted" of {@link crossEntropyProgram}, O(1) per row.
 */
export function crossEntropyRowsProgram(): KernelProgram {
  return {
    name: "cross_entropy",
    key: "cross_entropy_rows",
    inputs: 4,
    outputs: 2,
    uniforms: true,
    wgsl: () =>
      `${ROWS}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<i32>;
@group(0) @binding(2) var<storage, read> lse: array<f32>;
@group(0) @binding(3) var<storage, read> tot: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> counted: array<f32>;
@group(0) @binding(6) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row(wid, nwg, lid);
  if (r >= u.rows) { return; }
  let y = labels[r];
  if (y == u.ignore || y < 0 || u32(y) >= u.n) {
    loss[r] = select(bitcast<f32>(0x7fc00000u), 0.0, y == u.ignore);
    counted[r] = 0.0;
    return;
  }
  loss[r] = lse[r] - (1.0 - u.eps) * x[r * u.n + u32(y)] - u.eps / f32(u.n) * tot[r];
  counted[r] = 1.0;
}`,
  };
}

/**
 * The cross-entropy gradient of rows longer than {@link SOFTMAX_MAX_ROW}, one
 * invocation per element: `dx = (exp(x − lse[row]) − target)·g[row]`, 0 on
 * ignored rows. The grid may be folded.
 */
export function crossEntropyGradElementsProgram(): KernelProgram {
  return {
    name: "cross_entropy_grad",
    key: "cross_entropy_grad_elements",
    inputs: 4,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `${ROWS}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<i32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y) * 64u + lid;
  if (i >= u.rows * u.n) { return; }
  let r = i / u.n;
  let j = i - r * u.n;
  let y = labels[r];
  let ignored = y == u.ignore || y < 0 || u32(y) >= u.n;
  let t = select(0.0, 1.0 - u.eps, j == u32(y)) + u.eps / f32(u.n);
  dx[i] = select((exp(x[i] - lse[r]) - t) * g[r], 0.0, ignored);
}`,
  };
}
