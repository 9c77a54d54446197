/**
 * The models `deno task train --model NAME` can build, and the input shape
 * each expects.
 *
 * @module
 */

import { models, nn, type Tensor } from "../mod.ts";
import type { FreezeUnit } from "../smartfrz/units.ts";

/** What a model constructor is told about the data. */
export interface DataShape {
  /** Channels per image. */
  channels: number;
  /** Image height. */
  height: number;
  /** Image width. */
  width: number;
  /** Number of classes. */
  classes: number;
}

/** Options common to the models. */
export interface ModelArgs {
  /** Hidden units (MLP). */
  hidden: number;
  /** Channels of a ResNet's first stage (64 in the standard ResNets). */
  width: number;
}

/** A model ready for the trainer. */
export interface BuiltModel {
  /** The network. */
  model: nn.Module & { forward(x: Tensor): Tensor };
  /** One sample's shape as the network takes it. */
  sampleShape: number[];
  /** A one-line description. */
  description: string;
  /** Freezable blocks, front to back (the classifier head excluded). */
  units: FreezeUnit[];
}

type Builder = (d: DataShape, a: ModelArgs) => BuiltModel;

const BUILDERS: Record<string, Builder> = {
  mlp: (d, a) => {
    const inputs = d.channels * d.height * d.width;
    const hidden = new nn.Linear(inputs, a.hidden);
    const model = new nn.Sequential(hidden, new nn.ReLU(), new nn.Linear(a.hidden, d.classes));
    return {
      model,
      sampleShape: [inputs],
      description: `mlp ${inputs}-${a.hidden}-${d.classes}`,
      units: [{ name: "0", modules: [hidden] }],
    };
  },
  resnet18: (d, a) => resnet("resnet18", models.resnet18, d, a),
  resnet34: (d, a) => resnet("resnet34", models.resnet34, d, a),
  resnet50: (d, a) => resnet("resnet50", models.resnet50, d, a),
  vgg11: (d) => vgg("vgg11", false, d),
  vgg11_bn: (d) => vgg("vgg11_bn", true, d),
  mobilenetv2: (d) => {
    const model = models.mobilenetV2({ numClasses: d.classes, inChannels: d.channels });
    const f = [...model.features];
    // Stem, then the inverted-residual stages as torchvision groups them (t, c, n, s rows).
    const bounds = [1, 2, 4, 7, 11, 14, 17, 18];
    const units: FreezeUnit[] = [];
    let at = 0;
    for (const end of bounds) {
      units.push({ name: `features.${at}-${end - 1}`, modules: f.slice(at, end) });
      at = end;
    }
    return {
      model,
      sampleShape: [d.channels, d.height, d.width],
      description: "mobilenet_v2",
      units,
    };
  },
};

/** A ResNet; small images (≤ 64 px, e.g. CIFAR, Fashion-MNIST) get the CIFAR stem. */
function resnet(
  name: string,
  make: typeof models.resnet18,
  d: DataShape,
  a: ModelArgs,
): BuiltModel {
  const cifarStem = Math.max(d.height, d.width) <= 64;
  const model = make({
    numClasses: d.classes,
    inChannels: d.channels,
    cifarStem,
    baseChannels: a.width,
  });
  const units: FreezeUnit[] = [
    { name: "stem", modules: [model.conv1, model.bn1] },
    { name: "layer1", modules: [model.layer1] },
    { name: "layer2", modules: [model.layer2] },
    { name: "layer3", modules: [model.layer3] },
    { name: "layer4", modules: [model.layer4] },
  ];
  return {
    model,
    sampleShape: [d.channels, d.height, d.width],
    description: `${name}${cifarStem ? " (CIFAR stem)" : ""}${
      a.width !== 64 ? `, width ${a.width}` : ""
    }`,
    units,
  };
}

/** VGG11; small images get the compact 512→classes head common on CIFAR. */
function vgg(name: string, batchNorm: boolean, d: DataShape): BuiltModel {
  const compactClassifier = Math.max(d.height, d.width) <= 64;
  const model = (batchNorm ? models.vgg11Bn : models.vgg11)({
    numClasses: d.classes,
    inChannels: d.channels,
    compactClassifier,
  });
  // One unit per convolution stage (each ends with a max-pool).
  const units: FreezeUnit[] = [];
  let stage: nn.Module[] = [];
  for (const m of model.features) {
    stage.push(m);
    if (m instanceof nn.MaxPool2d) {
      units.push({ name: `features.stage${units.length + 1}`, modules: stage });
      stage = [];
    }
  }
  return {
    model,
    sampleShape: [d.channels, d.height, d.width],
    description: `${name}${compactClassifier ? " (compact classifier)" : ""}`,
    units,
  };
}

/** Names accepted by `--model`. */
export function modelNames(): string[] {
  return Object.keys(BUILDERS);
}

/**
 * Builds a model by name.
 *
 * @example
 * ```ts
 * import { buildModel } from "./models.ts";
 * const { sampleShape } = buildModel("mlp", { channels: 1, height: 28, width: 28, classes: 10 }, { hidden: 32, width: 64 });
 * console.log(sampleShape); // [784]
 * ```
 */
export function buildModel(name: string, d: DataShape, a: ModelArgs): BuiltModel {
  const b = BUILDERS[name];
  if (!b) throw new Error(`unknown model "${name}" (available: ${modelNames().join(", ")})`);
  return b(d, a);
}
