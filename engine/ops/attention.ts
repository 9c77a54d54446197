/**
 * Scaled dot-product attention, `softmax(scale·q·kᵀ + mask)·v`, and the fused
 * masked softmax it is built on.
 *
 * The two products are the batched matmul (heads are leading axes); the
 * scale, the mask and the softmax are one kernel and one tape node whose
 * backward reads only the saved probabilities P. What the tape keeps is
 * therefore q, k, v and P: no tensor bigger than the attention matrix, and
 * not the scores S, which are freed as soon as P exists. With `dropoutP > 0`
 * the product P′·v also keeps the dropped-out P′ (its `v` gradient is
 * P′ᵀ·dO), a second attention-sized tensor, as in PyTorch's math path.
 *
 * Rows whose every entry is masked out (u32 mask all zero, or an additive
 * mask of −∞ across the row) give attention weights 0, so their output rows
 * are 0 and their gradients 0. PyTorch gives NaN there; zeros keep one padded
 * query from poisoning a whole batch's loss. A large finite mask value such
 * as −1e4 is an ordinary additive term, exactly as in PyTorch (a row that is
 * all −1e4 is a uniform softmax, not zeros).
 *
 * @module
 */

import { fmtShape, scope, type Shape, Tensor } from "../tensor.ts";
import { isGradEnabled, noGrad, record, type VjpRule } from "../autograd.ts";
import { copyBufferToTexture, run } from "../dispatch.ts";
import { gpu } from "../device.ts";
import type { Storage } from "../memory.ts";
import { ScratchTextures } from "../scratch.ts";
import {
  ATTENTION_MAX_RANK,
  ATTENTION_MAX_ROW,
  ATTENTION_MAX_ROW_TEXTURE,
  type AttentionMaskKind,
  attentionSoftmaxGradProgram,
  attentionSoftmaxProgram,
  keepToAdditiveProgram,
  TEX_W,
} from "../../kernels/attention.ts";
import {
  add,
  broadcastShapes,
  broadcastStrides,
  div,
  eq,
  exp,
  full,
  gt,
  mul,
  sub,
  where,
} from "./elementwise.ts";
import { matmul } from "./matmul.ts";
import { dropout } from "./random.ts";
import { max, sum } from "./reduce.ts";

/** Options of {@link scaledDotProductAttention}. */
export interface ScaledDotProductAttentionOptions {
  /**
   * Broadcastable to the scores `[..., Tq, Tk]`: f32 is added to the scaled
   * scores (0 to attend, −∞ or e.g. −1e4 to block), u32 is a keep-mask
   * (nonzero = attend, PyTorch's bool semantics). Read in place, never
   * expanded; it gets no gradient.
   */
  mask?: Tensor;
  /** Dropout probability on the attention weights (default 0; pass 0 in eval). */
  dropoutP?: number;
  /** Multiplier of the scores (default `1/sqrt(D)`). */
  scale?: number;
}

/** Options of {@link maskedSoftmax}. */
export interface MaskedSoftmaxOptions {
  /** See {@link ScaledDotProductAttentionOptions.mask}. */
  mask?: Tensor;
  /** Multiplier of the scores (default 1). */
  scale?: number;
}

const OP = "scaledDotProductAttention";

/**
 * Scaled dot-product attention: `softmax(scale·q·kᵀ + mask)·v`, with optional
 * dropout on the attention weights. Leading axes (batch, heads) broadcast as
 * in {@link matmul}. Rows with every key masked out give zeros (PyTorch: NaN).
 *
 * @param q Queries `[..., Tq, D]`.
 * @param k Keys `[..., Tk, D]`.
 * @param v Values `[..., Tk, Dv]`.
 * @returns `[..., Tq, Dv]`.
 *
 * @example
 * ```ts
 * import { randn, scaledDotProductAttention, tensor } from "../../mod.ts";
 * const [B, H, T, D] = [2, 4, 8, 16];
 * const q = randn([B, H, T, D]), k = randn([B, H, T, D]), v = randn([B, H, T, D]);
 * // Padding mask [B, 1, 1, T]: the second sequence has 5 real tokens.
 * const keep = new Uint32Array(B * T).fill(1).fill(0, T + 5);
 * const mask = tensor(keep, { shape: [B, 1, 1, T], dtype: "u32" });
 * const o = scaledDotProductAttention(q, k, v, { mask });
 * console.log(o.shape); // [2, 4, 8, 16]
 * ```
 */
export function scaledDotProductAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: ScaledDotProductAttentionOptions = {},
): Tensor {
  const { mask, dropoutP = 0 } = opts;
  const desc = () =>
    `${OP}: q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`;
  if (q.dtype !== "f32" || k.dtype !== "f32" || v.dtype !== "f32") {
    throw new TypeError(
      `${desc()}: q, k and v must be f32, got ${q.dtype}, ${k.dtype} and ${v.dtype}`,
    );
  }
  if (q.ndim < 2 || k.ndim < 2 || v.ndim < 2) {
    throw new RangeError(`${desc()}: q, k and v need at least 2 axes ([..., T, D])`);
  }
  const [tq, d] = q.shape.slice(-2);
  const [tk, dk] = k.shape.slice(-2);
  if (dk !== d) {
    throw new RangeError(`${desc()}: q and k must have the same last axis (D = ${d} and ${dk})`);
  }
  if (v.shape.at(-2) !== tk) {
    throw new RangeError(
      `${desc()}: k and v must have the same number of keys (Tk = ${tk} and ${v.shape.at(-2)})`,
    );
  }
  const lead = broadcastShapes(
    `${desc()} (batch axes)`,
    q.shape.slice(0, -2),
    k.shape.slice(0, -2),
  );
  broadcastShapes(`${desc()} (batch axes)`, lead, v.shape.slice(0, -2));
  const scores = [...lead, tq, tk];
  if (mask) checkMask(mask, scores, desc());
  if (!(dropoutP >= 0 && dropoutP < 1)) {
    throw new RangeError(`${OP}: dropoutP must be in [0, 1), got ${dropoutP}`);
  }
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  if (!Number.isFinite(scale)) throw new RangeError(`${OP}: scale must be finite, got ${scale}`);

  const s = matmul(q, k, { transB: true });
  const p = maskedSoftmaxRaw(s, mask, scale);
  s.dispose(); // the tape keeps q and k for it, and P for the softmax
  const pd = dropoutP > 0 ? dropout(p, dropoutP) : p;
  if (pd !== p) p.dispose();
  const o = matmul(pd, v);
  pd.dispose();
  return o;
}

/**
 * `softmax(scale·s + mask)` over the last axis of the scores `s [..., Tq, Tk]`,
 * in one kernel and one tape node whose backward reads only the result. The
 * mask is as in {@link scaledDotProductAttention}: f32 additive or u32 keep,
 * broadcastable to `s`, read in place. Fully masked rows give zeros.
 *
 * @example
 * ```ts
 * import { tensor } from "../../mod.ts";
 * import { maskedSoftmax } from "./attention.ts";
 * const causal = tensor([1, 0, 1, 1], { shape: [2, 2], dtype: "u32" });
 * const p = maskedSoftmax(tensor([0, 5, 1, 1], { shape: [2, 2] }), { mask: causal });
 * console.log(await p.toArray()); // [1, 0, 0.5, 0.5]
 * ```
 */
export function maskedSoftmax(s: Tensor, opts: MaskedSoftmaxOptions = {}): Tensor {
  const { mask, scale = 1 } = opts;
  const desc = `maskedSoftmax: scores ${fmtShape(s.shape)}`;
  if (s.dtype !== "f32") throw new TypeError(`${desc}: expected f32 scores, got ${s.dtype}`);
  if (s.ndim < 1) throw new RangeError(`${desc}: the scores need at least 1 axis`);
  if (mask) checkMask(mask, s.shape, desc);
  if (!Number.isFinite(scale)) throw new RangeError(`${desc}: scale must be finite, got ${scale}`);
  return maskedSoftmaxRaw(s, mask, scale);
}

function checkMask(mask: Tensor, scores: Shape, desc: string): void {
  if (mask.dtype !== "f32" && mask.dtype !== "u32") {
    throw new TypeError(
      `${desc}: the mask must be f32 (additive) or u32 (nonzero = attend), got ${mask.dtype}`,
    );
  }
  const fits = mask.ndim <= scores.length &&
    mask.shape.every((m, i) => m === 1 || m === scores[scores.length - mask.ndim + i]);
  if (!fits) {
    throw new RangeError(
      `${desc}: mask ${fmtShape(mask.shape)} does not broadcast to the scores ${fmtShape(scores)}`,
    );
  }
  if (mask.requiresGrad && isGradEnabled()) {
    throw new TypeError(`${desc}: the mask gets no gradient, so it must not require grad`);
  }
}

/**
 * The mask's row axes (the scores' axes but the last), coalesced: size-1 axes
 * dropped, and neighbours merged where the outer stride is the inner one times
 * the inner size (both 0 included), so `[B, H, Tq]` with a `[B, 1, 1, Tk]`
 * mask becomes `[B, H·Tq]` with strides `[Tk, 0]`.
 */
function maskRows(scores: Shape, mask: Tensor): { shape: number[]; strides: number[]; cs: number } {
  const all = broadcastStrides(mask.shape, scores);
  const shape: number[] = [];
  const strides: number[] = [];
  for (let i = 0; i < scores.length - 1; i++) {
    const n = scores[i];
    if (n === 1) continue;
    const last = shape.length - 1;
    if (last >= 0 && strides[last] === all[i] * n) {
      shape[last] *= n;
      strides[last] = all[i];
    } else {
      shape.push(n);
      strides.push(all[i]);
    }
  }
  return { shape, strides, cs: all[scores.length - 1] };
}

function uniforms(
  rows: number,
  n: number,
  scale: number,
  r0 = 0,
  f0 = 0,
  mask?: { shape: number[]; strides: number[]; cs: number },
): Uint8Array {
  const u = new ArrayBuffer(96);
  const w = new Uint32Array(u);
  w.set([rows, n, mask?.shape.length ?? 0, mask?.cs ?? 0, 0, r0, f0, 0]);
  new Float32Array(u)[4] = scale;
  if (mask) {
    w.set(mask.shape, 8);
    w.set(mask.strides, 16);
  }
  return new Uint8Array(u);
}

const groups = (rows: number) => Math.ceil(rows / 64);

/** When the texture form of the kernels is used (see kernels/attention.ts); settable for tests. */
const texturePath = {
  /** Fewest scores for the texture form: below it the copy is not worth a dispatch. */
  minScores: 1 << 14,
  /** Texture rows per chunk (0: the device limit); small values test the chunking. */
  chunkRows: 0,
};

/**
 * Sets when the attention softmax uses its texture form, for tests and
 * benchmarks: `minScores` (default 16384; `Infinity` never, 0 always) and
 * `chunkRows`, the texture rows of 64 floats per dispatch (0: the device
 * limit). Returns the previous settings.
 *
 * @example
 * ```ts
 * import { setAttentionTexturePath } from "./attention.ts";
 * const prev = setAttentionTexturePath({ minScores: Infinity }); // storage buffers only
 * setAttentionTexturePath(prev);
 * ```
 */
export function setAttentionTexturePath(
  o: { minScores?: number; chunkRows?: number },
): { minScores: number; chunkRows: number } {
  const prev = { ...texturePath };
  Object.assign(texturePath, o);
  return prev;
}

/** Scratch textures of the texture form: the scores, or P and dP. */
const scratch = new ScratchTextures("attention", 32 << 20, { npot: true });

/** One dispatch of the texture form: rows `[r0, r1)`, whose floats from `f0` fill `texRows` rows. */
interface Chunk {
  r0: number;
  r1: number;
  f0: number;
  texRows: number;
}

/**
 * Splits `rows` rows of `n` floats into chunks that each fit one texture of
 * `TEX_W` texels by at most `maxRows` rows, every chunk starting on a texture
 * row (64 floats) so the copy source offset is 256-byte aligned. Null when a
 * row alone does not fit.
 */
function chunks(rows: number, n: number, maxRows: number): Chunk[] | null {
  const per = 4 * TEX_W;
  if (n + per - 1 > maxRows * per) return null;
  const out: Chunk[] = [];
  for (let r0 = 0; r0 < rows;) {
    const f0 = Math.floor((r0 * n) / per) * per;
    const r1 = Math.min(rows, Math.floor((f0 + maxRows * per) / n));
    out.push({ r0, r1, f0, texRows: Math.ceil((r1 * n - f0) / per) });
    r0 = r1;
  }
  return out;
}

/** The chunks of the texture form for `[rows, n]`, or null for the storage form. */
function texturePlan(rows: number, n: number): { plan: Chunk[]; maxRows: number } | null {
  if (rows * n < texturePath.minScores) return null;
  // npot() turns a power-of-two height into one more row: stay below the limit.
  const limit = gpu().limits.maxTextureDimension2D - 1;
  const maxRows = texturePath.chunkRows > 0 ? Math.min(texturePath.chunkRows, limit) : limit;
  const plan = chunks(rows, n, maxRows);
  return plan && { plan, maxRows };
}

/**
 * Copies the floats `[f0, f0 + 64·texRows)` of `src` into a scratch texture
 * for `role`. Reading past the tensor's end stays within the buffer: its
 * size class is a multiple of 256 bytes (engine/memory.ts); the kernels
 * ignore those floats.
 */
function toTexture(role: string, src: Storage, c: Chunk, height: number): GPUTextureView {
  const t = scratch.get(role, TEX_W, height, 1);
  copyBufferToTexture(src, 4 * c.f0, 16 * TEX_W, c.texRows, t.texture, [TEX_W, c.texRows, 1]);
  return t.view;
}

/**
 * The mask as an additive f32 texture (u32 keep-masks converted to 0/−∞), or
 * null when it needs more rows than `maxRows`: then the kernel reads it from
 * its storage buffer.
 */
function maskTexture(mask: Tensor, maxRows: number): GPUTextureView | null {
  const texRows = Math.ceil(mask.size / (4 * TEX_W));
  if (texRows > maxRows) return null;
  let additive = mask;
  if (mask.dtype === "u32") {
    additive = Tensor.empty(mask.shape, "f32");
    run(keepToAdditiveProgram(), {
      inputs: [mask.storage],
      outputs: [additive.storage],
      uniforms: new Uint32Array([mask.size]),
      workgroups: Math.ceil(mask.size / 64),
      bytes: 8 * mask.size,
    });
  }
  const view = toTexture("M", additive.storage, { r0: 0, r1: 0, f0: 0, texRows }, texRows);
  // The copy is recorded: later writes to a reused buffer land after it.
  if (additive !== mask) additive.dispose();
  return view;
}

/**
 * Whether rows of `n` of the `size` scores are too long for the kernel form
 * `tex` picks (see kernels/attention.ts). Scores above one storage binding
 * stay with the kernels, which refuse them by name.
 */
function longRows(size: number, n: number, tex: unknown): boolean {
  return n > (tex ? ATTENTION_MAX_ROW_TEXTURE : ATTENTION_MAX_ROW) &&
    4 * size <= gpu().limits.maxStorageBufferBindingSize;
}

/**
 * The masked softmax of rows too long for the kernels, by reductions and
 * elementwise ops, with the kernels' rules: −∞ entries and a u32 mask's zeros
 * take no part, and rows with none left give zeros. Not recorded.
 */
function maskedSoftmaxLong(s: Tensor, mask: Tensor | undefined, scale: number): Tensor {
  return noGrad(() =>
    scope(() => {
      const negInf = full([1], -Infinity);
      let t = mul(s, scale);
      if (mask?.dtype === "f32") t = add(t, mask);
      if (mask?.dtype === "u32") t = where(mask, t, negInf);
      const m = max(t, -1, true);
      // A row of −∞ would give exp(−∞ − (−∞)) = NaN: subtract 0 there instead, and divide by 1.
      const e = exp(sub(t, where(eq(m, -Infinity), full([1], 0), m)));
      const z = sum(e, -1, true);
      return div(e, where(gt(z, 0), z, full([1], 1)));
    })
  );
}

function maskedSoftmaxRaw(s: Tensor, mask: Tensor | undefined, scale: number): Tensor {
  const n = s.shape.at(-1) ?? 1;
  const rows = n === 0 ? 0 : s.size / n;
  if (rows > 0 && longRows(s.size, n, texturePlan(rows, n))) {
    const p = maskedSoftmaxLong(s, mask, scale);
    record("maskedSoftmax", { scale }, [s], p, () => [p]);
    return p;
  }
  const out = Tensor.empty(s.shape, "f32");
  if (rows > 0) {
    let m: { shape: number[]; strides: number[]; cs: number } | undefined;
    if (mask) {
      m = maskRows(s.shape, mask);
      if (m.shape.length > ATTENTION_MAX_RANK) {
        throw new RangeError(
          `maskedSoftmax: mask ${fmtShape(mask.shape)} against scores ${
            fmtShape(s.shape)
          } needs more than ${ATTENTION_MAX_RANK} strided axes`,
        );
      }
    }
    const tex = texturePlan(rows, n);
    const maskTex = mask && tex ? maskTexture(mask, tex.maxRows) : null;
    const kind: AttentionMaskKind = maskTex
      ? "texture"
      : mask
      ? mask.dtype as "f32" | "u32"
      : "none";
    const maskIn = maskTex ? [maskTex] : mask ? [mask.storage] : [];
    // Two sweeps of the scores (and of the mask rows), one write.
    const cost = (k: number) => ({ bytes: 4 * (3 + (mask ? 2 : 0)) * k * n, flops: 8 * k * n });
    if (!tex) {
      run(attentionSoftmaxProgram(kind, false), {
        inputs: [s.storage, ...maskIn],
        outputs: [out.storage],
        uniforms: uniforms(rows, n, scale, 0, 0, m),
        workgroups: groups(rows),
        ...cost(rows),
      });
    } else {
      const height = Math.max(...tex.plan.map((c) => c.texRows));
      for (const c of tex.plan) {
        const st = toTexture("S", s.storage, c, height);
        run(attentionSoftmaxProgram(kind, true), {
          inputs: [st, ...maskIn],
          outputs: [out.storage],
          uniforms: uniforms(c.r1 - c.r0, n, scale, c.r0, c.f0, m),
          workgroups: groups(c.r1 - c.r0),
          ...cost(c.r1 - c.r0),
        });
      }
    }
  }
  record("maskedSoftmax", { scale }, [s], out, () => [out]);
  return out;
}

/** Backward of the masked softmax: `dS = scale·P·(dP − rowsum(dP·P))`, one kernel. */
export const maskedSoftmaxVjp: VjpRule<"maskedSoftmax"> = (node, g) => {
  const [p] = node.saved;
  const { scale } = node.attrs;
  const n = p.shape.at(-1) ?? 1;
  const rows = n === 0 ? 0 : p.size / n;
  if (rows > 0 && longRows(p.size, n, texturePlan(rows, n))) {
    return [scope(() => mul(mul(p, scale), sub(g, sum(mul(g, p), -1, true))))];
  }
  const ds = Tensor.empty(p.shape, "f32");
  if (rows > 0) {
    const tex = texturePlan(rows, n);
    const cost = (k: number) => ({ bytes: 4 * 5 * k * n, flops: 5 * k * n });
    if (!tex) {
      run(attentionSoftmaxGradProgram(false), {
        inputs: [p.storage, g.storage],
        outputs: [ds.storage],
        uniforms: uniforms(rows, n, scale),
        workgroups: groups(rows),
        ...cost(rows),
      });
    } else {
      const height = Math.max(...tex.plan.map((c) => c.texRows));
      for (const c of tex.plan) {
        const pt = toTexture("P", p.storage, c, height);
        const gt = toTexture("G", g.storage, c, height);
        run(attentionSoftmaxGradProgram(true), {
          inputs: [pt, gt],
          outputs: [ds.storage],
          uniforms: uniforms(c.r1 - c.r0, n, scale, c.r0, c.f0),
          workgroups: groups(c.r1 - c.r0),
          ...cost(c.r1 - c.r0),
        });
      }
    }
  }
  return [ds];
};
