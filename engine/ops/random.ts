/**
 * Random tensors from the seeded GPU generator, and dropout.
 *
 * The generator's state is (seed, offset): each draw of n values uses counters
 * offset..offset+n and advances offset, so a run is reproducible from its seed
 * and the state can be saved in checkpoints ({@link getRngState}).
 *
 * @module
 */

import { checkShape, type Shape, Tensor } from "../tensor.ts";
import { record, type VjpRule } from "../autograd.ts";
import { bindingChunks, rangeOf, run, vecLanes } from "../dispatch.ts";
import { dropoutProgram, randomProgram } from "../../kernels/random.ts";
import { mul } from "./elementwise.ts";

const rng = { seed: 0x2545f491, offset: 0 };

/**
 * Seeds the GPU generator (and resets its counter).
 *
 * @example
 * ```ts
 * import { manualSeed, rand } from "../../mod.ts";
 * manualSeed(1);
 * const a = await rand([3]).toArray();
 * manualSeed(1);
 * console.log(a.join() === (await rand([3]).toArray()).join()); // true
 * ```
 */
export function manualSeed(seed: number): void {
  rng.seed = (Math.imul(seed | 0, 0x9e3779b1) ^ 0x2545f491) >>> 0;
  rng.offset = 0;
}

/** The generator's state, for checkpoints. */
export function getRngState(): { seed: number; offset: number } {
  return { ...rng };
}

/** Restores a state from {@link getRngState}. */
export function setRngState(s: { seed: number; offset: number }): void {
  rng.seed = s.seed >>> 0;
  rng.offset = s.offset >>> 0;
}

function take(n: number): number {
  const o = rng.offset;
  rng.offset = (rng.offset + n) >>> 0;
  return o;
}

function draw(kind: "uniform" | "normal", shape: Shape, a: number, b: number): Tensor {
  checkShape(shape, kind === "uniform" ? "rand" : "randn");
  const out = Tensor.empty(shape, "f32");
  const per = kind === "normal" ? 2 : 1;
  const base = take(per * out.size);
  for (const [start, n] of bindingChunks(out.size)) {
    if (n === 0) continue;
    const u = new ArrayBuffer(24);
    // Counters continue across pieces, so a split tensor gets the same values as a whole one.
    new Uint32Array(u, 0, 4).set([n, rng.seed, (base + per * start) >>> 0, 0]);
    new Float32Array(u, 16, 2).set([a, b]);
    run(randomProgram(kind), {
      inputs: [],
      outputs: [rangeOf(out.storage, start, n)],
      uniforms: new Uint8Array(u),
      workgroups: Math.ceil(n / 64),
      bytes: 4 * n,
    });
  }
  return out;
}

/**
 * Uniform samples in `[low, high)`.
 *
 * @example
 * ```ts
 * import { rand } from "../../mod.ts";
 * console.log(rand([2, 3]).shape);
 * ```
 */
export function rand(shape: Shape, low = 0, high = 1): Tensor {
  return draw("uniform", shape, high - low, low);
}

/** Normal samples with the given mean and standard deviation. */
export function randn(shape: Shape, mean = 0, std = 1): Tensor {
  return draw("normal", shape, std, mean);
}

/**
 * Inverted dropout: zeroes each element with probability `p` and scales the
 * rest by 1/(1−p). The mask is regenerated from the generator in backward, so
 * nothing is saved. Identity when `training` is false or p = 0.
 *
 * @example
 * ```ts
 * import { dropout, ones } from "../../mod.ts";
 * const y = dropout(ones([1000]), 0.5);
 * console.log(y.shape);
 * ```
 */
export function dropout(x: Tensor, p: number, training = true): Tensor {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout: p must be in [0, 1), got ${p}`);
  if (!training || p === 0) return mul(x, 1);
  const offset = take(x.size);
  const out = dropoutRaw(x, p, rng.seed, offset);
  record("dropout", { p, seed: rng.seed, offset }, [x], out);
  return out;
}

function dropoutRaw(x: Tensor, p: number, seed: number, offset: number): Tensor {
  const out = Tensor.empty(x.shape, "f32");
  for (const [start, n] of bindingChunks(x.size)) {
    if (n === 0) continue;
    const u = new ArrayBuffer(24);
    const q = vecLanes(n);
    new Uint32Array(u, 0, 4).set([n / q, seed, (offset + start) >>> 0, 0]);
    new Float32Array(u, 16, 2).set([p, 1 / (1 - p)]);
    run(dropoutProgram(q === 4), {
      inputs: [rangeOf(x.storage, start, n)],
      outputs: [rangeOf(out.storage, start, n)],
      uniforms: new Uint8Array(u),
      // One invocation per element or vec4 (no grid-stride loop): elementwiseGroups() is capped
      // for grid-stride kernels and would leave elements past 2^26 unwritten.
      workgroups: Math.ceil(n / q / 64),
      bytes: 8 * n,
    });
  }
  return out;
}

/** Backward of dropout: the same mask and scale, regenerated. */
export const dropoutVjp: VjpRule<"dropout"> = (node, g) => {
  const { p, seed, offset } = node.attrs;
  return [dropoutRaw(g, p, seed, offset)];
};
