/**
 * Dropout as a layer.
 *
 * @module
 */

import { Module } from "./module.ts";
import type { Tensor } from "../tensor.ts";
import { dropout } from "../ops/random.ts";

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
