/**
 * Embedding kernels: row gather (forward) and row scatter-add (weight
 * gradient) over a `[num, dim]` table and `J` i32 ids.
 *
 * Both copy whole rows: `L` lanes per row (a power of two up to 64, about
 * the row width) and `64 / L` rows per workgroup, so each lane loads its id
 * once and walks the row's columns with no index arithmetic per element.
 * The generic gather and scatter-add of kernels/index.ts recover
 * `(o, j, i)` with a division and a remainder and load the id for every
 * element: for 4096 ids into a `[30522, 256]` table (GPU timestamps,
 * llvmpipe, interleaved in one process, best of 7) the lookup took 19.4 ms
 * there and 11.1 ms here, the gradient scatter 27.7 and 19.8 ms (plus, for
 * `scatterAdd()`, a 54 ms copy of the zero base that this op does not make).
 *
 * Out-of-range ids (negative or ≥ num) read zeros and are skipped by the
 * scatter-add, as are ids equal to `pad` (the padding row; -1 for none).
 * The scatter-add uses a compare-and-swap loop (WGSL has no float atomics),
 * so the order of additions into a row that several ids share is not fixed
 * and sums may differ in the last bits run to run.
 *
 * @module
 */

import type { KernelProgram } from "./program.ts";

/** Invocations per workgroup of the embedding kernels. */
export const EMB_WG = 64;

/** Uniforms (32 bytes): `J` ids, row width `dim`, rows `num`, `L`, `log2 L`, padding row `pad`. */
export function embeddingUniforms(
  o: { J: number; dim: number; num: number; L: number; pad: number },
): Uint8Array {
  const b = new ArrayBuffer(32);
  new Uint32Array(b).set([o.J, o.dim, o.num, o.L, Math.log2(o.L)]);
  new Int32Array(b)[5] = o.pad;
  return new Uint8Array(b);
}

const HEAD = /* wgsl */ `
// r0, r1: padding to the 32 bytes embeddingUniforms() writes.
struct U { J: u32, dim: u32, num: u32, L: u32, logL: u32, pad: i32, r0: u32, r1: u32 }
`;

/** Row of id `j` for this lane, lane `t` within the row, and whether the id is in range. */
const ROW = /* wgsl */ `
@compute @workgroup_size(${EMB_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let grp = wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y;
  let j = grp * (${EMB_WG}u >> u.logL) + (lid >> u.logL);
  if (j >= u.J) { return; }
  let t = lid & (u.L - 1u);
  let id = ids[j];
  let ok = id >= 0 && u32(id) < u.num;`;

/** `out[j, :] = w[ids[j], :]`, zeros for out-of-range ids. Inputs `w, ids`; output `out`. */
export function embeddingProgram(): KernelProgram {
  return {
    name: "embedding",
    key: "embedding",
    inputs: 2,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `${HEAD}
@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
${ROW}
  let src = select(0u, u32(id), ok) * u.dim;
  let dst = j * u.dim;
  for (var c = t; c < u.dim; c += u.L) {
    out[dst + c] = select(0.0, w[src + c], ok);
  }
}`,
  };
}

/**
 * `dw[ids[j], :] += g[j, :]` except for out-of-range ids and `pad`.
 * Inputs `g, ids`; output `dw` (zero-filled by the caller).
 */
export function embeddingGradProgram(): KernelProgram {
  return {
    name: "embedding_backward",
    key: "embedding_backward",
    inputs: 2,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `${HEAD}
@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read_write> dw: array<atomic<u32>>;
@group(0) @binding(3) var<uniform> u: U;
${ROW}
  if (!ok || id == u.pad) { return; }
  let dst = u32(id) * u.dim;
  let src = j * u.dim;
  for (var c = t; c < u.dim; c += u.L) {
    let v = g[src + c];
    var old = atomicLoad(&dw[dst + c]);
    loop {
      let r = atomicCompareExchangeWeak(&dw[dst + c], old, bitcast<u32>(bitcast<f32>(old) + v));
      if (r.exchanged) { break; }
      old = r.old_value;
    }
  }
}`,
  };
}
