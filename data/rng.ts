/**
 * A small seeded PRNG for everything that must replay exactly: data order,
 * augmentation, dropout masks, weight init.
 *
 * The generator is xoshiro128** (Blackman and Vigna), seeded through
 * splitmix32. It uses only 32-bit integer arithmetic (`Math.imul`, shifts),
 * so a seed gives the same stream on every JS engine and platform, and its
 * whole state is four u32 words that can be saved in a checkpoint.
 *
 * @module
 */

/** The complete state of an {@link Rng}: four u32 words, never all zero. */
export type RngState = [number, number, number, number];

/** One splitmix32 step: advances `s` and returns a well-mixed u32. */
function splitmix32(s: { x: number }): number {
  s.x = (s.x + 0x9e3779b9) | 0;
  let z = s.x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * Mixes any number of integers into one u32, for deriving independent
 * sub-seeds (e.g. `mixSeed(seed, epoch)`) without the streams overlapping in
 * any obvious way.
 *
 * @param parts Integers; values beyond 32 bits contribute their high half too.
 * @returns A u32.
 *
 * @example
 * ```ts
 * import { mixSeed } from "./rng.ts";
 *
 * console.log(mixSeed(42, 0) !== mixSeed(42, 1)); // true
 * ```
 */
export function mixSeed(...parts: number[]): number {
  const s = { x: 0x6a09e667 };
  let h = splitmix32(s);
  for (const p of parts) {
    if (!Number.isFinite(p)) throw new Error(`mixSeed: not a finite number: ${p}`);
    const v = Math.trunc(p);
    const lo = v >>> 0;
    const hi = Math.floor(v / 4294967296) >>> 0;
    s.x = (h ^ lo) | 0;
    h = splitmix32(s);
    s.x = (h ^ hi) | 0;
    h = splitmix32(s);
  }
  return h;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * Seeded xoshiro128** generator.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 *
 * const rng = new Rng(1234);
 * const saved = rng.state();
 * const a = rng.nextU32();
 * rng.restore(saved);
 * console.log(rng.nextU32() === a); // true
 * ```
 */
export class Rng {
  #s: Int32Array = new Int32Array(4);

  /**
   * Creates a generator from a seed, mixed through splitmix32 so nearby seeds give unrelated streams.
   *
   * @param seed Any finite number; the integer part is used (all 53 bits).
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   *
   * console.log(new Rng(7).next() === new Rng(7).next()); // true
   * ```
   */
  constructor(seed = 0) {
    const s = { x: mixSeed(seed) };
    for (let i = 0; i < 4; i++) this.#s[i] = splitmix32(s);
    // splitmix32 is a bijection of its counter, so four zero outputs in a row cannot happen.
  }

  /**
   * Builds a generator that continues from a saved state.
   *
   * @param state A value returned by {@link Rng.state}.
   * @returns A generator whose next outputs match the saved one's.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   *
   * const a = new Rng(3);
   * const b = Rng.fromState(a.state());
   * console.log(a.nextU32() === b.nextU32()); // true
   * ```
   */
  static fromState(state: RngState): Rng {
    const r = new Rng();
    r.restore(state);
    return r;
  }

  /**
   * The generator's full state, as four u32 words (JSON-safe).
   *
   * @returns A copy; changing it does not affect the generator.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   *
   * console.log(JSON.stringify(new Rng(1).state()));
   * ```
   */
  state(): RngState {
    const s = this.#s;
    return [s[0] >>> 0, s[1] >>> 0, s[2] >>> 0, s[3] >>> 0];
  }

  /**
   * Sets the state to one saved by {@link Rng.state}.
   *
   * @param state Four u32 words, not all zero.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   *
   * const rng = new Rng(5);
   * const s = rng.state();
   * const x = rng.next();
   * rng.restore(s);
   * console.log(rng.next() === x); // true
   * ```
   */
  restore(state: RngState): void {
    if (!Array.isArray(state) || state.length !== 4) {
      throw new Error(`Rng.restore: expected 4 u32 words, got ${JSON.stringify(state)}`);
    }
    for (const w of state) {
      if (!Number.isInteger(w) || w < 0 || w > 0xffffffff) {
        throw new Error(`Rng.restore: not a u32 word: ${w}`);
      }
    }
    if (state.every((w) => w === 0)) {
      throw new Error("Rng.restore: the all-zero state is invalid for xoshiro128**");
    }
    for (let i = 0; i < 4; i++) this.#s[i] = state[i];
  }

  /**
   * The next raw output.
   *
   * @returns A uniform integer in [0, 2^32).
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   *
   * console.log(new Rng(9).nextU32());
   * ```
   */
  nextU32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9);
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result >>> 0;
  }

  /**
   * A uniform float in [0, 1) with 32 random bits (enough for sampling and
   * shuffling; not all doubles in the range are reachable).
   *
   * @returns A number `0 <= x < 1`.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   *
   * const x = new Rng(2).next();
   * console.log(x >= 0 && x < 1); // true
   * ```
   */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /**
   * A uniform integer in [0, n), without modulo bias.
   *
   * @param n Exclusive upper bound, an integer in [1, 2^32].
   * @returns An integer `0 <= k < n`.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   *
   * const die = new Rng(6).int(6) + 1;
   * console.log(die >= 1 && die <= 6); // true
   * ```
   */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 4294967296) {
      throw new Error(`Rng.int: bound must be an integer in [1, 2^32], got ${n}`);
    }
    // Reject the top sliver of the u32 range that would make some residues more likely.
    const limit = 4294967296 - (4294967296 % n);
    let x = this.nextU32();
    while (x >= limit) x = this.nextU32();
    return x % n;
  }

  /**
   * A standard normal sample (Box-Muller; one sample per call, so the state
   * stays four words).
   *
   * @returns A draw from N(0, 1).
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   *
   * const rng = new Rng(0);
   * const w = Array.from({ length: 4 }, () => 0.02 * rng.normal());
   * console.log(w.length); // 4
   * ```
   */
  normal(): number {
    // 1 - next() is in (0, 1], so the log is finite.
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /**
   * Shuffles an array in place (Fisher-Yates), uniformly over permutations.
   *
   * @param a The array to shuffle.
   * @returns `a`.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   *
   * console.log(new Rng(1).shuffle([1, 2, 3, 4]).length); // 4
   * ```
   */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /**
   * A uniformly random permutation of 0..n-1.
   *
   * @param n Length.
   * @returns A fresh `Uint32Array` holding each of 0..n-1 once.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   *
   * const p = new Rng(8).permutation(5);
   * console.log([...p].sort()); // [0, 1, 2, 3, 4]
   * ```
   */
  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }
}

/**
 * `n` of the indices 0..total-1 drawn without replacement, in increasing
 * order: the seeded training subset of `--train-limit` (images and text draw
 * it the same way, so a resumed run gets the same rows).
 *
 * @param total Number of examples.
 * @param n How many to keep (at most `total`).
 * @param seed Seed of the draw.
 * @returns Sorted indices.
 *
 * @example
 * ```ts
 * import { subsetIndices } from "./rng.ts";
 * console.log(subsetIndices(10, 3, 0).length); // 3
 * ```
 */
export function subsetIndices(total: number, n: number, seed: number): Uint32Array {
  return new Rng(mixSeed(seed, 0x5e1ec7)).permutation(total).subarray(0, n).sort();
}
