/**
 * The epoch bookkeeping shared by the image `BatchLoader` (data/loader.ts)
 * and the text `TextBatchLoader` (data/text_set.ts): seeded per-epoch order, position, `state()` /
 * `restore()` and the `batches()` iteration, with an optional one-ahead
 * prefetch. A loader only says how to build one batch.
 *
 * The order of epoch `e` is a pure function of `(seed, e)`: its permutation
 * comes from an {@link Rng} seeded with `mixSeed(seed, e)`, so both loaders
 * draw the same order for the same seed and set size. A loader's whole
 * position is two integers (epoch, samples consumed in it), and a run
 * resumed from a checkpoint sees exactly the batches it would have seen.
 *
 * @module
 */

import { mixSeed, Rng } from "./rng.ts";

/** Where a loader is: enough to resume the exact same order. */
export interface LoaderState {
  /** Epochs completed so far (0-based index of the current epoch). */
  epoch: number;
  /** Samples of the current epoch already handed out. */
  position: number;
  /** The loader's seed, so that restoring into a loader with another seed is caught. */
  seed: number;
}

/** Options every {@link EpochLoader} takes. */
export interface EpochLoaderOptions {
  /** Samples per batch (the last one may be smaller unless `dropLast`). */
  batchSize: number;
  /** Reshuffle every epoch (default false: set order). */
  shuffle?: boolean;
  /** Seed of the shuffles (default 0). */
  seed?: number;
  /** Skip the final partial batch of each epoch (default false). */
  dropLast?: boolean;
}

/**
 * Batch iterator over the `n` samples of a set, with seeded per-epoch
 * shuffling and save/restore of its position; subclasses build the batches.
 *
 * @typeParam S The set iterated over (only its sample count `n` is used here).
 * @typeParam B One batch.
 *
 * @example
 * ```ts
 * import { EpochLoader } from "./epoch_loader.ts";
 *
 * class IndexLoader extends EpochLoader<{ n: number }, Uint32Array> {
 *   constructor(n: number) {
 *     super("IndexLoader", { n }, { batchSize: 4, shuffle: true, seed: 1 });
 *   }
 *   protected override buildBatch(order: Uint32Array, start: number, size: number): Uint32Array {
 *     return order.slice(start, start + size);
 *   }
 * }
 * const loader = new IndexLoader(10);
 * for await (const indices of loader) console.log(indices.length); // 4, 4, 2
 * console.log(loader.state()); // { epoch: 1, position: 0, seed: 1 }
 * ```
 */
export abstract class EpochLoader<S extends { readonly n: number }, B> {
  /** The samples iterated over. */
  readonly set: S;
  /** Samples per batch. */
  readonly batchSize: number;
  /** Whether each epoch has its own permutation. */
  readonly shuffle: boolean;
  /** Seed of the permutations. */
  readonly seed: number;
  /** Whether the final partial batch is skipped. */
  readonly dropLast: boolean;
  #name: string;
  #prefetch: boolean;
  #epoch = 0;
  #position = 0;
  #order: Uint32Array | undefined;
  #orderEpoch = -1;
  #running = false;

  /**
   * Checks the options; the loader starts at the beginning of epoch 0.
   *
   * @param name Class name, the prefix of error messages.
   * @param set The samples to iterate over.
   * @param opts Batch size, shuffling, seed and `dropLast`.
   * @param prefetch Build batch i+1 in a timer task while the consumer holds
   *   batch i (see {@link EpochLoader.batches}).
   */
  protected constructor(name: string, set: S, opts: EpochLoaderOptions, prefetch = false) {
    const { batchSize, shuffle = false, seed = 0, dropLast = false } = opts;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new Error(`${name}: batchSize must be a positive integer, got ${batchSize}`);
    }
    if (!Number.isFinite(seed)) throw new Error(`${name}: seed must be finite, got ${seed}`);
    this.#name = name;
    this.#prefetch = prefetch;
    this.set = set;
    this.batchSize = batchSize;
    this.shuffle = shuffle;
    this.seed = seed;
    this.dropLast = dropLast;
  }

  /**
   * Builds the batch of samples `order[start .. start+size)` of epoch `epoch`.
   *
   * @param order The epoch's sample order ({@link EpochLoader.order}).
   * @param start First position of the batch in `order`.
   * @param size Samples in the batch.
   * @param epoch The epoch (e.g. to seed augmentation).
   * @returns The batch.
   */
  protected abstract buildBatch(order: Uint32Array, start: number, size: number, epoch: number): B;

  /**
   * Batches per epoch: `ceil(n / batchSize)`, or `floor` with `dropLast`.
   *
   * @example
   * ```ts
   * import { BatchLoader, type ImageSet } from "./mod.ts";
   *
   * const train: ImageSet = {
   *   images: new Uint8Array(60000 * 4), labels: new Uint8Array(60000),
   *   n: 60000, height: 2, width: 2, channels: 1, classes: ["a"],
   * };
   * console.log(new BatchLoader(train, { batchSize: 128, dropLast: true }).batchesPerEpoch); // 468
   * ```
   */
  get batchesPerEpoch(): number {
    const n = this.set.n;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Samples handed out per epoch (n, less the dropped tail with `dropLast`). */
  get #epochSamples(): number {
    return this.dropLast ? this.batchesPerEpoch * this.batchSize : this.set.n;
  }

  /**
   * The index of the current epoch (epochs completed so far).
   *
   * @example
   * ```ts
   * import { BatchLoader, type ImageSet } from "./mod.ts";
   *
   * const set: ImageSet = {
   *   images: new Uint8Array(40), labels: new Uint8Array(10),
   *   n: 10, height: 2, width: 2, channels: 1, classes: ["a"],
   * };
   * console.log(new BatchLoader(set, { batchSize: 8 }).epoch); // 0
   * ```
   */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * Samples of the current epoch already handed out.
   *
   * @example
   * ```ts
   * import { BatchLoader, type ImageSet } from "./mod.ts";
   *
   * const set: ImageSet = {
   *   images: new Uint8Array(40), labels: new Uint8Array(10),
   *   n: 10, height: 2, width: 2, channels: 1, classes: ["a"],
   * };
   * console.log(new BatchLoader(set, { batchSize: 8 }).position); // 0
   * ```
   */
  get position(): number {
    return this.#position;
  }

  /**
   * The sample order of an epoch: a permutation of 0..n-1 that depends only
   * on `(seed, epoch)`, or the identity without `shuffle`.
   *
   * @param epoch Epoch index.
   * @returns A `Uint32Array` of length n (shared; do not modify).
   *
   * @example
   * ```ts
   * import { BatchLoader, type ImageSet } from "./mod.ts";
   *
   * const set: ImageSet = {
   *   images: new Uint8Array(40), labels: new Uint8Array(10),
   *   n: 10, height: 2, width: 2, channels: 1, classes: ["a"],
   * };
   * const loader = new BatchLoader(set, { batchSize: 8, shuffle: true, seed: 3 });
   * console.log(loader.order(0).length === set.n); // true
   * ```
   */
  order(epoch: number): Uint32Array {
    if (this.#order === undefined || this.#orderEpoch !== epoch) {
      const n = this.set.n;
      this.#order = this.shuffle
        ? new Rng(mixSeed(this.seed, epoch)).permutation(n)
        : Uint32Array.from({ length: n }, (_, i) => i);
      this.#orderEpoch = epoch;
    }
    return this.#order;
  }

  /**
   * Where the loader is, for a checkpoint. Taken between batches, it means:
   * every batch handed out so far counts as consumed.
   *
   * @returns A JSON-safe snapshot.
   *
   * @example
   * ```ts
   * import { BatchLoader, type ImageSet } from "./mod.ts";
   *
   * const set: ImageSet = {
   *   images: new Uint8Array(40), labels: new Uint8Array(10),
   *   n: 10, height: 2, width: 2, channels: 1, classes: ["a"],
   * };
   * const loader = new BatchLoader(set, { batchSize: 8, seed: 5 });
   * console.log(loader.state()); // { epoch: 0, position: 0, seed: 5 }
   * ```
   */
  state(): LoaderState {
    return { epoch: this.#epoch, position: this.#position, seed: this.seed };
  }

  /**
   * Moves the loader to a saved position; the next batch is the one that
   * would have followed when the state was taken.
   *
   * @param s A value from {@link EpochLoader.state}; `seed` may be left out,
   *   but if present it must match this loader's.
   *
   * @example
   * ```ts
   * import { BatchLoader, type ImageSet } from "./mod.ts";
   *
   * const set: ImageSet = {
   *   images: new Uint8Array(40), labels: new Uint8Array(10),
   *   n: 10, height: 2, width: 2, channels: 1, classes: ["a"],
   * };
   * const loader = new BatchLoader(set, { batchSize: 8, shuffle: true, seed: 5 });
   * loader.restore({ epoch: 3, position: 8, seed: 5 });
   * ```
   */
  restore(s: { epoch: number; position: number; seed?: number }): void {
    const name = this.#name;
    if (this.#running) throw new Error(`${name}.restore: a batches() iteration is running`);
    if (!Number.isInteger(s.epoch) || s.epoch < 0) {
      throw new Error(`${name}.restore: bad epoch ${s.epoch}`);
    }
    if (!Number.isInteger(s.position) || s.position < 0 || s.position > this.set.n) {
      throw new Error(`${name}.restore: position ${s.position} is outside 0..${this.set.n}`);
    }
    if (s.seed !== undefined && s.seed !== this.seed) {
      throw new Error(
        `${name}.restore: state was saved with seed ${s.seed}, this loader has ${this.seed}`,
      );
    }
    this.#epoch = s.epoch;
    this.#position = s.position;
  }

  /**
   * Iterates over the rest of the current epoch, then advances to the next
   * epoch. Breaking out early keeps the position after the last batch handed
   * out, so the next call continues from there.
   *
   * With prefetch (the image loader's default), while the consumer holds
   * batch i, batch i+1 is built in a timer task, so its cost hides behind any
   * awaited work (GPU submission, readback) the consumer does; a consumer that
   * never yields gets it built on demand.
   *
   * @returns An async iterator of batches.
   *
   * @example
   * ```ts
   * import { BatchLoader, type ImageSet } from "./mod.ts";
   *
   * const set: ImageSet = {
   *   images: new Uint8Array(40), labels: new Uint8Array(10),
   *   n: 10, height: 2, width: 2, channels: 1, classes: ["a"],
   * };
   * const loader = new BatchLoader(set, { batchSize: 64, shuffle: true, seed: 0 });
   * for await (const batch of loader.batches()) console.log(batch.size);
   * ```
   */
  async *batches(): AsyncGenerator<B, void, undefined> {
    if (this.#running) throw new Error(`${this.#name}.batches: another iteration is running`);
    this.#running = true;
    const end = this.#epochSamples;
    const epoch = this.#epoch;
    const order = this.order(epoch);
    let ahead: Prefetched<B> | undefined;
    try {
      while (this.#position < end) {
        const start = this.#position;
        const size = Math.min(this.batchSize, end - start);
        const batch = ahead !== undefined && ahead.start === start
          ? await ahead.take()
          : this.buildBatch(order, start, size, epoch);
        ahead?.cancel();
        ahead = undefined;
        const next = start + size;
        if (this.#prefetch && next < end) {
          ahead = new Prefetched(
            next,
            () => this.buildBatch(order, next, Math.min(this.batchSize, end - next), epoch),
          );
        }
        this.#position = next;
        yield batch;
      }
      this.#epoch = epoch + 1;
      this.#position = 0;
    } finally {
      ahead?.cancel();
      this.#running = false;
    }
  }

  /**
   * Same as {@link EpochLoader.batches}: one epoch (or its remainder).
   *
   * @example
   * ```ts
   * import { BatchLoader, type ImageSet } from "./mod.ts";
   *
   * const set: ImageSet = {
   *   images: new Uint8Array(40), labels: new Uint8Array(10),
   *   n: 10, height: 2, width: 2, channels: 1, classes: ["a"],
   * };
   * for await (const b of new BatchLoader(set, { batchSize: 32 })) console.log(b.y);
   * ```
   */
  [Symbol.asyncIterator](): AsyncGenerator<B, void, undefined> {
    return this.batches();
  }
}

/**
 * A batch scheduled to be built in a timer task. `take()` returns it, building
 * it right away if the timer has not fired yet, so a busy consumer never waits
 * on a timer (whose delay Deno clamps to 4 ms once nested).
 */
class Prefetched<B> {
  readonly start: number;
  #make: () => B;
  #value: B | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(start: number, make: () => B) {
    this.start = start;
    this.#make = make;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#value = make();
    }, 0);
  }

  take(): Promise<B> {
    this.cancel();
    const v = this.#value ?? this.#make();
    this.#value = undefined;
    return Promise.resolve(v);
  }

  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
