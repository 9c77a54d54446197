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

import { fmtShape, type Shape, Tensor } from "../tensor.ts";
import { isGradEnabled, record, type VjpRule } from "../autograd.ts";
import { run } from "../dispatch.ts";
import {
  ATTENTION_MAX_RANK,
  type AttentionMaskKind,
  attentionSoftmaxGradProgram,
  attentionSoftmaxProgram,
} from "../../kernels/attention.ts";
import { broadcastShapes, broadcastStrides } from "./elementwise.ts";
import { matmul } from "./matmul.ts";
import { dropout } from "./random.ts";

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
  shape: number[] = [],
  strides: number[] = [],
  cs = 0,
): Uint8Array {
  const u = new ArrayBuffer(96);
  const w = new Uint32Array(u);
  w.set([rows, n, shape.length, cs]);
  new Float32Array(u)[4] = scale;
  w.set(shape, 8);
  w.set(strides, 16);
  return new Uint8Array(u);
}

const groups = (rows: number) => Math.ceil(rows / 64);

function maskedSoftmaxRaw(s: Tensor, mask: Tensor | undefined, scale: number): Tensor {
  const n = s.shape.at(-1) ?? 1;
  const rows = n === 0 ? 0 : s.size / n;
  const out = Tensor.empty(s.shape, "f32");
  if (rows > 0) {
    let u: Uint8Array;
    if (mask) {
      const m = maskRows(s.shape, mask);
      if (m.shape.length > ATTENTION_MAX_RANK) {
        throw new RangeError(
          `maskedSoftmax: mask ${fmtShape(mask.shape)} against scores ${
            fmtShape(s.shape)
          } needs more than ${ATTENTION_MAX_RANK} strided axes`,
        );
      }
      u = uniforms(rows, n, scale, m.shape, m.strides, m.cs);
    } else u = uniforms(rows, n, scale);
    const kind: AttentionMaskKind = mask ? mask.dtype as "f32" | "u32" : "none";
    run(attentionSoftmaxProgram(kind), {
      inputs: mask ? [s.storage, mask.storage] : [s.storage],
      outputs: [out.storage],
      uniforms: u,
      workgroups: groups(rows),
      // Two sweeps of the scores (and of the mask rows), one write.
      bytes: 4 * (3 * s.size + (mask ? 2 * s.size : 0)),
      flops: 8 * s.size,
    });
  }
  record("maskedSoftmax", { scale }, [s], out, () => [out]);
  return out;
}

/** Backward of the masked softmax: `dS = scale·P·(dP − rowsum(dP·P))`, one kernel. */
export const maskedSoftmaxVjp: VjpRule<"maskedSoftmax"> = (node, g) => {
  const [p] = node.saved;
  const n = p.shape.at(-1) ?? 1;
  const rows = n === 0 ? 0 : p.size / n;
  const ds = Tensor.empty(p.shape, "f32");
  if (rows > 0) {
    run(attentionSoftmaxGradProgram(), {
      inputs: [p.storage, g.storage],
      outputs: [ds.storage],
      uniforms: uniforms(rows, n, node.attrs.scale),
      workgroups: groups(rows),
      bytes: 4 * 3 * p.size,
      flops: 4 * p.size,
    });
  }
  return [ds];
};
