import assert from "node:assert/strict";
import {
  applySchedule,
  cosineLR,
  linearDecay,
  linearWarmup,
  type Schedule,
  SGD,
  stepLR,
} from "../../../engine/optim/mod.ts";
import { assertClose, param } from "./reference.ts";

const values = (s: Schedule, n: number) => Array.from({ length: n }, (_, k) => s(k));

// Learning rates seen by the first 10–12 optimizer steps, recorded from torch 1.13 schedulers
// on SGD(lr=0.1) (lr read before each opt.step(), scheduler.step() after it). The warmup
// rows use LambdaLR with the lambdas of transformers' get_linear/cosine_schedule_with_warmup.
const TORCH = {
  stepLR_3_0_5: [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125],
  cosine_7_0_01: [
    0.1,
    0.09554359905560886,
    0.08305704108364301,
    0.06501344202803415,
    0.04498655797196586,
    0.026942958916356993,
    0.014456400944391143,
    0.01,
    0.01445640094439114,
    0.026942958916356986,
  ],
  linearWarmup_3_10: [
    0.0,
    0.03333333333333333,
    0.06666666666666667,
    0.1,
    0.08571428571428572,
    0.07142857142857144,
    0.05714285714285714,
    0.04285714285714286,
    0.02857142857142857,
    0.014285714285714285,
    0.0,
    0.0,
  ],
  cosineWarmup_3_10: [
    0.0,
    0.03333333333333333,
    0.06666666666666667,
    0.1,
    0.09504844339512096,
    0.08117449009293669,
    0.06112604669781572,
    0.03887395330218429,
    0.018825509907063328,
    0.004951556604879049,
    0.0,
  ],
};

Deno.test("stepLR() matches PyTorch StepLR", () => {
  assertClose(values(stepLR(0.1, 3, 0.5), 10), TORCH.stepLR_3_0_5, "stepLR", 1e-12, 1e-15);
  assert.equal(stepLR(2, 5)(12), 2 * 0.1 ** 2);
});

Deno.test("cosineLR() matches PyTorch CosineAnnealingLR, including past totalSteps", () => {
  assertClose(values(cosineLR(0.1, 7, 0.01), 10), TORCH.cosine_7_0_01, "cosineLR", 1e-12, 1e-15);
  const s = cosineLR(3, 40, 1);
  for (const k of [0, 1, 13, 40, 55]) {
    assert.equal(s(k), 1 + (3 - 1) * (1 + Math.cos(Math.PI * k / 40)) / 2);
  }
});

Deno.test("linearWarmup() with linearDecay() matches get_linear_schedule_with_warmup", () => {
  const s = linearWarmup(0.1, 3, linearDecay(0.1, 10 - 3));
  assertClose(values(s, 12), TORCH.linearWarmup_3_10, "linear warmup", 1e-12, 1e-15);
});

Deno.test("linearWarmup() with cosineLR() matches get_cosine_schedule_with_warmup", () => {
  const s = linearWarmup(0.1, 3, cosineLR(0.1, 10 - 3));
  assertClose(values(s, 11), TORCH.cosineWarmup_3_10, "cosine warmup", 1e-12, 1e-15);
});

Deno.test("linearWarmup() without a follow-up holds the base rate; zero warmup starts at base", () => {
  assert.deepEqual(values(linearWarmup(1, 4), 6), [0, 0.25, 0.5, 0.75, 1, 1]);
  assert.deepEqual(values(linearWarmup(1, 0, linearDecay(1, 4)), 5), [1, 0.75, 0.5, 0.25, 0]);
});

Deno.test("schedules reject invalid steps and sizes", () => {
  assert.throws(() => stepLR(1, 0), /stepSize must be an integer ≥ 1/);
  assert.throws(() => cosineLR(1, 0), /totalSteps must be an integer ≥ 1/);
  assert.throws(() => linearWarmup(1, -1), /warmupSteps/);
  assert.throws(() => cosineLR(1, 10)(-1), /step must be an integer ≥ 0/);
  assert.throws(() => stepLR(1, 2)(1.5), /step must be an integer ≥ 0/);
});

Deno.test("applySchedule() sets every group's rate, keeping group ratios", () => {
  const a = param(new Float32Array([1]));
  const b = param(new Float32Array([1]));
  const opt = new SGD([{ params: [a] }, { params: [b], lr: 0.05 }], { lr: 0.1 });
  const s = cosineLR(0.1, 10);
  assert.equal(applySchedule(opt, s, 5), s(5));
  assertClose(opt.paramGroups.map((g) => g.lr), [s(5), s(5) / 2], "group rates", 1e-12, 0);
  applySchedule(opt, s, 0);
  assert.deepEqual(opt.paramGroups.map((g) => g.lr), [0.1, 0.05]);
  assert.throws(() => applySchedule(opt, () => NaN, 0), /invalid rate NaN/);
  a.dispose();
  b.dispose();
});
