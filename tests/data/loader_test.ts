import assert from "node:assert/strict";
import {
  type Batch,
  BatchLoader,
  FASHION_MNIST_MEAN,
  FASHION_MNIST_STD,
} from "../../data/loader.ts";
import type { ImageSet } from "../../data/fashion_mnist.ts";
import {
  applyAugments,
  augmentRng,
  CIFAR10_MEAN,
  CIFAR10_STD,
  normalize,
  randomCrop,
  randomHorizontalFlip,
  resize,
} from "../../data/augment.ts";

/** n tiny 2x3 images; image i has pixel p = (i * 6 + p) % 256 and label i % 10. */
function makeSet(n: number, labels?: Uint8Array): ImageSet {
  const per = 6;
  const images = new Uint8Array(n * per);
  for (let i = 0; i < images.length; i++) images[i] = i % 256;
  return {
    images,
    labels: labels ?? Uint8Array.from({ length: n }, (_, i) => i % 10),
    n,
    height: 2,
    width: 3,
    channels: 1,
    classes: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
  };
}

async function epoch(loader: BatchLoader): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader.batches()) out.push(b);
  return out;
}

const order = (batches: Batch[]) => batches.flatMap((b) => [...b.indices]);

Deno.test("BatchLoader yields every index exactly once per epoch", async () => {
  const set = makeSet(103);
  const loader = new BatchLoader(set, { batchSize: 10, shuffle: true, seed: 9 });
  assert.equal(loader.batchesPerEpoch, 11);
  for (let e = 0; e < 3; e++) {
    const batches = await epoch(loader);
    assert.deepEqual(batches.map((b) => b.size), [...new Array(10).fill(10), 3]);
    assert.deepEqual(
      order(batches).sort((a, b) => a - b),
      Array.from({ length: 103 }, (_, i) => i),
    );
    assert.equal(loader.epoch, e + 1);
    assert.equal(loader.position, 0);
  }
});

Deno.test("BatchLoader with dropLast yields only full batches, each index at most once", async () => {
  const loader = new BatchLoader(makeSet(103), {
    batchSize: 10,
    shuffle: true,
    seed: 1,
    dropLast: true,
  });
  assert.equal(loader.batchesPerEpoch, 10);
  const batches = await epoch(loader);
  assert.deepEqual(batches.map((b) => b.size), new Array(10).fill(10));
  assert.equal(new Set(order(batches)).size, 100);
  assert.equal(loader.epoch, 1);
});

Deno.test("BatchLoader without shuffle keeps dataset order every epoch", async () => {
  const loader = new BatchLoader(makeSet(25), { batchSize: 8 });
  const ident = Array.from({ length: 25 }, (_, i) => i);
  assert.deepEqual(order(await epoch(loader)), ident);
  assert.deepEqual(order(await epoch(loader)), ident);
});

Deno.test("BatchLoader: same seed gives the same order, different seeds and epochs differ", async () => {
  const set = makeSet(200);
  const run = async (seed: number) => {
    const l = new BatchLoader(set, { batchSize: 32, shuffle: true, seed });
    return [order(await epoch(l)), order(await epoch(l))];
  };
  const [a0, a1] = await run(5);
  const [b0, b1] = await run(5);
  const [c0] = await run(6);
  assert.deepEqual(b0, a0);
  assert.deepEqual(b1, a1);
  assert.notDeepEqual(c0, a0);
  assert.notDeepEqual(a1, a0);
  assert.notDeepEqual(a0, Array.from({ length: 200 }, (_, i) => i));
});

Deno.test("BatchLoader normalises pixels with the Fashion-MNIST mean/std by default", async () => {
  const set = makeSet(7);
  const [b] = await epoch(new BatchLoader(set, { batchSize: 7, shuffle: true, seed: 2 }));
  assert.equal(b.x.length, 7 * 6);
  for (let k = 0; k < b.size; k++) {
    const i = b.indices[k];
    assert.equal(b.y[k], set.labels[i]);
    for (let p = 0; p < 6; p++) {
      const want = (set.images[i * 6 + p] / 255 - FASHION_MNIST_MEAN) / FASHION_MNIST_STD;
      assert.ok(Math.abs(b.x[k * 6 + p] - want) < 1e-6);
    }
  }
  assert.ok(b.x instanceof Float32Array);
  assert.ok(b.y instanceof Int32Array);
});

Deno.test("BatchLoader applies a given mean and std", async () => {
  const set = makeSet(2);
  const [b] = await epoch(new BatchLoader(set, { batchSize: 2, mean: 0.5, std: 0.25 }));
  assert.ok(Math.abs(b.x[1] - (1 / 255 - 0.5) / 0.25) < 1e-6);
  assert.equal(b.x[0], -2);
});

Deno.test("BatchLoader state()/restore() resumes the exact order mid-epoch and across epochs", async () => {
  const set = makeSet(57);
  const opts = { batchSize: 8, shuffle: true, seed: 77 };
  const a = new BatchLoader(set, opts);
  await epoch(a);
  let saved: ReturnType<BatchLoader["state"]> | undefined;
  let k = 0;
  for await (const _ of a.batches()) {
    // A checkpoint taken while holding batch 2 counts it as consumed.
    if (++k === 3) {
      saved = JSON.parse(JSON.stringify(a.state()));
      break;
    }
  }
  assert.deepEqual(saved, { epoch: 1, position: 24, seed: 77 });
  const restOfA = [...await epoch(a), ...await epoch(a)];

  const b = new BatchLoader(set, opts);
  b.restore(saved!);
  const restOfB = [...await epoch(b), ...await epoch(b)];
  assert.deepEqual(restOfB.map((x) => [...x.indices]), restOfA.map((x) => [...x.indices]));
  assert.deepEqual(restOfB.map((x) => x.x), restOfA.map((x) => x.x));
  assert.deepEqual(b.state(), { epoch: 3, position: 0, seed: 77 });
});

Deno.test("BatchLoader continues where a broken-off iteration stopped", async () => {
  const set = makeSet(40);
  const opts = { batchSize: 5, shuffle: true, seed: 3 };
  const full = order(await epoch(new BatchLoader(set, opts)));
  const l = new BatchLoader(set, opts);
  const got: number[] = [];
  for await (const b of l.batches()) {
    got.push(...b.indices);
    if (got.length === 15) break;
  }
  for await (const b of l.batches()) got.push(...b.indices);
  assert.deepEqual(got, full);
  assert.equal(l.epoch, 1);
});

Deno.test("BatchLoader.restore() rejects a foreign seed and bad positions", () => {
  const l = new BatchLoader(makeSet(10), { batchSize: 3, shuffle: true, seed: 1 });
  assert.throws(() => l.restore({ epoch: 0, position: 0, seed: 2 }), /seed 2, this loader has 1/);
  assert.throws(() => l.restore({ epoch: 0, position: 11 }), /outside 0..10/);
  assert.throws(() => l.restore({ epoch: -1, position: 0 }), /bad epoch/);
  l.restore({ epoch: 4, position: 9 });
  assert.deepEqual(l.state(), { epoch: 4, position: 9, seed: 1 });
});

Deno.test("BatchLoader rejects bad options and inconsistent sets", () => {
  assert.throws(() => new BatchLoader(makeSet(4), { batchSize: 0 }), /batchSize/);
  assert.throws(() => new BatchLoader(makeSet(4), { batchSize: 2, std: 0 }), /std > 0/);
  const bad = { ...makeSet(4), n: 5 };
  assert.throws(() => new BatchLoader(bad, { batchSize: 2 }), /sizes disagree/);
});

Deno.test("BatchLoader refuses two concurrent iterations", async () => {
  const l = new BatchLoader(makeSet(10), { batchSize: 2 });
  const it = l.batches();
  await it.next();
  await assert.rejects(l.batches().next(), /another iteration is running/);
  assert.throws(() => l.restore({ epoch: 0, position: 0 }), /iteration is running/);
  await it.return();
});

/** Labels whose reads are logged, to see when a batch gets built. */
function spyLabels(n: number, log: number[]): Uint8Array {
  const target = Uint8Array.from({ length: n }, (_, i) => i % 10);
  return new Proxy(target, {
    get(t, prop) {
      if (typeof prop === "string" && /^\d+$/.test(prop)) log.push(Number(prop));
      const v = (t as unknown as Record<string | symbol, unknown>)[prop];
      return typeof v === "function" ? v.bind(t) : v;
    },
  });
}

for (const prefetch of [true, false]) {
  Deno.test(`BatchLoader ${prefetch ? "builds" : "does not build"} batch i+1 while batch i is in use with prefetch: ${prefetch}`, async () => {
    const log: number[] = [];
    const set = makeSet(12, spyLabels(12, log));
    const l = new BatchLoader(set, { batchSize: 4, shuffle: true, seed: 5, prefetch });
    const batches: Batch[] = [];
    const builtWhileHeld: boolean[] = [];
    for await (const b of l.batches()) {
      batches.push(b);
      log.length = 0;
      // The consumer awaits something, as a training step awaits the GPU.
      await new Promise((r) => setTimeout(r, 5));
      builtWhileHeld.push(log.length > 0);
    }
    assert.deepEqual(builtWhileHeld, prefetch ? [true, true, false] : [false, false, false]);
    const plain = new BatchLoader(makeSet(12), { batchSize: 4, shuffle: true, seed: 5 });
    assert.deepEqual(order(batches), order(await epoch(plain)));
  });
}

Deno.test("BatchLoader gives the same batches with and without prefetch when never yielding", async () => {
  const set = makeSet(50);
  const a = await epoch(new BatchLoader(set, { batchSize: 7, shuffle: true, seed: 8 }));
  const b = await epoch(
    new BatchLoader(set, { batchSize: 7, shuffle: true, seed: 8, prefetch: false }),
  );
  assert.deepEqual(a, b);
});

/** n RGB 4x4 images, pixel values distinct per (image, channel, position). */
function makeRgbSet(n: number): ImageSet {
  const per = 3 * 16;
  return {
    images: Uint8Array.from({ length: n * per }, (_, i) => (i * 37) % 256),
    labels: Uint8Array.from({ length: n }, (_, i) => i % 3),
    n,
    height: 4,
    width: 4,
    channels: 3,
    classes: ["a", "b", "c"],
  };
}

Deno.test("BatchLoader normalises each channel with per-channel mean and std arrays", async () => {
  const set = makeRgbSet(5);
  const [b] = await epoch(
    new BatchLoader(set, { batchSize: 5, mean: CIFAR10_MEAN, std: CIFAR10_STD }),
  );
  for (let i = 0; i < 5; i++) {
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < 16; p++) {
        const k = i * 48 + c * 16 + p;
        const want = (set.images[k] / 255 - CIFAR10_MEAN[c]) / CIFAR10_STD[c];
        assert.ok(Math.abs(b.x[k] - want) < 1e-6);
      }
    }
  }
  // A one-element array means the same as a scalar.
  const [s] = await epoch(new BatchLoader(set, { batchSize: 5, mean: [0.5], std: 0.25 }));
  const [t] = await epoch(new BatchLoader(set, { batchSize: 5, mean: 0.5, std: [0.25] }));
  assert.deepEqual(s.x, t.x);
  assert.throws(
    () => new BatchLoader(set, { batchSize: 2, mean: [0.1, 0.2], std: 1 }),
    /mean has 2 values for 3 channel/,
  );
  assert.throws(() => new BatchLoader(set, { batchSize: 2, std: [1, 1, -1] }), /std > 0/);
});

const cifarRecipe = () => [randomCrop(4, { padding: 1 }), randomHorizontalFlip()];

Deno.test("BatchLoader applies augments per sample with augmentRng(seed, epoch, index), then normalises", async () => {
  const set = makeRgbSet(9);
  const augment = [randomCrop(3, { padding: 1 }), randomHorizontalFlip(), resize(6, "nearest")];
  const loader = new BatchLoader(set, {
    batchSize: 4,
    shuffle: true,
    seed: 11,
    mean: CIFAR10_MEAN,
    std: CIFAR10_STD,
    augment,
  });
  assert.deepEqual(loader.sampleShape, [3, 6, 6]);
  for (let e = 0; e < 2; e++) {
    for (const b of await epoch(loader)) {
      assert.equal(b.x.length, b.size * 3 * 36);
      for (let k = 0; k < b.size; k++) {
        const i = b.indices[k];
        const data = Float32Array.from(set.images.subarray(i * 48, (i + 1) * 48), (v) => v / 255);
        const img = applyAugments(
          { data, channels: 3, height: 4, width: 4 },
          augment,
          augmentRng(11, e, i),
        );
        normalize(img, CIFAR10_MEAN, CIFAR10_STD);
        assert.deepEqual(b.x.subarray(k * 108, (k + 1) * 108), img.data);
      }
    }
  }
  assert.throws(
    () => new BatchLoader(set, { batchSize: 2, augment: [randomCrop(9)] }),
    /augment randomCrop\(9x9, padding 0\): .*does not fit a 4x4 image/,
  );
});

Deno.test("BatchLoader augmentation differs between epochs and replays with the same seed", async () => {
  const set = makeRgbSet(16);
  const opts = { batchSize: 16, seed: 4, augment: cifarRecipe() };
  const a = new BatchLoader(set, opts);
  const [a0] = await epoch(a);
  const [a1] = await epoch(a);
  assert.notDeepEqual(a0.x, a1.x);
  const b = new BatchLoader(set, { ...opts, augment: cifarRecipe() });
  assert.deepEqual((await epoch(b))[0].x, a0.x);
  assert.deepEqual((await epoch(b))[0].x, a1.x);
  const c = new BatchLoader(set, { ...opts, seed: 5 });
  assert.notDeepEqual((await epoch(c))[0].x, a0.x);
});

Deno.test("BatchLoader state()/restore() mid-epoch reproduces the same augmented batches", async () => {
  const set = makeRgbSet(23);
  const opts = {
    batchSize: 5,
    shuffle: true,
    seed: 123,
    mean: CIFAR10_MEAN,
    std: CIFAR10_STD,
    augment: cifarRecipe(),
  };
  const a = new BatchLoader(set, opts);
  await epoch(a);
  let saved: ReturnType<BatchLoader["state"]> | undefined;
  let k = 0;
  for await (const _ of a.batches()) {
    if (++k === 2) {
      saved = JSON.parse(JSON.stringify(a.state()));
      break;
    }
  }
  assert.deepEqual(saved, { epoch: 1, position: 10, seed: 123 });
  const restOfA = [...await epoch(a), ...await epoch(a)];
  // A fresh process: new loader and new augment objects, restored from the checkpoint.
  const b = new BatchLoader(set, { ...opts, augment: cifarRecipe(), prefetch: false });
  b.restore(saved!);
  const restOfB = [...await epoch(b), ...await epoch(b)];
  assert.equal(restOfB.length, 3 + 5);
  assert.deepEqual(restOfB.map((x) => [...x.indices]), restOfA.map((x) => [...x.indices]));
  assert.deepEqual(restOfB.map((x) => x.x), restOfA.map((x) => x.x));
  assert.deepEqual(restOfB.map((x) => x.y), restOfA.map((x) => x.y));
});

Deno.test("BatchLoader without augment reports the set's sample shape", () => {
  assert.deepEqual(new BatchLoader(makeRgbSet(2), { batchSize: 1 }).sampleShape, [3, 4, 4]);
});
