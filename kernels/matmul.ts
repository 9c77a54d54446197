/**
 * Batched matmul `C[b] = op(A[b]) · op(B[b]) (+ bias) (then act)`.
 *
 * Register-blocked, no workgroup memory: each invocation computes a TM×4 block
 * of C, with vec4 accumulators along N, so each loaded A value feeds 4 FMAs and
 * each B vec4 feeds TM. On llvmpipe, barriers cost more than the loads they
 * save (DESIGN.md: 16×16 shared tiles ran at 0.13 GFLOP/s, register blocking
 * 1-3.4), so the loads stay in the inner loop and the block sizes do the work.
 * Transposition is a compile-time variant (it changes the addressing), sizes
 * and batch strides are uniforms.
 *
 * @module
 */

import type { KernelProgram } from "./program.ts";

/** Activation fused into the epilogue. */
export type MatmulAct = "none" | "relu" | "gelu";

/** Rows of C per invocation. */
export const TM = 4;
/** Columns of C per invocation (one vec4). */
export const TN = 4;
/** Workgroup shape (x along N, y along M). */
export const WG_X = 8;
/** Workgroup shape along M. */
export const WG_Y = 8;

/** The matmul kernel for one combination of transposes, bias and activation. */
export function matmulProgram(
  transA: boolean,
  transB: boolean,
  bias: boolean,
  act: MatmulAct,
): KernelProgram {
  // A is [M,K] (or [K,M] when transA); B is [K,N] (or [N,K] when transB).
  const aAt = (m: string, k: string) =>
    transA ? `A[aBase + (${k}) * u.M + (${m})]` : `A[aBase + (${m}) * u.K + (${k})]`;
  const bRow = (k: string) =>
    transB
      ? `vec4<f32>(B[bBase + n0 * u.K + ${k}], B[bBase + n1 * u.K + ${k}], B[bBase + n2 * u.K + ${k}], B[bBase + n3 * u.K + ${k}])`
      : `vec4<f32>(B[bBase + (${k}) * u.N + n0], B[bBase + (${k}) * u.N + n1], B[bBase + (${k}) * u.N + n2], B[bBase + (${k}) * u.N + n3])`;
  const rows = Array.from({ length: TM }, (_, i) => i);
  const epi = (v: string) => {
    const b = bias ? `${v} + bv` : v;
    if (act === "relu") return `max(${b}, vec4<f32>(0.0))`;
    if (act === "gelu") return `gelu4(${b})`;
    return b;
  };
  return {
    name: `matmul${transA ? "_tA" : ""}${transB ? "_tB" : ""}${bias ? "_bias" : ""}${
      act !== "none" ? "_" + act : ""
    }`,
    key: `matmul_${+transA}${+transB}${+bias}_${act}`,
    inputs: bias ? 3 : 2,
    outputs: 1,
    uniforms: true,
    wgsl: () => /* wgsl */ `
struct U { M: u32, N: u32, K: u32, batch: u32, sA: u32, sB: u32, tilesN: u32, pad: u32 }
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
${bias ? "@group(0) @binding(2) var<storage, read> bias: array<f32>;" : ""}
@group(0) @binding(${bias ? 3 : 2}) var<storage, read_write> C: array<f32>;
@group(0) @binding(${bias ? 4 : 3}) var<uniform> u: U;
${act === "gelu" ? GELU4 : ""}
@compute @workgroup_size(${WG_X}, ${WG_Y})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let b = gid.z;
  let col = gid.x * ${TN}u;
  let row = gid.y * ${TM}u;
  if (col >= u.N || row >= u.M) { return; }
  let aBase = b * u.sA;
  let bBase = b * u.sB;
  // Clamp out-of-range rows/columns to valid ones: they compute garbage that is never stored,
  // which keeps the inner loop free of branches.
  let n0 = col; let n1 = min(col + 1u, u.N - 1u); let n2 = min(col + 2u, u.N - 1u); let n3 = min(col + 3u, u.N - 1u);
  ${rows.map((i) => `let m${i} = min(row + ${i}u, u.M - 1u);`).join(" ")}
  ${rows.map((i) => `var acc${i} = vec4<f32>(0.0);`).join(" ")}
  for (var k = 0u; k < u.K; k++) {
    let bk = ${bRow("k")};
    ${rows.map((i) => `acc${i} += ${aAt(`m${i}`, "k")} * bk;`).join("\n    ")}
  }
  ${bias ? "let bv = vec4<f32>(bias[n0], bias[n1], bias[n2], bias[n3]);" : ""}
  let cBase = b * u.M * u.N;
  ${
      rows.map((i) =>
        `if (row + ${i}u < u.M) { store(cBase + (row + ${i}u) * u.N, col, ${epi(`acc${i}`)}); }`
      )
        .join("\n  ")
    }
}
fn store(base: u32, col: u32, v: vec4<f32>) {
  C[base + col] = v.x;
  if (col + 1u < u.N) { C[base + col + 1u] = v.y; }
  if (col + 2u < u.N) { C[base + col + 2u] = v.z; }
  if (col + 3u < u.N) { C[base + col + 3u] = v.w; }
}`,
  };
}

const GELU4 = /* wgsl */ `
fn erf4(x: vec4<f32>) -> vec4<f32> {
  let s = sign(x);
  let a = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
  return s * y;
}
fn gelu4(x: vec4<f32>) -> vec4<f32> { return 0.5 * x * (1.0 + erf4(x * 0.70710678118654752)); }
`;
