/**
 * Layer normalisation as a layer, after `torch.nn.LayerNorm`.
 *
 * @module
 */

import { Module, parameter } from "./module.ts";
import { fmtShape, Tensor } from "../tensor.ts";
import { ones, zeros } from "../ops/elementwise.ts";
import { layerNorm } from "../ops/layernorm.ts";

/** Options of {@link LayerNorm}. */
export interface LayerNormOptions {
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
  /** Learn a per-feature `weight` (init 1) and `bias` (init 0) (default true). */
  elementwiseAffine?: boolean;
  /** With `elementwiseAffine`, whether `bias` exists (default true; PyTorch ≥ 2.1's `bias`). */
  bias?: boolean;
}

/** A float as Python's `repr` prints it (`1e-05`, `0.1`). */
function pyFloat(v: number): string {
  if (v !== 0 && Math.abs(v) < 1e-4) {
    return v.toExponential().replace(/e([+-])(\d)$/, "e$10$2");
  }
  return Number.isInteger(v) ? `${v}.0` : String(v);
}

/**
 * Layer normalisation over the last axis (PyTorch's `nn.LayerNorm` with a
 * one-number `normalized_shape`): each row of `normalizedShape` values is
 * normalised with its own mean and biased variance, then scaled by `weight`
 * and shifted by `bias`. Same statistics in training and eval mode; no
 * buffers. State-dict names are PyTorch's (`weight`, `bias`), so Hugging
 * Face / timm checkpoints load as they are.
 *
 * @example
 * ```ts
 * import { randn } from "../../mod.ts";
 * import { LayerNorm } from "./layernorm.ts";
 * const ln = new LayerNorm(16);
 * console.log(Object.keys(ln.stateDict()), String(ln));
 * // ["weight", "bias"] "LayerNorm((16,), eps=1e-05, elementwise_affine=True)"
 * console.log(ln.forward(randn([2, 5, 16])).shape); // [2, 5, 16]
 * ```
 */
export class LayerNorm extends Module {
  /** Size C of the normalised (last) axis. */
  readonly normalizedShape: number;
  /** Added to the variance. */
  eps: number;
  /** Whether `weight` (and, unless `bias: false`, `bias`) exist. */
  readonly elementwiseAffine: boolean;
  /** `[C]` scale (init 1), or null without `elementwiseAffine`. */
  weight: Tensor | null;
  /** `[C]` shift (init 0), or null without `elementwiseAffine` or with `bias: false`. */
  bias: Tensor | null;

  /**
   * @param normalizedShape Size C of the last axis of the input.
   * @param opts eps, elementwiseAffine, bias.
   */
  constructor(normalizedShape: number, opts: LayerNormOptions = {}) {
    super();
    if (!Number.isInteger(normalizedShape) || normalizedShape < 1) {
      throw new RangeError(
        `LayerNorm: normalizedShape must be an integer ≥ 1, got ${normalizedShape}`,
      );
    }
    this.normalizedShape = normalizedShape;
    this.eps = opts.eps ?? 1e-5;
    this.elementwiseAffine = opts.elementwiseAffine ?? true;
    const affine = this.elementwiseAffine;
    this.weight = affine ? parameter(ones([normalizedShape])) : null;
    this.bias = affine && (opts.bias ?? true) ? parameter(zeros([normalizedShape])) : null;
  }

  /** Normalises `x [..., C]` over its last axis. */
  forward(x: Tensor): Tensor {
    if (!(x instanceof Tensor) || x.ndim === 0 || x.shape[x.ndim - 1] !== this.normalizedShape) {
      throw new RangeError(
        `LayerNorm(${this.normalizedShape}): expected an input [..., ${this.normalizedShape}], got ${
          x instanceof Tensor ? fmtShape(x.shape) : String(x)
        }`,
      );
    }
    return layerNorm(x, this.weight, this.bias, this.eps);
  }

  /** `(768,), eps=1e-05, elementwise_affine=True`, as PyTorch prints it. */
  override extraRepr(): string {
    const b = (v: boolean) => (v ? "True" : "False");
    const bias = this.elementwiseAffine && this.bias === null ? ", bias=False" : "";
    return `(${this.normalizedShape},), eps=${pyFloat(this.eps)}, elementwise_affine=${
      b(this.elementwiseAffine)
    }${bias}`;
  }
}
