/**
 * Weight history with layer tailoring (SmartFRZ §3.2): for each unit, a fixed
 * seeded sample of `size` weight positions (1,024 by default) drawn over all
 * of the unit's parameters, and a ring buffer on the GPU of the last `window`
 * snapshots of those values. A snapshot is one small gather kernel per
 * parameter straight into the ring: no weights are read back.
 *
 * @module
 */

import { fmtShape, keep, type Tensor, tensor } from "../engine/tensor.ts";
import { zeros } from "../engine/ops/elementwise.ts";
import { noGrad } from "../engine/autograd.ts";
import { gatherInto, indexSelect } from "../engine/ops/index.ts";
import { mixSeed, Rng } from "../data/rng.ts";
import { type FreezeUnit, unitParameters } from "./units.ts";

/** Options of {@link WeightHistory}. */
export interface WeightHistoryOptions {
  /** Weights sampled per unit (default 1,024, the paper's). */
  size?: number;
  /** Snapshots kept per unit (default 30, the paper's). */
  window?: number;
  /** Seed of the sampled positions (default 0). */
  seed?: number;
}

interface Track {
  /** Per parameter holding sampled positions: the parameter, its positions, where they go. */
  parts: { param: Tensor; index: Tensor; offset: number }[];
  /** `[window, size]` ring of snapshots (null once released). */
  ring: Tensor | null;
  /** Snapshots taken so far. */
  count: number;
}

/** Saved form of a {@link WeightHistory} (JSON-safe). */
export interface WeightHistoryState {
  /** Snapshot counts per unit. */
  counts: number[];
  /** Each unit's ring, as base64 of its f32 bytes (null when released). */
  rings: (string | null)[];
}

/**
 * Positions sampled in a unit of `total` weights: `size` of them, without
 * replacement when `total ≥ size` and with replacement otherwise, sorted.
 *
 * @example
 * ```ts
 * import { tailorIndices } from "./history.ts";
 * console.log(tailorIndices(10, 4, 1).length, tailorIndices(3, 4, 1).every((i) => i < 3)); // 4 true
 * ```
 */
export function tailorIndices(total: number, size: number, seed: number): Float64Array {
  if (!(total > 0)) throw new RangeError(`tailorIndices: a unit needs weights, got ${total}`);
  const rng = new Rng(mixSeed(seed, 0x7a11));
  const out = new Float64Array(size);
  if (total >= size) {
    // Floyd's sampling: `size` distinct positions without materialising a permutation of `total`.
    const picked = new Set<number>();
    for (let j = total - size; j < total; j++) {
      const t = Math.floor(rng.next() * (j + 1));
      picked.add(picked.has(t) ? j : t);
    }
    let i = 0;
    for (const v of picked) out[i++] = v;
  } else {
    for (let i = 0; i < size; i++) out[i] = Math.floor(rng.next() * total);
  }
  return out.sort();
}

/**
 * The weight history of a model's units.
 *
 * @example
 * ```ts
 * import { nn } from "../mod.ts";
 * import { unitsOf } from "./units.ts";
 * import { WeightHistory } from "./history.ts";
 * const net = new nn.Sequential(new nn.Linear(8, 16), new nn.ReLU(), new nn.Linear(16, 2));
 * const h = new WeightHistory(unitsOf(net), { size: 32, window: 4 });
 * for (let i = 0; i < 5; i++) h.record();
 * const w = h.window(0)!;
 * console.log(h.count(0), w.shape); // 5 [4, 32]
 * w.dispose();
 * h.dispose();
 * ```
 */
export class WeightHistory {
  /** Sampled weights per unit. */
  readonly size: number;
  /** Snapshots kept per unit. */
  readonly windowSize: number;
  readonly #tracks: Track[];

  /**
   * @param units The units to follow, front to back.
   * @param o Sample size, window and seed.
   */
  constructor(units: FreezeUnit[], o: WeightHistoryOptions = {}) {
    this.size = o.size ?? 1024;
    this.windowSize = o.window ?? 30;
    if (!Number.isInteger(this.size) || this.size < 1) {
      throw new RangeError(`WeightHistory: size must be a positive integer, got ${o.size}`);
    }
    if (!Number.isInteger(this.windowSize) || this.windowSize < 2) {
      throw new RangeError(`WeightHistory: window must be an integer ≥ 2, got ${o.window}`);
    }
    const seed = o.seed ?? 0;
    this.#tracks = units.map((u, ui) => {
      const params = unitParameters(u);
      const total = params.reduce((a, p) => a + p.size, 0);
      if (total === 0) throw new RangeError(`WeightHistory: unit "${u.name}" has no parameters`);
      const picks = tailorIndices(total, this.size, mixSeed(seed, ui));
      const parts: Track["parts"] = [];
      let start = 0, at = 0;
      for (const p of params) {
        const local: number[] = [];
        const offset = at;
        while (at < picks.length && picks[at] < start + p.size) local.push(picks[at++] - start);
        start += p.size;
        if (local.length === 0) continue;
        parts.push({
          param: p,
          index: keep(tensor(Int32Array.from(local), { shape: [local.length], dtype: "i32" })),
          offset,
        });
      }
      return { parts, ring: keep(zeros([this.windowSize, this.size])), count: 0 };
    });
  }

  /** Number of units followed. */
  get units(): number {
    return this.#tracks.length;
  }

  /** Snapshots taken of unit `i` so far (counting those that left the window). */
  count(i: number): number {
    return this.#track(i).count;
  }

  /** Whether unit `i` has a full window of snapshots. */
  ready(i: number): boolean {
    const t = this.#track(i);
    return t.ring !== null && t.count >= this.windowSize;
  }

  /** Takes one snapshot of every unit still followed (GPU work only). */
  record(): void {
    noGrad(() => {
      for (const t of this.#tracks) {
        if (!t.ring) continue;
        const slot = t.count % this.windowSize;
        for (const part of t.parts) {
          gatherInto(t.ring, slot * this.size + part.offset, part.param, part.index);
        }
        t.count++;
      }
    });
  }

  /**
   * Unit `i`'s last `window` snapshots, oldest first, as a new `[window, size]`
   * tensor (the caller disposes it); null before the window is full.
   */
  window(i: number): Tensor | null {
    return this.ready(i) ? this.snapshots(i) : null;
  }

  /**
   * Every snapshot of unit `i` still held (up to `window`), oldest first, as a
   * new `[rows, size]` tensor (the caller disposes it).
   */
  snapshots(i: number): Tensor {
    const t = this.#track(i);
    if (!t.ring) throw new Error(`WeightHistory: unit ${i} was released`);
    const W = this.windowSize;
    const rows = Math.min(t.count, W);
    const first = t.count - rows;
    const order = Int32Array.from({ length: rows }, (_, k) => (first + k) % W);
    return noGrad(() => {
      const idx = tensor(order, { shape: [rows], dtype: "i32" });
      const out = indexSelect(t.ring!, 0, idx);
      idx.dispose();
      return out;
    });
  }

  /** Stops following unit `i` and frees its buffers (a frozen unit's weights no longer change). */
  release(i: number): void {
    const t = this.#track(i);
    t.ring?.dispose();
    t.ring = null;
    for (const p of t.parts) p.index.dispose();
    t.parts = [];
  }

  /** The history, for a checkpoint (reads the rings back). */
  async state(): Promise<WeightHistoryState> {
    const rings = await Promise.all(this.#tracks.map(async (t) => {
      if (!t.ring) return null;
      const a = new Float32Array(await t.ring.toArray());
      return encodeBase64(new Uint8Array(a.buffer));
    }));
    return { counts: this.#tracks.map((t) => t.count), rings };
  }

  /** Restores {@link WeightHistory.state}'s result (units released there are released here). */
  restore(s: WeightHistoryState): void {
    if (s.counts.length !== this.#tracks.length) {
      throw new RangeError(
        `WeightHistory.restore: the state has ${s.counts.length} units, this history ${this.#tracks.length}`,
      );
    }
    this.#tracks.forEach((t, i) => {
      const data = s.rings[i];
      if (data === null) {
        this.release(i);
        t.count = s.counts[i];
        return;
      }
      const a = new Float32Array(decodeBase64(data).buffer);
      if (a.length !== this.windowSize * this.size || !t.ring) {
        throw new RangeError(
          `WeightHistory.restore: unit ${i} holds ${a.length} values, expected ${
            fmtShape([this.windowSize, this.size])
          }`,
        );
      }
      t.ring.dispose();
      t.ring = keep(tensor(a, { shape: [this.windowSize, this.size] }));
      t.count = s.counts[i];
    });
  }

  /** Frees every buffer. */
  dispose(): void {
    for (let i = 0; i < this.#tracks.length; i++) this.release(i);
  }

  #track(i: number): Track {
    const t = this.#tracks[i];
    if (!t) throw new RangeError(`WeightHistory: no unit ${i} (${this.#tracks.length} units)`);
    return t;
  }
}

function encodeBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function decodeBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
