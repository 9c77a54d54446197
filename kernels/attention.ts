/**
 * The attention softmax `P = softmax(scale·S + mask)` over the last axis of
 * the scores `S [rows, n]`, fused with the scale and the mask, and its
 * backward `dS = scale·P·(dP − Σ dP·P)`. One invocation per row, as the
 * softmax kernels (kernels/softmax.ts).
 *
 * The mask is read in place through broadcast strides: a `[B, 1, 1, Tk]`
 * padding mask or a `[1, 1, Tq, Tk]` causal mask is never expanded to the
 * scores' shape. Each row finds its mask row once from its multi-index over
 * the (coalesced) leading axes; the column stride is 1, or 0 for a mask of
 * one column.
 *
 * The forward pass is the one-pass "online" softmax (Milakov & Gimelshein,
 * 2018, arXiv:1805.02867): the running maximum and the sum of exponentials
 * rescaled to it come from one sweep, then a second sweep writes the
 * probabilities. Two reads of each score and mask value instead of three:
 * on llvmpipe a storage-buffer load costs far more than the extra `exp`.
 *
 * Masked-out entries (a u32 mask's zeros, or scores that are −∞ after the
 * additive mask) do not take part; a row with every entry masked out gets
 * probabilities 0 rather than PyTorch's NaN. Masked entries are detected by
 * their bits, because Mesa may assume WGSL floats are finite.
 *
 * @module
 */

import type { KernelProgram } from "./program.ts";

/** How the mask is given: none, additive f32, or a u32 keep-mask (nonzero = attend). */
export type AttentionMaskKind = "none" | "f32" | "u32";

/** Most leading (row) axes of the mask's broadcast view after coalescing. */
export const ATTENTION_MAX_RANK = 8;

// `shape`/`st`: sizes and mask strides of the row axes, outermost first.
const HEAD = /* wgsl */ `
struct U {
  rows: u32, n: u32, rank: u32, cs: u32,
  scale: f32, pad0: u32, pad1: u32, pad2: u32,
  shape: array<vec4<u32>, 2>,
  st: array<vec4<u32>, 2>,
}
fn dim(v: array<vec4<u32>, 2>, d: u32) -> u32 { return v[d >> 2u][d & 3u]; }
fn row(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * 64u + lid; }
const NEG_INF_BITS = 0xff800000u;
`;

/**
 * `P = softmax(scale·S + mask)` per row of `S [rows, n]`. Inputs: the scores,
 * then the mask unless `mask` is "none"; output: P.
 */
export function attentionSoftmaxProgram(mask: AttentionMaskKind): KernelProgram {
  const masked = mask !== "none";
  const binding = masked ? 2 : 1;
  // `t`: the masked score; `keep`: whether the entry takes part.
  const entry = mask === "none"
    ? `let t = u.scale * s[b + j];
    let keep = bitcast<u32>(t) != NEG_INF_BITS;`
    : mask === "f32"
    ? `let t = u.scale * s[b + j] + mk[mb + j * u.cs];
    let keep = bitcast<u32>(t) != NEG_INF_BITS;`
    : `let t = u.scale * s[b + j];
    let keep = mk[mb + j * u.cs] != 0u;`;
  return {
    name: "attention_softmax",
    key: `attention_softmax_${mask}`,
    inputs: masked ? 2 : 1,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `${HEAD}
@group(0) @binding(0) var<storage, read> s: array<f32>;
${masked ? `@group(0) @binding(1) var<storage, read> mk: array<${mask}>;` : ""}
@group(0) @binding(${binding}) var<storage, read_write> p: array<f32>;
@group(0) @binding(${binding + 1}) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row(wid, nwg, lid);
  if (r >= u.rows) { return; }
  let b = r * u.n;
  var mb = 0u;
  var rem = r;
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let size = dim(u.shape, u32(d));
    mb += (rem % size) * dim(u.st, u32(d));
    rem /= size;
  }
  // Lowest finite f32, not −∞: exp(m − t) stays a number while no entry has been kept.
  var m = -3.40282347e38;
  var z = 0.0;
  for (var j = 0u; j < u.n; j++) {
    ${entry}
    let mn = max(m, t);
    z = select(z, z * exp(m - mn) + exp(t - mn), keep);
    m = select(m, mn, keep);
  }
  let inv = select(0.0, 1.0 / z, z > 0.0);
  for (var j = 0u; j < u.n; j++) {
    ${entry}
    p[b + j] = select(0.0, exp(t - m) * inv, keep);
  }
}`,
  };
}

/** `dS = scale·P·(dP − Σ_row dP·P)` from the saved P and the upstream dP. */
export function attentionSoftmaxGradProgram(): KernelProgram {
  return {
    name: "attention_softmax_grad",
    key: "attention_softmax_grad",
    inputs: 2,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `${HEAD}
@group(0) @binding(0) var<storage, read> p: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> ds: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row(wid, nwg, lid);
  if (r >= u.rows) { return; }
  let b = r * u.n;
  var dot = 0.0;
  for (var j = 0u; j < u.n; j++) { dot += g[b + j] * p[b + j]; }
  for (var j = 0u; j < u.n; j++) { ds[b + j] = u.scale * p[b + j] * (g[b + j] - dot); }
}`,
  };
}
