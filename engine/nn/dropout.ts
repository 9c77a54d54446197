/**
 * Dropout and stochastic depth (drop path) as layers.
 *
 * @module
 */

import { Module } from "./module.ts";
import { scope, type Tensor } from "../tensor.ts";
import { dropout, rand } from "../ops/random.ts";
import { cast, lt, mul } from "../ops/elementwise.ts";

/**
 * Inverted dropout (PyTorch's `nn.Dropout`): in training mode zeroes each
 * element with probability `p` and scales the rest by 1/(1−p); after
 * `eval()` it passes values through unchanged.
 *
 * @example
 * ```ts
 * import { ones } from "../../mod.ts";
 * import { Dropout } from "./dropout.ts";
 * const d = new Dropout(0.5);
 * console.log(await d.eval().forward(ones([4])).toArray()); // [1, 1, 1, 1]
 * ```
 */
export class Dropout extends Module {
  /** Probability of zeroing an element. */
  readonly p: number;

  /** @param p Probability of zeroing an element, in [0, 1) (default 0.5). */
  constructor(p = 0.5) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`Dropout: p must be in [0, 1), got ${p}`);
    this.p = p;
  }

  /** Dropout when training, a copy of `x` otherwise. */
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training);
  }

  /** `p=0.5`, as PyTorch prints it. */
  override extraRepr(): string {
    return `p=${this.p}`;
  }
}

/**
 * Stochastic depth (timm's `DropPath`, Huang et al. 2016): in training mode
 * zeroes a whole sample's branch output with probability `p` and scales the
 * kept samples by 1/(1−p); after `eval()` (or with `p` 0) it returns `x`
 * itself, like `nn.Identity` (no copy on the residual branch).
 * Used on the residual branches of DeiT's blocks.
 *
 * @example
 * ```ts
 * import { ones } from "../../mod.ts";
 * import { DropPath } from "./dropout.ts";
 * const d = new DropPath(0.1);
 * console.log((await d.eval().forward(ones([2, 3])).toArray()).length); // 6
 * ```
 */
export class DropPath extends Module {
  /** Probability of dropping a sample's branch. */
  readonly p: number;

  /** @param p Probability of dropping a sample's branch, in [0, 1) (default 0). */
  constructor(p = 0) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`DropPath: p must be in [0, 1), got ${p}`);
    this.p = p;
  }

  /** `x` with whole samples (leading axis) dropped and the rest scaled, when training. */
  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    const keep = 1 - this.p;
    return scope(() => {
      const shape = [x.shape[0], ...x.shape.slice(1).map(() => 1)];
      const mask = mul(cast(lt(rand(shape), keep), "f32"), 1 / keep);
      return mul(x, mask);
    });
  }

  /** `drop_prob=0.1`, as timm prints it. */
  override extraRepr(): string {
    return `drop_prob=${this.p}`;
  }
}
