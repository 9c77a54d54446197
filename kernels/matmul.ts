/**
 * Batched matmul `C[b] = op(A[b]) · op(B[b]) (+ bias) (then act)`, in two
 * forms: a texture path for all but small products, and a storage-buffer path
 * for small products and for N beyond the texture limits. Both sum long
 * products over several dispatches, in blocks of K that keep every invocation
 * within llvmpipe's loop budget (65,535 loop passes: `LOOP_BUDGET` in
 * kernels/program.ts) and, for the textures, within their size limits.
 *
 * Why textures. On llvmpipe (Mesa 22.3, 8-wide AVX2, 2 cores; its OpenGL and
 * Vulkan (lavapipe) forms share the shader compiler, so both backends) a
 * storage-buffer load is not a gather: each one becomes a loop over the 8 lanes
 * with a bounds check and a branch per lane, uniform address or not. Measured
 * per 8-lane load in a tight loop (cycles at 2.5 GHz): scalar `array<f32>`
 * ≈ 240, `vec4` ≈ 940 (no cheaper per float), `textureLoad` of an
 * `rgba32float` texel ≈ 140 (35 per float), a vec4 multiply-add ≈ 10. So a
 * storage-buffer matmul is bound by its loads whatever its shape, and
 * workgroup memory goes through the same per-lane loop plus barriers (16×16
 * shared tiles: 0.13 GFLOP/s).
 *
 * The texture path packs op(A) into `[batch, M, ⌈K/4⌉]` texels (4 consecutive
 * k per texel) and op(B) into `[batch, 4⌈K/4⌉, ⌈N/4⌉]` texels (4 consecutive n
 * per texel), zero-padded, with {@link matmulPackProgram} (which also absorbs
 * the transposes: ≈ 10 ms per 1024² operand) or with a plain buffer-to-texture
 * copy when the stored layout already is the packed one (≈ 2 ms). Each
 * invocation of {@link matmulTexProgram} owns {@link TEX_TM} rows ×
 * {@link TEX_TN} columns (4 texel columns strided by the workgroup width, so
 * the 8 lanes of a vector fetch neighbouring texels) in 64 vec4 accumulators
 * (they spill; the spills cost less than fetches): per 4 steps of k, 16 A and
 * 16 B texels feed 256 vec4 multiply-adds.
 *
 * Measured GFLOP/s for n×n·n×n at n = 256 / 512 / 1024, `llvmpipe (LLVM
 * 15.0.6, 256 bits)`, 2 cores shared with other test runs (so ±15%), medians
 * of interleaved runs, many products per submit. The backend was not recorded
 * then (most likely Vulkan: the machine had it, and wgpu prefers it);
 * bench/README.md has today's figures on both backends side by side.
 * Storage buffers (n = 256 / 512; 1024 only where noted), tile rows×cols per
 * invocation: 4×4 wg 8×8 (the previous kernel) 0.31 / 0.53, in the engine
 * 0.67 / 0.81 / 0.88; same with vec4 B and C bindings 0.34 / 0.36; 4×4 wg 64×1
 * with A rows uniform per workgroup 0.27 / 0.31, plus vec4 B 0.22 / 0.32;
 * 8×4 0.30 / 0.63; 16×4 0.38-0.62 / 0.69-0.86; 16×4 with K unrolled by 4
 * 0.67 / 0.68; 16×4 wg 8×8 (A not uniform) 0.61 / 0.65.
 * Texture kernel alone (no packing): 4×4 wg 8×8 3.0 / 5.1 / 7.3; 4×8 4.4 /
 * 6.2 / 9.0; 8×4 4.9 / 6.5 / 9.7; 8×8 5.5 / 7.7 / 12.4 (wg 16×4 12.1, wg 8×1
 * 12.3, wg 64×1 7.6); 12×8 5.3 / 8.3 / 14.0; 8×16 6.2 / 7.7 / 14.6; 16×8
 * 5.9 / 8.8 / 14.7.
 * Texture path end to end (packing included): 8×8 wg 8×4 5.3 / 7.9 / 11.2;
 * 8×16 wg 8×4 5.4 / 8.6 / 13.6; 16×16 wg 8×2 5.8 / 9.5 / 16.5; 16×16 wg 8×4
 * 5.6 / 9.2 / 15.5; 24×16 wg 8×2 5.7 / 9.1 / 15.5; 32×16 wg 8×1 5.9 / 8.7 /
 * 17.2. Bigger tiles gain little more and compile slower: 16×16 it was, with
 * transposes at aᵀ·b 6.7 / 8.8 / 14.3, a·bᵀ 6.8 / 8.9 / 14.2, aᵀ·bᵀ 5.8 /
 * 8.0 / 12.7 against a·b 7.7 / 9.7 / 14.7 in the same run. Later `deno task
 * tune` measured 32×16 10-22% faster on BERT-mini's products, and later
 * (2026-12-08, vulkan) 32×32 (wg 8×1) another 1.22-1.46×
 * on 8 of its 9 products (1024³: 57.6 → 39.4 ms with `32x32/8x1r`). The kernel alone at 1024³
 * (a stripped copy without clamps, one or two runs each): 32×16 34-37 GFLOP/s,
 * 32×32 41-49, 64×32 43-52, 64×16 39-41, 128×16 37-40, 16×64 37-40. A
 * fit of those times (assuming 2.5 GHz) gives ~70 cycles per 8-lane texel
 * fetch and ~3 per vec4 multiply-add, so the fetches still cost more than the arithmetic;
 * the order of the workgroups (along M or along N first: `rowsFirst`)
 * changed little, nor did reading A from a uniform buffer instead of a
 * texture (31 against 34 GFLOP/s), which suggests that the fetch itself,
 * not the memory behind it, is the cost. 32×32 is the default on CPU-emulated adapters for outputs
 * above 128×128 per product; smaller ones get smaller tiles (`defaultTexTile`, engine/tune.ts).
 *
 * Transposition is a compile-time variant of the packing (and of the storage
 * kernel); sizes, batch strides and broadcast flags are uniforms, so one
 * pipeline serves every size.
 *
 * @module
 */

import { type KernelProgram, LOOP_LIMIT } from "./program.ts";

/** Activation fused into the epilogue. */
export type MatmulAct = "none" | "relu" | "gelu";

/** Rows of C per invocation (storage-buffer kernel). */
export const TM = 4;
/** Columns of C per invocation (storage-buffer kernel, one vec4). */
export const TN = 4;
/** Workgroup shape (x along N) of the storage-buffer kernel. */
export const WG_X = 8;
/** Workgroup shape along M of the storage-buffer kernel. */
export const WG_Y = 8;

/**
 * Most values of `k` one dispatch of the storage-buffer kernel sums: its
 * invocations loop once per `k` plus a few passes, which must stay within
 * llvmpipe's loop budget (`LOOP_BUDGET` in kernels/program.ts: a product
 * over 270,000 ones returned 65,535 without this).
 */
export const MAX_K_BUFFER = LOOP_LIMIT;

/**
 * Most texels of `k` (4 values each) one dispatch of the texture kernel sums:
 * its invocations loop once per texel, then over up to {@link TEX_TM} rows to
 * store them (`LOOP_BUDGET`, kernels/program.ts). The texture limits bound
 * it further.
 */
export const MAX_K4_TEXTURE = LOOP_LIMIT;

/** Rows of C per invocation (texture kernel, default tile). */
export const TEX_TM = 16;
/** Columns of C per invocation (texture kernel, default tile): 4 texels of 4 columns. */
export const TEX_TN = 16;
/** Workgroup width of the texture kernel (along N, in texel columns; default tile). */
export const TEX_WG_X = 8;
/** Workgroup height of the texture kernel (along M; default tile). */
export const TEX_WG_Y = 2;

/**
 * A tile of the texture kernel: `tm` rows × `tn` columns of C per invocation
 * (`tn` a multiple of 4), workgroup `wgx × wgy`.
 */
export interface TexTile {
  /** Rows per invocation. */
  tm: number;
  /** Columns per invocation (texels of 4). */
  tn: number;
  /** Workgroup width, along N. */
  wgx: number;
  /** Workgroup height, along M. */
  wgy: number;
  /**
   * Workgroups numbered along M first (grid x over row blocks), so that
   * consecutive workgroups share B's columns instead of A's rows.
   */
  rowsFirst?: boolean;
}

/**
 * The tile of adapters other than CPU-emulated ones, unless tuning chose
 * another (engine/tune.ts: `defaultTexTile`).
 */
export const DEFAULT_TEX_TILE: TexTile = { tm: TEX_TM, tn: TEX_TN, wgx: TEX_WG_X, wgy: TEX_WG_Y };

/**
 * The tiles `deno task tune` tries, by name: register-heavy ones suit
 * llvmpipe (its SIMD runs across invocations, so one invocation's tile is
 * its register block), small ones with large workgroups suit GPUs, whose
 * registers per thread are few and whose occupancy wants many threads.
 */
export const TEX_TILES: Record<string, TexTile> = {
  "16x16/8x2": DEFAULT_TEX_TILE,
  "32x16/8x1": { tm: 32, tn: 16, wgx: 8, wgy: 1 },
  "32x32/8x1": { tm: 32, tn: 32, wgx: 8, wgy: 1 },
  "32x32/8x1r": { tm: 32, tn: 32, wgx: 8, wgy: 1, rowsFirst: true },
  "16x8/8x2": { tm: 16, tn: 8, wgx: 8, wgy: 2 },
  "8x8/8x4": { tm: 8, tn: 8, wgx: 8, wgy: 4 },
  "4x8/16x4": { tm: 4, tn: 8, wgx: 16, wgy: 4 },
  "4x4/16x16": { tm: 4, tn: 4, wgx: 16, wgy: 16 },
  "2x4/32x8": { tm: 2, tn: 4, wgx: 32, wgy: 8 },
};

/** The name of a tile of {@link TEX_TILES} (or its dimensions, for another). */
export function texTileName(t: TexTile): string {
  return `${t.tm}x${t.tn}/${t.wgx}x${t.wgy}${t.rowsFirst ? "r" : ""}`;
}

/** The texture kernel's grid for `rows × N4` texels of C per batch entry of `layers`. */
export function texGrid(
  tile: TexTile,
  rows: number,
  N4: number,
  layers: number,
): [number, number, number] {
  const cols = Math.ceil(N4 / (tile.wgx * (tile.tn / 4)));
  const rowBlocks = Math.ceil(rows / (tile.wgy * tile.tm));
  return tile.rowsFirst ? [rowBlocks, cols, layers] : [cols, rowBlocks, layers];
}
/** Workgroup shape of the packing kernel (x along texels, y along rows). */
export const PACK_WG = 8;

function epilogue(act: MatmulAct, bias: boolean, v: string, bv = "bv"): string {
  const b = bias ? `${v} + ${bv}` : v;
  if (act === "relu") return `relu4(${b})`;
  if (act === "gelu") return `gelu4(${b})`;
  return b;
}

/** WGSL applying the bias and activation to `v` when `cond` (the last block of K) holds. */
function finish(act: MatmulAct, bias: boolean, cond: string, bv = "bv"): string {
  const e = epilogue(act, bias, "v", bv);
  return e === "v" ? "" : `if (${cond}) { v = ${e}; }`;
}

function actWgsl(act: MatmulAct): string {
  if (act === "relu") {
    // NaN stays NaN, as in the relu op: max() may drop it and GL's NaN < 0 is true.
    return `fn relu4(x: vec4<f32>) -> vec4<f32> {
  let nan = (bitcast<vec4<u32>>(x) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
  return select(x, vec4<f32>(0.0), (x < vec4<f32>(0.0)) & !nan);
}`;
  }
  return act === "gelu" ? GELU4 : "";
}

const STORE4 = /* wgsl */ `
fn store4(base: u32, col: u32, v: vec4<f32>) {
  if (col < u.N) { C[base + col] = v.x; }
  if (col + 1u < u.N) { C[base + col + 1u] = v.y; }
  if (col + 2u < u.N) { C[base + col + 2u] = v.z; }
  if (col + 3u < u.N) { C[base + col + 3u] = v.w; }
}`;

/**
 * The storage-buffer matmul kernel for one combination of transposes, bias and
 * activation. Uniforms: `M, N, K, batch, sA, sB, k0, k1` (`sA`/`sB` are the
 * batch strides, 0 for a shared operand); grid `[⌈N/4/8⌉, ⌈M/4/8⌉, batch]`.
 *
 * One dispatch sums `k` over `[k0, k1)` only: each invocation loops once per
 * `k`, and llvmpipe stops a shader's loops after 65,535 passes in all
 * (`LOOP_BUDGET`, kernels/program.ts), so the op gives a dispatch at most
 * {@link MAX_K_BUFFER} values of `k` and sums longer products over several. A
 * dispatch with `k0 > 0` adds its partial sums to those in C; the bias and
 * the activation are applied by the one with `k1 = K`.
 */
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
  return {
    name: `matmul${transA ? "_tA" : ""}${transB ? "_tB" : ""}${bias ? "_bias" : ""}${
      act !== "none" ? "_" + act : ""
    }`,
    key: `matmul_${+transA}${+transB}${+bias}_${act}`,
    inputs: bias ? 3 : 2,
    outputs: 1,
    uniforms: true,
    wgsl: () => /* wgsl */ `
struct U { M: u32, N: u32, K: u32, batch: u32, sA: u32, sB: u32, k0: u32, k1: u32 }
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
${bias ? "@group(0) @binding(2) var<storage, read> bias: array<f32>;" : ""}
@group(0) @binding(${bias ? 3 : 2}) var<storage, read_write> C: array<f32>;
@group(0) @binding(${bias ? 4 : 3}) var<uniform> u: U;
${actWgsl(act)}
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
  for (var k = u.k0; k < u.k1; k++) {
    let bk = ${bRow("k")};
    ${rows.map((i) => `acc${i} += ${aAt(`m${i}`, "k")} * bk;`).join("\n    ")}
  }
  ${bias ? "let bv = vec4<f32>(bias[n0], bias[n1], bias[n2], bias[n3]);" : ""}
  let cBase = b * u.M * u.N;
  ${
      rows.map((i) =>
        `if (row + ${i}u < u.M) {
    let base = cBase + (row + ${i}u) * u.N;
    var v = acc${i};
    if (u.k0 != 0u) { v += vec4<f32>(C[base + n0], C[base + n1], C[base + n2], C[base + n3]); }
    ${finish(act, bias, "u.k1 == u.K")}
    store4(base, col, v);
  }`
      )
        .join("\n  ")
    }
}
${STORE4}`,
  };
}

/**
 * The texture matmul kernel for one bias/activation combination. Inputs: the
 * packed A and B textures (see {@link matmulPackProgram}), then the bias.
 * Uniforms: `M, N, K4, N4, lA, lB, cOff, sC, kFirst, kLast, 0, 0` where
 * `K4 = ⌈K/4⌉`, `N4 = ⌈N/4⌉`, `lA`/`lB` are 1 when the operand has one layer
 * per batch entry, 0 when it is shared, and C's batch entry `b` starts at
 * `cOff + b·sC`. Grid: {@link texGrid}, `[⌈N4/(wgx·tn/4)⌉, ⌈M/(wgy·tm)⌉,
 * batch]` for the `tile` (the first two swapped when `rowsFirst`).
 *
 * The textures may hold one block of K (at most {@link MAX_K4_TEXTURE} texels:
 * `LOOP_BUDGET` in kernels/program.ts): unless `kFirst`, the kernel adds its
 * sums to those already in C, and only with `kLast` does it apply the bias
 * and the activation.
 */
export function matmulTexProgram(
  bias: boolean,
  act: MatmulAct,
  tile: TexTile = DEFAULT_TEX_TILE,
): KernelProgram {
  const { tm, wgx, wgy } = tile;
  const nv = tile.tn / 4;
  const rows = Array.from({ length: tm }, (_, i) => i);
  const groups = Array.from({ length: nv }, (_, t) => t);
  const [wc, wr] = tile.rowsFirst ? ["wid.y", "wid.x"] : ["wid.x", "wid.y"];
  const L: string[] = [];
  L.push(`let b = wid.z;
  let row = (${wr} * ${wgy}u + lid.y) * ${tm}u;
  if (row >= u.M) { return; }
  let la = b * u.lA;
  let lb = b * u.lB;`);
  // Texel columns of this invocation: strided by the workgroup width so that the lanes of one
  // vector fetch neighbouring texels. Out-of-range ones are clamped and never stored.
  for (const t of groups) {
    L.push(`let g${t} = ${wc} * ${wgx * nv}u + ${t * wgx}u + lid.x;`);
    L.push(`let gc${t} = min(g${t}, u.N4 - 1u);`);
  }
  for (const i of rows) L.push(`let m${i} = min(row + ${i}u, u.M - 1u);`);
  for (const i of rows) for (const t of groups) L.push(`var acc${i}_${t} = vec4<f32>(0.0);`);
  L.push(`for (var k4 = 0u; k4 < u.K4; k4++) {`);
  L.push(`  let k = k4 * 4u;`);
  for (const t of groups) {
    for (let j = 0; j < 4; j++) {
      L.push(`  let b${t}_${j} = textureLoad(Bt, vec2<u32>(gc${t}, k + ${j}u), lb, 0);`);
    }
  }
  for (const i of rows) {
    L.push(`  { let a = textureLoad(At, vec2<u32>(k4, m${i}), la, 0);`);
    for (const t of groups) {
      L.push(`    acc${i}_${t} += a.x * b${t}_0 + a.y * b${t}_1 + a.z * b${t}_2 + a.w * b${t}_3;`);
    }
    L.push(`  }`);
  }
  L.push(`}`);
  // The epilogue stores row 0 of the tile and shifts the rows up, TEX_TM times: one store site
  // per column group instead of one per accumulator. Every storage store is a per-lane loop on
  // llvmpipe, and unrolling all of them (with a gelu each) tripled the pipeline's compile time.
  L.push(`let cBase = u.cOff + b * u.sC;`);
  if (bias) {
    for (const t of groups) {
      L.push(
        `let bv${t} = vec4<f32>(bias[gc${t} * 4u], bias[min(gc${t} * 4u + 1u, u.N - 1u)], bias[min(gc${t} * 4u + 2u, u.N - 1u)], bias[min(gc${t} * 4u + 3u, u.N - 1u)]);`,
      );
    }
  }
  L.push(`let rows = min(u.M - row, ${tm}u);`);
  L.push(`for (var i = 0u; i < rows; i++) {`);
  L.push(`  let base = cBase + (row + i) * u.N;`);
  for (const t of groups) {
    L.push(`  if (g${t} < u.N4) {`);
    L.push(`    var v = acc0_${t};`);
    L.push(`    if (u.kFirst == 0u) { v += load4(base, g${t} * 4u); }`);
    L.push(`    ${finish(act, bias, "u.kLast != 0u", `bv${t}`)}`);
    L.push(`    store4(base, g${t} * 4u, v);`);
    L.push(`  }`);
  }
  for (const i of rows.slice(0, -1)) {
    L.push(`  ${groups.map((t) => `acc${i}_${t} = acc${i + 1}_${t};`).join(" ")}`);
  }
  L.push(`}`);
  return {
    name: `matmul_tex${bias ? "_bias" : ""}${act !== "none" ? "_" + act : ""}`,
    key: `matmul_tex_${texTileName(tile)}_${+bias}_${act}`,
    inputs: bias ? 3 : 2,
    outputs: 1,
    uniforms: true,
    bindings: bias
      ? ["texture", "texture", "storage", "storage"]
      : ["texture", "texture", "storage"],
    wgsl: () => /* wgsl */ `
struct U { M: u32, N: u32, K4: u32, N4: u32, lA: u32, lB: u32, cOff: u32, sC: u32,
  kFirst: u32, kLast: u32, p0: u32, p1: u32 }
@group(0) @binding(0) var At: texture_2d_array<f32>;
@group(0) @binding(1) var Bt: texture_2d_array<f32>;
${bias ? "@group(0) @binding(2) var<storage, read> bias: array<f32>;" : ""}
@group(0) @binding(${bias ? 3 : 2}) var<storage, read_write> C: array<f32>;
@group(0) @binding(${bias ? 4 : 3}) var<uniform> u: U;
${actWgsl(act)}
@compute @workgroup_size(${wgx}, ${wgy})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${L.join("\n  ")}
}
fn load4(base: u32, col: u32) -> vec4<f32> {
  let l = u.N - 1u;
  return vec4<f32>(C[base + col], C[base + min(col + 1u, l)], C[base + min(col + 2u, l)], C[base + min(col + 3u, l)]);
}
${STORE4}`,
  };
}

/**
 * Packs a batch of matrices `X[b]` (logical `[R, C]`; stored `[C, R]` when
 * `trans`) into the `rgba32float` layers `[b, Rp, ⌈C/4⌉]` of a 2-D array
 * texture, 4 consecutive columns per texel, zero beyond `R` rows and `C`
 * columns. Uniforms: `R, C, Rp, C4, s, off, ld, 0` (`s` = batch stride of
 * `X`, `off` its first element, `ld` its leading dimension); grid
 * `[⌈C4/8⌉, ⌈Rp/8⌉, layers]`.
 *
 * With `vec` (every size, `ld` and offset a multiple of 4) `X` is read as
 * vec4s: without `trans` a texel is one vec4 load; with `trans` each
 * invocation loads 4 vec4s (4 rows × 4 columns of the stored matrix) and
 * stores the 4 texels of their transpose, 4 rows per invocation (grid
 * `[⌈C4/8⌉, ⌈Rp/32⌉, layers]`). A quarter of the storage loads either way.
 */
export function matmulPackProgram(trans: boolean, vec = false): KernelProgram {
  const at = (r: string, c: string) =>
    `X[base + ${trans ? `${c} * u.ld + ${r}` : `${r} * u.ld + ${c}`}]`;
  const body = !vec
    ? `let r = g.y;
  if (x >= u.C4 || r >= u.Rp) { return; }
  // Branch-free: clamp the reads, then zero what lies outside the matrix.
  let rc = min(r, u.R - 1u);
  let c = x * 4u;
  let cm = u.C - 1u;
  let v = vec4<f32>(${at("rc", "c")}, ${at("rc", "min(c + 1u, cm)")}, ${
      at("rc", "min(c + 2u, cm)")
    }, ${at("rc", "min(c + 3u, cm)")});
  let inside = (vec4<u32>(c) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(u.C)) & vec4<bool>(r < u.R);
  textureStore(T, vec2<u32>(x, r), g.z, select(vec4<f32>(0.0), v, inside));`
    : trans
    ? `let r0 = g.y * 4u;
  if (x >= u.C4 || r0 >= u.Rp) { return; }
  let rb = min(r0, u.R - 4u);
  let c = x * 4u;
  let v0 = X[(base + c * u.ld + rb) / 4u];
  let v1 = X[(base + (c + 1u) * u.ld + rb) / 4u];
  let v2 = X[(base + (c + 2u) * u.ld + rb) / 4u];
  let v3 = X[(base + (c + 3u) * u.ld + rb) / 4u];
  let t = array<vec4<f32>, 4>(vec4<f32>(v0.x, v1.x, v2.x, v3.x), vec4<f32>(v0.y, v1.y, v2.y, v3.y),
    vec4<f32>(v0.z, v1.z, v2.z, v3.z), vec4<f32>(v0.w, v1.w, v2.w, v3.w));
  for (var i = 0u; i < 4u; i++) {
    let r = r0 + i;
    if (r < u.Rp) { textureStore(T, vec2<u32>(x, r), g.z, select(vec4<f32>(0.0), t[i], r < u.R)); }
  }`
    : `let r = g.y;
  if (x >= u.C4 || r >= u.Rp) { return; }
  let v = X[(base + min(r, u.R - 1u) * u.ld + x * 4u) / 4u];
  textureStore(T, vec2<u32>(x, r), g.z, select(vec4<f32>(0.0), v, r < u.R));`;
  return {
    name: `matmul_pack${trans ? "_t" : ""}`,
    key: `matmul_pack_${+trans}_${vec}`,
    inputs: 1,
    outputs: 1,
    uniforms: true,
    bindings: ["storage", "storage-texture"],
    wgsl: () => /* wgsl */ `
struct U { R: u32, C: u32, Rp: u32, C4: u32, s: u32, off: u32, ld: u32, p0: u32 }
@group(0) @binding(0) var<storage, read> X: array<${vec ? "vec4<f32>" : "f32"}>;
@group(0) @binding(1) var T: texture_storage_2d_array<rgba32float, write>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(${PACK_WG}, ${PACK_WG})
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let x = g.x;
  let base = u.off + g.z * u.s;
  ${body}
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
