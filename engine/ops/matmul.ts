/**
 * Matrix multiplication: batched, either operand transposed, with an optional
 * fused bias and activation epilogue.
 *
 * @module
 */

import { fmtShape, type Shape, sizeOf, Tensor, tracks } from "../tensor.ts";
import { noGrad, record, type VjpRule } from "../autograd.ts";
import { type BufferRange, copyBuffer, copyBufferToTexture, run, vecLanes } from "../dispatch.ts";
import { gpu } from "../device.ts";
import type { Storage } from "../memory.ts";
import { ScratchTextures } from "../scratch.ts";
import { matmulTile } from "../tune.ts";
import {
  type MatmulAct,
  matmulPackProgram,
  matmulProgram,
  matmulTexProgram,
  MAX_K4_TEXTURE,
  MAX_K_BUFFER,
  PACK_WG,
  texGrid,
  TM,
  TN,
  WG_X,
  WG_Y,
} from "../../kernels/matmul.ts";
import { add, broadcastShapes, gelu, relu, unaryGrad } from "./elementwise.ts";
import { sumTo } from "./reduce.ts";
import { concat, expand, reshape, slice } from "./shape.ts";

/** Options of {@link matmul}. */
export interface MatmulOptions {
  /** Use Aᵀ: `a` holds `[..., K, M]`. */
  transA?: boolean;
  /** Use Bᵀ: `b` holds `[..., N, K]`. */
  transB?: boolean;
  /** Added to every row of the result (`[N]`). */
  bias?: Tensor;
  /** Applied after the bias. */
  act?: "none" | "relu" | "gelu";
}

/**
 * `op(a) · op(b)`, batched over leading axes (which broadcast). Vectors are not
 * promoted: both operands need at least 2 axes.
 *
 * @example
 * ```ts
 * import { matmul, randn } from "../../mod.ts";
 * const c = matmul(randn([2, 8, 3]), randn([3, 5]));
 * console.log(c.shape); // [2, 8, 5]
 * ```
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const { transA = false, transB = false, bias } = opts;
  const act = opts.act ?? "none";
  const desc = () =>
    `matmul: ${fmtShape(a.shape)}${transA ? "ᵀ" : ""} @ ${fmtShape(b.shape)}${transB ? "ᵀ" : ""}`;
  if (a.dtype !== "f32" || b.dtype !== "f32") {
    throw new TypeError(`${desc()}: expected f32 operands, got ${a.dtype} and ${b.dtype}`);
  }
  if (a.ndim < 2 || b.ndim < 2) {
    throw new RangeError(`${desc()}: both operands need at least 2 axes`);
  }
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const M = transA ? ac : ar;
  const K = transA ? ar : ac;
  const K2 = transB ? bc : br;
  const N = transB ? br : bc;
  if (K !== K2) throw new RangeError(`${desc()}: inner sizes differ (${K} and ${K2})`);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== N || bias.dtype !== "f32")) {
    throw new RangeError(
      `${desc()}: bias must be f32 [${N}], got ${fmtShape(bias.shape)} ${bias.dtype}`,
    );
  }
  const batchShape = broadcastShapes(
    "matmul (batch axes)",
    a.shape.slice(0, -2),
    b.shape.slice(0, -2),
  );
  const batch = sizeOf(batchShape);
  const batchA = sizeOf(a.shape.slice(0, -2));
  const batchB = sizeOf(b.shape.slice(0, -2));
  if (batch > 1 && batchB === 1 && batchA === batch && !transA) {
    // x[B, T, C] · W: one [B·T, C] · W product (a view of x, no copy of W per batch entry),
    // whose backward is again one GEMM per operand instead of a batch and a sum.
    return foldedProduct(a, b, batchShape, M, N, opts);
  }
  // Broadcast batch axes: an operand has the full batch, or is shared (stride 0), or is expanded.
  const ea = batchA === batch || batchA === 1 ? a : expandBatch(a, batchShape);
  const eb = batchB === batch || batchB === 1 ? b : expandBatch(b, batchShape);
  const sA = sizeOf(ea.shape.slice(0, -2)) === 1 ? 0 : M * K;
  const sB = sizeOf(eb.shape.slice(0, -2)) === 1 ? 0 : K * N;
  // A gelu epilogue loses the pre-activation its gradient needs: unfuse it when recording.
  const tracked = tracks(a, b, ...(bias ? [bias] : []));
  const fusedAct = act === "gelu" && tracked ? "none" : act;
  let out = Tensor.empty([...batchShape, M, N], "f32");
  if (batch * M * N > 0) {
    const geom = { M, N, K, batch, sA, sB, transA, transB };
    if (batch === 1 && tooLarge(a, b, out)) {
      out.dispose();
      out = noGrad(() => largeProduct(a, b, geom, bias, fusedAct));
    } else {
      const operands = { a: ea.storage, b: eb.storage, bias: bias?.storage, out: out.storage };
      if (useTextures(geom)) runTextured(geom, operands, fusedAct);
      else runBuffered(geom, operands, fusedAct);
    }
  }
  if (ea !== a) ea.dispose();
  if (eb !== b) eb.dispose();
  const inputs = bias ? [a, b, bias] : [a, b];
  record(
    "matmul",
    { transA, transB, act: fusedAct, bias: !!bias },
    inputs,
    out,
    (needs) => [needs[1] ? a : b, needs[0] ? b : a, ...(fusedAct === "relu" ? [out] : [])],
  );
  if (fusedAct === act) return out;
  const y = gelu(out);
  out.dispose(); // gelu's tape node keeps its own reference
  return y;
}

/** `a[..., M, K] · op(b)` with `b` shared by every batch entry, as one 2-D product. */
function foldedProduct(
  a: Tensor,
  b: Tensor,
  batchShape: Shape,
  M: number,
  N: number,
  opts: MatmulOptions,
): Tensor {
  const a2 = reshape(a, [sizeOf(batchShape) * M, a.shape.at(-1)!]);
  const b2 = b.ndim === 2 ? b : reshape(b, b.shape.slice(-2));
  const y2 = matmul(a2, b2, opts);
  const y = reshape(y2, [...batchShape, M, N]);
  for (const t of b2 === b ? [a2, y2] : [a2, b2, y2]) t.dispose();
  return y;
}

interface Geometry {
  M: number;
  N: number;
  K: number;
  batch: number;
  /** Batch strides in elements, 0 for an operand shared by every batch entry. */
  sA: number;
  sB: number;
  transA: boolean;
  transB: boolean;
}

interface Operands {
  a: Storage | BufferRange;
  b: Storage | BufferRange;
  bias?: Storage;
  out: Storage | BufferRange;
}

/** The storage and byte offset of a binding, for buffer-to-texture copies. */
function base(x: Storage | BufferRange): [Storage | GPUBuffer, number] {
  return "offset" in x ? [x.storage, x.offset] : [x, 0];
}

/**
 * The texture path costs two packing dispatches and works in 32×128 tiles of
 * C: below these sizes the storage-buffer kernel is faster (measured on
 * llvmpipe: 32³ 0.53 ms against 0.37, 48³ 0.62 against 0.54, 64³ 0.58
 * against 0.88; batched 64×16³ 2.3 ms against 1.6, 64×32³ 3.5 against 5.3).
 */
const TEXTURE_MIN_MACS = 1 << 17;
const TEXTURE_MIN_MACS_PER_PRODUCT = 1 << 14;

function useTextures({ M, N, K, batch }: Geometry): boolean {
  if (K === 0 || !texturePath.enabled) return false;
  if (M * N * K < TEXTURE_MIN_MACS_PER_PRODUCT || batch * M * N * K < TEXTURE_MIN_MACS) {
    return false;
  }
  // Rows, batch entries and K beyond the texture limits are done in chunks; N is not.
  return Math.ceil(N / 4) <= gpu().limits.maxTextureDimension2D;
}

/**
 * Values of `k` per storage-buffer dispatch; 0: {@link MAX_K_BUFFER}, the
 * most that keeps the kernel within llvmpipe's loop budget.
 */
const bufferK = { k: 0 };

/**
 * Runs the storage-buffer kernel, in blocks of at most {@link MAX_K_BUFFER}
 * values of `k` (the second and later add their sums to C; see
 * {@link matmulProgram}): one dispatch unless K is longer.
 */
function runBuffered(g: Geometry, o: Operands, act: MatmulAct): void {
  const { M, N, K, batch, sA, sB } = g;
  const tilesN = Math.ceil(N / TN);
  const kb = Math.min(bufferK.k || MAX_K_BUFFER, MAX_K_BUFFER);
  for (let k0 = 0; k0 === 0 || k0 < K; k0 += kb) {
    const k1 = Math.min(K, k0 + kb);
    run(matmulProgram(g.transA, g.transB, !!o.bias, act), {
      inputs: o.bias ? [o.a, o.b, o.bias] : [o.a, o.b],
      outputs: [o.out],
      uniforms: new Uint32Array([M, N, K, batch, sA, sB, k0, k1]),
      workgroups: [Math.ceil(tilesN / WG_X), Math.ceil(Math.ceil(M / TM) / WG_Y), batch],
      flops: 2 * batch * M * N * (k1 - k0),
      bytes: 4 * (batch * (M * (k1 - k0) + (k1 - k0) * N + (k0 > 0 ? 2 : 1) * M * N)),
    });
  }
}

/** Whether products may take the texture path (tests turn it off to reach the other). */
const texturePath = { enabled: true };

/**
 * Rows, batch entries and values of `k` per texture-path chunk; 0: the
 * device's texture limits (and, for `k`, {@link MAX_K4_TEXTURE} texels).
 */
const textureChunks = { rows: 0, layers: 0, k: 0 };

/**
 * Sets how many rows of op(A), batch entries and values of `k` one
 * texture-path product takes at most (0: the device's texture limits; `k` is
 * rounded down to a multiple of 64), so that tests reach the chunked paths at
 * small sizes whatever the adapter's limits. Returns the previous settings.
 *
 * @example
 * ```ts
 * import { setMatmulTextureChunks } from "./matmul.ts";
 * const prev = setMatmulTextureChunks({ rows: 40, layers: 3, k: 128 });
 * setMatmulTextureChunks(prev);
 * ```
 */
export function setMatmulTextureChunks(
  o: { rows?: number; layers?: number; k?: number },
): { rows: number; layers: number; k: number } {
  const prev = { ...textureChunks };
  Object.assign(textureChunks, o);
  return prev;
}

/**
 * Sets which paths products may take, for tests and benchmarks: `textures:
 * false` sends every product to the storage-buffer kernel, and `bufferK`
 * (0: {@link MAX_K_BUFFER}) caps the values of `k` per storage-buffer
 * dispatch. Returns the previous settings.
 *
 * @example
 * ```ts
 * import { setMatmulPaths } from "./matmul.ts";
 * const prev = setMatmulPaths({ textures: false });
 * setMatmulPaths(prev);
 * ```
 */
export function setMatmulPaths(
  o: { textures?: boolean; bufferK?: number },
): { textures: boolean; bufferK: number } {
  const prev = { textures: texturePath.enabled, bufferK: bufferK.k };
  if (o.textures !== undefined) texturePath.enabled = o.textures;
  if (o.bufferK !== undefined) bufferK.k = o.bufferK;
  return prev;
}

/**
 * Packs op(A) and op(B) into scratch textures (a plain copy when the stored
 * layout already is the packed one), then runs the texture kernel; in chunks
 * of rows, of batch entries and of K where those exceed the texture limits
 * (K also where it exceeds {@link MAX_K4_TEXTURE} texels, llvmpipe's loop
 * budget): the chunks of K after the first add their sums to C.
 */
function runTextured(g: Geometry, o: Operands, act: MatmulAct): void {
  const { M, N, K, batch, sA, sB, transA, transB } = g;
  const limits = gpu().limits;
  const dim = textureChunks.rows || limits.maxTextureDimension2D;
  const maxTextureArrayLayers = textureChunks.layers || limits.maxTextureArrayLayers;
  // K per chunk: B's texture is 4·⌈kc/4⌉ rows high. A multiple of 64, so that every chunk but
  // the last is whole texels and the plain copies below stay possible.
  const kLimit = Math.min(limits.maxTextureDimension2D, 4 * MAX_K4_TEXTURE, textureChunks.k || K);
  const kc = K <= kLimit ? K : Math.max(64, Math.floor(kLimit / 64) * 64);
  const N4 = Math.ceil(N / 4);
  const shared = sA === 0 && sB === 0;
  const mc = Math.min(M, dim);
  const bc = shared ? batch : Math.min(batch, maxTextureArrayLayers);
  const layersA = sA === 0 ? 1 : bc;
  const layersB = sB === 0 ? 1 : bc;
  // op(A) as [layers, rows, K4] texels along k; op(B) as [layers, 4·K4, N4] texels along n.
  const at = scratchTexture("A", Math.ceil(kc / 4), mc, layersA);
  const bt = scratchTexture("B", N4, 4 * Math.ceil(kc / 4), layersB);
  // A plain copy needs rows of a multiple of 256 bytes and nothing to pad.
  const copyA = !transA && K % 64 === 0;
  const copyB = !transB && N % 64 === 0 && K % 4 === 0;
  for (let b0 = 0; b0 < batch; b0 += bc) {
    const nb = Math.min(bc, batch - b0);
    const lB = sB === 0 ? 1 : nb;
    for (let k0 = 0; k0 < K; k0 += kc) {
      const kn = Math.min(kc, K - k0);
      const K4 = Math.ceil(kn / 4);
      const offB = b0 * sB + (transB ? k0 : k0 * N);
      if (copyB) {
        const [s, off] = base(o.b);
        copyBufferToTexture(s, off + 4 * offB, 4 * N, K, bt.texture, [N4, kn, lB]);
      } else pack(o.b, bt.view, offB, kn, N, 4 * K4, transB ? K : N, transB, lB, sB);
      for (let m0 = 0; m0 < M; m0 += mc) {
        const rows = Math.min(mc, M - m0);
        const lA = sA === 0 ? 1 : nb;
        const offA = b0 * sA + (transA ? m0 + k0 * M : m0 * K + k0);
        if (copyA) {
          const [s, off] = base(o.a);
          copyBufferToTexture(s, off + 4 * offA, 4 * K, M, at.texture, [K4, rows, lA]);
        } else pack(o.a, at.view, offA, rows, kn, rows, transA ? M : K, transA, lA, sA);
        const tile = matmulTile(rows, N, kn);
        run(matmulTexProgram(!!o.bias, act, tile), {
          inputs: o.bias ? [at.view, bt.view, o.bias] : [at.view, bt.view],
          outputs: [o.out],
          uniforms: new Uint32Array([
            rows,
            N,
            K4,
            N4,
            +(sA !== 0),
            +(sB !== 0),
            b0 * M * N + m0 * N,
            M * N,
            +(k0 === 0),
            +(k0 + kn === K),
            0,
            0,
          ]),
          workgroups: texGrid(tile, rows, N4, nb),
          flops: 2 * nb * rows * N * kn,
          bytes: 4 * (lA * rows * kn + lB * kn * N + (k0 > 0 ? 2 : 1) * nb * rows * N),
        });
      }
    }
  }
}

/**
 * Records the packing of `layers` matrices `X[off + b·stride ...]` (logical
 * `[R, C]`, leading dimension `ld`, stored transposed when `trans`) into `dst`.
 */
function pack(
  src: Storage | BufferRange,
  dst: GPUTextureView,
  off: number,
  R: number,
  C: number,
  Rp: number,
  ld: number,
  trans: boolean,
  layers: number,
  stride: number,
): void {
  const C4 = Math.ceil(C / 4);
  // vec4 loads when every size and offset is a multiple of 4 (see matmulPackProgram).
  const vec = vecLanes(R, C, ld, off, layers === 1 ? 0 : stride) === 4;
  const rowsPer = vec && trans ? 4 : 1;
  run(matmulPackProgram(trans, vec), {
    inputs: [src],
    outputs: [dst],
    uniforms: new Uint32Array([R, C, Rp, C4, stride, off, ld, 0]),
    workgroups: [Math.ceil(C4 / PACK_WG), Math.ceil(Rp / (rowsPer * PACK_WG)), layers],
    bytes: 4 * layers * (R * C + Rp * C4 * 4),
  });
}

/** Packed-operand textures (engine/scratch.ts). */
const scratch = new ScratchTextures("matmul", 64 << 20);
const scratchTexture = (role: string, w: number, h: number, layers: number) =>
  scratch.get(role, w, h, layers);

/** Whether an operand or the result is above one storage binding's limit. */
function tooLarge(...ts: Tensor[]): boolean {
  const max = gpu().limits.maxStorageBufferBindingSize;
  return ts.some((t) => 4 * t.size > max);
}

/**
 * A product with an operand or result above `maxStorageBufferBindingSize`
 * (VGG11's 25,088→4,096 classifier weight is 411 MB against 128 MiB here),
 * computed in pieces that each fit one binding:
 * - result too large: bands of its rows, each written into a range of it;
 * - op(B) too large: bands of its rows (stored rows when transposed) into
 *   column blocks of the result, or bands of K summed when not transposed;
 * - op(A) too large: bands of its rows into row bands of the result, or
 *   bands of K summed when transposed.
 * Bias and activation are applied once at the end. Not recorded (the caller records).
 */
function largeProduct(
  a: Tensor,
  b: Tensor,
  g: Geometry,
  bias: Tensor | undefined,
  act: MatmulAct,
): Tensor {
  const { M, N, K, transA, transB } = g;
  const { maxStorageBufferBindingSize: max, minStorageBufferOffsetAlignment: al } = gpu().limits;
  // Rows per band: fits a binding, and starts every band on the binding alignment.
  const band = (rowElems: number) => {
    const step = al / 4 / gcd(al / 4, rowElems);
    const rows = Math.floor(max / 4 / rowElems / step) * step;
    if (rows < 1) {
      throw new RangeError(`matmul: a row of ${rowElems} values does not fit one binding`);
    }
    return rows;
  };
  const A2 = reshape(a, a.shape.slice(-2));
  const B2 = reshape(b, b.shape.slice(-2));
  const product = (x: Tensor, y: Tensor, o: { transA: boolean; transB: boolean }) =>
    tooLarge(x, y) ? null : matmul(x, y, o);
  let out: Tensor;
  if (4 * M * N > max) {
    out = Tensor.empty([M, N], "f32");
    const rows = band(N);
    for (let m0 = 0; m0 < M; m0 += rows) {
      const m1 = Math.min(M, m0 + rows);
      const ap = transA ? slice(A2, [0, m0], [K, m1]) : slice(A2, [m0, 0], [m1, K]);
      const piece = product(ap, B2, { transA, transB });
      if (!piece) {
        throw new RangeError(`matmul: ${fmtShape(a.shape)} @ ${fmtShape(b.shape)} is too large`);
      }
      copyInto(piece, out, m0 * N);
      piece.dispose();
      ap.dispose();
    }
  } else if (tooLarge(b)) {
    if (transB) {
      const rows = band(K);
      const parts: Tensor[] = [];
      for (let n0 = 0; n0 < N; n0 += rows) {
        const bp = rowBand(B2, n0, Math.min(N, n0 + rows));
        parts.push(matmul(A2, bp, { transA, transB: true }));
        bp.dispose();
      }
      out = concat(parts, 1);
      for (const p of parts) p.dispose();
    } else out = sumOverK(A2, B2, transA, false, band(N));
  } else {
    // op(A) too large.
    if (!transA) {
      out = Tensor.empty([M, N], "f32");
      const rows = band(K);
      for (let m0 = 0; m0 < M; m0 += rows) {
        const ap = rowBand(A2, m0, Math.min(M, m0 + rows));
        const piece = matmul(ap, B2, { transB });
        copyInto(piece, out, m0 * N);
        piece.dispose();
        ap.dispose();
      }
    } else out = sumOverK(A2, B2, true, transB, band(M));
  }
  A2.dispose();
  B2.dispose();
  let r = out;
  if (bias) {
    r = add(out, bias);
    out.dispose();
  }
  if (act !== "none") {
    const y = act === "relu" ? relu(r) : gelu(r);
    r.dispose();
    r = y;
  }
  return r;
}

/** Σ over bands of K of op(A)[:, k] · op(B)[k, :], for a too-large operand stored K-major. */
function sumOverK(A2: Tensor, B2: Tensor, transA: boolean, transB: boolean, rows: number): Tensor {
  const K = transA ? A2.shape[0] : A2.shape[1];
  let acc: Tensor | null = null;
  for (let k0 = 0; k0 < K; k0 += rows) {
    const k1 = Math.min(K, k0 + rows);
    // The too-large operand is cut in row bands (plain copies); the other one in columns.
    const ap = transA ? rowBand(A2, k0, k1) : slice(A2, [0, k0], [A2.shape[0], k1]);
    const bp = transB ? slice(B2, [0, k0], [B2.shape[0], k1]) : rowBand(B2, k0, k1);
    const piece = matmul(ap, bp, { transA, transB });
    ap.dispose();
    bp.dispose();
    if (acc) {
      const next = add(acc, piece);
      acc.dispose();
      piece.dispose();
      acc = next;
    } else acc = piece;
  }
  return acc!;
}

/** Rows `[r0, r1)` of a 2-D tensor, by a buffer copy (which, unlike a kernel, has no size limit). */
function rowBand(x: Tensor, r0: number, r1: number): Tensor {
  const cols = x.shape[1];
  const t = Tensor.empty([r1 - r0, cols], x.dtype);
  copyBuffer(x.storage, 4 * r0 * cols, t.storage, 0, 4 * (r1 - r0) * cols);
  return t;
}

/** Copies `src` into `dst` starting at element `at` (a buffer copy: no binding limit). */
function copyInto(src: Tensor, dst: Tensor, at: number): void {
  copyBuffer(src.storage, 0, dst.storage, 4 * at, 4 * src.size);
}

function gcd(x: number, y: number): number {
  while (y) [x, y] = [y, x % y];
  return x;
}

function expandBatch(x: Tensor, batchShape: Shape): Tensor {
  return expand(x, [...batchShape, ...x.shape.slice(-2)]);
}

/** Backward of matmul (see the derivation in the comment of each case). */
export const matmulVjp: VjpRule<"matmul"> = (node, g0) => {
  const { transA, transB, act, bias } = node.attrs;
  const [sa, sb] = node.inputShapes;
  const saved = node.saved;
  const a = saved[0];
  const b = saved[1];
  // relu' from the output (y > 0 exactly where x > 0): one fused kernel, not three.
  const g = act === "relu" ? unaryGrad("relu", saved[2], saved[2], g0) : g0;
  const [na, nb, nbias] = node.needs;
  // C = op(A)op(B): d op(A) = g op(B)ᵀ, d op(B) = op(A)ᵀ g; transposed storage flips the product.
  let ga: Tensor | null = null;
  let gb: Tensor | null = null;
  if (na) {
    ga = transA
      ? matmul(b, g, { transA: transB, transB: true })
      : matmul(g, b, { transB: !transB });
    ga = sumTo(ga, sa);
  }
  if (nb) {
    gb = transB
      ? matmul(g, a, { transA: true, transB: transA })
      : matmul(a, g, { transA: !transA });
    gb = sumTo(gb, sb);
  }
  const gbias = bias && nbias ? reshape(sumTo(g, [1, g.shape.at(-1)!]), [g.shape.at(-1)!]) : null;
  return bias ? [ga, gb, gbias] : [ga, gb];
};
