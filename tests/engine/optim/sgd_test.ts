import assert from "node:assert/strict";
import { memoryStats, type Tensor, tensor } from "../../../mod.ts";
import { SGD } from "../../../engine/optim/mod.ts";
import { pipelineCount } from "../../../engine/dispatch.ts";
import {
  assertClose,
  countDispatches,
  param,
  randn,
  rng,
  setGrad,
  sgdRef,
  type SgdRefOptions,
} from "./reference.ts";

/** Runs `steps` steps of our SGD and of the float64 reference on the same random grads. */
async function compareWithReference(o: SgdRefOptions, steps: number, seed: number) {
  const rand = rng(seed);
  const shapes = [[7, 5], [5], [130], [8, 4]]; // sizes not multiples of 4 (scalar kernel) and one that is (vec4)
  const params = shapes.map((s) => param(randn(s.reduce((a, b) => a * b, 1), rand), s));
  const ref = await Promise.all(params.map(async (p) => Float64Array.from(await p.toArray())));
  const refState = params.map(() => ({ buf: null as Float64Array | null }));
  const opt = new SGD(params, o);
  for (let k = 0; k < steps; k++) {
    params.forEach((p, i) => {
      const g = randn(p.size, rand);
      setGrad(p, g);
      sgdRef(ref[i], g, refState[i], o);
    });
    opt.step();
    for (let i = 0; i < params.length; i++) {
      assertClose(await params[i].toArray(), ref[i], `step ${k + 1}, param ${i}`);
    }
  }
  opt.zeroGrad();
  opt.dispose();
  params.forEach((p) => p.dispose());
}

Deno.test("SGD() without momentum matches the float64 reference with weight decay", async () => {
  await compareWithReference(
    { lr: 0.1, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0.01 },
    3,
    1,
  );
});

Deno.test("SGD() with momentum and dampening matches the float64 reference (buf = d on step 1)", async () => {
  // Dampening 0.3 makes the first step differ from a zero-initialised buffer.
  await compareWithReference(
    { lr: 0.05, momentum: 0.9, dampening: 0.3, nesterov: false, weightDecay: 1e-3 },
    4,
    2,
  );
});

Deno.test("SGD() with Nesterov momentum matches the float64 reference", async () => {
  await compareWithReference(
    { lr: 0.05, momentum: 0.8, dampening: 0, nesterov: true, weightDecay: 5e-4 },
    4,
    3,
  );
});

Deno.test("SGD() skips frozen parameters: no kernel, no state, values untouched", async () => {
  const rand = rng(4);
  const live = param(randn(6, rand));
  const frozen = param(randn(6, rand));
  const noGradYet = param(randn(6, rand));
  const frozenBefore = await frozen.toArray();
  const noGradBefore = await noGradYet.toArray();
  frozen.requiresGrad = false;
  setGrad(frozen, randn(6, rand)); // a stale grad must not be applied
  const opt = new SGD([live, frozen, noGradYet], { lr: 0.1, momentum: 0.9 });
  setGrad(live, randn(6, rand));
  const optimizerBytes = memoryStats().byCategory.optimizer;
  const { names } = countDispatches(() => opt.step());
  assert.deepEqual(names, ["sgd_momentum"]);
  assert.deepEqual(await frozen.toArray(), frozenBefore);
  assert.deepEqual(await noGradYet.toArray(), noGradBefore);
  assert.ok(opt.stateOf(0));
  assert.equal(opt.stateOf(1), undefined);
  assert.equal(opt.stateOf(2), undefined);
  // The only new optimizer memory is the live parameter's momentum buffer.
  const buf = opt.stateOf(0)!.buffers.get("momentum_buffer")!;
  assert.equal(memoryStats().byCategory.optimizer - optimizerBytes, buf.storage.capacity);
  assert.equal(opt.stateBytes, 6 * 4);

  // Unfrozen later, a parameter starts with buf = d (its own first step).
  const g = randn(6, rand);
  setGrad(noGradYet, g);
  const ref = Float64Array.from(noGradBefore);
  sgdRef(ref, g, { buf: null }, {
    lr: 0.1,
    momentum: 0.9,
    dampening: 0,
    nesterov: false,
    weightDecay: 0,
  });
  opt.step();
  assertClose(await noGradYet.toArray(), ref, "unfrozen parameter");
  assert.equal(opt.stateOf(2)?.step, 1);
  assert.equal(opt.stateOf(0)?.step, 2);
  opt.zeroGrad();
  opt.dispose();
  [live, frozen, noGradYet].forEach((p) => p.dispose());
});

Deno.test("SGD() zeroGrad() disposes every grad and sets it to null", () => {
  const a = param(new Float32Array([1, 2]));
  const b = param(new Float32Array([3]));
  setGrad(a, new Float32Array([1, 1]));
  setGrad(b, new Float32Array([1]));
  b.requiresGrad = false;
  const ga = a.grad!;
  const gb = b.grad!;
  const opt = new SGD([a, b], { lr: 1 });
  opt.zeroGrad();
  assert.equal(a.grad, null);
  assert.equal(b.grad, null);
  assert.ok(ga.disposed && gb.disposed);
  opt.step(); // nothing to do
  a.dispose();
  b.dispose();
});

Deno.test("SGD() parameter groups use their own options, and lr changes build no pipeline", async () => {
  const rand = rng(5);
  const a = param(randn(10, rand));
  const b = param(randn(10, rand));
  const refA = Float64Array.from(await a.toArray());
  const refB = Float64Array.from(await b.toArray());
  const oa: SgdRefOptions = {
    lr: 0.1,
    momentum: 0.9,
    dampening: 0,
    nesterov: false,
    weightDecay: 0,
  };
  const ob: SgdRefOptions = {
    lr: 0.01,
    momentum: 0,
    dampening: 0,
    nesterov: false,
    weightDecay: 0.1,
  };
  const opt = new SGD(
    [{ params: [a], momentum: 0.9 }, { params: [b], lr: 0.01, weightDecay: 0.1 }],
    {
      lr: 0.1,
    },
  );
  assert.deepEqual(opt.baseLrs, [0.1, 0.01]);
  const sa = { buf: null as Float64Array | null };
  const sb = { buf: null as Float64Array | null };
  let pipelines = 0;
  for (let k = 0; k < 3; k++) {
    if (k === 2) {
      pipelines = pipelineCount();
      opt.paramGroups[0].lr = oa.lr = 0.03;
      opt.paramGroups[1].lr = ob.lr = 0.002;
    }
    const ga = randn(10, rand);
    const gb = randn(10, rand);
    setGrad(a, ga);
    setGrad(b, gb);
    sgdRef(refA, ga, sa, oa);
    sgdRef(refB, gb, sb, ob);
    opt.step();
  }
  assert.equal(pipelineCount(), pipelines);
  assertClose(await a.toArray(), refA, "group 0");
  assertClose(await b.toArray(), refB, "group 1");
  assert.ok(opt.stateOf(0)?.buffers.has("momentum_buffer"));
  assert.equal(opt.stateOf(1)?.buffers.size, 0);
  opt.lr = 0.5;
  assert.deepEqual(opt.paramGroups.map((g) => g.lr), [0.5, 0.5]);
  opt.zeroGrad();
  opt.dispose();
  a.dispose();
  b.dispose();
});

Deno.test("SGD() stateDict() and loadStateDict() resume training exactly", async () => {
  const rand = rng(6);
  const init = [randn(12, rand), randn(3, rand)];
  const grads = Array.from({ length: 4 }, () => [randn(12, rand), randn(3, rand)]);
  const o = { lr: 0.1, momentum: 0.9, nesterov: true };
  const p1 = init.map((d) => param(d));
  const opt1 = new SGD(p1, o);
  for (let k = 0; k < 2; k++) {
    p1.forEach((p, i) => setGrad(p, grads[k][i]));
    opt1.step();
  }
  const sd = opt1.stateDict();
  assert.equal(sd.step, 2);
  assert.deepEqual(sd.paramSteps, { "0": 2, "1": 2 });
  assert.deepEqual(Object.keys(sd.buffers), ["0.momentum_buffer", "1.momentum_buffer"]);
  assert.deepEqual(sd.lr, [0.1]);

  // A second optimizer on copies of the parameters, loaded from the checkpoint.
  const p2 = await Promise.all(p1.map(async (p) => param(await p.toArray() as Float32Array)));
  const opt2 = new SGD(p2, { ...o, lr: 0.7 });
  opt2.loadStateDict(sd);
  Object.values(sd.buffers).forEach((t) => t.dispose()); // the optimizer copied them
  assert.equal(opt2.stepCount, 2);
  assert.equal(opt2.lr, 0.1);
  for (let k = 2; k < 4; k++) {
    p1.forEach((p, i) => setGrad(p, grads[k][i]));
    p2.forEach((p, i) => setGrad(p, grads[k][i]));
    opt1.step();
    opt2.step();
  }
  for (let i = 0; i < 2; i++) assert.deepEqual(await p2[i].toArray(), await p1[i].toArray());

  // Reloading an optimizer's own state dict is a no-op.
  const before = await opt1.stateOf(0)!.buffers.get("momentum_buffer")!.toArray();
  opt1.loadStateDict(opt1.stateDict());
  assert.deepEqual(await opt1.stateOf(0)!.buffers.get("momentum_buffer")!.toArray(), before);
  for (const opt of [opt1, opt2]) {
    opt.zeroGrad();
    opt.dispose();
  }
  [...p1, ...p2].forEach((p) => p.dispose());
});

Deno.test("SGD() loadStateDict() rejects mismatched checkpoints and keeps its state", () => {
  const p = param(new Float32Array([1, 2, 3]));
  const opt = new SGD([p], { lr: 0.1, momentum: 0.5 });
  setGrad(p, new Float32Array([1, 1, 1]));
  opt.step();
  const wrongShape = tensor([1, 2]);
  const ok = tensor([1, 2, 3]);
  const bad: [string, Record<string, Tensor>, Record<string, number>, RegExp][] = [
    ["shape", { "0.momentum_buffer": wrongShape }, { "0": 1 }, /\[2\].*\[3\]/],
    ["index", { "1.momentum_buffer": ok }, { "0": 1 }, /out of range/],
    ["name", { "0.exp_avg": ok }, { "0": 1 }, /unexpected buffer "0.exp_avg"/],
    ["missing buffer", {}, { "0": 1 }, /no buffer "momentum_buffer"/],
    ["missing step", { "0.momentum_buffer": ok }, {}, /no entry in paramSteps/],
  ];
  for (const [what, buffers, paramSteps, msg] of bad) {
    assert.throws(() => opt.loadStateDict({ step: 1, buffers, paramSteps, lr: [0.1] }), msg, what);
  }
  assert.throws(
    () => opt.loadStateDict({ step: 1, buffers: {}, paramSteps: {}, lr: [0.1, 0.2] }),
    /2 parameter groups/,
  );
  assert.equal(opt.stateOf(0)?.step, 1);
  assert.ok(opt.stateOf(0)?.buffers.has("momentum_buffer"));
  wrongShape.dispose();
  ok.dispose();
  opt.zeroGrad();
  opt.dispose();
  p.dispose();
});

Deno.test("SGD() rejects invalid options", () => {
  const p = param(new Float32Array([1]));
  assert.throws(() => new SGD([p], { lr: -1 }), /invalid learning rate -1/);
  assert.throws(() => new SGD([p], { lr: 0.1, nesterov: true }), /Nesterov/);
  assert.throws(
    () => new SGD([p], { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }),
    /Nesterov/,
  );
  assert.throws(() => new SGD([p, p], { lr: 0.1 }), /more than once/);
  assert.throws(
    () => new SGD([p], { lr: 0.1, weight_decay: 1 } as unknown as { lr: number }),
    /unknown option "weight_decay"/,
  );
  assert.throws(
    () => new SGD([{ params: [p], moment: 0.9 } as unknown as { params: Tensor[] }], { lr: 0.1 }),
    /unknown option "moment" in parameter group 0/,
  );
  const opt = new SGD([p], { lr: 0.1 });
  p.grad = tensor([1, 2]);
  assert.throws(() => opt.step(), /parameter 0 has shape \[1\] but its grad is f32 \[2\]/);
  p.grad.dispose();
  p.grad = null;
  p.dispose();
});
