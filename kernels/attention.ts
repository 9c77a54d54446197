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
 * probabilities. Two reads of each score and mask value instead of three.
 *
 * Two forms of each kernel. The storage form reads the scores (and P, dP)
 * from storage buffers. The texture form reads them from a scratch
 * `rgba32float` texture that a buffer-to-texture copy fills with the flat
 * array, {@link TEX_W} texels (64 floats) per texture row: on llvmpipe a
 * texel fetch costs about 35 cycles per float against 240 for a storage load
 * (kernels/matmul.ts), and the copy is a memcpy. Measured on [16384, 128]
 * scores: 51 ms storage, 17 ms texture including the copy. Rows need not
 * start on a texel: each texel's components are checked against the row's
 * range. A dispatch covers rows whose floats fit one texture (a chunk).
 * A mask that fits one texture is read from one too (u32 masks are first
 * made additive, 0 or −∞): with a storage-buffer mask the texture form gains
 * little (measured: 65 against 68 ms with a [32, 1, 1, 128] padding mask).
 *
 * Rows longer than {@link ATTENTION_MAX_ROW} values (storage form) or
 * {@link ATTENTION_MAX_ROW_TEXTURE} (texture form) would overrun llvmpipe's
 * loop budget: the op computes those with reductions and elementwise ops.
 *
 * Masked-out entries (a u32 mask's zeros, or scores that are −∞ after the
 * additive mask) do not take part; a row with every entry masked out gets
 * probabilities 0 rather than PyTorch's NaN. Masked entries are detected by
 * their bits, because Mesa may assume WGSL floats are finite.
 *
 * @module
 */

import type { KernelProgram } from "./program.ts";

/**
 * How the kernel reads the mask: none, additive f32 or u32 keep-mask
 * (nonzero = attend) from a storage buffer, or (texture form only) additive
 * f32 from a scratch texture filled like the scores'.
 */
export type AttentionMaskKind = "none" | "f32" | "u32" | "texture";

/** Most leading (row) axes of the mask's broadcast view after coalescing. */
export const ATTENTION_MAX_RANK = 8;

/** Texels per row of the texture form's scratch textures (256 bytes: WebGPU's copy row alignment). */
export const TEX_W = 16;

/**
 * Longest rows of the storage form (forward and backward): two sweeps of `n`
 * plus the mask row's few passes within llvmpipe's loop budget of 65,535
 * passes per invocation (`LOOP_BUDGET`, kernels/program.ts), with a margin.
 * Longer rows take the op's long-row path (engine/ops/attention.ts).
 */
export const ATTENTION_MAX_ROW = 32000;

/** Longest rows of the texture form: two sweeps of about `n / 4` texels (see {@link ATTENTION_MAX_ROW}). */
export const ATTENTION_MAX_ROW_TEXTURE = 4 * ATTENTION_MAX_ROW;

// `rows` rows from `r0`; `f0`: the float index of the texture's first texel (texture form).
// `shape`/`st`: sizes and mask strides of the row axes, outermost first.
const HEAD = /* wgsl */ `
struct U {
  rows: u32, n: u32, rank: u32, cs: u32,
  scale: f32, r0: u32, f0: u32, pad: u32,
  shape: array<vec4<u32>, 2>,
  st: array<vec4<u32>, 2>,
}
fn dim(v: array<vec4<u32>, 2>, d: u32) -> u32 { return v[d >> 2u][d & 3u]; }
fn row(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * 64u + lid; }
fn texel(t: u32) -> vec2<u32> { return vec2<u32>(t % ${TEX_W}u, t / ${TEX_W}u); }
const NEG_INF_BITS = 0xff800000u;
const LOWEST = -3.40282347e38;
`;

const ENTRY = /* wgsl */ `
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = row(wid, nwg, lid);
  if (i >= u.rows) { return; }
  let r = u.r0 + i;
  let b = r * u.n;`;

/** The row's first mask element (`mb`), from its multi-index over the row axes. */
const MASK_ROW = /* wgsl */ `
  var mb = 0u;
  var rem = r;
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let size = dim(u.shape, u32(d));
    mb += (rem % size) * dim(u.st, u32(d));
    rem /= size;
  }`;

/**
 * `P = softmax(scale·S + mask)` per row of `S [rows, n]`. Bindings: the
 * scores (a texture when `texture`), then the mask unless `mask` is "none";
 * output P.
 */
export function attentionSoftmaxProgram(
  mask: AttentionMaskKind,
  texture: boolean,
): KernelProgram {
  if (mask === "texture" && !texture) throw new Error("a texture mask needs the texture form");
  const masked = mask !== "none";
  const out = masked ? 2 : 1;
  const sDecl = texture
    ? "@group(0) @binding(0) var S: texture_2d_array<f32>;"
    : "@group(0) @binding(0) var<storage, read> s: array<f32>;";
  const mDecl = mask === "texture"
    ? "@group(0) @binding(1) var M: texture_2d_array<f32>;"
    : masked
    ? `@group(0) @binding(1) var<storage, read> mk: array<${mask}>;`
    : "";
  return {
    name: "attention_softmax",
    key: `attention_softmax_${mask}_${texture}`,
    inputs: masked ? 2 : 1,
    outputs: 1,
    uniforms: true,
    bindings: [
      texture ? "texture" : "storage",
      ...(masked ? [mask === "texture" ? "texture" as const : "storage" as const] : []),
      "storage",
    ],
    wgsl: () =>
      `${HEAD}
${sDecl}
${mDecl}
${mask === "texture" ? MASK_TEXTURE_FNS : ""}
@group(0) @binding(${out}) var<storage, read_write> p: array<f32>;
@group(0) @binding(${out + 1}) var<uniform> u: U;
${ENTRY}
${masked ? MASK_ROW : ""}
${texture ? softmaxTexture(mask) : softmaxStorage(mask)}
}`,
  };
}

/** The masked score `t` and whether it takes part (`keep`), for scalar score `x` at column `j`. */
function entry(mask: AttentionMaskKind, x: string, j: string): string {
  return mask === "none"
    ? `let t = u.scale * ${x};
    let keep = bitcast<u32>(t) != NEG_INF_BITS;`
    : mask === "f32"
    ? `let t = u.scale * ${x} + mk[mb + ${j} * u.cs];
    let keep = bitcast<u32>(t) != NEG_INF_BITS;`
    : `let t = u.scale * ${x};
    let keep = mk[mb + ${j} * u.cs] != 0u;`;
}

function softmaxStorage(mask: AttentionMaskKind): string {
  const e = entry(mask, "s[b + j]", "j");
  return `
  // Lowest finite f32, not −∞: exp(m − t) stays a number while no entry has been kept.
  var m = LOWEST;
  var z = 0.0;
  for (var j = 0u; j < u.n; j++) {
    ${e}
    let mn = max(m, t);
    z = select(z, z * exp(m - mn) + exp(t - mn), keep);
    m = select(m, mn, keep);
  }
  let inv = select(0.0, 1.0 / z, z > 0.0);
  for (var j = 0u; j < u.n; j++) {
    ${e}
    p[b + j] = select(0.0, exp(t - m) * inv, keep);
  }`;
}

/**
 * Texels `t0 ≤ t < t1` hold the row's floats `[lb, lb + n)` (`lb`: the row's
 * first float relative to the texture); component c of texel t is column
 * `4t + c − lb`, part of the row when in `[0, n)`.
 */
const TEX_ROW = /* wgsl */ `
  let lb = b - u.f0;
  let t0 = lb / 4u;
  let t1 = (lb + u.n + 3u) / 4u;
  let n = i32(u.n);`;

/**
 * The 4 mask floats from flat index `off` (may be negative: those components
 * are outside the row and unused) of the mask texture: one texel when `off`
 * is a multiple of 4 (a padding mask with Tk % 4 == 0), else two, shifted.
 */
const MASK_TEXTURE_FNS = /* wgsl */ `
fn pick(a: vec4<f32>, b: vec4<f32>, i: u32) -> f32 { return select(b[i & 3u], a[i & 3u], i < 4u); }
fn maskTexels(off: i32) -> vec4<f32> {
  let t0 = off >> 2u;
  let k = u32(off & 3);
  let a = textureLoad(M, texel(u32(max(t0, 0))), 0, 0);
  if (k == 0u) { return a; }
  let b = textureLoad(M, texel(u32(t0 + 1)), 0, 0);
  return vec4<f32>(pick(a, b, k), pick(a, b, k + 1u), pick(a, b, k + 2u), pick(a, b, k + 3u));
}`;

const TEX_COLS = /* wgsl */ `
    let j = vec4<i32>(i32(4u * t) - i32(lb)) + vec4<i32>(0, 1, 2, 3);
    let valid = j >= vec4<i32>(0) & j < vec4<i32>(n);
    let jc = vec4<u32>(select(vec4<i32>(0), j, valid));`;

function softmaxTexture(mask: AttentionMaskKind): string {
  const e = mask === "none"
    ? `let t4 = u.scale * x;
    let keep = valid & (bitcast<vec4<u32>>(t4) != vec4<u32>(NEG_INF_BITS));`
    : mask === "texture"
    ? `var mv = vec4<f32>(m0);
    if (u.cs != 0u) { mv = maskTexels(i32(mb) + i32(4u * t) - i32(lb)); }
    let t4 = u.scale * x + mv;
    let keep = valid & (bitcast<vec4<u32>>(t4) != vec4<u32>(NEG_INF_BITS));`
    : mask === "f32"
    ? `let mv = vec4<f32>(mk[mb + jc.x * u.cs], mk[mb + jc.y * u.cs], mk[mb + jc.z * u.cs], mk[mb + jc.w * u.cs]);
    let t4 = u.scale * x + mv;
    let keep = valid & (bitcast<vec4<u32>>(t4) != vec4<u32>(NEG_INF_BITS));`
    : `let mv = vec4<u32>(mk[mb + jc.x * u.cs], mk[mb + jc.y * u.cs], mk[mb + jc.z * u.cs], mk[mb + jc.w * u.cs]);
    let t4 = u.scale * x;
    let keep = valid & (mv != vec4<u32>(0u));`;
  return `${TEX_ROW}
  ${mask === "texture" ? "let m0 = textureLoad(M, texel(mb / 4u), 0, 0)[mb % 4u];" : ""}
  // Per component: running maximum and rescaled sum, merged after the sweep.
  var m = vec4<f32>(LOWEST);
  var z = vec4<f32>(0.0);
  for (var t = t0; t < t1; t++) {
    let x = textureLoad(S, texel(t), 0, 0);
    ${TEX_COLS}
    ${e}
    let mn = max(m, t4);
    z = select(z, z * exp(m - mn) + exp(t4 - mn), keep);
    m = select(m, mn, keep);
  }
  let mm = max(max(m.x, m.y), max(m.z, m.w));
  let zz = dot(z, exp(m - vec4<f32>(mm)));
  let inv = select(0.0, 1.0 / zz, zz > 0.0);
  for (var t = t0; t < t1; t++) {
    let x = textureLoad(S, texel(t), 0, 0);
    ${TEX_COLS}
    ${e}
    let y = select(vec4<f32>(0.0), exp(t4 - vec4<f32>(mm)) * inv, keep);
    if (valid.x) { p[b + jc.x] = y.x; }
    if (valid.y) { p[b + jc.y] = y.y; }
    if (valid.z) { p[b + jc.z] = y.z; }
    if (valid.w) { p[b + jc.w] = y.w; }
  }`;
}

/**
 * `dS = scale·P·(dP − Σ_row dP·P)` from the saved P and the upstream dP
 * (both textures filled alike when `texture`).
 */
export function attentionSoftmaxGradProgram(texture: boolean): KernelProgram {
  const decl = texture
    ? `@group(0) @binding(0) var P: texture_2d_array<f32>;
@group(0) @binding(1) var G: texture_2d_array<f32>;`
    : `@group(0) @binding(0) var<storage, read> p: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;`;
  const body = texture
    ? `${TEX_ROW}
  var acc = vec4<f32>(0.0);
  for (var t = t0; t < t1; t++) {
    ${TEX_COLS}
    let pg = textureLoad(P, texel(t), 0, 0) * textureLoad(G, texel(t), 0, 0);
    acc += select(vec4<f32>(0.0), pg, valid);
  }
  let dot = acc.x + acc.y + acc.z + acc.w;
  for (var t = t0; t < t1; t++) {
    ${TEX_COLS}
    let y = u.scale * textureLoad(P, texel(t), 0, 0) * (textureLoad(G, texel(t), 0, 0) - dot);
    if (valid.x) { ds[b + jc.x] = y.x; }
    if (valid.y) { ds[b + jc.y] = y.y; }
    if (valid.z) { ds[b + jc.z] = y.z; }
    if (valid.w) { ds[b + jc.w] = y.w; }
  }`
    : `
  var dot = 0.0;
  for (var j = 0u; j < u.n; j++) { dot += g[b + j] * p[b + j]; }
  for (var j = 0u; j < u.n; j++) { ds[b + j] = u.scale * p[b + j] * (g[b + j] - dot); }`;
  return {
    name: "attention_softmax_grad",
    key: `attention_softmax_grad_${texture}`,
    inputs: 2,
    outputs: 1,
    uniforms: true,
    bindings: texture ? ["texture", "texture", "storage"] : undefined,
    wgsl: () =>
      `${HEAD}
${decl}
@group(0) @binding(2) var<storage, read_write> ds: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
${ENTRY}
${body}
}`,
  };
}

/** A u32 keep-mask made additive: 0 where nonzero, −∞ where zero. */
export function keepToAdditiveProgram(): KernelProgram {
  return {
    name: "attention_mask_additive",
    key: "attention_mask_additive",
    inputs: 1,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `struct U { n: u32 }
@group(0) @binding(0) var<storage, read> k: array<u32>;
@group(0) @binding(1) var<storage, read_write> m: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y) * 64u + lid;
  if (i >= u.n) { return; }
  m[i] = select(bitcast<f32>(0xff800000u), 0.0, k[i] != 0u);
}`,
  };
}
