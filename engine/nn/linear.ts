/**
 * The fully connected layer.
 *
 * @module
 */

import { Module, parameter } from "./module.ts";
import type { Tensor } from "../tensor.ts";
import { rand } from "../ops/random.ts";
import { linear } from "./functional.ts";

/** Options of {@link Linear}. */
export interface LinearOptions {
  /** Whether the layer adds a learned bias (default true). */
  bias?: boolean;
}

/**
 * `y = x · Wᵀ + b` (PyTorch's `nn.Linear`): `weight [out, in]`, `bias [out]`,
 * both initialised from U(−1/√in, 1/√in) with the seeded GPU generator. That is
 * PyTorch's default: `kaiming_uniform_(a=√5)` gives the bound
 * `√3 · √(2/(1+a²)) / √in = 1/√in` for the weight, and the bias uses 1/√in too.
 *
 * @example
 * ```ts
 * import { randn } from "../../mod.ts";
 * import { Linear } from "./linear.ts";
 * const fc = new Linear(784, 128);
 * console.log(fc.forward(randn([64, 784])).shape, fc.numParameters()); // [64, 128] 100480
 * ```
 */
export class Linear extends Module {
  /** Size of each input row. */
  readonly inFeatures: number;
  /** Size of each output row. */
  readonly outFeatures: number;
  /** `[outFeatures, inFeatures]`. */
  weight: Tensor;
  /** `[outFeatures]`, or null without bias. */
  bias: Tensor | null;

  /**
   * @param inFeatures Size of each input row.
   * @param outFeatures Size of each output row.
   * @param opts `bias: false` for no bias.
   */
  constructor(inFeatures: number, outFeatures: number, opts: LinearOptions = {}) {
    super();
    for (const [k, v] of [["inFeatures", inFeatures], ["outFeatures", outFeatures]] as const) {
      if (!Number.isInteger(v) || v < 0) {
        throw new RangeError(`Linear: ${k} must be an integer ≥ 0, got ${v}`);
      }
    }
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const bound = inFeatures > 0 ? 1 / Math.sqrt(inFeatures) : 0;
    this.weight = parameter(rand([outFeatures, inFeatures], -bound, bound));
    this.bias = (opts.bias ?? true) ? parameter(rand([outFeatures], -bound, bound)) : null;
  }

  /** `x [..., in]` → `[..., out]`. */
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }

  /** `in_features=784, out_features=128, bias=True`, as PyTorch prints it. */
  override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${
      this.bias ? "True" : "False"
    }`;
  }
}
