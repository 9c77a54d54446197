/**
 * Pooling layers, after `torch.nn.MaxPool2d`, `AvgPool2d` and
 * `AdaptiveAvgPool2d` (they hold no parameters or buffers).
 *
 * @module
 */

import { Module } from "./module.ts";
import type { Tensor } from "../tensor.ts";
import {
  adaptiveAvgPool2d,
  avgPool2d,
  type AvgPool2dOptions,
  maxPool2d,
  type MaxPool2dOptions,
  type Size2,
} from "../ops/pool.ts";

/** A size as PyTorch prints it: `2` or `(2, 3)`. */
function pySize(v: Size2 | readonly (number | null)[]): string {
  return typeof v === "number" ? String(v) : `(${v.map((d) => d ?? "None").join(", ")})`;
}

const pyBool = (b: boolean) => (b ? "True" : "False");

/** Options of {@link MaxPool2d} (everything but the kernel size). */
export type MaxPool2dLayerOptions = Omit<MaxPool2dOptions, "kernelSize">;

/**
 * 2-D max pooling layer (see {@link maxPool2d} for the semantics).
 *
 * @example
 * ```ts
 * import { randn } from "../../mod.ts";
 * import { MaxPool2d } from "./pool.ts";
 * const pool = new MaxPool2d(3, { stride: 2, padding: 1 });
 * console.log(pool.forward(randn([1, 8, 32, 32])).shape); // [1, 8, 16, 16]
 * ```
 */
export class MaxPool2d extends Module {
  /** Window size. */
  readonly kernelSize: Size2;
  /** Step between windows. */
  readonly stride: Size2;
  /** Implicit −∞ padding. */
  readonly padding: Size2;
  /** Spacing between window elements. */
  readonly dilation: Size2;
  /** Rounds output sizes up. */
  readonly ceilMode: boolean;

  /**
   * @param kernelSize Window size.
   * @param opts Stride (default `kernelSize`), padding, dilation, ceil mode.
   */
  constructor(kernelSize: Size2, opts: MaxPool2dLayerOptions = {}) {
    super();
    this.kernelSize = kernelSize;
    this.stride = opts.stride ?? kernelSize;
    this.padding = opts.padding ?? 0;
    this.dilation = opts.dilation ?? 1;
    this.ceilMode = opts.ceilMode ?? false;
  }

  /** Pools `x [N, C, H, W]` (or `[C, H, W]`). */
  forward(x: Tensor): Tensor {
    return maxPool2d(x, this);
  }

  /** `kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False`, as PyTorch prints it. */
  override extraRepr(): string {
    return `kernel_size=${pySize(this.kernelSize)}, stride=${pySize(this.stride)}, padding=${
      pySize(this.padding)
    }, dilation=${pySize(this.dilation)}, ceil_mode=${pyBool(this.ceilMode)}`;
  }
}

/** Options of {@link AvgPool2d} (everything but the kernel size). */
export type AvgPool2dLayerOptions = Omit<AvgPool2dOptions, "kernelSize">;

/**
 * 2-D average pooling layer (see {@link avgPool2d} for the semantics).
 *
 * @example
 * ```ts
 * import { ones } from "../../mod.ts";
 * import { AvgPool2d } from "./pool.ts";
 * const pool = new AvgPool2d(2);
 * console.log(await pool.forward(ones([1, 1, 2, 2])).toArray()); // [1]
 * ```
 */
export class AvgPool2d extends Module {
  /** Window size. */
  readonly kernelSize: Size2;
  /** Step between windows. */
  readonly stride: Size2;
  /** Implicit zero padding. */
  readonly padding: Size2;
  /** Rounds output sizes up. */
  readonly ceilMode: boolean;
  /** Whether padded zeros count in the divisor. */
  readonly countIncludePad: boolean;
  /** Fixed divisor, if any. */
  readonly divisorOverride: number | undefined;

  /**
   * @param kernelSize Window size.
   * @param opts Stride (default `kernelSize`), padding, ceil mode, divisor options.
   */
  constructor(kernelSize: Size2, opts: AvgPool2dLayerOptions = {}) {
    super();
    this.kernelSize = kernelSize;
    this.stride = opts.stride ?? kernelSize;
    this.padding = opts.padding ?? 0;
    this.ceilMode = opts.ceilMode ?? false;
    this.countIncludePad = opts.countIncludePad ?? true;
    this.divisorOverride = opts.divisorOverride;
  }

  /** Pools `x [N, C, H, W]` (or `[C, H, W]`). */
  forward(x: Tensor): Tensor {
    return avgPool2d(x, this);
  }

  /** `kernel_size=2, stride=2, padding=0`, as PyTorch prints it. */
  override extraRepr(): string {
    return `kernel_size=${pySize(this.kernelSize)}, stride=${pySize(this.stride)}, padding=${
      pySize(this.padding)
    }`;
  }
}

/**
 * Adaptive average pooling to a fixed output size (see
 * {@link adaptiveAvgPool2d}); `new AdaptiveAvgPool2d(1)` is global average
 * pooling. A `null` size keeps that input axis.
 *
 * @example
 * ```ts
 * import { randn } from "../../mod.ts";
 * import { AdaptiveAvgPool2d } from "./pool.ts";
 * console.log(new AdaptiveAvgPool2d([7, 7]).forward(randn([2, 4, 10, 13])).shape); // [2, 4, 7, 7]
 * ```
 */
export class AdaptiveAvgPool2d extends Module {
  /** Output size `[OH, OW]`, or one number for both. */
  readonly outputSize: number | readonly [number | null, number | null];

  /** @param outputSize `[OH, OW]` (null keeps the input's size), or one number for both. */
  constructor(outputSize: number | readonly [number | null, number | null]) {
    super();
    this.outputSize = outputSize;
  }

  /** Pools `x [N, C, H, W]` (or `[C, H, W]`). */
  forward(x: Tensor): Tensor {
    return adaptiveAvgPool2d(x, this.outputSize);
  }

  /** `output_size=(1, 1)`, as PyTorch prints it. */
  override extraRepr(): string {
    return `output_size=${pySize(this.outputSize)}`;
  }
}
