import assert from "node:assert/strict";
import {
  argmax,
  dropout,
  gather,
  getRngState,
  indexSelect,
  manualSeed,
  noGrad,
  ones,
  rand,
  randn,
  scatterAdd,
  setRngState,
  softmax,
  sum,
  type Tensor,
  tensor,
  zeros,
} from "../../../mod.ts";
import { foldGrid } from "../../../kernels/program.ts";
import { assertClose, type Ref, ref, Rng } from "../../helpers/reference.ts";
import { poison, SIZES, upload } from "../../helpers/gpu.ts";
import { gradcheck } from "../../helpers/gradcheck.ts";

function stats(x: ArrayLike<number>): { mean: number; std: number } {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  const mean = s / x.length;
  let v = 0;
  for (let i = 0; i < x.length; i++) v += (x[i] - mean) ** 2;
  return { mean, std: Math.sqrt(v / (x.length - 1)) };
}

const N = 65536;

Deno.test("rand() is uniform in [low, high): range, mean and std within 5 standard errors", async () => {
  manualSeed(1);
  for (const [lo, hi] of [[0, 1], [-3, 5]]) {
    poison([N]);
    const x = await rand([256, 256], lo, hi).toArray();
    assert.ok(x.every((v) => v >= lo && v < hi), "all values in [low, high)");
    const { mean, std } = stats(x);
    const sd = (hi - lo) / Math.sqrt(12);
    assert.ok(Math.abs(mean - (lo + hi) / 2) < (5 * sd) / Math.sqrt(N), `mean ${mean}`);
    assert.ok(Math.abs(std - sd) < 0.01 * sd, `std ${std}, expected ${sd}`);
    // Each tenth of the range gets about a tenth of the values (χ²-style bound, loose).
    const bins = new Array(10).fill(0);
    for (const v of x) bins[Math.floor(((v - lo) / (hi - lo)) * 10)]++;
    for (const b of bins) assert.ok(Math.abs(b - N / 10) < 5 * Math.sqrt(N / 10), `bins ${bins}`);
  }
});

Deno.test("randn() has the requested mean and std, and normal tails", async () => {
  manualSeed(2);
  for (const [m, s] of [[0, 1], [3, 0.5]]) {
    poison([N]);
    const x = await randn([N], m, s).toArray();
    assert.ok(x.every(Number.isFinite));
    const { mean, std } = stats(x);
    assert.ok(Math.abs(mean - m) < (5 * s) / Math.sqrt(N), `mean ${mean}`);
    assert.ok(Math.abs(std - s) < 0.02 * s, `std ${std}`);
    // P(|z| > 2) = 4.55% for a normal; a uniform or a bad transform misses it.
    const tail = x.filter((v) => Math.abs(v - m) > 2 * s).length / N;
    assert.ok(Math.abs(tail - 0.0455) < 0.005, `tail fraction ${tail}`);
  }
});

Deno.test("rand() and randn() write every element at odd sizes", async () => {
  for (const n of SIZES) {
    poison([n]);
    const u = await rand([n]).toArray();
    assert.ok(u.every((v) => v >= 0 && v < 1), `rand [${n}]`);
    poison([n]);
    assert.ok((await randn([n]).toArray()).every(Number.isFinite), `randn [${n}]`);
  }
});

Deno.test("manualSeed() makes draws reproducible; successive draws and seeds differ", async () => {
  manualSeed(42);
  const a = await rand([33]).toArray();
  const b = await randn([33]).toArray();
  manualSeed(42);
  assert.deepEqual(await rand([33]).toArray(), a);
  assert.deepEqual(await randn([33]).toArray(), b);
  manualSeed(42);
  const a2 = await rand([33]).toArray();
  const next = await rand([33]).toArray();
  assert.deepEqual(a2, a);
  assert.notDeepEqual(next, a, "the generator advances");
  manualSeed(43);
  assert.notDeepEqual(await rand([33]).toArray(), a);
});

Deno.test("getRngState()/setRngState() replay the stream", async () => {
  manualSeed(7);
  await rand([5]).toArray();
  const state = getRngState();
  const a = await randn([9]).toArray();
  const d = await dropout(ones([9]), 0.5).toArray();
  setRngState(state);
  assert.deepEqual(await randn([9]).toArray(), a);
  assert.deepEqual(await dropout(ones([9]), 0.5).toArray(), d);
});

// ---------------------------------------------------------------- dropout

Deno.test("dropout() zeroes a fraction ≈ p and scales the rest by 1/(1−p)", async () => {
  manualSeed(3);
  const xr = new Rng(3).nonzero([N]);
  const x = upload(xr);
  for (const p of [0.1, 0.5, 0.8]) {
    poison([N]);
    const y = await dropout(x, p).toArray();
    let zeros = 0;
    for (let i = 0; i < N; i++) {
      if (y[i] === 0) zeros++;
      else {
        const want = Math.fround(xr.data[i] * Math.fround(1 / (1 - p)));
        assert.ok(Math.abs(y[i] - want) <= 1e-6 * Math.abs(want), `kept ${y[i]} vs ${want}`);
      }
    }
    const se = Math.sqrt((p * (1 - p)) / N);
    assert.ok(Math.abs(zeros / N - p) < 5 * se, `p=${p}: zeroed ${zeros / N}`);
  }
});

Deno.test("dropout() is the identity with p = 0 or training = false", async () => {
  const x = tensor([1, -2, 3]);
  assert.deepEqual(Array.from(await dropout(x, 0).toArray()), [1, -2, 3]);
  assert.deepEqual(Array.from(await dropout(x, 0.9, false).toArray()), [1, -2, 3]);
});

Deno.test("dropout() is reproducible with manualSeed() and differs between calls", async () => {
  const x = ones([257]);
  manualSeed(11);
  const a = await dropout(x, 0.5).toArray();
  const b = await dropout(x, 0.5).toArray();
  manualSeed(11);
  assert.deepEqual(await dropout(x, 0.5).toArray(), a);
  assert.notDeepEqual(b, a);
});

Deno.test("dropout() draws the same mask with vec4 loads (size a multiple of 4) as without", async () => {
  // 1024 elements take the vec4 kernel, 1023 the scalar one: element k draws counter offset + k
  // in both, so the first 1023 elements of the masks agree.
  const x = ones([1024]);
  manualSeed(21);
  const a = await dropout(x, 0.5).toArray();
  manualSeed(21);
  const b = await dropout(ones([1023]), 0.5).toArray();
  assert.deepEqual(Array.from(a.slice(0, 1023)), Array.from(b));
  assert.ok(a.some((v) => v === 0) && a.some((v) => v === 2));
});

Deno.test("dropout() backward uses the forward's mask and scale", async () => {
  manualSeed(5);
  const xr = new Rng(5).nonzero([1000]);
  const x = upload(xr, { requiresGrad: true });
  const y = dropout(x, 0.4);
  // Draws in between must not change the mask backward regenerates.
  noGrad(() => rand([100]));
  const w = new Rng(6).nonzero([1000]);
  y.mul(upload(w)).sum().backward();
  const yv = await y.toArray();
  const g = await x.grad!.toArray();
  for (let i = 0; i < 1000; i++) {
    const kept = yv[i] !== 0;
    const want = kept ? Math.fround(w.data[i] * Math.fround(1 / 0.6)) : 0;
    assert.ok(
      Math.abs(g[i] - want) <= 1e-6 * Math.abs(want),
      `element ${i}: grad ${g[i]}, want ${want}`,
    );
  }
});

Deno.test("dropout() backward matches finite differences of the same masked function", async () => {
  const xr = new Rng(7).nonzero([4, 9]);
  manualSeed(9);
  const y = await noGrad(() => dropout(upload(xr), 0.3)).toArray();
  const mask = ref([4, 9], Array.from(y, (v) => (v === 0 ? 0 : 1 / 0.7)));
  await gradcheck("dropout", {
    inputs: [xr],
    gpu: (t) => {
      manualSeed(9);
      return dropout(t, 0.3);
    },
    ref: (v: Ref) => ref(v.shape, v.data.map((e, i) => e * mask.data[i])),
  });
});

// ---------------------------------------------------------------- large grids

Deno.test("foldGrid() keeps every dimension ≤ 65535 and covers the count", () => {
  for (const c of [1, 65535, 65536, 100000, 65535 * 65535, 65535 * 65535 + 1, 2 ** 33]) {
    const g = foldGrid(c);
    assert.ok(g.every((d) => Number.isInteger(d) && d >= 1 && d <= 65535), `${c}: [${g}]`);
    const total = g[0] * g[1] * g[2];
    assert.ok(total >= c, `${c}: [${g}] covers ${total}`);
    assert.ok(total - c < g[0] * g[1] + g[0] + 1, `${c}: [${g}] launches too many`);
  }
  assert.deepEqual(foldGrid(0), [1, 1, 1]);
  assert.deepEqual(foldGrid(100000), [50000, 2, 1]);
});

Deno.test("kernels with 1-D grids above 65,535 workgroups (folded) write every element", async () => {
  // One thread per element in 64-wide workgroups: 65,600 workgroups, folded into a 2-D grid.
  const n = 65535 * 64 + 4096;
  manualSeed(12);
  poison([n], 1);
  const u = rand([n]);
  const x = await u.toArray();
  let bad = 0;
  for (let i = 0; i < n; i++) if (!(x[i] >= 0 && x[i] < 1)) bad++;
  assert.equal(bad, 0, "every element is written and in [0, 1)");
  const tail = stats(x.subarray(n - 8192));
  assert.ok(Math.abs(tail.mean - 0.5) < 0.02, `mean of the last elements ${tail.mean}`);
  poison([n], 1);
  const d = await dropout(u, 0.5).toArray();
  bad = 0;
  for (let i = 0; i < n; i++) if (d[i] !== 0 && d[i] !== Math.fround(x[i] * 2)) bad++;
  assert.equal(bad, 0, "every element is dropped or scaled");
  assertClose([d.subarray(n - 8192).filter((v) => v === 0).length / 8192], [0.5], { atol: 0.03 });

  // The other kernels with one thread (or one row) per element in 64-wide workgroups:
  // gather/index-select, scatter-add, row reductions, row softmax. A [n, 1] view makes
  // each of them touch n elements at the cost of a copy.
  const col = u.reshape([n, 1]);
  const same = async (name: string, t: Tensor, want: ArrayLike<number>) => {
    const v = await t.toArray();
    let wrong = 0;
    for (let i = 0; i < n; i++) if (v[i] !== want[i]) wrong++;
    assert.equal(wrong, 0, `${name}: ${wrong} of ${n} elements wrong`);
    t.dispose();
  };
  const zeroIdx = zeros([1], "i32");
  poison([n], 1);
  await same("indexSelect", indexSelect(col, 1, zeroIdx), x);
  const idx = zeros([n, 1], "i32");
  poison([n], 1);
  await same("gather", gather(col, 1, idx), x);
  const base = zeros([n, 1]);
  await same("scatterAdd", scatterAdd(base, 1, idx, col), x);
  poison([n], 1);
  await same("sum over rows", sum(col, 1), x);
  poison([n], 1);
  await same("softmax over rows", softmax(col), new Float32Array(n).fill(1));
  poison([n], 1);
  await same("argmax over rows", argmax(col, 1), new Int32Array(n));
  for (const t of [u, col, zeroIdx, idx, base]) t.dispose();
});
