/**
 * ResNet (He et al., "Deep Residual Learning for Image Recognition", 2015),
 * laid out exactly as torchvision 0.14's `torchvision.models.resnet`: the same
 * modules under the same names, so `stateDict()` keys and shapes are
 * torchvision's (`"conv1.weight"`, `"layer1.0.conv1.weight"`,
 * `"layer2.0.downsample.0.weight"`, `"fc.weight"`, ...) and its checkpoints
 * load with `loadStateDict`.
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { resnet18 } from "./resnet.ts";
 * const model = resnet18({ numClasses: 10, cifarStem: true, baseChannels: 8 });
 * console.log(model.forward(randn([2, 3, 32, 32])).shape); // [2, 10]
 * ```
 *
 * @module
 */

import type { Tensor } from "../engine/tensor.ts";
import * as nn from "../engine/nn/mod.ts";
import { forwardChain } from "../engine/nn/sequential.ts";
import { constant, kaimingNormalFanOut } from "./init.ts";

/** The residual block family: `"basic"` (two 3×3 convs) or `"bottleneck"` (1×1, 3×3, 1×1). */
export type ResNetBlock = "basic" | "bottleneck";

/** Options of {@link ResNet} and the `resnet*` builders. */
export interface ResNetOptions {
  /** Size of the classifier's output (default 1000). */
  numClasses?: number;
  /** Channels of the input images (default 3). Only `conv1.weight`'s shape depends on it. */
  inChannels?: number;
  /**
   * CIFAR-style stem (default false): `conv1` is a 3×3 stride-1 conv (padding 1)
   * instead of 7×7 stride 2, and `maxpool` is an identity, so a 32×32 image
   * reaches `layer4` at 4×4 instead of 1×1. Names are unchanged (`maxpool` has
   * no parameters), so only `conv1.weight`'s shape differs from torchvision's.
   */
  cifarStem?: boolean;
  /**
   * Zero the last BatchNorm weight of each residual branch (`bn2` of a basic
   * block, `bn3` of a bottleneck), so every block starts as the identity
   * (Goyal et al., 2017). Off by default, as in torchvision.
   */
  zeroInitResidual?: boolean;
  /** Conv groups of the bottleneck's 3×3 conv (ResNeXt; default 1). */
  groups?: number;
  /** Bottleneck width per group (default 64; 128 gives wide_resnet50_2, 4 with groups 32 ResNeXt-50 32x4d). */
  widthPerGroup?: number;
  /**
   * Channels of the stem and of `layer1`'s `planes` (default 64, torchvision's);
   * `layer2`–`layer4` use 2×, 4×, 8× it. Smaller values give narrow ResNets for
   * quick experiments (not a torchvision option).
   */
  baseChannels?: number;
}

function conv3x3(inPlanes: number, outPlanes: number, stride = 1, groups = 1, dilation = 1) {
  return new nn.Conv2d(inPlanes, outPlanes, 3, {
    stride,
    padding: dilation,
    groups,
    bias: false,
    dilation,
  });
}

function conv1x1(inPlanes: number, outPlanes: number, stride = 1) {
  return new nn.Conv2d(inPlanes, outPlanes, 1, { stride, bias: false });
}

/** Applies `mods` in turn, disposing each intermediate result (never `x`), as `Sequential` does. */
const chain = (x: Tensor, ...mods: nn.Module[]): Tensor => forwardChain(x, mods);

/**
 * `relu(bn(out) + identity)`, disposing `out` and `identity` (unless it is the
 * block's input `x`): one fused batch-norm pass unless a module is hooked.
 */
function residual(
  bn: nn.BatchNorm2d,
  relu: nn.Module,
  out: Tensor,
  identity: Tensor,
  x: Tensor,
): Tensor {
  let y: Tensor;
  if (!bn.hooked && !relu.hooked && relu.constructor === nn.ReLU) {
    y = bn.forwardFused(out, { residual: identity, relu: true });
  } else {
    const normed = bn.forward(out);
    const sum = normed.add(identity);
    normed.dispose();
    y = relu.forward(sum);
    sum.dispose();
  }
  out.dispose();
  if (identity !== x) identity.dispose();
  return y;
}

/**
 * ResNet-18/34's block: `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`,
 * the stride on `conv1`, and `downsample` (1×1 conv + BatchNorm) as the
 * shortcut when the shape changes.
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { BasicBlock } from "./resnet.ts";
 * const block = new BasicBlock(8, 8);
 * console.log(block.forward(randn([1, 8, 6, 6])).shape); // [1, 8, 6, 6]
 * ```
 */
export class BasicBlock extends nn.Module {
  /** Output channels per `planes` (1). */
  static readonly expansion = 1;
  /** 3×3 conv, stride `stride`. */
  conv1: nn.Conv2d;
  /** BatchNorm after `conv1`. */
  bn1: nn.BatchNorm2d;
  /** Shared ReLU. */
  relu: nn.ReLU;
  /** 3×3 conv, stride 1. */
  conv2: nn.Conv2d;
  /** BatchNorm after `conv2`. */
  bn2: nn.BatchNorm2d;
  /** Shortcut projection, or null for the identity. */
  downsample: nn.Sequential | null;
  /** Stride of the block. */
  readonly stride: number;

  /**
   * Builds the block with its layers' default initialisation ({@link ResNet} re-initialises it).
   *
   * @param inplanes Input channels.
   * @param planes Output channels.
   * @param stride Stride of `conv1` (default 1).
   * @param downsample Shortcut projection (default none).
   */
  constructor(
    inplanes: number,
    planes: number,
    stride = 1,
    downsample: nn.Sequential | null = null,
  ) {
    super();
    this.conv1 = conv3x3(inplanes, planes, stride);
    this.bn1 = new nn.BatchNorm2d(planes);
    this.relu = new nn.ReLU();
    this.conv2 = conv3x3(planes, planes);
    this.bn2 = new nn.BatchNorm2d(planes);
    this.downsample = downsample;
    this.stride = stride;
  }

  /** `[N, inplanes, H, W]` → `[N, planes, H/stride, W/stride]`. */
  forward(x: Tensor): Tensor {
    const out = chain(x, this.conv1, this.bn1, this.relu, this.conv2);
    const identity = this.downsample ? this.downsample.forward(x) : x;
    return residual(this.bn2, this.relu, out, identity, x);
  }
}

/**
 * ResNet-50's block: 1×1 conv to `width`, 3×3 conv (stride and groups here, as
 * in torchvision, "ResNet v1.5"), 1×1 conv to `4·planes`, each with BatchNorm,
 * then `relu(· + shortcut(x))`.
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { Bottleneck } from "./resnet.ts";
 * const block = new Bottleneck(16, 4);
 * console.log(block.forward(randn([1, 16, 5, 5])).shape); // [1, 16, 5, 5]
 * ```
 */
export class Bottleneck extends nn.Module {
  /** Output channels per `planes` (4). */
  static readonly expansion = 4;
  /** 1×1 conv to `width`. */
  conv1: nn.Conv2d;
  /** BatchNorm after `conv1`. */
  bn1: nn.BatchNorm2d;
  /** 3×3 conv, stride `stride`, `groups` groups. */
  conv2: nn.Conv2d;
  /** BatchNorm after `conv2`. */
  bn2: nn.BatchNorm2d;
  /** 1×1 conv to `4·planes`. */
  conv3: nn.Conv2d;
  /** BatchNorm after `conv3`. */
  bn3: nn.BatchNorm2d;
  /** Shared ReLU. */
  relu: nn.ReLU;
  /** Shortcut projection, or null for the identity. */
  downsample: nn.Sequential | null;
  /** Stride of the block. */
  readonly stride: number;

  /**
   * Builds the block with its layers' default initialisation ({@link ResNet} re-initialises it).
   *
   * @param inplanes Input channels.
   * @param planes Bottleneck planes (output is `4·planes`).
   * @param stride Stride of `conv2` (default 1).
   * @param downsample Shortcut projection (default none).
   * @param groups Groups of `conv2` (default 1).
   * @param baseWidth Width per group (default 64): `width = ⌊planes·baseWidth/64⌋·groups`.
   */
  constructor(
    inplanes: number,
    planes: number,
    stride = 1,
    downsample: nn.Sequential | null = null,
    groups = 1,
    baseWidth = 64,
  ) {
    super();
    const width = Math.floor(planes * (baseWidth / 64)) * groups;
    this.conv1 = conv1x1(inplanes, width);
    this.bn1 = new nn.BatchNorm2d(width);
    this.conv2 = conv3x3(width, width, stride, groups);
    this.bn2 = new nn.BatchNorm2d(width);
    this.conv3 = conv1x1(width, planes * Bottleneck.expansion);
    this.bn3 = new nn.BatchNorm2d(planes * Bottleneck.expansion);
    this.relu = new nn.ReLU();
    this.downsample = downsample;
    this.stride = stride;
  }

  /** `[N, inplanes, H, W]` → `[N, 4·planes, H/stride, W/stride]`. */
  forward(x: Tensor): Tensor {
    const out = chain(
      x,
      this.conv1,
      this.bn1,
      this.relu,
      this.conv2,
      this.bn2,
      this.relu,
      this.conv3,
    );
    const identity = this.downsample ? this.downsample.forward(x) : x;
    return residual(this.bn3, this.relu, out, identity, x);
  }
}

/**
 * A ResNet: stem (`conv1`, `bn1`, `relu`, `maxpool`), four stages
 * `layer1`–`layer4` of residual blocks (`nn.Sequential`s), global average
 * pooling (`avgpool`) and the classifier `fc`. Convolutions start from
 * `kaiming_normal_(mode="fan_out", nonlinearity="relu")`, BatchNorms from
 * weight 1 and bias 0, `fc` from `Linear`'s default, as in torchvision.
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { ResNet } from "./resnet.ts";
 * const model = new ResNet("bottleneck", [1, 1, 1, 1], { numClasses: 10, baseChannels: 4 });
 * console.log(Object.keys(model.stateDict())[0], model.forward(randn([2, 3, 32, 32])).shape);
 * // "conv1.weight" [2, 10]
 * ```
 */
export class ResNet extends nn.Module {
  /** The stem conv (7×7 stride 2, or 3×3 stride 1 with `cifarStem`). */
  conv1: nn.Conv2d;
  /** The stem BatchNorm. */
  bn1: nn.BatchNorm2d;
  /** The stem ReLU. */
  relu: nn.ReLU;
  /** 3×3 stride-2 max pooling, or an identity with `cifarStem`. */
  maxpool: nn.Module;
  /** Stage 1 (`baseChannels` planes, stride 1). */
  layer1: nn.Sequential;
  /** Stage 2 (2× planes, stride 2). */
  layer2: nn.Sequential;
  /** Stage 3 (4× planes, stride 2). */
  layer3: nn.Sequential;
  /** Stage 4 (8× planes, stride 2). */
  layer4: nn.Sequential;
  /** Global average pooling to 1×1. */
  avgpool: nn.AdaptiveAvgPool2d;
  /** The classifier. */
  fc: nn.Linear;

  /**
   * Builds the network, initialised as torchvision does (see the class doc).
   *
   * @param block Block family.
   * @param layers Number of blocks in each of the four stages (`[2, 2, 2, 2]` for ResNet-18).
   * @param opts See {@link ResNetOptions}.
   */
  constructor(block: ResNetBlock, layers: readonly number[], opts: ResNetOptions = {}) {
    super();
    const numClasses = opts.numClasses ?? 1000;
    const inChannels = opts.inChannels ?? 3;
    const groups = opts.groups ?? 1;
    const widthPerGroup = opts.widthPerGroup ?? 64;
    const base = opts.baseChannels ?? 64;
    if (block !== "basic" && block !== "bottleneck") {
      throw new TypeError(`ResNet: block must be "basic" or "bottleneck", got ${block}`);
    }
    if (layers.length !== 4 || !layers.every((n) => Number.isInteger(n) && n >= 1)) {
      throw new RangeError(`ResNet: layers must be 4 integers ≥ 1, got [${layers.join(", ")}]`);
    }
    for (const [k, v] of Object.entries({ numClasses, inChannels, groups, widthPerGroup, base })) {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(
          `ResNet: ${k === "base" ? "baseChannels" : k} must be an integer ≥ 1, got ${v}`,
        );
      }
    }
    if (block === "basic" && (groups !== 1 || widthPerGroup !== 64)) {
      throw new RangeError("ResNet: BasicBlock only supports groups=1 and widthPerGroup=64");
    }
    const expansion = block === "basic" ? BasicBlock.expansion : Bottleneck.expansion;
    let inplanes = base;
    const makeLayer = (planes: number, blocks: number, stride: number) => {
      let downsample: nn.Sequential | null = null;
      if (stride !== 1 || inplanes !== planes * expansion) {
        downsample = new nn.Sequential(
          conv1x1(inplanes, planes * expansion, stride),
          new nn.BatchNorm2d(planes * expansion),
        );
      }
      const make = (inp: number, s: number, ds: nn.Sequential | null): nn.Module =>
        block === "basic"
          ? new BasicBlock(inp, planes, s, ds)
          : new Bottleneck(inp, planes, s, ds, groups, widthPerGroup);
      const mods = [make(inplanes, stride, downsample)];
      inplanes = planes * expansion;
      for (let i = 1; i < blocks; i++) mods.push(make(inplanes, 1, null));
      return new nn.Sequential(...mods);
    };

    this.conv1 = opts.cifarStem
      ? new nn.Conv2d(inChannels, base, 3, { stride: 1, padding: 1, bias: false })
      : new nn.Conv2d(inChannels, base, 7, { stride: 2, padding: 3, bias: false });
    this.bn1 = new nn.BatchNorm2d(base);
    this.relu = new nn.ReLU();
    this.maxpool = opts.cifarStem
      ? new nn.Identity()
      : new nn.MaxPool2d(3, { stride: 2, padding: 1 });
    this.layer1 = makeLayer(base, layers[0], 1);
    this.layer2 = makeLayer(base * 2, layers[1], 2);
    this.layer3 = makeLayer(base * 4, layers[2], 2);
    this.layer4 = makeLayer(base * 8, layers[3], 2);
    this.avgpool = new nn.AdaptiveAvgPool2d([1, 1]);
    this.fc = new nn.Linear(base * 8 * expansion, numClasses);

    for (const m of this.modules()) {
      if (m instanceof nn.Conv2d) {
        kaimingNormalFanOut(m.weight);
      } else if (m instanceof nn.BatchNorm2d) {
        if (m.weight) constant(m.weight, 1);
        if (m.bias) constant(m.bias, 0);
      }
    }
    if (opts.zeroInitResidual) {
      for (const m of this.modules()) {
        if (m instanceof Bottleneck && m.bn3.weight) constant(m.bn3.weight, 0);
        else if (m instanceof BasicBlock && m.bn2.weight) constant(m.bn2.weight, 0);
      }
    }
  }

  /** Images `[N, inChannels, H, W]` → logits `[N, numClasses]`. */
  forward(x: Tensor): Tensor {
    const pooled = chain(
      x,
      this.conv1,
      this.bn1,
      this.relu,
      this.maxpool,
      this.layer1,
      this.layer2,
      this.layer3,
      this.layer4,
      this.avgpool,
    );
    const flat = pooled.flatten(1);
    if (pooled !== x) pooled.dispose();
    const out = this.fc.forward(flat);
    flat.dispose();
    return out;
  }
}

/**
 * ResNet-18: basic blocks `[2, 2, 2, 2]`, 11,689,512 parameters with 1000
 * classes (torchvision's `resnet18()`).
 *
 * @param opts See {@link ResNetOptions}.
 * @returns A freshly initialised model in training mode.
 *
 * @example
 * ```ts
 * import "../mod.ts";
 * import { resnet18 } from "./resnet.ts";
 * const model = resnet18({ numClasses: 10, cifarStem: true, baseChannels: 8 });
 * console.log(model.numParameters()); // 176402
 * ```
 */
export function resnet18(opts: ResNetOptions = {}): ResNet {
  return new ResNet("basic", [2, 2, 2, 2], opts);
}

/**
 * ResNet-34: basic blocks `[3, 4, 6, 3]`, 21,797,672 parameters with 1000
 * classes (torchvision's `resnet34()`).
 *
 * @param opts See {@link ResNetOptions}.
 * @returns A freshly initialised model in training mode.
 *
 * @example
 * ```ts
 * import "../mod.ts";
 * import { resnet34 } from "./resnet.ts";
 * console.log(resnet34({ numClasses: 10, baseChannels: 4 }).numParameters());
 * ```
 */
export function resnet34(opts: ResNetOptions = {}): ResNet {
  return new ResNet("basic", [3, 4, 6, 3], opts);
}

/**
 * ResNet-50: bottleneck blocks `[3, 4, 6, 3]`, 25,557,032 parameters with
 * 1000 classes (torchvision's `resnet50()`; `widthPerGroup: 128` gives
 * `wide_resnet50_2`, `groups: 32, widthPerGroup: 4` gives `resnext50_32x4d`).
 *
 * @param opts See {@link ResNetOptions}.
 * @returns A freshly initialised model in training mode.
 *
 * @example
 * ```ts
 * import "../mod.ts";
 * import { resnet50 } from "./resnet.ts";
 * console.log(resnet50({ numClasses: 10, baseChannels: 4 }).numParameters());
 * ```
 */
export function resnet50(opts: ResNetOptions = {}): ResNet {
  return new ResNet("bottleneck", [3, 4, 6, 3], opts);
}
