/**
 * The models `deno task train --model NAME` can build, and the input shape
 * each expects.
 *
 * @module
 */

import { nn, type Tensor } from "../mod.ts";
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
};

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
 * const { sampleShape } = buildModel("mlp", { channels: 1, height: 28, width: 28, classes: 10 }, { hidden: 32 });
 * console.log(sampleShape); // [784]
 * ```
 */
export function buildModel(name: string, d: DataShape, a: ModelArgs): BuiltModel {
  const b = BUILDERS[name];
  if (!b) throw new Error(`unknown model "${name}" (available: ${modelNames().join(", ")})`);
  return b(d, a);
}
