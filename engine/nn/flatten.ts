/**
 * Flattening as a layer.
 *
 * @module
 */

import { Module } from "./module.ts";
import type { Tensor } from "../tensor.ts";
import { flatten } from "../ops/shape.ts";

/**
 * Collapses axes `startDim..endDim` (inclusive) into one, as a view
 * (PyTorch's `nn.Flatten`; by default every axis but the batch axis).
 *
 * @example
 * ```ts
 * import { zeros } from "../../mod.ts";
 * import { Flatten } from "./flatten.ts";
 * console.log(new Flatten().forward(zeros([64, 1, 28, 28])).shape); // [64, 784]
 * ```
 */
export class Flatten extends Module {
  /** First axis flattened. */
  readonly startDim: number;
  /** Last axis flattened (inclusive). */
  readonly endDim: number;

  /**
   * @param startDim First axis flattened (default 1).
   * @param endDim Last axis flattened, inclusive (default -1).
   */
  constructor(startDim = 1, endDim = -1) {
    super();
    this.startDim = startDim;
    this.endDim = endDim;
  }

  /** The flattened view of `x`. */
  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }

  /** `start_dim=1, end_dim=-1`, as PyTorch prints it. */
  override extraRepr(): string {
    return `start_dim=${this.startDim}, end_dim=${this.endDim}`;
  }
}
