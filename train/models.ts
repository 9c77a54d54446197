/**
 * The models `deno task train --model NAME` can build, and the input shape
 * each expects.
 *
 * @module
 */

import { models, nn, reshape, slice, type Tensor } from "../mod.ts";
import { type FreezeUnit, unitsOf } from "../smartfrz/units.ts";

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
  /** Text data: the tokenizer's vocabulary size and the tokens per example. */
  text?: { vocabSize: number; maxLength: number };
}

/** Options common to the models. */
export interface ModelArgs {
  /** Hidden units (MLP). */
  hidden: number;
  /** Channels of a ResNet's first stage (64 in the standard ResNets). */
  width: number;
  /** DeiT patch side (0: 16, or 4 for images of 32 px or less). */
  patchSize?: number;
}

/** How a model trains unless the command line says otherwise. */
export interface Recipe {
  /** Optimizer name. */
  optimizer?: "sgd" | "adamw";
  /** Peak learning rate. */
  lr?: number;
  /** Samples per step. */
  batchSize?: number;
  /** Weight decay. */
  weightDecay?: number;
  /** Schedule after the warm-up. */
  schedule?: "cosine" | "linear" | "step" | "constant";
  /** Warm-up steps as a fraction of all steps. */
  warmupFraction?: number;
}

const BERT_RECIPE: Recipe = {
  // BERT's fine-tuning recipe (Devlin et al. 2019: AdamW, 10% linear warm-up, linear decay);
  // a higher peak rate than fine-tuning's 2e-5..5e-5 because these small BERTs start from scratch.
  optimizer: "adamw",
  lr: 5e-4,
  batchSize: 32,
  weightDecay: 0.01,
  schedule: "linear",
  warmupFraction: 0.1,
};

const DEIT_RECIPE: Recipe = {
  // DeiT's recipe (Touvron et al. 2021: AdamW, weight decay 0.05, 5 warm-up epochs of 300,
  // cosine decay), scaled to short runs.
  optimizer: "adamw",
  lr: 1e-3,
  batchSize: 64,
  weightDecay: 0.05,
  schedule: "cosine",
  warmupFraction: 0.05,
};

/** The recipe of a model name (empty for the CNNs and the MLP: the CLI defaults). */
export function modelRecipe(name: string): Recipe {
  if (name.startsWith("bert-")) return BERT_RECIPE;
  if (name.startsWith("deit-")) return DEIT_RECIPE;
  return {};
}

/** Whether a model reads token ids (and so needs a text dataset). */
export function isTextModel(name: string): boolean {
  return name.startsWith("bert-");
}

/** A model ready for the trainer. */
export interface BuiltModel {
  /** The network. */
  model: nn.Module & { forward(x: Tensor): Tensor };
  /** One sample's shape as the network takes it. */
  sampleShape: number[];
  /** Batch `[N, ...sampleShape]` to logits, when that is not `model.forward`. */
  forward?: (x: Tensor) => Tensor;
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
      units: unitsOf(model),
    };
  },
  mlp3: (d, a) => {
    // A deeper MLP (three hidden layers: a, a, a/2) for freezing experiments with several units.
    const inputs = d.channels * d.height * d.width;
    const h2 = Math.max(1, a.hidden >> 1);
    const model = new nn.Sequential(
      new nn.Linear(inputs, a.hidden),
      new nn.ReLU(),
      new nn.Linear(a.hidden, a.hidden),
      new nn.ReLU(),
      new nn.Linear(a.hidden, h2),
      new nn.ReLU(),
      new nn.Linear(h2, d.classes),
    );
    return {
      model,
      sampleShape: [inputs],
      description: `mlp ${inputs}-${a.hidden}-${a.hidden}-${h2}-${d.classes}`,
      units: unitsOf(model),
    };
  },
  resnet10: (d, a) => resnet("resnet10", (o) => new models.ResNet("basic", [1, 1, 1, 1], o), d, a),
  resnet18: (d, a) => resnet("resnet18", models.resnet18, d, a),
  resnet34: (d, a) => resnet("resnet34", models.resnet34, d, a),
  resnet50: (d, a) => resnet("resnet50", models.resnet50, d, a),
  "vgg-mini": (d) => {
    // A VGG-style net of four convolutions (16-M-32-M-64-64-M, batch norm) for quick experiments.
    const model = new models.VGG([16, "M", 32, "M", 64, 64, "M"], {
      numClasses: d.classes,
      inChannels: d.channels,
      batchNorm: true,
      compactClassifier: true,
    });
    return {
      model,
      sampleShape: [d.channels, d.height, d.width],
      description: "vgg-mini (16-M-32-M-64-64-M, batch norm)",
      units: unitsOf(model),
    };
  },
  vgg11: (d) => vgg("vgg11", false, d),
  vgg11_bn: (d) => vgg("vgg11_bn", true, d),
  "bert-tiny": (d) => bertClassifier("bert-tiny", d),
  "bert-mini": (d) => bertClassifier("bert-mini", d),
  "bert-small": (d) => bertClassifier("bert-small", d),
  "deit-tiny": (d, a) => deit("deit-tiny", d, a),
  "deit-small": (d, a) => deit("deit-small", d, a),
  mobilenetv2: (d) => {
    const model = models.mobilenetV2({ numClasses: d.classes, inChannels: d.channels });
    return {
      model,
      sampleShape: [d.channels, d.height, d.width],
      description: "mobilenet_v2",
      units: unitsOf(model),
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
  return {
    model,
    sampleShape: [d.channels, d.height, d.width],
    description: `${name}${cifarStem ? " (CIFAR stem)" : ""}${
      a.width !== 64 ? `, width ${a.width}` : ""
    }`,
    units: unitsOf(model),
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
  return {
    model,
    sampleShape: [d.channels, d.height, d.width],
    description: `${name}${compactClassifier ? " (compact classifier)" : ""}`,
    units: unitsOf(model),
  };
}

/**
 * A BERT preset (Hugging Face's sizes: Turc et al. 2019) with a sequence-classification
 * head, trained from scratch on `d.text`'s vocabulary. Its input is one i32 tensor
 * `[N, 3, T]` per batch: token ids, token types and the attention mask.
 */
function bertClassifier(name: keyof typeof models.BERT_CONFIGS, d: DataShape): BuiltModel {
  if (!d.text) throw new Error(`--model ${name} reads text: use a text dataset (spam, mrpc, cola)`);
  const T = d.text.maxLength;
  const config = {
    ...models.BERT_CONFIGS[name],
    vocab_size: d.text.vocabSize,
    num_labels: d.classes,
    max_position_embeddings: Math.max(T, 512),
  };
  const model = models.bertForSequenceClassification(config);
  const forward = (x: Tensor): Tensor => {
    const [n, , t] = x.shape;
    const part = (i: number) => {
      const p = slice(x, [0, i, 0], [n, i + 1, t]);
      const r = reshape(p, [n, t]);
      p.dispose();
      return r;
    };
    const ids = part(0), types = part(1), mask = part(2);
    const logits = model.forward(ids, { tokenTypeIds: types, attentionMask: mask });
    for (const t of [ids, types, mask]) t.dispose();
    return logits;
  };
  return {
    model,
    forward,
    sampleShape: [3, T],
    description: `${name} (${config.num_hidden_layers} layers × ${config.hidden_size}, ` +
      `${config.num_attention_heads} heads, vocabulary ${config.vocab_size}, ${T} tokens)`,
    units: unitsOf(model),
  };
}

/** DeiT (timm's ViT layout) at the data's image size; small images get 4-pixel patches. */
function deit(name: "deit-tiny" | "deit-small", d: DataShape, a: ModelArgs): BuiltModel {
  if (d.text) throw new Error(`--model ${name} reads images: use an image dataset`);
  if (d.height !== d.width) {
    throw new Error(`--model ${name}: needs square images, got ${d.height}×${d.width}`);
  }
  const patchSize = a.patchSize || (d.height <= 32 ? 4 : 16);
  if (d.height % patchSize !== 0) {
    throw new Error(
      `--model ${name}: image side ${d.height} is not a multiple of --patch-size ${patchSize}`,
    );
  }
  const make = name === "deit-tiny" ? models.deit_tiny : models.deit_small;
  const model = make({
    imgSize: d.height,
    patchSize,
    inChans: d.channels,
    numClasses: d.classes,
  });
  const tokens = (d.height / patchSize) ** 2 + 1;
  return {
    model,
    sampleShape: [d.channels, d.height, d.width],
    description: `${name.replace("-", "_")} (${d.height} px, patch ${patchSize}, ${tokens} tokens)`,
    units: unitsOf(model),
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
