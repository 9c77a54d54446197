/**
 * Freezing units: the front-to-back blocks of a model that a freezing
 * controller may freeze (ResNet's stem, layer1..layer4; an MLP's hidden
 * layers). The classifier head is never a unit. Freezing a unit sets
 * `requiresGrad = false` on its parameters, so from the next step the tape
 * records nothing for it, its weights get no gradients, the optimizer skips
 * them, and (once every unit before it is frozen too) its activations are not
 * saved.
 *
 * @module
 */

import type { nn } from "../mod.ts";

/** One freezable block. */
export interface FreezeUnit {
  /** Name shown in logs and reports (e.g. "layer1"). */
  name: string;
  /** Its modules. */
  modules: nn.Module[];
}

/** Freezes a unit's parameters. */
export function freezeUnit(u: FreezeUnit): void {
  for (const m of u.modules) m.freeze();
}

/**
 * The state every controller shares: which prefix of the units is frozen.
 * Units freeze front to back, as in SmartFRZ and AutoFreeze, so that frozen
 * layers also save no activations for backward.
 */
export class FrozenPrefix {
  /** Units in order. */
  readonly units: FreezeUnit[];
  /** How many leading units are frozen. */
  count = 0;

  /** @param units The model's units, front to back. */
  constructor(units: FreezeUnit[]) {
    this.units = units;
  }

  /** Freezes the next unit; returns it (null when all are frozen). */
  freezeNext(): FreezeUnit | null {
    if (this.count >= this.units.length) return null;
    const u = this.units[this.count++];
    freezeUnit(u);
    return u;
  }

  /** Names of the frozen units (for checkpoints). */
  frozen(): string[] {
    return this.units.slice(0, this.count).map((u) => u.name);
  }

  /** Re-freezes what a checkpoint recorded. */
  restoreFrozen(names: string[]): void {
    for (const n of names) {
      if (this.units[this.count]?.name !== n) {
        throw new Error(
          `checkpoint freezes "${n}", but the next unit is "${this.units[this.count]?.name}"`,
        );
      }
      this.freezeNext();
    }
  }
}
