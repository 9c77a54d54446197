/**
 * MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear
 * Bottlenecks", 2018), laid out exactly as torchvision 0.14's
 * `torchvision.models.mobilenet_v2`: `features.N` holds the stem
 * (`Conv2dNormActivation`: `features.0.0` conv, `features.0.1` BatchNorm,
 * `features.0.2` ReLU6), 17 `InvertedResidual` blocks (`features.N.conv.M...`)
 * and the last 1×1 `Conv2dNormActivation`; `classifier` is `[Dropout,
 * Linear]` (`classifier.1.weight`). State-dict keys and shapes are
 * torchvision's, so its checkpoints load with `loadStateDict`.
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { mobilenetV2 } from "./mobilenet_v2.ts";
 * const model = mobilenetV2({ numClasses: 10, widthMult: 0.25 });
 * console.log(model.eval().forward(randn([1, 3, 32, 32])).shape); // [1, 10]
 * ```
 *
 * @module
 */

import type { Tensor } from "../engine/tensor.ts";
import * as nn from "../engine/nn/mod.ts";
import { constant, kaimingNormalFanOut, normal } from "./init.ts";

/**
 * Rounds `v` to the nearest multiple of `divisor` (at least `minValue`),
 * going up a step when rounding would lose more than 10% (torchvision's
 * `_make_divisible`, from the TensorFlow MobileNet code).
 *
 * @param v Channel count before rounding.
 * @param divisor The multiple (8 in MobileNetV2).
 * @param minValue Lower bound (default `divisor`).
 * @returns The rounded channel count.
 *
 * @example
 * ```ts
 * import "../mod.ts";
 * import { makeDivisible } from "./mobilenet_v2.ts";
 * console.log(makeDivisible(32 * 0.35, 8), makeDivisible(160 * 1.4, 8)); // 16 224
 * ```
 */
export function makeDivisible(v: number, divisor: number, minValue?: number): number {
  const min = minValue ?? divisor;
  let out = Math.max(min, Math.floor(Math.trunc(v + divisor / 2) / divisor) * divisor);
  if (out < 0.9 * v) out += divisor;
  return out;
}

/** Options of {@link Conv2dNormActivation}. */
export interface Conv2dNormActivationOptions {
  /** Conv kernel size (default 3; padding is `(k − 1) / 2`). */
  kernelSize?: number;
  /** Conv stride (default 1). */
  stride?: number;
  /** Conv groups (default 1; `groups = channels` for a depthwise conv). */
  groups?: number;
}

/**
 * Conv (no bias) → BatchNorm → ReLU6 as one `Sequential` (`.0`, `.1`, `.2`),
 * torchvision's `Conv2dNormActivation` as MobileNetV2 uses it (formerly
 * `ConvBNActivation` / `ConvBNReLU`).
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { Conv2dNormActivation } from "./mobilenet_v2.ts";
 * const block = new Conv2dNormActivation(3, 8, { stride: 2 });
 * console.log(Object.keys(block.stateDict())[0], block.forward(randn([1, 3, 8, 8])).shape);
 * // "0.weight" [1, 8, 4, 4]
 * ```
 */
export class Conv2dNormActivation extends nn.Sequential {
  /** Output channels. */
  readonly outChannels: number;

  /**
   * Builds the layers with their default initialisation ({@link MobileNetV2} re-initialises them).
   *
   * @param inChannels Input channels.
   * @param outChannels Output channels.
   * @param opts Kernel size, stride, groups.
   */
  constructor(inChannels: number, outChannels: number, opts: Conv2dNormActivationOptions = {}) {
    const k = opts.kernelSize ?? 3;
    super(
      new nn.Conv2d(inChannels, outChannels, k, {
        stride: opts.stride ?? 1,
        padding: Math.floor((k - 1) / 2),
        groups: opts.groups ?? 1,
        bias: false,
      }),
      new nn.BatchNorm2d(outChannels),
      new nn.ReLU6(),
    );
    this.outChannels = outChannels;
  }
}

/**
 * The inverted residual block: optional 1×1 expansion to `inp·expandRatio`
 * channels, 3×3 depthwise conv (stride here), 1×1 linear projection to `oup`
 * (conv + BatchNorm, no activation), all in `conv`; the input is added back
 * when the stride is 1 and `inp == oup`.
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { InvertedResidual } from "./mobilenet_v2.ts";
 * const block = new InvertedResidual(8, 8, 1, 6);
 * console.log(block.useResConnect, block.forward(randn([1, 8, 4, 4])).shape); // true [1, 8, 4, 4]
 * ```
 */
export class InvertedResidual extends nn.Module {
  /** Stride of the depthwise conv (1 or 2). */
  readonly stride: number;
  /** Whether the input is added to the output. */
  readonly useResConnect: boolean;
  /** `[expand?, depthwise, project conv, project BatchNorm]`. */
  conv: nn.Sequential;
  /** Output channels. */
  readonly outChannels: number;

  /**
   * Builds the block with its layers' default initialisation ({@link MobileNetV2} re-initialises it).
   *
   * @param inp Input channels.
   * @param oup Output channels.
   * @param stride 1 or 2.
   * @param expandRatio Hidden channels per input channel (1: no expansion conv).
   */
  constructor(inp: number, oup: number, stride: number, expandRatio: number) {
    super();
    if (stride !== 1 && stride !== 2) {
      throw new RangeError(`InvertedResidual: stride must be 1 or 2, got ${stride}`);
    }
    this.stride = stride;
    // Python's round() is round-half-even; Math.round differs only at exact halves.
    const hidden = roundHalfEven(inp * expandRatio);
    this.useResConnect = stride === 1 && inp === oup;
    const layers: nn.Module[] = [];
    if (expandRatio !== 1) layers.push(new Conv2dNormActivation(inp, hidden, { kernelSize: 1 }));
    layers.push(
      new Conv2dNormActivation(hidden, hidden, { stride, groups: hidden }),
      new nn.Conv2d(hidden, oup, 1, { stride: 1, padding: 0, bias: false }),
      new nn.BatchNorm2d(oup),
    );
    this.conv = new nn.Sequential(...layers);
    this.outChannels = oup;
  }

  /** `[N, inp, H, W]` → `[N, oup, H/stride, W/stride]`. */
  forward(x: Tensor): Tensor {
    const out = this.conv.forward(x);
    if (!this.useResConnect) return out;
    const y = x.add(out);
    out.dispose();
    return y;
  }
}

function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Options of {@link MobileNetV2} / {@link mobilenetV2}. */
export interface MobileNetV2Options {
  /** Size of the classifier's output (default 1000). */
  numClasses?: number;
  /** Channels of the input images (default 3). Only `features.0.0.weight` depends on it. */
  inChannels?: number;
  /**
   * Scales every layer's channels (default 1.0), rounded by
   * {@link makeDivisible} to multiples of `roundNearest`; the last conv keeps
   * 1280 channels unless the multiplier is above 1.
   */
  widthMult?: number;
  /** The multiple channel counts are rounded to (default 8; 1 turns rounding off). */
  roundNearest?: number;
  /** Dropout probability before the classifier (default 0.2). */
  dropout?: number;
}

/** `[t, c, n, s]`: expansion, output channels, repeats, stride of the first repeat. */
const SETTING: readonly (readonly [number, number, number, number])[] = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

/**
 * MobileNetV2: `features` (stem, 17 inverted residual blocks, 1×1 conv to
 * `lastChannel`), global average pooling, `classifier` (Dropout, Linear).
 * Convs start from `kaiming_normal_(mode="fan_out")`, BatchNorms from 1 and 0,
 * the Linear from N(0, 0.01) with a zero bias, as in torchvision.
 *
 * @example
 * ```ts
 * import "../mod.ts";
 * import { MobileNetV2 } from "./mobilenet_v2.ts";
 * const model = new MobileNetV2({ widthMult: 0.35, numClasses: 10 });
 * console.log(model.lastChannel, model.numParameters()); // 1280 408938
 * ```
 */
export class MobileNetV2 extends nn.Module {
  /** Channels of the last conv (the classifier's input). */
  readonly lastChannel: number;
  /** Stem, inverted residual blocks and last conv. */
  features: nn.Sequential;
  /** `[Dropout, Linear(lastChannel, numClasses)]`. */
  classifier: nn.Sequential;

  /**
   * Builds the network, initialised as torchvision does (see the class doc).
   *
   * @param opts See {@link MobileNetV2Options}.
   */
  constructor(opts: MobileNetV2Options = {}) {
    super();
    const numClasses = opts.numClasses ?? 1000;
    const inChannels = opts.inChannels ?? 3;
    const widthMult = opts.widthMult ?? 1;
    const roundNearest = opts.roundNearest ?? 8;
    for (const [k, v] of Object.entries({ numClasses, inChannels, roundNearest })) {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`MobileNetV2: ${k} must be an integer ≥ 1, got ${v}`);
      }
    }
    if (!(widthMult > 0)) {
      throw new RangeError(`MobileNetV2: widthMult must be > 0, got ${widthMult}`);
    }
    let inputChannel = makeDivisible(32 * widthMult, roundNearest);
    this.lastChannel = makeDivisible(1280 * Math.max(1, widthMult), roundNearest);
    const features: nn.Module[] = [
      new Conv2dNormActivation(inChannels, inputChannel, { stride: 2 }),
    ];
    for (const [t, c, n, s] of SETTING) {
      const outputChannel = makeDivisible(c * widthMult, roundNearest);
      for (let i = 0; i < n; i++) {
        features.push(new InvertedResidual(inputChannel, outputChannel, i === 0 ? s : 1, t));
        inputChannel = outputChannel;
      }
    }
    features.push(new Conv2dNormActivation(inputChannel, this.lastChannel, { kernelSize: 1 }));
    this.features = new nn.Sequential(...features);
    this.classifier = new nn.Sequential(
      new nn.Dropout(opts.dropout ?? 0.2),
      new nn.Linear(this.lastChannel, numClasses),
    );

    for (const m of this.modules()) {
      if (m instanceof nn.Conv2d) {
        kaimingNormalFanOut(m.weight);
        if (m.bias) constant(m.bias, 0);
      } else if (m instanceof nn.BatchNorm2d) {
        if (m.weight) constant(m.weight, 1);
        if (m.bias) constant(m.bias, 0);
      } else if (m instanceof nn.Linear) {
        normal(m.weight, 0.01);
        if (m.bias) constant(m.bias, 0);
      }
    }
  }

  /** Images `[N, inChannels, H, W]` → logits `[N, numClasses]`. */
  forward(x: Tensor): Tensor {
    const f = this.features.forward(x);
    // adaptive_avg_pool2d(f, (1, 1)) + flatten(1), in one reduction.
    const pooled = f.mean([2, 3]);
    f.dispose();
    const out = this.classifier.forward(pooled);
    pooled.dispose();
    return out;
  }
}

/**
 * Builds torchvision's `mobilenet_v2()`: 3,504,872 parameters with the
 * defaults.
 *
 * @param opts See {@link MobileNetV2Options}.
 * @returns A freshly initialised model in training mode.
 *
 * @example
 * ```ts
 * import "../mod.ts";
 * import { mobilenetV2 } from "./mobilenet_v2.ts";
 * console.log(mobilenetV2({ widthMult: 0.35, numClasses: 10 }).numParameters()); // 408938
 * ```
 */
export function mobilenetV2(opts: MobileNetV2Options = {}): MobileNetV2 {
  return new MobileNetV2(opts);
}
