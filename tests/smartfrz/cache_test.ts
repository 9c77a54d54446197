/**
 * Forward caching of a frozen prefix: training reads the cache once it is
 * complete, and the losses and the final weights are the ones of the same run
 * without the cache; padded text outputs are stored per sample and
 * reassembled at any batch length.
 */
import assert from "node:assert/strict";
import { manualSeed, nn, noGrad, optim, randn, smartfrz, type Tensor, tensor } from "../../mod.ts";
import { toyLoaders } from "./_toy.ts";
import { train } from "../../train/trainer.ts";

/** Freezes the first two units at the end of epoch 1. */
class FreezeAfterFirstEpoch extends smartfrz.FrozenPrefix {
  onEpochEnd(r: smartfrz.EpochResult) {
    if (r.epoch === 1) {
      this.freezeNext();
      this.freezeNext();
    }
  }
}

async function run(cached: boolean) {
  manualSeed(11);
  const model = new nn.Sequential(
    new nn.Linear(64, 32),
    new nn.ReLU(),
    new nn.Linear(32, 32),
    new nn.ReLU(),
    new nn.Linear(32, 16),
    new nn.ReLU(),
    new nn.Linear(16, 4),
  );
  const opt = new optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  const ctl = new FreezeAfterFirstEpoch(smartfrz.unitsOf(model), { optimizer: opt });
  const cache = new smartfrz.ForwardCache(ctl, { samples: 256 });
  const losses: number[] = [];
  const { train: trainSet, test: testSet } = toyLoaders();
  const results = await train({
    model,
    optimizer: opt,
    train: trainSet,
    test: testSet,
    sampleShape: [64],
    epochs: 4,
    logEvery: 1,
    progress: false,
    print: () => {},
    hooks: [ctl, ...(cached ? [cache] : [])],
  });
  for (const r of results) losses.push(r.trainLoss);
  const weights = await Promise.all(model.parameters().map((p) => p.toArray()));
  const stats = { hits: cache.hits, fills: cache.fills, units: cache.stats() };
  cache.dispose();
  model.dispose();
  return { losses, weights, stats, accuracy: results.at(-1)!.testAccuracy };
}

Deno.test("a cached frozen prefix trains exactly as the recomputed one, and the cache is read", async () => {
  const plain = await run(false);
  const cached = await run(true);
  // Epoch 2 fills unit "2"'s cache (8 batches), epochs 3 and 4 read it (16 batches).
  assert.equal(cached.stats.fills, 8);
  assert.equal(cached.stats.hits, 16);
  assert.deepEqual(cached.stats.units, [{ unit: "2", filled: 256, samples: 256 }]);
  for (let i = 0; i < plain.losses.length; i++) {
    assert.ok(
      Math.abs(plain.losses[i] - cached.losses[i]) <= 1e-6 * Math.abs(plain.losses[i]),
      `epoch ${i + 1}: ${plain.losses[i]} vs ${cached.losses[i]}`,
    );
  }
  for (let p = 0; p < plain.weights.length; p++) {
    const a = plain.weights[p], b = cached.weights[p];
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5, `param ${p}[${i}]`);
  }
  assert.equal(plain.accuracy, cached.accuracy);
});

/** A unit whose output is `[N, T, H]` with T the batch's length (like BERT's embeddings). */
class Rows extends nn.Module {
  weight = nn.parameter(randn([3]));
  forward(ids: Tensor): Tensor {
    const [n, t] = ids.shape;
    return noGrad(() => ids.reshape([n, t, 1]).expand([n, t, 3]).mul(this.weight));
  }
}

Deno.test("padded outputs are stored per sample and reassembled at any batch length", async () => {
  manualSeed(12);
  const unit = new Rows();
  const ctl = new smartfrz.FrozenPrefix([{ name: "rows", modules: [unit] }]);
  ctl.freezeNext();
  const cache = new smartfrz.ForwardCache(ctl, { samples: 4, maxRows: 6 });
  const ctx = { step: 1, epoch: 1, stepsPerEpoch: 1, log: () => {} };
  const ids = (rows: number[][]) =>
    tensor(Float32Array.from(rows.flat()), { shape: [rows.length, rows[0].length] });
  // Fill: samples 0,1 in a batch of length 2, samples 2,3 in a batch of length 4.
  for (
    const [indices, rows] of [[[0, 1], [[1, 2], [3, 4]]], [[2, 3], [[5, 6, 7, 0], [
      8,
      0,
      0,
      0,
    ]]]] as const
  ) {
    cache.beforeForward({ size: 2, indices: Uint32Array.from(indices) });
    const x = ids(rows.map((r) => [...r]));
    unit.forward(x).dispose();
    cache.afterBackward();
    await cache.onStepEnd(ctx);
    x.dispose();
  }
  assert.deepEqual(cache.stats(), [{ unit: "rows", filled: 4, samples: 4 }]);
  // Read: samples 3 and 0 in a batch of length 3 (the input's values no longer matter).
  cache.beforeForward({ size: 2, indices: Uint32Array.from([3, 0]) });
  const x = ids([[9, 9, 9], [9, 9, 9]]);
  const y = unit.forward(x);
  cache.afterBackward();
  const w = Array.from(await unit.weight.toArray());
  const want = [[8, 0, 0], [1, 2, 0]].flatMap((r) => r.flatMap((v) => w.map((c) => v * c)));
  const got = Array.from(await y.toArray());
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-6, `${i}`);
  assert.equal(cache.hits, 1);
  // After the step the module computes again.
  const z = unit.forward(x);
  assert.equal((await z.toArray())[0], Math.fround(9 * w[0]));
  for (const t of [x, y, z]) t.dispose();
  cache.dispose();
  unit.dispose();
});

Deno.test("the cache refuses outputs that do not match the batch (and names the unit)", async () => {
  const unit = new Rows();
  const ctl = new smartfrz.FrozenPrefix([{ name: "rows", modules: [unit] }]);
  ctl.freezeNext();
  const cache = new smartfrz.ForwardCache(ctl, { samples: 4, maxRows: 2 });
  const ctx = { step: 1, epoch: 1, stepsPerEpoch: 1, log: () => {} };
  // Three rows of output for a batch of two samples.
  cache.beforeForward({ size: 2, indices: Uint32Array.from([0, 1]) });
  const x = tensor(new Float32Array(6), { shape: [3, 2] });
  unit.forward(x).dispose();
  cache.afterBackward();
  await assert.rejects(cache.onStepEnd(ctx), /unit "rows" produced 3 rows for a batch of 2/);
  // Longer text rows than maxRows.
  cache.beforeForward({ size: 2, indices: Uint32Array.from([0, 1]) });
  const y = tensor(new Float32Array(6), { shape: [2, 3] });
  unit.forward(y).dispose();
  cache.afterBackward();
  await assert.rejects(cache.onStepEnd(ctx), /more rows than maxRows 2/);
  for (const t of [x, y]) t.dispose();
  cache.dispose();
  unit.dispose();
});
