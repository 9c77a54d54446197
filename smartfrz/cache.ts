/**
 * Forward caching of a frozen prefix (beyond the SmartFRZ paper; AutoFreeze
 * caches on one GPU too). Once units 0..k−1 are frozen they run in eval mode
 * (see `units.ts`), so the output of unit k−1 for a training sample no
 * longer changes as long as the input is not randomly augmented. The cache
 * keeps that output per sample in host memory (within a byte budget) and,
 * in later epochs, feeds it straight to unit k: the prefix's modules are
 * skipped (their forward returns their input untouched, and the last frozen
 * unit's output module returns the cached batch).
 *
 * The cache fills itself during ordinary steps: in the first epoch after a
 * freeze each batch runs the prefix once (starting from the previous, shorter
 * prefix's cache when that one is complete) and the new unit's output is read
 * back and stored. A unit whose outputs for the whole training set do not fit
 * the budget (together with the cache being read) is not cached; a complete
 * cache of a shorter prefix, if there is one, is still read.
 * Only training steps use the cache; evaluation runs the whole model.
 *
 * For text models whose batches are padded to their longest row, a sample's
 * rows are stored up to its batch's length and padding rows beyond them are
 * zeros: the attention mask keeps padding from reaching real tokens, so the
 * loss is the same.
 *
 * @module
 */

import { keep, type Tensor, tensor } from "../engine/tensor.ts";
import { reshape } from "../engine/ops/shape.ts";
import { noGrad } from "../engine/autograd.ts";
import type { IndexedBatch, StepContext, TrainerHook } from "./hooks.ts";
import { type FrozenPrefix, unitOutput } from "./units.ts";

/** Options of {@link ForwardCache}. */
export interface ForwardCacheOptions {
  /** Training samples (batch indices run over `[0, samples)`). */
  samples: number;
  /** Host bytes the cache may hold (default 1 GiB). */
  budgetBytes?: number;
  /** For outputs `[N, T, H]` whose T varies by batch (padded text): the largest T. */
  maxRows?: number;
}

interface UnitCache {
  /** Per-sample shape without the leading batch axis (rows capacity first for 3-D). */
  sampleShape: number[];
  /** Floats per sample. */
  stride: number;
  data: Float32Array;
  /** Whether the rows axis varies by batch (padded text). */
  rows: boolean;
  filled: Uint8Array;
  count: number;
}

/**
 * The forward cache, as a trainer hook placed after the freezing controller.
 *
 * @example
 * ```ts ignore
 * const frz = await SmartFRZ.create(units, { stepsPerEpoch, optimizer });
 * const cache = new ForwardCache(frz, { samples: 60000, budgetBytes: 2 ** 30 });
 * await train({ ..., hooks: [frz, cache] });
 * console.log(cache.stats());
 * ```
 */
export class ForwardCache implements TrainerHook {
  readonly #ctl: FrozenPrefix;
  readonly #o: Required<Omit<ForwardCacheOptions, "maxRows">> & { maxRows?: number };
  readonly #caches = new Map<number, UnitCache>();
  /** Units whose outputs do not fit the budget. */
  readonly #tooBig = new Set<number>();
  #restore: (() => void)[] = [];
  #pending: { unit: number; indices: Uint32Array; out: Tensor } | null = null;
  /** Training steps that read the cache, and steps that filled it. */
  hits = 0;
  fills = 0;

  /**
   * @param controller The freezing controller (its frozen prefix decides what is cached).
   * @param o Training-set size, budget and row capacity.
   */
  constructor(controller: FrozenPrefix, o: ForwardCacheOptions) {
    this.#ctl = controller;
    this.#o = { budgetBytes: 2 ** 30, ...o };
  }

  /** Bytes held. */
  get bytes(): number {
    let b = 0;
    for (const c of this.#caches.values()) b += c.data.byteLength;
    return b;
  }

  /** Sets up this step's forward: skip the cached prefix, capture the unit being filled. */
  beforeForward(batch: IndexedBatch): void {
    this.#undo();
    const k = this.#ctl.count;
    if (k === 0 || !batch.indices) return;
    const target = k - 1;
    // The deepest complete cache at or below the frozen prefix feeds this step.
    let from = -1;
    for (let j = target; j >= 0; j--) {
      if (this.#caches.get(j)?.count === this.#o.samples) {
        from = j;
        break;
      }
    }
    // Caches of units before `from` are no longer needed.
    for (const j of [...this.#caches.keys()]) if (j < from) this.#caches.delete(j);
    if (from >= 0) this.#feed(from, batch.indices);
    if (from < target && !this.#tooBig.has(target)) this.#capture(target, batch.indices);
  }

  /** The prefix's forward replaced by the cached outputs of unit `j` (and identities before it). */
  #feed(j: number, indices: Uint32Array): void {
    const c = this.#caches.get(j)!;
    const units = this.#ctl.units;
    const out = unitOutput(units[j]);
    for (let u = 0; u <= j; u++) {
      for (const m of units[u].modules) {
        // A module holding the output module keeps running (its inner modules are handled).
        if (m === out || m.modules().includes(out)) continue;
        // Pass the input through as a view, so that a caller disposing "its" result cannot
        // release the caller's own tensor.
        m.setForwardOverride((inputs) => reshape(inputs[0] as Tensor, (inputs[0] as Tensor).shape));
        this.#restore.push(() => m.setForwardOverride(null));
      }
    }
    out.setForwardOverride((inputs) => {
      const rows = c.rows ? (inputs[0] as Tensor).shape[1] ?? c.sampleShape[0] : 0;
      return this.#assemble(c, indices, rows);
    });
    this.#restore.push(() => out.setForwardOverride(null));
    this.hits++;
  }

  /** Captures unit `t`'s output during this step's forward, to store after the step. */
  #capture(t: number, indices: Uint32Array): void {
    const out = unitOutput(this.#ctl.units[t]);
    const remove = out.registerForwardHook((_m, _in, y) => {
      this.#pending?.out.dispose();
      this.#pending = { unit: t, indices, out: noGrad(() => keep(reshape(y, y.shape))) };
    });
    this.#restore.push(remove);
  }

  /** The forward is over: the model runs normally again (evaluation included). */
  afterBackward(): void {
    this.#undo();
  }

  /** Stores what this step captured. */
  async onStepEnd(_ctx: StepContext): Promise<void> {
    this.#undo();
    const p = this.#pending;
    this.#pending = null;
    if (!p) return;
    try {
      // Stored even when the prefix grew at this step: the unit is still frozen, its outputs valid.
      const data = new Float32Array(await p.out.toArray());
      this.#store(p.unit, p.indices, p.out.shape, data);
    } finally {
      p.out.dispose();
    }
  }

  #store(unit: number, indices: Uint32Array, shape: readonly number[], data: Float32Array): void {
    let c = this.#caches.get(unit);
    const n = shape[0];
    const name = this.#ctl.units[unit].name;
    if (n !== indices.length) {
      throw new RangeError(
        `ForwardCache: unit "${name}" produced ${n} rows for a batch of ${indices.length} samples ` +
          "(one forward pass per training step is expected)",
      );
    }
    const variable = shape.length === 3 && this.#o.maxRows !== undefined;
    if (variable && shape[1] > this.#o.maxRows!) {
      throw new RangeError(
        `ForwardCache: unit "${name}" output [${shape}] has more rows than maxRows ${this.#o.maxRows}`,
      );
    }
    if (!c) {
      const sampleShape = variable ? [this.#o.maxRows!, shape[2]] : shape.slice(1);
      const stride = sampleShape.reduce((a, b) => a * b, 1);
      // The budget covers every cache held at once (a shorter prefix's feeds this one's filling).
      if (this.bytes + stride * this.#o.samples * 4 > this.#o.budgetBytes) {
        this.#tooBig.add(unit);
        return;
      }
      c = {
        sampleShape,
        stride,
        data: new Float32Array(stride * this.#o.samples),
        rows: variable,
        filled: new Uint8Array(this.#o.samples),
        count: 0,
      };
      this.#caches.set(unit, c);
    }
    const per = data.length / n;
    if (!c.rows && per !== c.stride) {
      throw new RangeError(
        `ForwardCache: unit "${name}" output [${shape}] does not match its cached shape [${c.sampleShape}]`,
      );
    }
    for (let b = 0; b < n; b++) {
      const i = indices[b];
      const dst = i * c.stride;
      // Rows beyond this batch's length (padded text) are zeros.
      if (c.rows) c.data.fill(0, dst + per, dst + c.stride);
      c.data.set(data.subarray(b * per, (b + 1) * per), dst);
      if (!c.filled[i]) {
        c.filled[i] = 1;
        c.count++;
      }
    }
    this.fills++;
  }

  #assemble(c: UnitCache, indices: Uint32Array, rows: number): Tensor {
    const n = indices.length;
    if (c.rows) {
      const h = c.sampleShape[1];
      const out = new Float32Array(n * rows * h);
      for (let b = 0; b < n; b++) {
        const src = indices[b] * c.stride;
        const r = Math.min(rows, c.sampleShape[0]);
        out.set(c.data.subarray(src, src + r * h), b * rows * h);
      }
      return tensor(out, { shape: [n, rows, h] });
    }
    const out = new Float32Array(n * c.stride);
    for (let b = 0; b < n; b++) {
      const src = indices[b] * c.stride;
      out.set(c.data.subarray(src, src + c.stride), b * c.stride);
    }
    return tensor(out, { shape: [n, ...c.sampleShape] });
  }

  #undo(): void {
    for (const r of this.#restore.splice(0).reverse()) r();
  }

  /** Which units are cached and how completely (see {@link ForwardCache.bytes} for the bytes). */
  stats(): { unit: string; filled: number; samples: number }[] {
    return [...this.#caches.entries()].map(([u, c]) => ({
      unit: this.#ctl.units[u].name,
      filled: c.count,
      samples: this.#o.samples,
    }));
  }

  /** Frees the cache. */
  dispose(): void {
    this.#undo();
    this.#pending?.out.dispose();
    this.#pending = null;
    this.#caches.clear();
  }
}
