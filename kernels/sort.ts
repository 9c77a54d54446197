/**
 * Sorting along the last axis with a bitonic network in global memory: each
 * row is copied into a work buffer padded to the next power of two P with NaN
 * (which sorts after every number, as in PyTorch), the network's
 * log₂P·(log₂P + 1)/2 stages run as one dispatch each (one invocation per
 * compared pair of every row), and the first `n` values of each row are
 * copied out.
 *
 * Why not one workgroup per row in workgroup memory, which needs no stage
 * dispatches: on wgpu's GL backend over llvmpipe every workgroup variable is
 * zero-filled, so each workgroup's start cost time in proportion to its memory
 * times its threads (7 ms for 4,096 values and 256 threads), and compiling
 * the zero-fill of a 4,096-value array took two minutes.
 *
 * @module
 */

import type { KernelProgram } from "./program.ts";

/** Threads per workgroup. */
export const SORT_WG = 64;

const GRID = /* wgsl */ `
fn gid(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return ((wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y) * ${SORT_WG}u) + lid;
}`;

/**
 * Copies rows of `src` values into rows of `dst` (uniforms: rows, src, dst):
 * the first `min(src, dst)` of each, NaN after them. It pads rows for the
 * network and cuts them back.
 */
export function sortCopyProgram(): KernelProgram {
  return {
    name: "sort_copy",
    key: "sort_copy",
    inputs: 1,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `struct U { rows: u32, src: u32, dst: u32, pad: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
${GRID}
@compute @workgroup_size(${SORT_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = gid(wid, nwg, lid);
  if (g >= u.rows * u.dst) { return; }
  let i = g % u.dst;
  y[g] = select(bitcast<f32>(0x7fc00000u), x[(g / u.dst) * u.src + min(i, u.src - 1u)], i < u.src);
}`,
  };
}

/**
 * One stage of the network on `[rows, p]` in place: pair q of a row compares
 * positions i (bit j clear) and i + j, ascending where bit k of i is clear
 * (uniforms: rows, p, k, j).
 */
export function sortStageProgram(): KernelProgram {
  return {
    name: "sort",
    key: "sort_stage",
    inputs: 0,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `struct U { rows: u32, p: u32, k: u32, j: u32 }
@group(0) @binding(0) var<storage, read_write> s: array<f32>;
@group(0) @binding(1) var<uniform> u: U;
${GRID}
fn isNan_(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
// a after b in ascending order (NaN last).
fn after(a: f32, b: f32) -> bool { return (isNan_(a) && !isNan_(b)) || a > b; }
@compute @workgroup_size(${SORT_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = gid(wid, nwg, lid);
  let half = u.p >> 1u;
  if (g >= u.rows * half) { return; }
  let q = g % half;
  let i = 2u * q - (q & (u.j - 1u));
  let at = (g / half) * u.p + i;
  let a = s[at];
  let b = s[at + u.j];
  if (select(after(b, a), after(a, b), (i & u.k) == 0u)) { s[at] = b; s[at + u.j] = a; }
}`,
  };
}
