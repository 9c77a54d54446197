import assert from "node:assert/strict";
import { manualSeed, nn, optim, randn, smartfrz, type Tensor } from "../../mod.ts";
import { toyLoaders } from "./_toy.ts";
import { train } from "../../train/trainer.ts";
import { AutoFreeze, LinearFreezing } from "../../smartfrz/mod.ts";

function deepMlp() {
  const l0 = new nn.Linear(64, 32);
  const l1 = new nn.Linear(32, 32);
  const l2 = new nn.Linear(32, 32);
  const model = new nn.Sequential(
    l0,
    new nn.ReLU(),
    l1,
    new nn.ReLU(),
    l2,
    new nn.ReLU(),
    new nn.Linear(32, 4),
  );
  const units = [{ name: "0", modules: [l0] }, { name: "2", modules: [l1] }, {
    name: "4",
    modules: [l2],
  }];
  return { model, units };
}

async function run(hook: LinearFreezing | AutoFreeze, model: nn.Sequential, epochs: number) {
  const { train: trainSet, test: testSet } = toyLoaders();
  const opt = new optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  const frozenSnapshots: Float32Array[] = [];
  const results = await train({
    model,
    optimizer: opt,
    train: trainSet,
    test: testSet,
    sampleShape: [64],
    epochs,
    logEvery: 1,
    progress: false,
    print: () => {},
    hooks: [hook, {
      // Snapshots of the first weight on the two steps after it froze.
      onStepEnd: async () => {
        if (hook.count > 0 && frozenSnapshots.length < 2) {
          frozenSnapshots.push((await (model.parameters()[0] as Tensor).toArray()) as Float32Array);
        }
      },
    }],
  });
  opt.dispose();
  return { results, frozenSnapshots };
}

Deno.test("linear freezing freezes units front to back on schedule, and frozen weights stop changing", async () => {
  manualSeed(1);
  const { model, units } = deepMlp();
  const hook = new LinearFreezing(units, { totalSteps: 24, start: 0.5 });
  const { results, frozenSnapshots } = await run(hook, model, 3); // 8 steps per epoch
  // t_i = 0.5 + 0.5·i/3 of 24 steps: units freeze at steps 12, 16 and 20.
  assert.deepEqual(hook.frozen(), ["0", "2", "4"]);
  assert.equal(results.at(-1)!.frozenLayers, 3);
  assert.deepEqual(Array.from(frozenSnapshots[0]), Array.from(frozenSnapshots[1]));
  for (const p of units[0].modules[0].parameters()) {
    assert.equal(p.requiresGrad, false);
    assert.equal(p.grad, null);
  }
  model.dispose();
});

Deno.test("AutoFreeze freezes a leading run of units and keeps the last one trainable", async () => {
  manualSeed(2);
  const { model, units } = deepMlp();
  const hook = new AutoFreeze(units, { interval: 2, percentile: 100 });
  await run(hook, model, 2);
  // With the 100th percentile every rate but the largest is "converged": the front units
  // freeze, never the last one.
  assert.ok(hook.count >= 1 && hook.count <= 2, `frozen ${hook.frozen()}`);
  assert.equal(hook.frozen()[0], "0");
  model.dispose();
});

Deno.test("AutoFreeze compares whole intervals only: a resumed, partial interval is skipped", async () => {
  manualSeed(4);
  const { model, units } = deepMlp();
  const grads = () => {
    for (const p of model.parameters()) {
      p.grad?.dispose();
      p.grad = randn(p.shape);
    }
  };
  const ctx = (step: number) => ({ step, epoch: 1, stepsPerEpoch: 100, log: () => {} });
  const a = new AutoFreeze(units, { interval: 4 });
  for (let s = 1; s <= 4; s++) {
    grads();
    a.afterBackward(ctx(s));
    await a.onStepEnd(ctx(s));
  }
  const saved = JSON.parse(JSON.stringify(a.state())) as { previous: number[] };
  assert.equal(saved.previous.length, 3, "a full interval records every active unit's norm");
  // Resumed at step 6: steps 7 and 8 end the interval with 2 of its 4 steps summed.
  const b = new AutoFreeze(units, { interval: 4 });
  b.restoreState(saved);
  for (let s = 7; s <= 8; s++) {
    grads();
    b.afterBackward(ctx(s));
    await b.onStepEnd(ctx(s));
  }
  assert.deepEqual(
    b.state(),
    saved,
    "the partial interval neither compares nor replaces the norms",
  );
  // The next whole interval is compared.
  for (let s = 9; s <= 12; s++) {
    grads();
    b.afterBackward(ctx(s));
    await b.onStepEnd(ctx(s));
  }
  assert.notDeepEqual(b.state(), saved);
  a.dispose();
  b.dispose();
  for (const p of model.parameters()) p.grad?.dispose();
  model.dispose();
});

Deno.test("freezeSavings takes its baseline from epochs that ended with nothing frozen", () => {
  const e = (epoch: number, seconds: number, frozenLayers: number) => ({
    epoch,
    seconds,
    flops: seconds,
    steps: 10,
    frozenLayers,
    trainLoss: 0,
    testAccuracy: 0,
    peakBytes: 100,
    samplesPerSecond: 0,
  });
  // Epoch 3 froze half-way (linear freezing, AutoFreeze): cheaper, so not a baseline epoch.
  const s = smartfrz.freezeSavings([e(1, 10, 0), e(2, 10, 0), e(3, 7, 2), e(4, 4, 2)])!;
  assert.equal(s.baselineEpochs, 1);
  assert.ok(Math.abs(s.time - (1 - 31 / 40)) < 1e-12, `${s.time}`);
});
