/**
 * The strided copy: `out[outBase + Σ c·os] = in[inBase + Σ c·is]` over an
 * iteration shape. With the right strides it is permute, slice, expand,
 * concat (one copy per piece into its region) and pad (fill, then copy into
 * the interior): one kernel for every data-movement op.
 *
 * @module
 */

import type { KernelProgram } from "./program.ts";

/** Largest rank of the strided copy. */
export const COPY_RANK = 8;

/** Elements of the innermost axis one invocation copies (a run's chunk). */
export const COPY_CHUNK = 32;

/**
 * The strided copy kernel (32-bit elements of any dtype). Each invocation
 * copies up to {@link COPY_CHUNK} elements along the innermost axis, so the
 * index arithmetic over the outer axes (integer divisions, which llvmpipe
 * runs lane by lane) is paid once per chunk instead of once per element:
 * permuting [32, 128, 4, 32] -> [32, 4, 128, 32] took 152 ms with one
 * element per invocation. With `vec`, elements are vec4s (the caller divides
 * every size, stride and base by 4: a contiguous innermost run of a multiple
 * of 4, as attention's head split and merge have).
 */
export function stridedCopyProgram(vec = false): KernelProgram {
  const a = vec ? "array<vec4<u32>>" : "array<u32>";
  return {
    name: "strided_copy",
    key: `strided_copy_${vec}`,
    inputs: 1,
    outputs: 1,
    uniforms: true,
    wgsl: () => /* wgsl */ `
struct U {
  items: u32, rank: u32, inBase: u32, outBase: u32,
  run: u32, chunks: u32, isRun: u32, osRun: u32,
  shape: array<vec4<u32>, 2>, is: array<vec4<u32>, 2>, os: array<vec4<u32>, 2>,
}
fn dim(v: array<vec4<u32>, 2>, d: u32) -> u32 { return v[d >> 2u][d & 3u]; }
@group(0) @binding(0) var<storage, read> src: ${a};
@group(0) @binding(1) var<storage, read_write> dst: ${a};
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let stride = nwg.x * nwg.y * nwg.z * 64u;
  for (var i = (wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y) * 64u + lid; i < u.items; i += stride) {
    var r = i / u.chunks;
    let k0 = (i - r * u.chunks) * ${COPY_CHUNK}u;
    var a = u.inBase;
    var b = u.outBase;
    for (var d = i32(u.rank) - 1; d >= 0; d--) {
      let s = dim(u.shape, u32(d));
      let c = r % s;
      r = r / s;
      a += c * dim(u.is, u32(d));
      b += c * dim(u.os, u32(d));
    }
    let k1 = min(k0 + ${COPY_CHUNK}u, u.run);
    for (var k = k0; k < k1; k++) {
      dst[b + k * u.osRun] = src[a + k * u.isRun];
    }
  }
}`,
  };
}
