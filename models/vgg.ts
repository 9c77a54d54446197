/**
 * VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks for
 * Large-Scale Image Recognition", 2014), laid out exactly as torchvision
 * 0.14's `torchvision.models.vgg`: `features` is one `Sequential` of convs,
 * (BatchNorms,) ReLUs and max pools (`features.0.weight`, `features.1.running_mean`
 * with BatchNorm), `avgpool` pools to 7×7 and `classifier` is
 * `[Linear(512·7·7, 4096), ReLU, Dropout, Linear(4096, 4096), ReLU, Dropout,
 * Linear(4096, classes)]` (`classifier.0.weight`, `classifier.3.weight`,
 * `classifier.6.weight`). State-dict keys and shapes are torchvision's.
 *
 * With `compactClassifier`, the head is the CIFAR-style one instead: `avgpool`
 * pools to 1×1 and `classifier` is a single `Linear(512, numClasses)`, so its
 * keys are `classifier.weight` and `classifier.bias` (the `features.*` keys
 * are unchanged; this is the layout of the popular pytorch-cifar VGG, whose
 * checkpoints therefore load too).
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { VGG } from "./vgg.ts";
 * const model = new VGG([8, "M", 16, "M"], { numClasses: 10, compactClassifier: true });
 * console.log(model.forward(randn([2, 3, 8, 8])).shape); // [2, 10]
 * ```
 *
 * @module
 */

import type { Tensor } from "../engine/tensor.ts";
import * as nn from "../engine/nn/mod.ts";
import { constant, kaimingNormalFanOut, normal } from "./init.ts";

/** A VGG `features` plan: output channels of each 3×3 conv, `"M"` for a 2×2 max pool. */
export type VggConfig = readonly (number | "M")[];

/** torchvision's plans: "A" is VGG-11, "B" VGG-13, "D" VGG-16, "E" VGG-19. */
export const VGG_CONFIGS: Readonly<Record<"A" | "B" | "D" | "E", VggConfig>> = {
  A: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
  B: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
  D: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
  // deno-fmt-ignore
  E: [
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
    512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
  ],
};

/** Options of {@link VGG} and the `vgg*` builders. */
export interface VggOptions {
  /** Size of the classifier's output (default 1000). */
  numClasses?: number;
  /** Channels of the input images (default 3). Only `features.0.weight` depends on it. */
  inChannels?: number;
  /** BatchNorm after every conv (default false; the `_bn` variants). */
  batchNorm?: boolean;
  /**
   * CIFAR-style head (default false): `avgpool` = AdaptiveAvgPool2d(1×1) and
   * `classifier` = one Linear(last conv channels, numClasses), keys
   * `classifier.weight` / `classifier.bias`.
   */
  compactClassifier?: boolean;
  /** Dropout probability in the full classifier (default 0.5; unused when compact). */
  dropout?: number;
}

function checkConfig(cfg: VggConfig): number {
  let last = 0;
  for (const v of cfg) {
    if (v === "M") continue;
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`VGG: config entries must be integers ≥ 1 or "M", got ${v}`);
    }
    last = v;
  }
  if (last === 0) throw new RangeError("VGG: the config has no conv layer");
  return last;
}

/**
 * torchvision's `make_layers`: a `Sequential` of 3×3 convs (padding 1, with
 * bias), optional BatchNorms, ReLUs, and 2×2 stride-2 max pools.
 *
 * @param cfg The plan.
 * @param batchNorm Whether a BatchNorm follows each conv.
 * @param inChannels Channels of the input (default 3).
 * @returns The `features` module.
 *
 * @example
 * ```ts
 * import "../mod.ts";
 * import { makeLayers } from "./vgg.ts";
 * console.log(Object.keys(makeLayers([8, "M"], true).stateDict()).slice(0, 3));
 * // ["0.weight", "0.bias", "1.weight"]
 * ```
 */
export function makeLayers(cfg: VggConfig, batchNorm: boolean, inChannels = 3): nn.Sequential {
  checkConfig(cfg);
  const layers: nn.Module[] = [];
  let c = inChannels;
  for (const v of cfg) {
    if (v === "M") {
      layers.push(new nn.MaxPool2d(2, { stride: 2 }));
    } else {
      layers.push(new nn.Conv2d(c, v, 3, { padding: 1 }));
      if (batchNorm) layers.push(new nn.BatchNorm2d(v));
      layers.push(new nn.ReLU());
      c = v;
    }
  }
  return new nn.Sequential(...layers);
}

/**
 * The state-dict keys and shapes a {@link VGG} with these arguments has, in
 * order, computed without allocating anything: VGG-11's default classifier
 * alone is a 25088×4096 weight (411 MB), above the 128 MiB that llvmpipe lets
 * one kernel bind, so the full-size model cannot be built there.
 * `num_batches_tracked` has shape `[]`.
 *
 * @param cfg The plan.
 * @param opts As for {@link VGG}.
 * @returns `[key, shape]` pairs; {@link vggNumParameters} sums the parameters.
 *
 * @example
 * ```ts
 * import "../mod.ts";
 * import { VGG_CONFIGS, vggStateDictShapes } from "./vgg.ts";
 * console.log(vggStateDictShapes(VGG_CONFIGS.A).at(-1)); // ["classifier.6.bias", [1000]]
 * ```
 */
export function vggStateDictShapes(cfg: VggConfig, opts: VggOptions = {}): [string, number[]][] {
  const last = checkConfig(cfg);
  const numClasses = opts.numClasses ?? 1000;
  const out: [string, number[]][] = [];
  let c = opts.inChannels ?? 3;
  let i = 0;
  for (const v of cfg) {
    if (v === "M") {
      i++;
      continue;
    }
    out.push([`features.${i}.weight`, [v, c, 3, 3]], [`features.${i}.bias`, [v]]);
    i++;
    if (opts.batchNorm) {
      for (const k of ["weight", "bias", "running_mean", "running_var"]) {
        out.push([`features.${i}.${k}`, [v]]);
      }
      out.push([`features.${i}.num_batches_tracked`, []]);
      i++;
    }
    i++; // ReLU
    c = v;
  }
  const linears: [string, number, number][] = opts.compactClassifier
    ? [["classifier", last, numClasses]]
    : [["classifier.0", last * 49, 4096], ["classifier.3", 4096, 4096], [
      "classifier.6",
      4096,
      numClasses,
    ]];
  for (const [name, inF, outF] of linears) {
    out.push([`${name}.weight`, [outF, inF]], [`${name}.bias`, [outF]]);
  }
  return out;
}

/**
 * Number of parameter elements of a {@link VGG} with these arguments, without
 * building it (132,863,336 for VGG-11 with 1000 classes).
 *
 * @param cfg The plan.
 * @param opts As for {@link VGG}.
 * @returns The count (buffers excluded).
 *
 * @example
 * ```ts
 * import "../mod.ts";
 * import { VGG_CONFIGS, vggNumParameters } from "./vgg.ts";
 * console.log(vggNumParameters(VGG_CONFIGS.A)); // 132863336
 * ```
 */
export function vggNumParameters(cfg: VggConfig, opts: VggOptions = {}): number {
  let n = 0;
  for (const [k, shape] of vggStateDictShapes(cfg, opts)) {
    if (/\.(running_mean|running_var|num_batches_tracked)$/.test(k)) continue;
    n += shape.reduce((p, d) => p * d, 1);
  }
  return n;
}

/**
 * A VGG network: `features` (see {@link makeLayers}), `avgpool`, flatten,
 * `classifier`. Convs start from `kaiming_normal_(mode="fan_out",
 * nonlinearity="relu")` with zero bias, BatchNorms from 1 and 0, Linears from
 * N(0, 0.01) with zero bias, as in torchvision.
 *
 * @example
 * ```ts
 * import "../mod.ts";
 * import { VGG } from "./vgg.ts";
 * const model = new VGG([8, "M", 16, "M"], { batchNorm: true, compactClassifier: true });
 * console.log(Object.keys(model.stateDict()).at(-1)); // "classifier.bias"
 * ```
 */
export class VGG extends nn.Module {
  /** Convs, (BatchNorms,) ReLUs and max pools. */
  features: nn.Sequential;
  /** AdaptiveAvgPool2d to 7×7 (1×1 with `compactClassifier`). */
  avgpool: nn.AdaptiveAvgPool2d;
  /** The 3-Linear head, or one Linear with `compactClassifier`. */
  classifier: nn.Sequential | nn.Linear;

  /**
   * Builds the network, initialised as torchvision does (see the class doc).
   *
   * @param cfg The `features` plan (e.g. {@link VGG_CONFIGS}`.A`).
   * @param opts See {@link VggOptions}.
   */
  constructor(cfg: VggConfig, opts: VggOptions = {}) {
    super();
    const last = checkConfig(cfg);
    const numClasses = opts.numClasses ?? 1000;
    const inChannels = opts.inChannels ?? 3;
    for (const [k, v] of Object.entries({ numClasses, inChannels })) {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`VGG: ${k} must be an integer ≥ 1, got ${v}`);
      }
    }
    this.features = makeLayers(cfg, opts.batchNorm ?? false, inChannels);
    if (opts.compactClassifier) {
      this.avgpool = new nn.AdaptiveAvgPool2d([1, 1]);
      this.classifier = new nn.Linear(last, numClasses);
    } else {
      const p = opts.dropout ?? 0.5;
      this.avgpool = new nn.AdaptiveAvgPool2d([7, 7]);
      this.classifier = new nn.Sequential(
        new nn.Linear(last * 7 * 7, 4096),
        new nn.ReLU(),
        new nn.Dropout(p),
        new nn.Linear(4096, 4096),
        new nn.ReLU(),
        new nn.Dropout(p),
        new nn.Linear(4096, numClasses),
      );
    }
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

  /** Images `[N, inChannels, H, W]` (H, W ≥ 32 for VGG-11's five pools) → logits `[N, numClasses]`. */
  forward(x: Tensor): Tensor {
    const f = this.features.forward(x);
    const pooled = this.avgpool.forward(f);
    if (f !== x) f.dispose();
    const flat = pooled.flatten(1);
    pooled.dispose();
    const out = this.classifier.forward(flat);
    flat.dispose();
    return out;
  }
}

/**
 * VGG-11 (config "A"), 132,863,336 parameters with 1000 classes
 * (torchvision's `vgg11()`).
 *
 * @param opts See {@link VggOptions} (`batchNorm` is ignored: see {@link vgg11Bn}).
 * @returns A freshly initialised model in training mode.
 *
 * @example
 * ```ts
 * import "../mod.ts";
 * import { vgg11 } from "./vgg.ts";
 * console.log(vgg11({ numClasses: 10, compactClassifier: true }).numParameters()); // 9225610
 * ```
 */
export function vgg11(opts: VggOptions = {}): VGG {
  return new VGG(VGG_CONFIGS.A, { ...opts, batchNorm: false });
}

/**
 * VGG-11 with BatchNorm (config "A"), 132,868,840 parameters with 1000
 * classes (torchvision's `vgg11_bn()`).
 *
 * @param opts See {@link VggOptions} (`batchNorm` is always on).
 * @returns A freshly initialised model in training mode.
 *
 * @example
 * ```ts
 * import "../mod.ts";
 * import { vgg11Bn } from "./vgg.ts";
 * console.log(vgg11Bn({ numClasses: 10, compactClassifier: true }).numParameters()); // 9231114
 * ```
 */
export function vgg11Bn(opts: VggOptions = {}): VGG {
  return new VGG(VGG_CONFIGS.A, { ...opts, batchNorm: true });
}
