/**
 * The 2-D convolution layer.
 *
 * @module
 */

import { Module, parameter } from "./module.ts";
import type { Tensor } from "../tensor.ts";
import { rand } from "../ops/random.ts";
import { conv2d } from "../ops/conv.ts";

/** Options of {@link Conv2d}, after PyTorch's `nn.Conv2d` arguments. */
export interface Conv2dLayerOptions {
  /** Step of the kernel, one value or `[sy, sx]` (default 1). */
  stride?: number | [number, number];
  /** Zeros added on each side: a value, `[py, px]`, `"valid"` or `"same"` (default 0). */
  padding?: number | [number, number] | "same" | "valid";
  /** Spacing between kernel taps (default 1). */
  dilation?: number | [number, number];
  /** Channel groups (default 1; `groups = in = out` is depthwise). */
  groups?: number;
  /** Whether the layer adds a learned bias (default true). */
  bias?: boolean;
}

const pairOf = (v: number | [number, number]): [number, number] =>
  typeof v === "number" ? [v, v] : [v[0], v[1]];

/**
 * PyTorch's `nn.Conv2d` over NCHW: `weight [out, in/groups, kh, kw]` and
 * `bias [out]`, both drawn from U(−1/√fanIn, 1/√fanIn) with
 * `fanIn = in/groups · kh · kw` (PyTorch's `kaiming_uniform_(a=√5)` gives that
 * bound for the weight, and the bias uses it too), so PyTorch state dicts load
 * as they are.
 *
 * @example
 * ```ts
 * import { randn } from "../../mod.ts";
 * import { Conv2d } from "./conv.ts";
 * const conv = new Conv2d(3, 16, 3, { padding: 1 });
 * console.log(conv.forward(randn([2, 3, 8, 8])).shape, conv.numParameters()); // [2, 16, 8, 8] 448
 * ```
 */
export class Conv2d extends Module {
  /** Input channels. */
  readonly inChannels: number;
  /** Output channels. */
  readonly outChannels: number;
  /** `[kh, kw]`. */
  readonly kernelSize: [number, number];
  /** `[sy, sx]`. */
  readonly stride: [number, number];
  /** As given: `[py, px]`, `"same"` or `"valid"`. */
  readonly padding: [number, number] | "same" | "valid";
  /** `[dy, dx]`. */
  readonly dilation: [number, number];
  /** Channel groups. */
  readonly groups: number;
  /** `[out, in/groups, kh, kw]`. */
  weight: Tensor;
  /** `[out]`, or null without bias. */
  bias: Tensor | null;

  /**
   * @param inChannels Channels of the input.
   * @param outChannels Channels of the output.
   * @param kernelSize `k` or `[kh, kw]`.
   * @param opts Stride, padding, dilation, groups, bias.
   */
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number | [number, number],
    opts: Conv2dLayerOptions = {},
  ) {
    super();
    const groups = opts.groups ?? 1;
    const k = pairOf(kernelSize);
    for (
      const [name, v] of [
        ["inChannels", inChannels],
        ["outChannels", outChannels],
        ["groups", groups],
        ["kernelSize", k[0]],
        ["kernelSize", k[1]],
      ] as const
    ) {
      if (!Number.isInteger(v) || v < (name === "groups" || name === "kernelSize" ? 1 : 0)) {
        throw new RangeError(`Conv2d: invalid ${name} ${JSON.stringify(v)}`);
      }
    }
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new RangeError(
        `Conv2d: groups=${groups} must divide inChannels (${inChannels}) and outChannels (${outChannels})`,
      );
    }
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = k;
    this.stride = pairOf(opts.stride ?? 1);
    const p = opts.padding ?? 0;
    this.padding = typeof p === "string" ? p : pairOf(p);
    this.dilation = pairOf(opts.dilation ?? 1);
    this.groups = groups;
    const fanIn = (inChannels / groups) * k[0] * k[1];
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    this.weight = parameter(
      rand([outChannels, inChannels / groups, k[0], k[1]], -bound, bound),
    );
    this.bias = (opts.bias ?? true) ? parameter(rand([outChannels], -bound, bound)) : null;
  }

  /** `x [N, in, H, W]` → `[N, out, OH, OW]`. */
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, {
      bias: this.bias ?? undefined,
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
    });
  }

  /** `3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)`, as PyTorch prints it. */
  override extraRepr(): string {
    const t = (v: [number, number]) => `(${v[0]}, ${v[1]})`;
    let s = `${this.inChannels}, ${this.outChannels}, kernel_size=${t(this.kernelSize)}, ` +
      `stride=${t(this.stride)}`;
    const p = this.padding;
    if (typeof p === "string") s += `, padding=${p}`;
    else if (p[0] !== 0 || p[1] !== 0) s += `, padding=${t(p)}`;
    if (this.dilation[0] !== 1 || this.dilation[1] !== 1) s += `, dilation=${t(this.dilation)}`;
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (!this.bias) s += ", bias=False";
    return s;
  }
}
