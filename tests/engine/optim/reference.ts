/**
 * Float64 CPU references of PyTorch's optimizer formulas, and test helpers.
 *
 * @module
 */

import assert from "node:assert/strict";
import { keep, type Tensor, tensor } from "../../../mod.ts";
import { type DispatchObserver, setDispatchObserver } from "../../../engine/dispatch.ts";

/** Seeded PRNG (mulberry32), so a failing case can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` standard normal values (Box–Muller), times `scale`, rounded to f32. */
export function randn(n: number, rand: () => number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - rand();
    const v = rand();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

/** A kept leaf that requires grad. */
export function param(data: Float32Array, shape: number[] = [data.length]): Tensor {
  return keep(tensor(data, { shape, requiresGrad: true }));
}

/** Sets `p.grad` to a kept copy of `data` (disposing the old grad). */
export function setGrad(p: Tensor, data: Float32Array): void {
  p.grad?.dispose();
  p.grad = keep(tensor(data, { shape: p.shape }));
}

/** Hyperparameters of {@link sgdRef}. */
export interface SgdRefOptions {
  lr: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  weightDecay: number;
}

/**
 * One step of `torch.optim.SGD` (torch 1.13 `_single_tensor_sgd`) in float64,
 * in place on `p` and `state.buf`.
 */
export function sgdRef(
  p: Float64Array,
  g: ArrayLike<number>,
  state: { buf: Float64Array | null },
  o: SgdRefOptions,
): void {
  const d = Float64Array.from(g, (x, i) => x + o.weightDecay * p[i]);
  if (o.momentum !== 0) {
    if (!state.buf) state.buf = Float64Array.from(d);
    else {
      const buf = state.buf;
      for (let i = 0; i < d.length; i++) buf[i] = o.momentum * buf[i] + (1 - o.dampening) * d[i];
    }
    const buf = state.buf;
    for (let i = 0; i < d.length; i++) d[i] = o.nesterov ? d[i] + o.momentum * buf[i] : buf[i];
  }
  for (let i = 0; i < p.length; i++) p[i] -= o.lr * d[i];
}

/** Hyperparameters of {@link adamwRef}. */
export interface AdamwRefOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/**
 * One step of `torch.optim.AdamW` (torch 1.13 `_single_tensor_adamw`) in
 * float64, in place on `p` and the state; `state.step` is incremented first.
 */
export function adamwRef(
  p: Float64Array,
  g: ArrayLike<number>,
  state: { step: number; m: Float64Array; v: Float64Array },
  o: AdamwRefOptions,
): void {
  state.step++;
  const t = state.step;
  const bc1 = 1 - o.beta1 ** t;
  const bc2 = 1 - o.beta2 ** t;
  for (let i = 0; i < p.length; i++) {
    p[i] *= 1 - o.lr * o.weightDecay;
    state.m[i] = o.beta1 * state.m[i] + (1 - o.beta1) * g[i];
    state.v[i] = o.beta2 * state.v[i] + (1 - o.beta2) * g[i] * g[i];
    const denom = Math.sqrt(state.v[i]) / Math.sqrt(bc2) + o.eps;
    p[i] -= (o.lr / bc1) * state.m[i] / denom;
  }
}

/** Asserts `|a − e| ≤ atol + rtol·|e|` elementwise, naming the worst element. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  rtol = 1e-5,
  atol = 1e-6,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    const excess = err - (atol + rtol * Math.abs(expected[i]));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    assert.fail(
      `${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
        `(|diff| ${Math.abs(actual[worst] - expected[worst])}, rtol ${rtol}, atol ${atol})`,
    );
  }
}

/** Runs `fn` while counting dispatches by kernel name and batch submits. */
export function countDispatches(fn: () => void): { names: string[]; submits: number } {
  const names: string[] = [];
  let submits = 0;
  const observer: DispatchObserver = {
    syncEach: false,
    onDispatch(name) {
      names.push(name);
      return undefined;
    },
    beforeSubmit() {},
    afterSubmit() {
      submits++;
    },
  };
  setDispatchObserver(observer);
  try {
    fn();
  } finally {
    // Removing the observer submits the batch; that submit is not fn's.
    const before = submits;
    setDispatchObserver(null);
    submits = before;
  }
  return { names, submits };
}
