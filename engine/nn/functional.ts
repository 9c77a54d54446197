/**
 * Stateless layer functions and losses (PyTorch's `torch.nn.functional`).
 *
 * @module
 */

import { fmtShape, type Tensor } from "../tensor.ts";
import { noGrad } from "../autograd.ts";
import { cast, mul, ne, sub } from "../ops/elementwise.ts";
import { mean, sum } from "../ops/reduce.ts";
import { matmul } from "../ops/matmul.ts";
import { squeeze, unsqueeze } from "../ops/shape.ts";
import { gather } from "../ops/index.ts";

export { crossEntropy, type CrossEntropyOptions } from "../ops/softmax.ts";
export { layerNorm } from "../ops/layernorm.ts";
export { embedding, type EmbeddingOptions } from "../ops/embedding.ts";
export {
  scaledDotProductAttention,
  type ScaledDotProductAttentionOptions,
} from "../ops/attention.ts";

/** How a loss combines its per-element values. */
export type Reduction = "mean" | "sum" | "none";

/**
 * `x · weightᵀ + bias` with `weight [out, in]` as PyTorch stores it, over the
 * last axis of `x` (any leading axes). `act: "relu"` fuses the activation into
 * the matmul's epilogue (one kernel, and no pre-activation tensor is kept).
 *
 * @param x Input `[..., in]`.
 * @param weight `[out, in]`.
 * @param bias `[out]`, or null.
 * @param act Activation fused after the bias.
 * @returns `[..., out]`.
 *
 * @example
 * ```ts
 * import { randn, zeros } from "../../mod.ts";
 * import { linear } from "./functional.ts";
 * console.log(linear(randn([5, 3]), randn([2, 3]), zeros([2])).shape); // [5, 2]
 * ```
 */
export function linear(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null = null,
  act: "none" | "relu" = "none",
): Tensor {
  if (weight.ndim !== 2 || x.ndim === 0 || x.shape.at(-1) !== weight.shape[1]) {
    throw new RangeError(
      `linear: input ${fmtShape(x.shape)} does not match weight ${
        fmtShape(weight.shape)
      } (expected [..., ${weight.shape[1]}])`,
    );
  }
  if (x.ndim === 1) {
    const x2 = unsqueeze(x, 0);
    const y2 = linear(x2, weight, bias, act);
    const y = squeeze(y2, 0);
    x2.dispose();
    y2.dispose();
    return y;
  }
  return matmul(x, weight, { transB: true, bias: bias ?? undefined, act });
}

/** Options of {@link mseLoss}. */
export interface MseLossOptions {
  /** How squared errors combine (default "mean", over all elements). */
  reduction?: Reduction;
}

/**
 * Mean squared error between `input` and `target` (same shape; PyTorch would
 * broadcast with a warning, which usually hides a bug, so this throws).
 *
 * @example
 * ```ts
 * import { tensor } from "../../mod.ts";
 * import { mseLoss } from "./functional.ts";
 * console.log(await mseLoss(tensor([1, 2]), tensor([1, 4])).item()); // 2
 * ```
 */
export function mseLoss(input: Tensor, target: Tensor, opts: MseLossOptions = {}): Tensor {
  const { reduction = "mean" } = opts;
  if (input.shape.join() !== target.shape.join()) {
    throw new RangeError(
      `mseLoss: input ${fmtShape(input.shape)} and target ${fmtShape(target.shape)} differ`,
    );
  }
  const d = sub(input, target);
  const sq = mul(d, d);
  d.dispose();
  if (reduction === "none") return sq;
  const out = reduction === "sum" ? sum(sq) : mean(sq);
  sq.dispose();
  return out;
}

/** Options of {@link nllLoss}. */
export interface NllLossOptions {
  /** How per-row losses combine (default "mean", over rows not ignored). */
  reduction?: Reduction;
  /** Rows with this label contribute nothing (default -100, as PyTorch). */
  ignoreIndex?: number;
}

/**
 * Negative log-likelihood of integer `labels [N]` (i32) under log-probabilities
 * `logProbs [N, C]`: `-logProbs[i, labels[i]]`. With `logSoftmax` it equals
 * {@link crossEntropy}, which is fused and should be preferred.
 *
 * @example
 * ```ts
 * import { tensor } from "../../mod.ts";
 * import { nllLoss } from "./functional.ts";
 * const lp = tensor([-0.1, -2.3, -1.6, -0.2], { shape: [2, 2] });
 * console.log(await nllLoss(lp, tensor([0, 1], { dtype: "i32" })).item()); // 0.15
 * ```
 */
export function nllLoss(logProbs: Tensor, labels: Tensor, opts: NllLossOptions = {}): Tensor {
  const { reduction = "mean", ignoreIndex = -100 } = opts;
  if (logProbs.ndim !== 2 || labels.ndim !== 1 || labels.shape[0] !== logProbs.shape[0]) {
    throw new RangeError(
      `nllLoss: expected logProbs [N, C] and labels [N], got ${fmtShape(logProbs.shape)} and ${
        fmtShape(labels.shape)
      }`,
    );
  }
  if (labels.dtype !== "i32") {
    throw new TypeError(`nllLoss: labels must be i32, got ${labels.dtype}`);
  }
  const index = unsqueeze(labels, 1);
  // gather reads 0 for out-of-range labels (-100); an in-range ignoreIndex needs the mask.
  const picked = gather(logProbs, 1, index);
  index.dispose();
  const mask = noGrad(() => {
    const m = ne(labels, ignoreIndex);
    const f = cast(m, "f32");
    m.dispose();
    return f;
  });
  const rows = squeeze(picked, 1);
  picked.dispose();
  const masked = mul(rows, mask);
  rows.dispose();
  // 0 − v rather than −v: ignored rows give +0, as PyTorch prints them, not −0.
  const losses = sub(0, masked);
  masked.dispose();
  if (reduction === "none") {
    mask.dispose();
    return losses;
  }
  const total = sum(losses);
  losses.dispose();
  if (reduction === "sum") {
    mask.dispose();
    return total;
  }
  const count = noGrad(() => sum(mask));
  mask.dispose();
  const out = total.div(count);
  total.dispose();
  count.dispose();
  return out;
}
