/**
 * Row-wise softmax / log-softmax (stable: the row maximum is subtracted), their
 * backward, and the fused cross-entropy with integer labels. One invocation
 * per row.
 *
 * @module
 */

import type { KernelProgram } from "./program.ts";

const ROWS = /* wgsl */ `
struct U { rows: u32, n: u32, ignore: i32, eps: f32 }
fn row(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * 64u + lid; }
`;

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
  var m = x[b];
  for (var j = 1u; j < u.n; j++) { m = max(m, x[b + j]); }
  var s = 0.0;
  for (var j = 0u; j < u.n; j++) { s += exp(x[b + j] - m); }
  ${
        log
          ? "let lse = m + log(s);\n  for (var j = 0u; j < u.n; j++) { y[b + j] = x[b + j] - lse; }"
          : "let inv = 1.0 / s;\n  for (var j = 0u; j < u.n; j++) { y[b + j] = exp(x[b + j] - m) * inv; }"
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
  if (y == u.ignore || y < 0 || u32(y) >= u.n) {
    for (var j = 0u; j < u.n; j++) { dx[b + j] = 0.0; }
    return;
  }
  var m = x[b];
  for (var j = 1u; j < u.n; j++) { m = max(m, x[b + j]); }
  var s = 0.0;
  for (var j = 0u; j < u.n; j++) { s += exp(x[b + j] - m); }
  let inv = 1.0 / s;
  let gr = g[r];
  let off = u.eps / f32(u.n);
  for (var j = 0u; j < u.n; j++) {
    let t = select(0.0, 1.0 - u.eps, j == u32(y)) + off;
    dx[b + j] = (exp(x[b + j] - m) * inv - t) * gr;
  }
}`,
  };
}
