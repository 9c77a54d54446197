/**
 * Freezing units: the front-to-back blocks of a model that a freezing
 * controller may freeze (ResNet's stem, layer1..layer4; BERT's embeddings and
 * encoder layers; an MLP's hidden layers). The classifier head is never a
 * unit. {@link unitsOf} knows every model of `models/` and `nn.Sequential`.
 *
 * Freezing a unit sets `requiresGrad = false` on its parameters, so from the
 * next step the tape records nothing for it, its weights get no gradients,
 * the optimizer skips them, and (once every unit before it is frozen too) its
 * activations are not saved. A frozen unit also stays in evaluation mode
 * ({@link nn.Module.alwaysEval}): batch norm normalises with its running
 * statistics and no longer updates them, dropout is off. Its output is then a
 * fixed function of its input, which is what makes caching a frozen prefix's
 * output exact, and evaluation sees the same function that training does.
 *
 * @module
 */

import * as nn from "../engine/nn/mod.ts";
import type { Tensor } from "../engine/tensor.ts";
import {
  BertForSequenceClassification,
  BertModel,
  MobileNetV2,
  ResNet,
  VGG,
  VisionTransformer,
} from "../models/mod.ts";

/** One freezable block. */
export interface FreezeUnit {
  /** Name shown in logs and reports (e.g. "layer1"). */
  name: string;
  /** Its modules. */
  modules: nn.Module[];
  /** The module whose forward output is the unit's output (default: the last of `modules`). */
  output?: nn.Module;
}

/** The module whose forward output is the unit's output. */
export function unitOutput(u: FreezeUnit): nn.Module {
  return u.output ?? u.modules[u.modules.length - 1];
}

/** The parameters of a unit, in module order. */
export function unitParameters(u: FreezeUnit): Tensor[] {
  return u.modules.flatMap((m) => m.parameters());
}

/** Freezes a unit: no gradients for its parameters, evaluation mode for its modules. */
export function freezeUnit(u: FreezeUnit): void {
  for (const m of u.modules) {
    m.freeze();
    for (const sub of m.modules()) {
      sub.alwaysEval = true;
      sub.training = false;
    }
  }
}

/** What freezing must release besides the parameters' flags (an optimizer's state). */
export interface Releases {
  /** Frees gradients and state of `params` (see `optim.Optimizer.release`). */
  release(params: Tensor[]): void;
}

/** Options every controller takes. */
export interface FreezeOptions {
  /** The optimizer: freezing a unit frees its parameters' gradients and optimizer state. */
  optimizer?: Releases;
}

/**
 * The state every controller shares: which units are frozen. Units freeze
 * front to back, as in SmartFRZ and AutoFreeze, so that frozen layers also
 * save no activations for backward; {@link FrozenPrefix.freezeAt} also
 * freezes a unit out of order (SmartFRZ's `frontToBack: false`), which saves
 * that unit's weight gradients and optimizer work but not the backward pass
 * through it while a unit before it still trains.
 */
export class FrozenPrefix {
  /** Units in order. */
  readonly units: FreezeUnit[];
  readonly #frozen: boolean[];
  readonly #optimizer?: Releases;

  /**
   * @param units The model's units, front to back.
   * @param o The optimizer whose state freezing frees.
   */
  constructor(units: FreezeUnit[], o: FreezeOptions = {}) {
    this.units = units;
    this.#frozen = units.map(() => false);
    this.#optimizer = o.optimizer;
  }

  /** How many leading units are frozen. */
  get count(): number {
    const k = this.#frozen.indexOf(false);
    return k < 0 ? this.units.length : k;
  }

  /** Whether unit `i` is frozen. */
  isFrozen(i: number): boolean {
    return this.#frozen[i] ?? false;
  }

  /** Freezes the first unit not yet frozen; returns it (null when all are frozen). */
  freezeNext(): FreezeUnit | null {
    const i = this.#frozen.indexOf(false);
    return i < 0 ? null : this.freezeAt(i);
  }

  /** Freezes unit `i` (nothing happens if it already is); returns it. */
  freezeAt(i: number): FreezeUnit {
    const u = this.units[i];
    if (!u) throw new RangeError(`freezeAt(${i}): there are ${this.units.length} units`);
    if (this.#frozen[i]) return u;
    this.#frozen[i] = true;
    freezeUnit(u);
    this.#optimizer?.release(unitParameters(u));
    this.onFreeze(i, u);
    return u;
  }

  /** Called after unit `i` froze (subclasses release what they kept for it). */
  protected onFreeze(_i: number, _u: FreezeUnit): void {}

  /** Names of the frozen units, front to back (for checkpoints). */
  frozen(): string[] {
    return this.units.filter((_, i) => this.#frozen[i]).map((u) => u.name);
  }

  /** Re-freezes what a checkpoint recorded. */
  restoreFrozen(names: string[]): void {
    for (const n of names) {
      const i = this.units.findIndex((u) => u.name === n);
      if (i < 0) {
        throw new Error(
          `checkpoint freezes "${n}", but the model has no such unit (units: ${
            this.units.map((u) => u.name).join(", ")
          })`,
        );
      }
      this.freezeAt(i);
    }
  }
}

/**
 * The freezing units of a model, front to back, the classifier head excluded:
 * - `ResNet`: `stem` (conv1, bn1), `layer1` … `layer4`;
 * - `VGG`: one unit per convolution stage (each ends with a max-pool);
 * - `MobileNetV2`: the stem, then the inverted-residual stages as torchvision
 *   groups them (`features.1-1`, `features.2-3`, …, `features.17-17`);
 * - BERT (`BertModel`, `BertForSequenceClassification`): `embeddings`, then
 *   `encoder.layer.0` …;
 * - DeiT (`VisionTransformer`): `embeddings` (patch embedding with the class
 *   token and position embedding), then `blocks.0` …;
 * - `nn.Sequential`: each module with parameters together with the
 *   parameter-free modules after it (an activation, dropout), the last such
 *   group (the head) excluded.
 *
 * @example
 * ```ts
 * import { models } from "../mod.ts";
 * import { unitsOf } from "./units.ts";
 * const net = models.resnet18({ numClasses: 10, cifarStem: true, baseChannels: 8 });
 * console.log(unitsOf(net).map((u) => u.name)); // ["stem", "layer1", "layer2", "layer3", "layer4"]
 * ```
 */
export function unitsOf(model: nn.Module): FreezeUnit[] {
  if (model instanceof ResNet) {
    return [
      { name: "stem", modules: [model.conv1, model.bn1] },
      ...(["layer1", "layer2", "layer3", "layer4"] as const).map((k) => ({
        name: k,
        modules: [model[k]],
      })),
    ];
  }
  if (model instanceof VGG) {
    const units: FreezeUnit[] = [];
    let stage: nn.Module[] = [];
    for (const m of model.features) {
      stage.push(m);
      if (m instanceof nn.MaxPool2d) {
        units.push({ name: `features.stage${units.length + 1}`, modules: stage });
        stage = [];
      }
    }
    return units;
  }
  if (model instanceof MobileNetV2) {
    const f = [...model.features];
    // Stem, then the inverted-residual stages as torchvision groups them (t, c, n, s rows);
    // the last 1×1 convolution belongs with the head.
    const bounds = [1, 2, 4, 7, 11, 14, 17, f.length - 1];
    const units: FreezeUnit[] = [];
    let at = 0;
    for (const end of bounds) {
      units.push({ name: `features.${at}-${end - 1}`, modules: f.slice(at, end) });
      at = end;
    }
    return units;
  }
  if (model instanceof BertForSequenceClassification || model instanceof BertModel) {
    const bert = model instanceof BertModel ? model : model.bert;
    return [
      { name: "embeddings", modules: [bert.embeddings] },
      ...[...bert.encoder.layer].map((l, i) => ({ name: `encoder.layer.${i}`, modules: [l] })),
    ];
  }
  if (model instanceof VisionTransformer) {
    return [
      // patch_embed with cls_token and pos_embed: freezing only patch_embed would leave pos_embed
      // trainable, so every block would stay on the tape.
      { name: "embeddings", modules: [model.tokenEmbedding()], output: model.patch_embed },
      ...[...model.blocks].map((b, i) => ({ name: `blocks.${i}`, modules: [b] })),
    ];
  }
  if (model instanceof nn.Sequential) {
    const groups: FreezeUnit[] = [];
    [...model].forEach((m, i) => {
      if (m.parameters().length > 0 || groups.length === 0) {
        groups.push({ name: String(i), modules: [m] });
      } else groups[groups.length - 1].modules.push(m);
    });
    // The last group holding parameters is the head.
    let head = groups.length - 1;
    while (head >= 0 && groups[head].modules.every((m) => m.parameters().length === 0)) head--;
    return groups.slice(0, Math.max(0, head)).filter((g) =>
      g.modules.some((m) => m.parameters().length > 0)
    );
  }
  throw new TypeError(
    `unitsOf: no freezing units known for ${model.constructor.name} ` +
      "(ResNet, VGG, MobileNetV2, BERT, DeiT and nn.Sequential have them; " +
      "list a custom model's units as [{ name, modules }] front to back)",
  );
}
