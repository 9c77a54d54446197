/**
 * Indexing kernels over a `[outer, D, inner]` view of the data: gather (and
 * index-select, whose index varies only along the axis) and scatter-add.
 * Out-of-range indices read 0 and are skipped by scatter-add; they never touch
 * memory outside the tensor.
 *
 * @module
 */

import type { KernelProgram, WgslScalar } from "./program.ts";

const U = /* wgsl */ `
struct U { n: u32, J: u32, inner: u32, D: u32, sO: u32, sJ: u32, sI: u32, pad: u32 }
`;

/** `out[o, j, i] = x[o, idx[o·sO + j·sJ + i·sI], i]`. */
export function gatherProgram(dtype: WgslScalar): KernelProgram {
  return {
    name: "gather",
    key: `gather_${dtype}`,
    inputs: 2,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `${U}
@group(0) @binding(0) var<storage, read> x: array<${dtype}>;
@group(0) @binding(1) var<storage, read> idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> out: array<${dtype}>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = (wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y) * 64u + lid;
  if (t >= u.n) { return; }
  let i = t % u.inner;
  let j = (t / u.inner) % u.J;
  let o = t / (u.inner * u.J);
  let k = idx[o * u.sO + j * u.sJ + i * u.sI];
  if (k < 0 || u32(k) >= u.D) { out[t] = ${dtype}(0); return; }
  out[t] = x[(o * u.D + u32(k)) * u.inner + i];
}`,
  };
}

/**
 * `out[o, idx[...], i] += src[o, j, i]`, with a compare-and-swap loop since
 * WGSL has no float atomics. The order of additions into one element is not
 * fixed, so sums with repeated indices can differ in the last bits run to run.
 */
export function scatterAddProgram(): KernelProgram {
  return {
    name: "scatter_add",
    key: "scatter_add",
    inputs: 2,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `${U}
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> out: array<atomic<u32>>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = (wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y) * 64u + lid;
  if (t >= u.n) { return; }
  let i = t % u.inner;
  let j = (t / u.inner) % u.J;
  let o = t / (u.inner * u.J);
  let k = idx[o * u.sO + j * u.sJ + i * u.sI];
  if (k < 0 || u32(k) >= u.D) { return; }
  let at = (o * u.D + u32(k)) * u.inner + i;
  let v = src[t];
  var old = atomicLoad(&out[at]);
  loop {
    let r = atomicCompareExchangeWeak(&out[at], old, bitcast<u32>(bitcast<f32>(old) + v));
    if (r.exchanged) { break; }
    old = r.old_value;
  }
}`,
  };
}

/**
 * `out[u.dst + j] = x[idx[j]]` for `j < n`: copies picked entries of a flat
 * tensor into a range of an existing one (SmartFRZ's weight snapshots).
 */
export function gatherIntoProgram(): KernelProgram {
  return {
    name: "gather_into",
    key: "gather_into",
    inputs: 2,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `struct U { n: u32, dst: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = (wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y) * 64u + lid;
  if (t >= u.n) { return; }
  out[u.dst + t] = x[idx[t]];
}`,
  };
}
