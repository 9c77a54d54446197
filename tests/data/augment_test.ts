import assert from "node:assert/strict";
import {
  applyAugments,
  augmentRng,
  channelStats,
  CIFAR10_MEAN,
  CIFAR10_STD,
  type FloatImage,
  normalize,
  randomCrop,
  randomHorizontalFlip,
  resize,
} from "../../data/augment.ts";
import { Rng } from "../../data/rng.ts";

/** A c x h x w image whose value encodes its position: (c*100 + y*10 + x) / 1000. */
function positional(c: number, h: number, w: number): FloatImage {
  const data = new Float32Array(c * h * w);
  for (let k = 0; k < c; k++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) data[(k * h + y) * w + x] = (k * 100 + y * 10 + x + 1) / 1000;
    }
  }
  return { data, channels: c, height: h, width: w };
}

/** Reference: pad with `fill` on every side, then cut the window at (top, left) of the padded image. */
function padCrop(
  img: FloatImage,
  pad: number,
  top: number,
  left: number,
  ch: number,
  cw: number,
  fill: number,
): Float32Array {
  const out = new Float32Array(img.channels * ch * cw);
  for (let k = 0; k < img.channels; k++) {
    for (let y = 0; y < ch; y++) {
      for (let x = 0; x < cw; x++) {
        const sy = top + y - pad, sx = left + x - pad;
        const inside = sy >= 0 && sy < img.height && sx >= 0 && sx < img.width;
        out[(k * ch + y) * cw + x] = inside
          ? img.data[(k * img.height + sy) * img.width + sx]
          : fill;
      }
    }
  }
  return out;
}

Deno.test("randomCrop() with padding equals zero-padding then cropping at the drawn offsets", () => {
  const img = positional(3, 8, 8);
  const crop = randomCrop(8, { padding: 2 });
  for (let s = 0; s < 40; s++) {
    const rng = new Rng(s);
    // The crop draws top then left, each uniform over the 2*pad + 1 offsets.
    const probe = Rng.fromState(rng.state());
    const top = probe.int(5), left = probe.int(5);
    const out = crop.apply({ ...img, data: img.data.slice() }, rng);
    assert.deepEqual([out.channels, out.height, out.width], [3, 8, 8]);
    assert.deepEqual(out.data, padCrop(img, 2, top, left, 8, 8, 0));
  }
});

Deno.test("randomCrop() reaches every offset, fills with the given value, crops smaller windows", () => {
  const img = positional(1, 6, 5);
  const crop = randomCrop([4, 3], { padding: 1, fill: 0.5 });
  assert.deepEqual(crop.outputShape([1, 6, 5]), [1, 4, 3]);
  const seen = new Set<string>();
  for (let s = 0; s < 400; s++) {
    const rng = new Rng(s);
    const probe = Rng.fromState(rng.state());
    const top = probe.int(5), left = probe.int(5);
    seen.add(`${top},${left}`);
    assert.deepEqual(crop.apply(img, rng).data, padCrop(img, 1, top, left, 4, 3, 0.5));
  }
  assert.equal(seen.size, 25);
});

Deno.test("randomCrop() without padding at full size is the identity; too-large crops are rejected", () => {
  const img = positional(2, 4, 4);
  assert.deepEqual(randomCrop(4).apply(img, new Rng(3)).data, img.data);
  assert.throws(() => randomCrop(10, { padding: 2 }).outputShape([3, 5, 5]), /does not fit/);
  assert.throws(() => randomCrop(3, { padding: -1 }), /padding/);
  assert.throws(() => randomCrop(0), /size/);
});

Deno.test("randomHorizontalFlip() mirrors every row of every channel with probability p", () => {
  const img = positional(2, 3, 4);
  const flipped = randomHorizontalFlip(1).apply({ ...img, data: img.data.slice() }, new Rng(0));
  for (let k = 0; k < 2; k++) {
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 4; x++) {
        assert.equal(flipped.data[(k * 3 + y) * 4 + x], img.data[(k * 3 + y) * 4 + 3 - x]);
      }
    }
  }
  assert.deepEqual(
    randomHorizontalFlip(0).apply({ ...img, data: img.data.slice() }, new Rng(0)).data,
    img.data,
  );
  let n = 0;
  for (let s = 0; s < 2000; s++) {
    const out = randomHorizontalFlip().apply({ ...img, data: img.data.slice() }, new Rng(s));
    if (out.data[0] !== img.data[0]) n++;
  }
  // Binomial(2000, 0.5): mean 1000, sd 22.
  assert.ok(n > 900 && n < 1100, `flipped ${n} of 2000`);
  assert.throws(() => randomHorizontalFlip(1.5), /p must be in \[0, 1\]/);
});

Deno.test("resize() augment changes height and width only, nearest and bilinear", () => {
  const img = positional(3, 2, 2);
  const up = resize(4, "nearest").apply(img, new Rng(0));
  assert.deepEqual([up.channels, up.height, up.width], [3, 4, 4]);
  // Nearest doubling repeats each pixel 2x2.
  for (let k = 0; k < 3; k++) {
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 4; x++) {
        assert.equal(up.data[(k * 4 + y) * 4 + x], img.data[(k * 2 + (y >> 1)) * 2 + (x >> 1)]);
      }
    }
  }
  assert.deepEqual(resize([5, 3]).outputShape([3, 2, 2]), [3, 5, 3]);
  const down = resize(1, "bilinear").apply(positional(1, 2, 2), new Rng(0));
  assert.ok(Math.abs(down.data[0] - (0.001 + 0.002 + 0.011 + 0.012) / 4) < 1e-6);
});

Deno.test("normalize() applies per-channel (x - mean) / std; channelStats() checks and expands", () => {
  const img = {
    data: new Float32Array([0.4914, 1, 0.4822, 0, 0.4465, 0.5]),
    channels: 3,
    height: 1,
    width: 2,
  };
  const out = normalize(img, CIFAR10_MEAN, CIFAR10_STD);
  const want = [0, (1 - 0.4914) / 0.2470, 0, -0.4822 / 0.2435, 0, (0.5 - 0.4465) / 0.2616];
  want.forEach((v, i) => assert.ok(Math.abs(out.data[i] - v) < 1e-6));
  assert.deepEqual(channelStats(0.5, 0.25, 2), { mean: [0.5, 0.5], std: [0.25, 0.25] });
  assert.deepEqual(channelStats([0.1], [0.2, 0.3], 2), { mean: [0.1, 0.1], std: [0.2, 0.3] });
  assert.throws(() => channelStats([0.1, 0.2], 1, 3), /mean has 2 values for 3 channel/);
  assert.throws(() => channelStats(0, [1, 0, 1], 3), /std > 0/);
  assert.throws(() => channelStats(NaN, 1, 1), /finite mean/);
});

Deno.test("augmentRng() is a pure function of (seed, epoch, index) and differs when any changes", () => {
  const draw = (s: number, e: number, i: number) => augmentRng(s, e, i).nextU32();
  assert.equal(draw(1, 2, 3), draw(1, 2, 3));
  const all = new Set([draw(1, 2, 3), draw(2, 2, 3), draw(1, 3, 3), draw(1, 2, 4), draw(1, 3, 2)]);
  assert.equal(all.size, 5);
});

Deno.test("applyAugments() runs the CIFAR recipe reproducibly", () => {
  const recipe = [randomCrop(32, { padding: 4 }), randomHorizontalFlip()];
  const run = (seed: number) =>
    applyAugments(positional(3, 32, 32), recipe, augmentRng(seed, 0, 5)).data;
  assert.deepEqual(run(7), run(7));
  const outs = new Set(Array.from({ length: 8 }, (_, s) => run(s).join(",")));
  assert.ok(outs.size > 4, `only ${outs.size} distinct augmentations of 8`);
});
