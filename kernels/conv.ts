/**
 * 2-D convolution kernels (NCHW): an implicit GEMM over textures for dense and
 * grouped convolutions, direct kernels for depthwise ones, and the packing
 * kernels that lay activations and weights out as `rgba32float` textures.
 *
 * Why textures and no im2col buffer: on llvmpipe a storage-buffer load costs
 * ~30 cycles per float and a texel fetch ~35 per 4 floats (kernels/matmul.ts),
 * so every kernel that does arithmetic reads textures. An im2col operand is
 * kh·kw times the image (9× for 3×3) written and read again, at a storage
 * load per float; through the engine's ops (pad, 9 slices, concat, then the
 * texture matmul) it took 2,072 ms at the benchmark size against 73 ms for
 * this module in the same run. Instead each image is packed once (zero
 * padding included) into a texture whose texels hold 4 consecutive channels
 * of one pixel, and the GEMM kernels fetch patch texels from it directly.
 *
 * Layouts. Image texture ({@link convPackImageProgram}): one layer per image,
 * channel texel `c4 = group·⌈Cg/4⌉ + q` (channels of a group padded to a
 * multiple of 4 with zeros) stored as a `Wt × Ht` tile at tile position
 * `(c4 mod cx, c4 div cx)`, so that wide channel counts fit the 2-D texture
 * limit; tile texel `(tx, ty)` holds source pixel `(ty − loY, tx − loX)`, zero
 * outside the image, so padding is read like any other texel and the GEMM
 * loop has no bounds test. Weight texture ({@link convPackWeightProgram}): one
 * layer per tap, row `4q + j` = input channel, column `group·⌈Jg/4⌉ + o4` =
 * texel of 4 output channels.
 *
 * Forward ({@link convGemmProgram}): `Y[p, o] = Σ_{tap, c} X[p ⊕ tap, c] ·
 * W[tap, c, o]` with rows p = output pixels (all images of a chunk), each
 * invocation owning 16 pixels (strided by the workgroup width, so the 8
 * lanes of a fetch read neighbouring pixels) × 2 or 4 texels of output
 * channels, or 32 pixels × 8 texels: per 4 input channels, 16 image and 8
 * (16) weight texels feed 128 (256) vec4 multiply-adds, or 32 and 32 feed
 * 1,024, as the matmul kernel's 32×32 tile.
 * Data gradient: a transposed convolution of the output gradient, split into
 * the stride's sub-pixel phases: input rows `r, r + s, ...` receive only the
 * taps k with `(r + pad − k·d) mod s = 0`, which makes each phase a stride-1
 * convolution of the gradient itself (no zeros inserted) with those taps
 * reversed and in/out channels swapped (both done by the weight packing),
 * stored with stride s. Zero insertion did s² times the work: at stride 2
 * the data gradient took 50-61 ms, 32-35 ms by phases.
 * Weight gradient ({@link convWgradProgram}): `dW[tap, c, o] = Σ_p X[p ⊕ tap,
 * c] · G[p, o]`, each invocation an outer-product tile of 16 or 32 input ×
 * 16 output channels over a strided share of the pixels, the 8 lanes of a
 * workgroup summed through workgroup memory, and the pixels split over more
 * workgroups (partial sums, then a reduction) when the tiles are too few to
 * occupy the cores. Depthwise (one input and one output channel per group):
 * {@link convDepthwiseProgram} and {@link convDepthwiseWgradProgram} work on 4
 * channels per texel with vec4 products.
 *
 * Measured on `llvmpipe (LLVM 15.0.6, 256 bits)`, 2 cores, at the benchmark
 * size: batch 8, 64→64 channels, 3×3, pad 1, 32×32, 0.60 GFLOP per pass
 * (tfjs-webgpu's forward: ~830 ms on this machine), wall clock to the end of
 * the GPU work, best of 7. The cores were shared with other jobs throughout
 * (load 1.3 at best, 3-6 mostly). At load 1.3: forward 49-52 ms (GPU
 * timestamps: GEMM 32 ms, 19 GFLOP/s; image packing 7.3 ms; weight packing
 * 0.06 ms), data gradient 51-55, weight gradient 59-79; forward + backward
 * through `backward()` 124-148 ms. At load 3-4, minimum (median) of 8
 * interleaved runs: forward 53 ms (66), data gradient 47 (63), weight
 * gradient 71 (90).
 * Stride 2: forward 26-31 ms, data gradient 32-35, weight gradient 30-35.
 * Depthwise (groups 64): forward 27 ms (packing 7.8, kernel 7.4 on the GPU),
 * data gradient 25-27, weight gradient 28-30.
 * Tiles (input/output channels and pixels per invocation), best of interleaved
 * runs. Forward, pixels × outputs: 16×16 31-35 ms, 16×16 with workgroup 8×2
 * 37-64, 16×16 with workgroup 16×1 52-54, 8×16 43-45, 12×16 35-50, 24×16
 * 32-40, 32×16 41, 16×8 44, 8×32 33-53, 16×32 27-36, 20×32 31; at 16 outputs
 * 16×16 38 ms against 45 for 16×32: 16×32 where a group has ≥ 32 outputs.
 * Weight gradient, inputs × outputs: 16×16 73-93 ms, 32×16 51-65, 16×32
 * 67-86, 8×16 81, 16×8 78, 32×8 74: 32×16 where a group has > 16 inputs.
 * Groups of at most 8 channels get 8-channel tiles: a 16-channel tile
 * computed half padding there (the weight gradient's 16×16, three quarters).
 * 8→8 channels, 28×28, batch 128 (ResNet-18 width 8's first stage), 3
 * interleaved runs: forward 12.9-14.4 → 8.4-9.6 ms, data gradient 12.8-13.3 →
 * 8.2-8.4, weight gradient 14.3-14.5 → 6.6-6.7. (8 channels over 32 pixels
 * per invocation, or 24, timed the same as over 16.)
 * The 32-channel tile over 32 pixels instead of 16 (as the matmul's 32×32
 * tile), batch 128, 3×3, pad 1, 3 interleaved pairs (vulkan, 2026-12-08):
 * 32→32 at 14×14 forward 13.5 / 14.8 / 20.2 → 12.1 / 13.8 / 15.1 ms, data
 * gradient 12.4 / 13.3 / 16.4 → 12.3 / 14.1 / 15.1; 64→64 at 7×7 forward
 * 12.8 / 13.6 / 14.0 → 12.7 / 12.0 / 11.7, data gradient 10.6 / 13.5 / 13.7
 * → 10.6 / 12.3 / 11.6 (the weight gradient, unchanged, moved by up to 12%
 * between runs of the same code).
 *
 * @module
 */

import { type KernelProgram, LOOP_LIMIT } from "./program.ts";

/** Output pixels per invocation of the GEMM kernel (the narrower tiles). */
export const GEMM_TP = 16;
/** Output pixels per invocation of the GEMM kernel, at most (the 32-channel tile). */
export const GEMM_TP_MAX = 32;
/**
 * Texels of 4 output channels per invocation of the GEMM kernel: 8 channels
 * for groups of at most 8 outputs, 16, and 32 for groups of ≥ 32.
 */
export type GemmWidth = 2 | 4 | 8;
/**
 * Output pixels per invocation of the GEMM kernel for a tile of `nt` texels
 * of output channels: {@link GEMM_TP_MAX} with the 32-channel tile (as the
 * matmul's 32×32), else {@link GEMM_TP}.
 */
export function gemmPixels(nt: GemmWidth): number {
  return nt === 8 ? GEMM_TP_MAX : GEMM_TP;
}
/** Workgroup width (along pixels) of the GEMM and depthwise kernels. */
export const GEMM_WGX = 8;
/** Workgroup height (along output-channel texels) of the GEMM kernel. */
export const GEMM_WGY = 1;
/** Output pixels per invocation of the depthwise kernel. */
export const DW_TP = 8;
/**
 * Input-channel texels per invocation of the weight-gradient kernel: 2 (8
 * channels) for groups of at most 8 inputs, 4 (16), or 8 (32) for groups of
 * more than 16.
 */
export type WgradDepth = 2 | 4 | 8;
/**
 * Output-channel texels per invocation of the weight-gradient kernel: 2 (8
 * channels) for groups of at most 8 outputs, else 4 (16).
 */
export type WgradWidth = 2 | 4;
/** Lanes of a weight-gradient workgroup (they split the pixels). */
export const WG_LANES = 8;
/** Workgroup shape of the packing kernels. */
export const PACK_WG = 8;

/**
 * Which pass a kernel serves: only its profiler name depends on it (one
 * pipeline serves the forward and the data gradient).
 */
export type ConvPass = "fwd" | "bwd_data" | "bwd_weight";

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const XYZW = ["x", "y", "z", "w"];

/**
 * Packs images `X[n0 + n]` (NCHW, `C = G·Cg` channels of `H × W`) into the
 * image-texture layout described in the module comment. Uniforms (u32 unless
 * noted): `C, H, W, Cg, Cg4, CT4, Wt, Ht, cx, loY (i32), loX (i32), 0, 0,
 * off, texW, texH`, `off` being the element offset of image `n0`. Grid:
 * `[⌈Wt/8⌉, ⌈Ht/8⌉, images]`: each invocation packs every channel texel of one
 * tile pixel.
 */
export function convPackImageProgram(pass: ConvPass): KernelProgram {
  return {
    name: `conv2d_pack_image_${pass}`,
    key: "conv_pack_image",
    inputs: 1,
    outputs: 1,
    uniforms: true,
    bindings: ["storage", "storage-texture"],
    wgsl: () => /* wgsl */ `
struct U { C: u32, H: u32, W: u32, Cg: u32, Cg4: u32, CT4: u32, Wt: u32, Ht: u32,
  cx: u32, loY: i32, loX: i32, p0: u32, p1: u32, off: u32, texW: u32, texH: u32 }
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var T: texture_storage_2d_array<rgba32float, write>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(${PACK_WG}, ${PACK_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= u.Wt || gid.y >= u.Ht) { return; }
  let sy = i32(gid.y) - u.loY;
  let sx = i32(gid.x) - u.loX;
  let iy = u32(max(sy, 0));
  let ix = u32(max(sx, 0));
  let inside = sy >= 0 && sx >= 0 && iy < u.H && ix < u.W;
  let HW = u.H * u.W;
  // Branch-free: clamp the reads, then zero what lies outside the image or the group.
  let pix = u.off + gid.z * u.C * HW + min(iy, u.H - 1u) * u.W + min(ix, u.W - 1u);
  // Every channel texel of this pixel, its group, texel in the group and tile stepped on without
  // dividing (llvmpipe divides each lane apart: three divisions per texel cost more than the loads).
  var grp = 0u;
  var q = 0u;
  var tile = vec2<u32>(0u, 0u);
  for (var c4 = 0u; c4 < u.CT4; c4++) {
    let c0 = q * 4u;
    let at = pix + (grp * u.Cg + c0) * HW;
    var v = vec4<f32>(0.0);
    ${
      range(4).map((j) => `if (c0 + ${j}u < u.Cg) { v.${XYZW[j]} = X[at + ${j}u * HW]; }`).join(
        "\n    ",
      )
    }
    let t = tile * vec2<u32>(u.Wt, u.Ht) + gid.xy;
    textureStore(T, t, gid.z, select(vec4<f32>(0.0), v, inside));
    q += 1u;
    let nextGrp = q == u.Cg4;
    q = select(q, 0u, nextGrp);
    grp = select(grp, grp + 1u, nextGrp);
    tile.x += 1u;
    let nextRow = tile.x == u.cx;
    tile = select(tile, vec2<u32>(0u, tile.y + 1u), nextRow);
  }
}`,
  };
}

/**
 * Packs a weight `W [G·Og, Cg, kh, kw]` into the weight-texture layout: layer
 * = tap, row = input channel of the pass (`Ig` per group, rows padded to
 * `4·Ig4`), column = texel of 4 output channels of the pass (`Jg` per group,
 * `Jg4` texels). With `swap`, the pass's input channels are W's outputs and
 * its outputs W's inputs (a transposed convolution). Layer `t = ty·Jx + tx`
 * holds W's tap `(kyA + kyB·ty, kxA + kxB·tx)` (B = −1 rotates the kernel,
 * B = ±s picks the taps of one sub-pixel phase). Uniforms: `Ig, Jg, Jg4,
 * rows, taps, swap, Og, Cg, cols, kw, taps of W, Jx, kyA, kyB, kxA, kxB`
 * (the last four i32). Grid `[⌈cols/8⌉, ⌈rows/8⌉, taps]`.
 */
export function convPackWeightProgram(): KernelProgram {
  return {
    name: "conv2d_pack_weight",
    key: "conv_pack_weight",
    inputs: 1,
    outputs: 1,
    uniforms: true,
    bindings: ["storage", "storage-texture"],
    wgsl: () => /* wgsl */ `
struct U { Ig: u32, Jg: u32, Jg4: u32, rows: u32, taps: u32, swap: u32, Og: u32, Cg: u32,
  cols: u32, kw: u32, wtaps: u32, Jx: u32, kyA: i32, kyB: i32, kxA: i32, kxB: i32 }
@group(0) @binding(0) var<storage, read> Wsrc: array<f32>;
@group(0) @binding(1) var T: texture_storage_2d_array<rgba32float, write>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(${PACK_WG}, ${PACK_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= u.cols || gid.y >= u.rows) { return; }
  let grp = gid.x / u.Jg4;
  let j0 = (gid.x - grp * u.Jg4) * 4u;
  let i = gid.y;
  let ty = gid.z / u.Jx;
  let ky = u32(u.kyA + u.kyB * i32(ty));
  let kx = u32(u.kxA + u.kxB * i32(gid.z - ty * u.Jx));
  let tap = ky * u.kw + kx;
  var v = vec4<f32>(0.0);
  if (i < u.Ig) {
    for (var k = 0u; k < 4u; k++) {
      let j = j0 + k;
      if (j < u.Jg) {
        // Source element W[o, c, tap] with o = grp·Og + (pass output or input) and c the other.
        let o = grp * u.Og + select(j, i, u.swap != 0u);
        let c = select(i, j, u.swap != 0u);
        v[k] = Wsrc[(o * u.Cg + c) * u.wtaps + tap];
      }
    }
  }
  textureStore(T, vec2<u32>(gid.x, gid.y), gid.z, v);
}`,
  };
}

/**
 * The blocks `[t0, t1, q0, q1]` of taps and input texels that the dispatches
 * of {@link convGemmProgram} sum for `taps` taps of `Cg4` texels: one block
 * (all of them) unless its loop passes would exceed {@link LOOP_LIMIT}.
 *
 * @example
 * ```ts
 * import { convGemmBlocks } from "./conv.ts";
 * console.log(convGemmBlocks(9, 16)); // [[0, 9, 0, 16]]
 * ```
 */
export function convGemmBlocks(taps: number, Cg4: number): [number, number, number, number][] {
  // Passes: the tap loop (taps + 1), each texel loop (Cg4 + 1), the epilogue (≤ GEMM_TP_MAX + 1).
  const room = LOOP_LIMIT - GEMM_TP_MAX - 2;
  const qb = Math.min(Cg4, room - 2);
  const tb = Math.max(1, Math.floor(room / (qb + 2)));
  // No taps (a sub-pixel phase that none reaches) or no inputs: one block that stores zeros.
  if (taps === 0 || Cg4 === 0) return [[0, taps, 0, Cg4]];
  const out: [number, number, number, number][] = [];
  for (let t0 = 0; t0 < taps; t0 += tb) {
    for (let q0 = 0; q0 < Cg4; q0 += qb) {
      out.push([t0, Math.min(taps, t0 + tb), q0, Math.min(Cg4, q0 + qb)]);
    }
  }
  return out;
}

/**
 * Most pixels one split of the weight-gradient kernels may visit, for an
 * `OH × OW` output: each of its {@link WG_LANES} lanes makes, over `k` pixels,
 * `k` passes of the pixel loop and `k` plus one per carry of each of the two
 * carry loops of {@link pixelLoop} (`8k/OW` column carries, `8k/(OW·OH)` row
 * carries, give or take one), which must stay within {@link LOOP_LIMIT}
 * (llvmpipe's loop budget), less a margin for the reduction that follows.
 * Without this bound, the weight gradient of a 32×1 kernel over 8 images of
 * 8,223×1 (65,536 output pixels one wide in one split, 11 passes each per
 * lane) came out wrong; usual image shapes stayed below it through the image
 * chunks (32 MiB of textures), a CIFAR batch of 128 at about 53,000 passes.
 */
export function wgradMaxPixels(OH: number, OW: number): number {
  const perPixel = 3 + WG_LANES / OW + WG_LANES / (OW * OH);
  return WG_LANES * Math.floor((LOOP_LIMIT - 2048) / perPixel);
}

/** WGSL that sets up the pixel rows `p_i`, their layer `n_i` and texel base `b_i`. */
function pixelRows(tp: number, wgx: number): string[] {
  const L = [`let pBase = wid.x * ${wgx * tp}u + lid.x;`];
  for (const i of range(tp)) {
    L.push(
      `let p${i} = min(pBase + ${i * wgx}u, u.P - 1u); let n${i} = p${i} / u.OHW; ` +
        `let r${i} = p${i} - n${i} * u.OHW; let oh${i} = r${i} / u.OW; ` +
        `let b${i} = vec2<u32>((r${i} - oh${i} * u.OW) * u.sx, oh${i} * u.sy);`,
    );
  }
  return L;
}

const GEMM_UNIFORMS = /* wgsl */ `
struct U { P: u32, OHW: u32, OW: u32, sy: u32, sx: u32, dy: u32, dx: u32, kw: u32,
  taps: u32, Cg4: u32, Og: u32, Og4: u32, O: u32, Wt: u32, Ht: u32, cx: u32,
  outOff: u32, sN: u32, hasBias: u32, CS: u32, Wf: u32, o0: u32, osy: u32, osx: u32,
  t0: u32, t1: u32, q0: u32, q1: u32 }
fn outPixel(r: u32) -> u32 {
  let my = r / u.OW;
  return u.o0 + my * u.osy * u.Wf + (r - my * u.OW) * u.osx;
}`;

/**
 * Bindings shared by the GEMM and depthwise kernels (input and weight
 * textures, bias, output) and their store of 4 output channels, stopping at
 * the group's last channel.
 */
const GEMM_HEAD = /* wgsl */ `${GEMM_UNIFORMS}
@group(0) @binding(0) var Xt: texture_2d_array<f32>;
@group(0) @binding(1) var Wk: texture_2d_array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
@group(0) @binding(4) var<uniform> u: U;
fn store4(base: u32, o: u32, v: vec4<f32>) {
  if (o < u.Og) { Y[base + o * u.CS] = v.x; }
  if (o + 1u < u.Og) { Y[base + (o + 1u) * u.CS] = v.y; }
  if (o + 2u < u.Og) { Y[base + (o + 2u) * u.CS] = v.z; }
  if (o + 3u < u.Og) { Y[base + (o + 3u) * u.CS] = v.w; }
}
fn add4(base: u32, o: u32, v: vec4<f32>) {
  if (o < u.Og) { Y[base + o * u.CS] += v.x; }
  if (o + 1u < u.Og) { Y[base + (o + 1u) * u.CS] += v.y; }
  if (o + 2u < u.Og) { Y[base + (o + 2u) * u.CS] += v.z; }
  if (o + 3u < u.Og) { Y[base + (o + 3u) * u.CS] += v.w; }
}`;

/**
 * The implicit-GEMM convolution kernel (forward, and each sub-pixel phase of
 * the data gradient) with `nt` texels of output channels per invocation.
 * Inputs: image texture, weight texture, bias (`hasBias` = 0 binds any
 * buffer). Uniforms: `P` (pixels of the chunk), `OHW, OW` (output grid), `sy,
 * sx, dy, dx, kw` (taps per row), `taps, Cg4` (input texels per group), `Og,
 * Og4` (outputs per group), `O, Wt, Ht, cx, outOff, sN` (image stride),
 * `hasBias, CS` (channel stride), `Wf, o0, osy, osx`: grid pixel (m, m') is
 * stored at `o0 + m·osy·Wf + m'·osx` of its channel; `t0, t1, q0, q1`: the
 * taps `[t0, t1)` and input texels `[q0, q1)` of the group this dispatch
 * sums. Grid `[⌈P/(8·tp)⌉, ⌈Og4/(nt·WGY)⌉, groups]`.
 *
 * Its loops make `(t1 − t0)·(q1 − q0 + 2)` passes and more, which llvmpipe
 * allows only up to 65,535 per invocation (`LOOP_BUDGET`, kernels/program.ts;
 * 1,024 taps of 256 channels overran it): the op sums longer ones in blocks
 * ({@link convGemmBlocks}), the first of which stores its sums plus the bias
 * and the others add theirs to Y.
 */
export function convGemmProgram(pass: ConvPass, nt: GemmWidth): KernelProgram {
  const tp = gemmPixels(nt);
  const rows = range(tp);
  const cols = range(nt);
  const L: string[] = [];
  L.push(`let g = wid.z;`);
  L.push(`let o4 = (wid.y * ${GEMM_WGY}u + lid.y) * ${nt}u;`);
  L.push(`if (o4 >= u.Og4) { return; }`);
  L.push(...pixelRows(tp, GEMM_WGX));
  // Output texels beyond the group are clamped to valid ones and never stored.
  for (const t of cols) L.push(`let col${t} = g * u.Og4 + min(o4 + ${t}u, u.Og4 - 1u);`);
  for (const i of rows) {
    L.push(cols.map((t) => `var acc${i}_${t} = vec4<f32>(0.0);`).join(" "));
  }
  L.push(`for (var tap = u.t0; tap < u.t1; tap++) {`);
  L.push(`  let ky = tap / u.kw;`);
  L.push(`  let d = vec2<u32>((tap - ky * u.kw) * u.dx, ky * u.dy);`);
  L.push(`  for (var q = u.q0; q < u.q1; q++) {`);
  L.push(`    let ci = g * u.Cg4 + q;`);
  L.push(`    let cy = ci / u.cx;`);
  L.push(`    let off = d + vec2<u32>((ci - cy * u.cx) * u.Wt, cy * u.Ht);`);
  L.push(`    let k = q * 4u;`);
  for (const t of cols) {
    for (const j of range(4)) {
      L.push(`    let w${t}_${j} = textureLoad(Wk, vec2<u32>(col${t}, k + ${j}u), tap, 0);`);
    }
  }
  for (const i of rows) {
    L.push(`    { let a = textureLoad(Xt, b${i} + off, n${i}, 0);`);
    for (const t of cols) {
      L.push(
        `      acc${i}_${t} += a.x * w${t}_0 + a.y * w${t}_1 + a.z * w${t}_2 + a.w * w${t}_3;`,
      );
    }
    L.push(`    }`);
  }
  L.push(`  }`);
  L.push(`}`);
  // The first block of (taps, input texels) stores its sums plus the bias, later ones add theirs.
  L.push(`let first = u.t0 == 0u && u.q0 == 0u;`);
  for (const t of cols) {
    const o = (jj: number) => `bias[min(g * u.Og + (o4 + ${t}u) * 4u + ${jj}u, u.O - 1u)]`;
    L.push(
      `let bv${t} = select(vec4<f32>(0.0), vec4<f32>(${
        range(4).map(o).join(", ")
      }), u.hasBias != 0u && first);`,
    );
  }
  // One store site per texel column, rows shifted up (as in the matmul kernel: unrolling every
  // store multiplies the compile time).
  L.push(`for (var i = 0u; i < ${tp}u; i++) {`);
  L.push(`  let p = pBase + i * ${GEMM_WGX}u;`);
  L.push(`  if (p < u.P) {`);
  L.push(`    let n = p / u.OHW;`);
  L.push(`    let base = u.outOff + n * u.sN + g * u.Og * u.CS + outPixel(p - n * u.OHW);`);
  L.push(`    if (first) {`);
  for (const t of cols) L.push(`      store4(base, (o4 + ${t}u) * 4u, acc0_${t} + bv${t});`);
  L.push(`    } else {`);
  for (const t of cols) L.push(`      add4(base, (o4 + ${t}u) * 4u, acc0_${t});`);
  L.push(`    }`);
  L.push(`  }`);
  for (const i of rows.slice(0, -1)) {
    L.push(`  ${cols.map((t) => `acc${i}_${t} = acc${i + 1}_${t};`).join(" ")}`);
  }
  L.push(`}`);
  return {
    name: `conv2d_${pass}`,
    key: `conv2d_gemm_${tp}x${4 * nt}_${GEMM_WGX}x${GEMM_WGY}`,
    inputs: 3,
    outputs: 1,
    uniforms: true,
    bindings: ["texture", "texture", "storage", "storage"],
    wgsl: () =>
      /* wgsl */ `${GEMM_HEAD}
@compute @workgroup_size(${GEMM_WGX}, ${GEMM_WGY})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${L.join("\n  ")}
}`,
  };
}

/**
 * The depthwise kernel (one input and one output channel per group), forward
 * and data gradient: 4 channels per texel, {@link DW_TP} pixels per
 * invocation. Inputs and uniforms as {@link convGemmProgram} (with `Og = O`
 * channels, `Og4` their texels, groups = 1 in the layouts). Grid
 * `[⌈P/(8·DW_TP)⌉, ⌈O/4⌉, 1]`.
 */
export function convDepthwiseProgram(pass: ConvPass): KernelProgram {
  const rows = range(DW_TP);
  const L: string[] = [];
  L.push(`let c4 = wid.y;`);
  L.push(...pixelRows(DW_TP, GEMM_WGX));
  L.push(`let cy = c4 / u.cx;`);
  L.push(`let toff = vec2<u32>((c4 - cy * u.cx) * u.Wt, cy * u.Ht);`);
  L.push(rows.map((i) => `var acc${i} = vec4<f32>(0.0);`).join(" "));
  L.push(`for (var tap = 0u; tap < u.taps; tap++) {`);
  L.push(`  let ky = tap / u.kw;`);
  L.push(`  let off = toff + vec2<u32>((tap - ky * u.kw) * u.dx, ky * u.dy);`);
  L.push(`  let w = textureLoad(Wk, vec2<u32>(c4, 0u), tap, 0);`);
  for (const i of rows) L.push(`  acc${i} += textureLoad(Xt, b${i} + off, n${i}, 0) * w;`);
  L.push(`}`);
  L.push(
    `let bv = select(vec4<f32>(0.0), vec4<f32>(${
      range(4).map((j) => `bias[min(c4 * 4u + ${j}u, u.O - 1u)]`).join(", ")
    }), u.hasBias != 0u);`,
  );
  L.push(`for (var i = 0u; i < ${DW_TP}u; i++) {`);
  L.push(`  let p = pBase + i * ${GEMM_WGX}u;`);
  L.push(`  if (p < u.P) {`);
  L.push(`    let n = p / u.OHW;`);
  L.push(`    store4(u.outOff + n * u.sN + outPixel(p - n * u.OHW), c4 * 4u, acc0 + bv);`);
  L.push(`  }`);
  L.push(`  ${rows.slice(0, -1).map((i) => `acc${i} = acc${i + 1};`).join(" ")}`);
  L.push(`}`);
  return {
    name: `conv2d_depthwise_${pass}`,
    key: `conv2d_depthwise_${DW_TP}`,
    inputs: 3,
    outputs: 1,
    uniforms: true,
    bindings: ["texture", "texture", "storage", "storage"],
    wgsl: () =>
      /* wgsl */ `${GEMM_HEAD}
@compute @workgroup_size(${GEMM_WGX}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${L.join("\n  ")}
}`,
  };
}

const WGRAD_UNIFORMS = /* wgsl */ `
struct U { P: u32, OHW: u32, OW: u32, OH: u32, sy: u32, sx: u32, dy: u32, dx: u32,
  kw: u32, taps: u32, Cg: u32, Cg4: u32, Og: u32, Og4: u32, Wt: u32, Ht: u32,
  cx: u32, Wg: u32, Hg: u32, cxg: u32, tilesO: u32, S: u32, pps: u32, outOff: u32,
  dWsize: u32, gOffX: u32, gOffY: u32, p2: u32 }`;

/**
 * WGSL of the pixel loop shared by the weight-gradient kernels: lane `lid.x`
 * of split `sp` visits pixels `sp·pps + lid.x, +8, ...` below `P`, tracking
 * `(n, oh, ow)` incrementally (a u32 division per pixel would cost about as
 * much as the loads: llvmpipe has no vector integer division).
 */
function pixelLoop(body: string[]): string[] {
  return [
    `let p0 = sp * u.pps + lid.x;`,
    `let pEnd = min(sp * u.pps + u.pps, u.P);`,
    `var n = p0 / u.OHW;`,
    `var oh = (p0 - n * u.OHW) / u.OW;`,
    `var ow = p0 - n * u.OHW - oh * u.OW;`,
    `for (var p = p0; p < pEnd; p += ${WG_LANES}u) {`,
    ...body.map((l) => `  ${l}`),
    `  ow += ${WG_LANES}u;`,
    `  loop { if (ow < u.OW) { break; } ow -= u.OW; oh += 1u; }`,
    `  loop { if (oh < u.OH) { break; } oh -= u.OH; n += 1u; }`,
    `}`,
  ];
}

/**
 * The weight-gradient kernel of the implicit GEMM: `dW[o, c, tap] = Σ_p
 * X[p ⊕ tap, c] · G[p, o]` for one group. Inputs: the image texture of x (as
 * packed for the forward) and the image texture of the output gradient
 * (`Wg × Hg` tiles, `cxg` per row, pixel (0, 0) at `(gOffX, gOffY)` in its
 * tile: the data gradient's padded packing of G can serve). Output: `dW` partial sums, split `sp` at
 * `outOff + sp·dWsize`. Grid `[⌈Cg4/CT⌉·tilesO, taps, groups·S]`.
 */
export function convWgradProgram(ct: WgradDepth, ot: WgradWidth): KernelProgram {
  const cts = range(ct);
  const ots = range(ot);
  const nacc = ct * 4 * ot;
  const per = nacc / WG_LANES;
  const L: string[] = [];
  L.push(`let ct = wid.x / u.tilesO;`);
  L.push(`let ot = wid.x - ct * u.tilesO;`);
  L.push(`let tap = wid.y;`);
  L.push(`let ky = tap / u.kw;`);
  L.push(`let kx = tap - ky * u.kw;`);
  L.push(`let g = wid.z / u.S;`);
  L.push(`let sp = wid.z - g * u.S;`);
  // Tiles beyond the group are clamped (computed, never stored): no early return before the barrier.
  for (const s of cts) {
    L.push(
      `let xc${s} = g * u.Cg4 + min(ct * ${ct}u + ${s}u, u.Cg4 - 1u); let xcy${s} = xc${s} / u.cx; ` +
        `let xo${s} = vec2<u32>((xc${s} - xcy${s} * u.cx) * u.Wt + kx * u.dx, xcy${s} * u.Ht + ky * u.dy);`,
    );
  }
  for (const t of ots) {
    L.push(
      `let gc${t} = g * u.Og4 + min(ot * ${ot}u + ${t}u, u.Og4 - 1u); let gcy${t} = gc${t} / u.cxg; ` +
        `let go${t} = vec2<u32>((gc${t} - gcy${t} * u.cxg) * u.Wg + u.gOffX, gcy${t} * u.Hg + u.gOffY);`,
    );
  }
  for (const s of cts) {
    for (const j of range(4)) {
      L.push(ots.map((t) => `var acc${s}_${j}_${t} = vec4<f32>(0.0);`).join(" "));
    }
  }
  const body: string[] = [];
  body.push(`let xb = vec2<u32>(ow * u.sx, oh * u.sy);`);
  body.push(`let gb = vec2<u32>(ow, oh);`);
  for (const t of ots) body.push(`let gv${t} = textureLoad(Gt, gb + go${t}, n, 0);`);
  for (const s of cts) {
    body.push(`{ let xv = textureLoad(Xt, xb + xo${s}, n, 0);`);
    for (const j of range(4)) {
      body.push(`  ${ots.map((t) => `acc${s}_${j}_${t} += xv.${XYZW[j]} * gv${t};`).join(" ")}`);
    }
    body.push(`}`);
  }
  L.push(...pixelLoop(body));
  const base = `lid.x * ${nacc}u`;
  for (const s of cts) {
    for (const j of range(4)) {
      for (const t of ots) {
        L.push(`red[${base} + ${(s * 4 + j) * ot + t}u] = acc${s}_${j}_${t};`);
      }
    }
  }
  L.push(`workgroupBarrier();`);
  L.push(`for (var r = 0u; r < ${per}u; r++) {`);
  L.push(`  let m = lid.x * ${per}u + r;`);
  L.push(`  var v = vec4<f32>(0.0);`);
  L.push(`  for (var l = 0u; l < ${WG_LANES}u; l++) { v += red[l * ${nacc}u + m]; }`);
  L.push(`  let row = m / ${ot}u;`);
  L.push(`  let c = ct * ${ct * 4}u + row;`);
  L.push(`  let o = (ot * ${ot}u + m - row * ${ot}u) * 4u;`);
  L.push(`  if (c < u.Cg) {`);
  L.push(`    let at = u.outOff + sp * u.dWsize + ((g * u.Og + o) * u.Cg + c) * u.taps + tap;`);
  L.push(`    let so = u.Cg * u.taps;`);
  for (const k of range(4)) {
    L.push(`    if (o + ${k}u < u.Og) { dW[at + ${k}u * so] = v.${XYZW[k]}; }`);
  }
  L.push(`  }`);
  L.push(`}`);
  return {
    name: "conv2d_bwd_weight",
    key: `conv2d_wgrad_${ct}x${ot}x${WG_LANES}`,
    inputs: 2,
    outputs: 1,
    uniforms: true,
    bindings: ["texture", "texture", "storage"],
    wgsl: () =>
      /* wgsl */ `${WGRAD_UNIFORMS}
@group(0) @binding(0) var Xt: texture_2d_array<f32>;
@group(0) @binding(1) var Gt: texture_2d_array<f32>;
@group(0) @binding(2) var<storage, read_write> dW: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
var<workgroup> red: array<vec4<f32>, ${WG_LANES * nacc}>;
@compute @workgroup_size(${WG_LANES}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${L.join("\n  ")}
}`,
  };
}

/**
 * The depthwise weight-gradient kernel for a `kh × kw` kernel (compiled per
 * size: every tap keeps its own vec4 accumulator): `dW[c, tap] = Σ_p X[p ⊕
 * tap, c] · G[p, c]`, 4 channels per invocation. Uniforms as
 * {@link convWgradProgram} (`Cg` = channels, groups = 1 in the layouts). Grid
 * `[⌈C/4⌉, S, 1]`.
 */
export function convDepthwiseWgradProgram(kh: number, kw: number): KernelProgram {
  const taps = kh * kw;
  const L: string[] = [];
  L.push(`let c4 = wid.x;`);
  L.push(`let sp = wid.y;`);
  L.push(`let xcy = c4 / u.cx;`);
  L.push(`let xo = vec2<u32>((c4 - xcy * u.cx) * u.Wt, xcy * u.Ht);`);
  L.push(`let gcy = c4 / u.cxg;`);
  L.push(`let go = vec2<u32>((c4 - gcy * u.cxg) * u.Wg, gcy * u.Hg);`);
  L.push(range(taps).map((t) => `var acc${t} = vec4<f32>(0.0);`).join(" "));
  const body: string[] = [];
  body.push(`let gv = textureLoad(Gt, vec2<u32>(ow, oh) + go, n, 0);`);
  body.push(`let xb = vec2<u32>(ow * u.sx, oh * u.sy) + xo;`);
  for (const ky of range(kh)) {
    for (const kx of range(kw)) {
      body.push(
        `acc${
          ky * kw + kx
        } += textureLoad(Xt, xb + vec2<u32>(${kx}u * u.dx, ${ky}u * u.dy), n, 0) * gv;`,
      );
    }
  }
  L.push(...pixelLoop(body));
  for (const t of range(taps)) L.push(`red[lid.x * ${taps}u + ${t}u] = acc${t};`);
  L.push(`workgroupBarrier();`);
  L.push(`for (var m = lid.x; m < ${taps}u; m += ${WG_LANES}u) {`);
  L.push(`  var v = vec4<f32>(0.0);`);
  L.push(`  for (var l = 0u; l < ${WG_LANES}u; l++) { v += red[l * ${taps}u + m]; }`);
  L.push(`  let at = u.outOff + sp * u.dWsize + c4 * 4u * u.taps + m;`);
  for (const k of range(4)) {
    L.push(`  if (c4 * 4u + ${k}u < u.Cg) { dW[at + ${k}u * u.taps] = v.${XYZW[k]}; }`);
  }
  L.push(`}`);
  return {
    name: "conv2d_depthwise_bwd_weight",
    key: `conv2d_depthwise_wgrad_${kh}x${kw}`,
    inputs: 2,
    outputs: 1,
    uniforms: true,
    bindings: ["texture", "texture", "storage"],
    wgsl: () =>
      /* wgsl */ `${WGRAD_UNIFORMS}
@group(0) @binding(0) var Xt: texture_2d_array<f32>;
@group(0) @binding(1) var Gt: texture_2d_array<f32>;
@group(0) @binding(2) var<storage, read_write> dW: array<f32>;
@group(0) @binding(3) var<uniform> u: U;
var<workgroup> red: array<vec4<f32>, ${WG_LANES * taps}>;
@compute @workgroup_size(${WG_LANES}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${L.join("\n  ")}
}`,
  };
}
