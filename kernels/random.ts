/**
 * Counter-based random numbers: element i of a draw is a hash of (seed, offset
 * + i), so draws are reproducible from the seed, independent of dispatch
 * order, and dropout can regenerate its mask in backward instead of saving it.
 * The hash is Wellons' "lowbias32" finaliser, applied twice with the seed
 * mixed in between; it passes the avalanche tests its author reports and is
 * ample for initialisation and dropout.
 *
 * @module
 */

import type { KernelProgram } from "./program.ts";

/** WGSL for `uniform01(i)`: a float in [0, 1) from counter i and the uniforms' seed. */
export const RNG_WGSL = /* wgsl */ `
fn lowbias32(v: u32) -> u32 {
  var x = v;
  x ^= x >> 16u; x *= 0x7feb352du;
  x ^= x >> 15u; x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}
fn rand_u32(i: u32) -> u32 { return lowbias32(lowbias32(i + u.offset) ^ u.seed); }
fn uniform01(i: u32) -> f32 { return f32(rand_u32(i) >> 8u) * (1.0 / 16777216.0); }
`;

/** Uniform in [lo, hi) or standard normal (Box–Muller) scaled by `a`, shifted by `b`. */
export function randomProgram(kind: "uniform" | "normal"): KernelProgram {
  return {
    name: `rand_${kind}`,
    key: `rand_${kind}`,
    inputs: 0,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `struct U { n: u32, seed: u32, offset: u32, pad: u32, a: f32, b: f32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<uniform> u: U;
${RNG_WGSL}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y) * 64u + lid;
  if (i >= u.n) { return; }
  ${
        kind === "uniform"
          ? "out[i] = u.b + u.a * uniform01(i);"
          : `// Two uniforms per value; 1 - u keeps the log's argument in (0, 1].
  let u1 = 1.0 - uniform01(2u * i);
  let u2 = uniform01(2u * i + 1u);
  out[i] = u.b + u.a * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);`
      }
}`,
  };
}

/** `out = x · keep / (1 − p)` where keep = uniform ≥ p; also its own backward (x = g). */
export function dropoutProgram(vec = false): KernelProgram {
  const a = vec ? "array<vec4<f32>>" : "array<f32>";
  return {
    name: "dropout",
    key: `dropout_${vec}`,
    inputs: 1,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `struct U { n: u32, seed: u32, offset: u32, pad: u32, p: f32, scale: f32 }
@group(0) @binding(0) var<storage, read> x: ${a};
@group(0) @binding(1) var<storage, read_write> out: ${a};
@group(0) @binding(2) var<uniform> u: U;
${RNG_WGSL}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y) * 64u + lid;
  if (i >= u.n) { return; }
  ${
        vec
          ? `// Element 4i + k draws counter 4i + k, as the scalar form: the same mask either way.
  let xv = x[i];
  let e = 4u * i;
  out[i] = select(vec4<f32>(0.0), xv * u.scale, vec4<f32>(uniform01(e), uniform01(e + 1u),
    uniform01(e + 2u), uniform01(e + 3u)) >= vec4<f32>(u.p));`
          : "out[i] = select(0.0, x[i] * u.scale, uniform01(i) >= u.p);"
      }
}`,
  };
}
