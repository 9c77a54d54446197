import assert from "node:assert/strict";
import { manualSeed, scope, tensor } from "../../../mod.ts";
import { randn } from "../../../engine/ops/random.ts";
import * as nn from "../../../engine/nn/mod.ts";

/** Float64 `x · wᵀ + b` (x [n, k], w [m, k]). */
function linearRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  b: ArrayLike<number> | null,
  n: number,
  k: number,
  m: number,
) {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let s = b ? b[j] : 0;
      for (let t = 0; t < k; t++) s += x[i * k + t] * w[j * k + t];
      out[i * m + j] = s;
    }
  }
  return out;
}

function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  what: string,
) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    assert.ok(
      err <= tol * (1 + Math.abs(expected[i])),
      `${what}[${i}]: ${actual[i]} vs ${expected[i]} (error ${err})`,
    );
  }
}

Deno.test("Linear.forward matches the float64 reference, with and without bias", async () => {
  for (const bias of [true, false]) {
    const fc = new nn.Linear(37, 11, { bias });
    const x = randn([9, 37]);
    const y = fc.forward(x);
    assert.deepEqual(y.shape, [9, 11]);
    const b = fc.bias ? await fc.bias.toArray() : null;
    const ref = linearRef(await x.toArray(), await fc.weight.toArray(), b, 9, 37, 11);
    assertClose(await y.toArray(), ref, 1e-5, `bias=${bias}`);
    assert.equal(fc.namedParameters().length, bias ? 2 : 1);
    fc.dispose();
  }
});

Deno.test("Linear accepts a vector and batched inputs", async () => {
  const fc = new nn.Linear(4, 3);
  const w = await fc.weight.toArray();
  const b = await fc.bias!.toArray();
  const v = tensor([1, -2, 3, 0.5]);
  const y1 = fc.forward(v);
  assert.deepEqual(y1.shape, [3]);
  assertClose(await y1.toArray(), linearRef(await v.toArray(), w, b, 1, 4, 3), 1e-5, "vector");
  const xb = randn([2, 5, 4]);
  const yb = fc.forward(xb);
  assert.deepEqual(yb.shape, [2, 5, 3]);
  assertClose(await yb.toArray(), linearRef(await xb.toArray(), w, b, 10, 4, 3), 1e-5, "batched");
  assert.throws(() => fc.forward(randn([2, 5])), /does not match weight \[3, 4\]/);
  fc.dispose();
});

Deno.test("Linear init is U(-1/sqrt(in), 1/sqrt(in)) for weight and bias, and seeded", async () => {
  manualSeed(7);
  const fc = new nn.Linear(64, 200);
  const bound = 1 / 8;
  for (const [name, t] of fc.namedParameters()) {
    const d = await t.toArray();
    let lo = Infinity, hi = -Infinity, sum = 0;
    for (const v of d) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
      sum += v;
    }
    assert.ok(lo >= -bound && hi <= bound, `${name} in [${lo}, ${hi}]`);
    if (name === "weight") {
      // 12,800 uniform draws: the extremes come within 1% of the bound, the mean near 0.
      assert.ok(lo < -0.99 * bound && hi > 0.99 * bound, `${name} spans [${lo}, ${hi}]`);
      assert.ok(Math.abs(sum / d.length) < 0.005, `${name} mean ${sum / d.length}`);
    }
  }
  manualSeed(7);
  const again = new nn.Linear(64, 200);
  assert.deepEqual(await again.weight.toArray(), await fc.weight.toArray());
  fc.dispose();
  again.dispose();
});

Deno.test("the fused Linear+ReLU path gives the unfused values and gradients", async () => {
  const layers = [new nn.Linear(12, 9), new nn.ReLU(), new nn.Linear(9, 5), new nn.ReLU()];
  const fused = new nn.Sequential(...layers);
  fused.fuse = true;
  const plain = new nn.Sequential(...layers);
  const x = randn([6, 12]);
  const g = randn([6, 5]);
  const run = async (m: nn.Sequential) => {
    const y = scope(() => {
      const y = m.forward(x);
      y.mul(g).sum().backward();
      return y;
    });
    const out = [
      await y.toArray(),
      ...await Promise.all(m.parameters().map((p) => p.grad!.toArray())),
    ];
    for (const p of m.parameters()) {
      p.grad!.dispose();
      p.grad = null;
    }
    y.dispose();
    return out;
  };
  const a = await run(fused);
  const b = await run(plain);
  a.forEach((arr, i) => assertClose(arr, b[i], 1e-6, `tensor ${i}`));
  assert.ok(a[0].some((v) => v === 0) && a[0].some((v) => v > 0));
  fused.dispose();
});

Deno.test("activation modules apply their function", async () => {
  const x = tensor([-7, -1, 0, 0.5, 8]);
  const cases: [nn.Module, (v: number) => number][] = [
    [new nn.ReLU(), (v) => Math.max(v, 0)],
    [new nn.ReLU6(), (v) => Math.min(Math.max(v, 0), 6)],
    [new nn.Tanh(), Math.tanh],
    [new nn.Sigmoid(), (v) => 1 / (1 + Math.exp(-v))],
    [
      new nn.GELU({ approximate: "tanh" }),
      (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))),
    ],
    [new nn.Identity(), (v) => v],
  ];
  const xs = await x.toArray();
  for (const [m, f] of cases) {
    assertClose(await m.forward(x).toArray(), Array.from(xs, f), 1e-5, m.constructor.name);
  }
  const sm = await new nn.Softmax().forward(tensor([0, Math.log(3)])).toArray();
  assertClose(sm, [0.25, 0.75], 1e-6, "Softmax");
  const f = new nn.Flatten();
  assert.deepEqual(f.forward(randn([2, 3, 4])).shape, [2, 12]);
  assert.deepEqual(new nn.Flatten(0, 1).forward(randn([2, 3, 4])).shape, [6, 4]);
  assert.equal(f.toString(), "Flatten(start_dim=1, end_dim=-1)");
});
