import assert from "node:assert/strict";
import { memoryStats } from "../../../mod.ts";
import { AdamW } from "../../../engine/optim/mod.ts";
import {
  adamwRef,
  type AdamwRefOptions,
  assertClose,
  countDispatches,
  param,
  randn,
  rng,
  setGrad,
} from "./reference.ts";

function refState(n: number) {
  return { step: 0, m: new Float64Array(n), v: new Float64Array(n) };
}

Deno.test("AdamW() matches the float64 reference, bias correction included, over 5 steps", async () => {
  const rand = rng(11);
  const o: AdamwRefOptions = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05 };
  const shapes = [[9, 4], [4], [300], [7]]; // multiples of 4 (vec4 kernel) and one that is not
  const params = shapes.map((s) => param(randn(s.reduce((a, b) => a * b, 1), rand), s));
  const ref = await Promise.all(params.map(async (p) => Float64Array.from(await p.toArray())));
  const states = params.map((p) => refState(p.size));
  const opt = new AdamW(params, {
    lr: o.lr,
    betas: [o.beta1, o.beta2],
    eps: o.eps,
    weightDecay: o.weightDecay,
  });
  for (let k = 0; k < 5; k++) {
    params.forEach((p, i) => {
      // Gradients of mixed magnitudes: Adam's update is scale-free, the eps term is not.
      const g = randn(p.size, rand, 10 ** (k - 3));
      setGrad(p, g);
      adamwRef(ref[i], g, states[i], o);
    });
    opt.step();
    for (let i = 0; i < params.length; i++) {
      assertClose(await params[i].toArray(), ref[i], `step ${k + 1}, param ${i}`);
    }
  }
  const s = opt.stateOf(2)!;
  assert.equal(s.step, 5);
  assertClose(await s.buffers.get("exp_avg")!.toArray(), states[2].m, "exp_avg", 1e-5, 1e-9);
  assertClose(await s.buffers.get("exp_avg_sq")!.toArray(), states[2].v, "exp_avg_sq", 1e-5, 1e-12);
  opt.zeroGrad();
  opt.dispose();
  params.forEach((p) => p.dispose());
});

Deno.test("AdamW() uses each parameter's own step count: one unfrozen late starts at t = 1", async () => {
  const rand = rng(12);
  const o: AdamwRefOptions = { lr: 0.1, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1 };
  const early = param(randn(8, rand));
  const late = param(randn(8, rand));
  const lateBefore = await late.toArray();
  const refEarly = Float64Array.from(await early.toArray());
  const refLate = Float64Array.from(lateBefore);
  const se = refState(8);
  const sl = refState(8);
  const opt = new AdamW([early, late], {
    lr: o.lr,
    betas: [o.beta1, o.beta2],
    eps: o.eps,
    weightDecay: o.weightDecay,
  });
  late.requiresGrad = false;
  const optimizerBytes = memoryStats().byCategory.optimizer;
  for (let k = 0; k < 2; k++) {
    const g = randn(8, rand);
    setGrad(early, g);
    adamwRef(refEarly, g, se, o);
    const { names } = countDispatches(() => opt.step());
    assert.deepEqual(names, ["adamw"]);
  }
  // The only new optimizer memory is the live parameter's two moment buffers.
  const held = [...opt.stateOf(0)!.buffers.values()].reduce((n, t) => n + t.storage.capacity, 0);
  assert.equal(opt.stateOf(0)!.buffers.size, 2);
  assert.equal(memoryStats().byCategory.optimizer - optimizerBytes, held);
  assert.equal(opt.stateOf(1), undefined);
  assert.deepEqual(await late.toArray(), lateBefore); // weight decay did not touch it either

  late.requiresGrad = true;
  for (let k = 0; k < 2; k++) {
    const ge = randn(8, rand);
    const gl = randn(8, rand);
    setGrad(early, ge);
    setGrad(late, gl);
    adamwRef(refEarly, ge, se, o);
    adamwRef(refLate, gl, sl, o);
    opt.step();
  }
  assert.equal(opt.stateOf(0)?.step, 4);
  assert.equal(opt.stateOf(1)?.step, 2);
  assert.equal(opt.stepCount, 4);
  assertClose(await early.toArray(), refEarly, "early");
  assertClose(await late.toArray(), refLate, "late");
  opt.zeroGrad();
  opt.dispose();
  early.dispose();
  late.dispose();
});

Deno.test("AdamW() parameter groups use their own betas and weight decay", async () => {
  const rand = rng(13);
  const a = param(randn(16, rand));
  const b = param(randn(16, rand));
  const refA = Float64Array.from(await a.toArray());
  const refB = Float64Array.from(await b.toArray());
  const oa: AdamwRefOptions = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
  const ob: AdamwRefOptions = { lr: 3e-3, beta1: 0.5, beta2: 0.9, eps: 1e-8, weightDecay: 0 };
  const opt = new AdamW([{ params: [a] }, {
    params: [b],
    lr: 3e-3,
    betas: [0.5, 0.9],
    weightDecay: 0,
  }]);
  assert.deepEqual(opt.defaults, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 });
  const sa = refState(16);
  const sb = refState(16);
  for (let k = 0; k < 3; k++) {
    const ga = randn(16, rand);
    const gb = randn(16, rand);
    setGrad(a, ga);
    setGrad(b, gb);
    adamwRef(refA, ga, sa, oa);
    adamwRef(refB, gb, sb, ob);
    opt.step();
  }
  assertClose(await a.toArray(), refA, "group 0");
  assertClose(await b.toArray(), refB, "group 1");
  opt.zeroGrad();
  opt.dispose();
  a.dispose();
  b.dispose();
});

Deno.test("AdamW() stateDict() round-trips through a new optimizer with per-parameter steps", async () => {
  const rand = rng(14);
  const p1 = [param(randn(5, rand)), param(randn(7, rand))];
  const opt1 = new AdamW(p1, { lr: 0.05 });
  const grads = Array.from({ length: 5 }, () => [randn(5, rand), randn(7, rand)]);
  for (let k = 0; k < 3; k++) {
    setGrad(p1[0], grads[k][0]);
    if (k > 0) setGrad(p1[1], grads[k][1]); // parameter 1 misses the first step
    opt1.step();
  }
  const sd = opt1.stateDict();
  assert.deepEqual(sd.paramSteps, { "0": 3, "1": 2 });
  assert.deepEqual(Object.keys(sd.buffers).sort(), [
    "0.exp_avg",
    "0.exp_avg_sq",
    "1.exp_avg",
    "1.exp_avg_sq",
  ]);
  const p2 = await Promise.all(p1.map(async (p) => param(await p.toArray() as Float32Array)));
  const opt2 = new AdamW(p2, { lr: 0.05 });
  opt2.loadStateDict(sd);
  Object.values(sd.buffers).forEach((t) => t.dispose());
  for (let k = 3; k < 5; k++) {
    for (const ps of [p1, p2]) ps.forEach((p, i) => setGrad(p, grads[k][i]));
    opt1.step();
    opt2.step();
  }
  for (let i = 0; i < 2; i++) assert.deepEqual(await p2[i].toArray(), await p1[i].toArray());
  for (const opt of [opt1, opt2]) {
    opt.zeroGrad();
    opt.dispose();
  }
  [...p1, ...p2].forEach((p) => p.dispose());
});

Deno.test("AdamW() rejects invalid options", () => {
  const p = param(new Float32Array([1]));
  assert.throws(() => new AdamW([p], { betas: [0.9, 1] }), /invalid beta parameter at index 1/);
  assert.throws(() => new AdamW([p], { eps: -1 }), /invalid epsilon/);
  assert.throws(() => new AdamW([p], { weightDecay: NaN }), /invalid weight decay/);
  assert.throws(
    () => new AdamW([{ params: [p], lr: -0.1 }]),
    /AdamW group 0: invalid learning rate/,
  );
  p.dispose();
});
