import assert from "node:assert/strict";
import {
  abs,
  add,
  arange,
  cast,
  cos,
  div,
  eq,
  exp,
  full,
  ge,
  gelu,
  gt,
  le,
  log,
  lt,
  maximum,
  minimum,
  mul,
  ne,
  neg,
  ones,
  pow,
  relu,
  relu6,
  rsqrt,
  sigmoid,
  sin,
  sqrt,
  sub,
  tanh,
  type Tensor,
  tensor,
  where,
  zeros,
} from "../../../mod.ts";
import {
  assertClose,
  BINARY_REF,
  mapRef,
  type Ref,
  ref,
  Rng,
  roundF32,
  UNARY_REF,
  whereRef,
  zipRef,
} from "../../helpers/reference.ts";
import { checkOp, download, poison, SIZES, upload } from "../../helpers/gpu.ts";
import { gradcheck } from "../../helpers/gradcheck.ts";

type Unary = (x: Tensor) => Tensor;
type Binary = (a: Tensor | number, b: Tensor | number) => Tensor;

// Each unary op with an input domain that avoids its kinks and poles by a margin.
const UNARY: [string, Unary, (r: Rng, shape: number[]) => Ref][] = [
  ["neg", neg, (r, s) => r.nonzero(s, 0.1, 3)],
  ["abs", abs, (r, s) => r.nonzero(s, 0.1, 3)],
  ["exp", exp, (r, s) => r.nonzero(s, 0.1, 4)],
  ["log", log, (r, s) => r.uniformRef(s, 0.1, 5)],
  ["sqrt", sqrt, (r, s) => r.uniformRef(s, 0.1, 5)],
  ["rsqrt", rsqrt, (r, s) => r.uniformRef(s, 0.1, 5)],
  ["tanh", tanh, (r, s) => r.nonzero(s, 0.1, 4)],
  ["sigmoid", sigmoid, (r, s) => r.nonzero(s, 0.1, 6)],
  ["relu", relu, (r, s) => r.nonzero(s, 0.1, 3)],
  // Both clamps of relu6 are exercised; values within 0.1 of the kink at 6 are moved off it.
  [
    "relu6",
    relu6,
    (r, s) => roundF32(mapRef(r.nonzero(s, 0.1, 9), (v) => (Math.abs(v - 6) < 0.1 ? v - 0.5 : v))),
  ],
  ["gelu", (x) => gelu(x), (r, s) => r.nonzero(s, 0.1, 5)],
  ["gelu_tanh", (x) => gelu(x, "tanh"), (r, s) => r.nonzero(s, 0.1, 5)],
  ["sin", sin, (r, s) => r.nonzero(s, 0.1, 3)],
  ["cos", cos, (r, s) => r.nonzero(s, 0.1, 3)],
];

const BINARY: [string, Binary][] = [
  ["add", add],
  ["sub", sub],
  ["mul", mul],
  ["div", div],
  ["pow", pow],
  ["maximum", maximum],
  ["minimum", minimum],
];
const COMPARE: [string, Binary][] = [
  ["eq", eq],
  ["ne", ne],
  ["lt", lt],
  ["le", le],
  ["gt", gt],
  ["ge", ge],
];

// Sizes of the scalar kernels (SIZES, none a multiple of 4) and of their vec4 forms.
const ALL_SIZES = [...SIZES, 4, 1024];

// Broadcasting cases: same shape, trailing vector, outer product, rank mismatch, scalars;
// the vec4 forms (sizes and tails multiples of 4) for same shape and both tails.
const BROADCAST: [number[], number[]][] = [
  [[257], [257]],
  [[4, 16], [4, 16]],
  [[6, 8], [8]],
  [[8], [6, 8]],
  [[7, 33], [33]],
  [[7, 1], [1, 33]],
  [[2, 1, 5], [3, 1]],
  [[], [7]],
  [[1, 1], [3, 5, 1]],
];

for (const [name, fn, input] of UNARY) {
  Deno.test(`${name}() matches the float64 reference at sizes ${ALL_SIZES.join(", ")}`, async () => {
    const r = new Rng(100);
    for (const n of ALL_SIZES) {
      const x = input(r, [n]);
      await checkOp(`${name} [${n}]`, [x], fn, mapRef(x, UNARY_REF[name]), {
        rtol: 2e-6,
        atol: 1e-6,
      });
    }
  });

  Deno.test(`${name}() backward matches finite differences`, async () => {
    for (const shape of [[3, 5], [2, 4]]) {
      const x = input(new Rng(101), shape);
      await gradcheck(name, { inputs: [x], gpu: fn, ref: (v) => mapRef(v, UNARY_REF[name]) });
    }
  });
}

Deno.test("unary ops keep the shape of multi-axis and 0-d tensors", async () => {
  const r = new Rng(102);
  for (const shape of [[], [2, 3, 5], [1, 1, 7]]) {
    const x = r.nonzero(shape);
    await checkOp(`exp [${shape}]`, [x], exp, mapRef(x, Math.exp), { rtol: 2e-6 });
  }
});

for (const [name, fn] of BINARY) {
  Deno.test(`${name}() matches the reference for every broadcasting case`, async () => {
    const r = new Rng(200);
    for (const [sa, sb] of BROADCAST) {
      const a = name === "pow" ? r.uniformRef(sa, 0.2, 3) : r.nonzero(sa);
      const b = name === "pow" ? r.uniformRef(sb, -2, 2) : r.nonzero(sb);
      await checkOp(
        `${name} [${sa}] [${sb}]`,
        [a, b],
        (x, y) => fn(x, y),
        zipRef(a, b, BINARY_REF[name]),
        { rtol: 4e-6 },
      );
    }
  });

  Deno.test(`${name}() backward matches finite differences with broadcasting`, async () => {
    const r = new Rng(201);
    for (const [sa, sb] of [[[3, 4], [3, 4]], [[3, 1, 4], [5, 1]], [[4], [2, 3, 4]]]) {
      const a = name === "pow" ? r.uniformRef(sa, 0.5, 2) : r.nonzero(sa, 0.5, 2);
      const b = name === "pow" ? r.uniformRef(sb, -2, 2) : r.nonzero(sb, 0.5, 2);
      await gradcheck(`${name} [${sa}] [${sb}]`, {
        inputs: [a, b],
        gpu: (x, y) => fn(x, y),
        ref: (x, y) => zipRef(x, y, BINARY_REF[name]),
      });
    }
  });
}

Deno.test("binary backward gives a gradient only to the operand that requires it", async () => {
  const r = new Rng(202);
  for (const [name, fn] of BINARY) {
    const a = name === "pow" ? r.uniformRef([3, 4], 0.5, 2) : r.nonzero([3, 4], 0.5, 2);
    const b = name === "pow" ? r.uniformRef([4], -2, 2) : r.nonzero([4], 0.5, 2);
    for (const wrt of [[true, false], [false, true]]) {
      await gradcheck(`${name} wrt ${wrt}`, {
        inputs: [a, b],
        gpu: (x, y) => fn(x, y),
        ref: (x, y) => zipRef(x, y, BINARY_REF[name]),
        wrt,
      });
    }
  }
});

Deno.test("maximum() and minimum() split the gradient evenly on ties, as PyTorch", async () => {
  const a = tensor([1, 2, 3], { requiresGrad: true });
  const b = tensor([1, 5, 0], { requiresGrad: true });
  maximum(a, b).sum().backward();
  assert.deepEqual(Array.from(await a.grad!.toArray()), [0.5, 0, 1]);
  assert.deepEqual(Array.from(await b.grad!.toArray()), [0.5, 1, 0]);
  const c = tensor([1, 2, 3], { requiresGrad: true });
  minimum(c, 2).sum().backward();
  assert.deepEqual(Array.from(await c.grad!.toArray()), [1, 0.5, 0]);
});

Deno.test("pow() gives real results for negative bases with integral exponents, NaN otherwise", async () => {
  const a = ref([6], [-2, -2, -1.5, -3, 2, 0]);
  const b = ref([6], [3, 2, 0.5, -1, 0.5, 2]);
  await checkOp("pow", [a, b], (x, y) => pow(x, y), zipRef(a, b, Math.pow));
  await checkOp("pow scalar", [a], (x) => pow(x, 3), mapRef(a, (v) => v ** 3));
});

Deno.test("comparisons give u32 0/1 masks, with ties, for every broadcasting case", async () => {
  const r = new Rng(203);
  for (const [name, fn] of COMPARE) {
    for (const [sa, sb] of BROADCAST) {
      // Small integers as floats, so equal pairs occur often.
      const a = r.intRef(sa, -2, 3);
      const b = r.intRef(sb, -2, 3);
      await checkOp(
        `${name} [${sa}] [${sb}]`,
        [a, b],
        (x, y) => fn(x, y),
        zipRef(a, b, BINARY_REF[name]),
        {
          dtype: "u32",
        },
      );
    }
  }
});

Deno.test("comparisons on i32 and u32 tensors give u32 masks", async () => {
  const a = ref([5], [-3, 0, 2, 7, 7]);
  const b = ref([5], [-3, 1, 1, 9, 7]);
  for (const dtype of ["i32", "u32"] as const) {
    const [x, y] = dtype === "u32" ? [mapRef(a, Math.abs), mapRef(b, Math.abs)] : [a, b];
    for (const [name, fn] of COMPARE) {
      await checkOp(
        `${name} ${dtype}`,
        [{ ref: x, dtype }, { ref: y, dtype }],
        (p, q) => fn(p, q),
        zipRef(x, y, BINARY_REF[name]),
        { dtype: "u32" },
      );
    }
  }
});

// Every tensor-scalar form, with the number on either side (the engine swaps them
// into rsub/rdiv/reversed comparisons, or broadcasts a 0-d tensor for pow).
const SCALAR_CASES: [string, (x: Tensor) => Tensor, (v: number) => number][] = [
  ["x + 2.5", (x) => add(x, 2.5), (v) => v + 2.5],
  ["2.5 + x", (x) => add(2.5, x), (v) => 2.5 + v],
  ["x - 1.5", (x) => sub(x, 1.5), (v) => v - 1.5],
  ["1.5 - x", (x) => sub(1.5, x), (v) => 1.5 - v],
  ["x * -3", (x) => mul(x, -3), (v) => v * -3],
  ["-3 * x", (x) => mul(-3, x), (v) => -3 * v],
  ["x / 4", (x) => div(x, 4), (v) => v / 4],
  ["2 / x", (x) => div(2, x), (v) => 2 / v],
  ["x ** 3", (x) => pow(x, 3), (v) => v ** 3],
  ["|x| ** 0.5", (x) => pow(abs(x), 0.5), (v) => Math.abs(v) ** 0.5],
  ["x ** -2", (x) => pow(x, -2), (v) => v ** -2],
  ["2 ** x", (x) => pow(2, x), (v) => 2 ** v],
  ["max(x, 0.3)", (x) => maximum(x, 0.3), (v) => Math.max(v, 0.3)],
  ["max(0.3, x)", (x) => maximum(0.3, x), (v) => Math.max(v, 0.3)],
  ["min(x, -0.2)", (x) => minimum(x, -0.2), (v) => Math.min(v, -0.2)],
  ["min(-0.2, x)", (x) => minimum(-0.2, x), (v) => Math.min(v, -0.2)],
];

Deno.test("tensor-scalar ops match the reference with the number on either side", async () => {
  const r = new Rng(300);
  for (const [name, fn, f] of SCALAR_CASES) {
    for (const n of ALL_SIZES) {
      const x = r.nonzero([n], 0.1, 2);
      await checkOp(`${name} [${n}]`, [x], fn, mapRef(x, f), { rtol: 4e-6 });
    }
  }
});

Deno.test("tensor-scalar comparisons match the reference with the number on either side", async () => {
  const x = ref([7], [-1, 0.5, 1, 1, 2, -3, 1]);
  const cases: [string, (t: Tensor) => Tensor, (v: number) => boolean][] = [
    ["x == 1", (t) => eq(t, 1), (v) => v === 1],
    ["1 == x", (t) => eq(1, t), (v) => v === 1],
    ["x != 1", (t) => ne(t, 1), (v) => v !== 1],
    ["x < 1", (t) => lt(t, 1), (v) => v < 1],
    ["1 < x", (t) => lt(1, t), (v) => 1 < v],
    ["x <= 1", (t) => le(t, 1), (v) => v <= 1],
    ["1 <= x", (t) => le(1, t), (v) => 1 <= v],
    ["x > 1", (t) => gt(t, 1), (v) => v > 1],
    ["1 > x", (t) => gt(1, t), (v) => 1 > v],
    ["x >= 1", (t) => ge(t, 1), (v) => v >= 1],
    ["1 >= x", (t) => ge(1, t), (v) => 1 >= v],
  ];
  for (const [name, fn, f] of cases) {
    await checkOp(name, [x], fn, mapRef(x, (v) => +f(v)), { dtype: "u32" });
  }
});

for (const [name, fn, f] of SCALAR_CASES) {
  Deno.test(`scalar op ${name}: backward matches finite differences`, async () => {
    const x = new Rng(301).nonzero([2, 5], 0.3, 2);
    await gradcheck(name, { inputs: [x], gpu: fn, ref: (v) => mapRef(v, f) });
  });
}

Deno.test("clone() copies into new memory and passes the gradient through", async () => {
  const x = tensor([1, 2, 3], { requiresGrad: true });
  const y = x.clone();
  assert.notEqual(y.storage, x.storage);
  assert.deepEqual(Array.from(await y.toArray()), [1, 2, 3]);
  y.mul(tensor([4, 5, 6])).sum().backward();
  assert.deepEqual(Array.from(await x.grad!.toArray()), [4, 5, 6]);
});

// ---------------------------------------------------------------- where

Deno.test("where() selects with broadcasting of condition and both branches", async () => {
  const r = new Rng(400);
  const cases: [number[], number[], number[]][] = [
    [[257], [257], [257]],
    [[7, 1], [1, 33], [33]],
    [[7, 33], [], [1]],
    [[3, 1, 5], [4, 1], [3, 4, 5]],
  ];
  for (const [sc, sa, sb] of cases) {
    const c = r.intRef(sc, 0, 2);
    const a = r.nonzero(sa);
    const b = r.nonzero(sb);
    await checkOp(
      `where u32 [${sc}] [${sa}] [${sb}]`,
      [{ ref: c, dtype: "u32" }, a, b],
      (p, q, s) => where(p, q, s),
      whereRef(c, a, b),
    );
    // f32 and i32 conditions: nonzero is true (use values other than 1).
    const cf = mapRef(c, (v) => v * -2.5);
    await checkOp(
      `where f32 cond [${sc}]`,
      [cf, a, b],
      (p, q, s) => where(p, q, s),
      whereRef(cf, a, b),
    );
    const ci = mapRef(c, (v) => v * -7);
    await checkOp(
      `where i32 cond [${sc}]`,
      [{ ref: ci, dtype: "i32" }, a, b],
      (p, q, s) => where(p, q, s),
      whereRef(ci, a, b),
    );
  }
});

Deno.test("where() works on i32 branches", async () => {
  const c = ref([4], [1, 0, 0, 1]);
  const a = ref([4], [-1, -2, -3, -4]);
  const b = ref([1], [9]);
  await checkOp(
    "where i32",
    [{ ref: c, dtype: "u32" }, { ref: a, dtype: "i32" }, { ref: b, dtype: "i32" }],
    (p, q, s) => where(p, q, s),
    whereRef(c, a, b),
    { dtype: "i32" },
  );
});

Deno.test("where() backward sends the gradient to the chosen branch, summed over broadcasts", async () => {
  const r = new Rng(401);
  const c = r.intRef([3, 1, 4], 0, 2);
  const ct = upload(c, { dtype: "u32" });
  await gradcheck("where", {
    inputs: [r.nonzero([3, 5, 4]), r.nonzero([5, 1])],
    gpu: (a, b) => where(ct, a, b),
    ref: (a, b) => whereRef(c, a, b),
  });
  await gradcheck("where wrt b only", {
    inputs: [r.nonzero([4]), r.nonzero([3, 5, 4])],
    gpu: (a, b) => where(ct, a, b),
    ref: (a, b) => whereRef(c, a, b),
    wrt: [false, true],
  });
});

// ---------------------------------------------------------------- casts and creation

Deno.test("cast() converts between dtypes, truncating floats toward zero", async () => {
  const f = ref([8], [1.7, -1.7, 0.2, -0.2, 3, -3, 1e6 + 0.5, -123.9]);
  await checkOp("f32→i32", [f], (x) => cast(x, "i32"), mapRef(f, Math.trunc), { dtype: "i32" });
  const pos = mapRef(f, Math.abs);
  await checkOp("f32→u32", [pos], (x) => cast(x, "u32"), mapRef(pos, Math.trunc), { dtype: "u32" });
  const i = ref([5], [-5, 0, 7, 2147483, -16777216]);
  await checkOp("i32→f32", [{ ref: i, dtype: "i32" }], (x) => cast(x, "f32"), i);
  const u = ref([4], [0, 7, 4000000000, 16777216]);
  await checkOp("u32→f32", [{ ref: u, dtype: "u32" }], (x) => cast(x, "f32"), u);
  const small = ref([3], [0, 5, 2147483647]);
  await checkOp("u32→i32", [{ ref: small, dtype: "u32" }], (x) => cast(x, "i32"), small, {
    dtype: "i32",
  });
  await checkOp("i32→u32", [{ ref: small, dtype: "i32" }], (x) => cast(x, "u32"), small, {
    dtype: "u32",
  });
  await checkOp(
    "u32 mask→f32",
    [{ ref: ref([3], [1, 0, 1]), dtype: "u32" }],
    (x) => cast(x, "f32"),
    ref([3], [1, 0, 1]),
  );
});

Deno.test("cast() to the same dtype copies into new memory", async () => {
  const x = tensor([1, 2, 3], { dtype: "i32" });
  const y = cast(x, "i32");
  assert.notEqual(y.storage, x.storage);
  assert.equal(y.dtype, "i32");
  assert.deepEqual(Array.from(await y.toArray()), [1, 2, 3]);
});

Deno.test("full(), zeros(), ones() fill every element of every dtype", async () => {
  for (const n of SIZES) {
    poison([n]);
    assertClose(await full([n], -2.5).toArray(), new Array(n).fill(-2.5));
    poison([n]);
    assert.deepEqual(Array.from(await full([n], -3, "i32").toArray()), new Array(n).fill(-3));
    poison([n]);
    assert.deepEqual(Array.from(await full([n], 4e9, "u32").toArray()), new Array(n).fill(4e9));
    poison([n]);
    assert.deepEqual(Array.from(await zeros([n]).toArray()), new Array(n).fill(0));
    poison([n]);
    assert.deepEqual(Array.from(await ones([n], "i32").toArray()), new Array(n).fill(1));
  }
  const z = zeros([2, 0, 3]);
  assert.equal(z.size, 0);
  assert.deepEqual(z.shape, [2, 0, 3]);
  const s = full([], 7);
  assert.equal(await s.item(), 7);
});

Deno.test("arange() follows torch.arange for integer and float steps", async () => {
  const a = arange(5);
  assert.equal(a.dtype, "i32");
  assert.deepEqual(Array.from(await a.toArray()), [0, 1, 2, 3, 4]);
  assert.deepEqual(Array.from(await arange(2, 11, 3).toArray()), [2, 5, 8]);
  assert.deepEqual(Array.from(await arange(5, 0, -2).toArray()), [5, 3, 1]);
  const f = arange(0, 1, 0.25);
  assert.equal(f.dtype, "f32");
  assert.deepEqual(Array.from(await f.toArray()), [0, 0.25, 0.5, 0.75]);
  assert.equal(arange(3, 3).size, 0);
  poison([257]);
  assertClose(
    await arange(-1, 256, 1, "f32").toArray(),
    Array.from({ length: 257 }, (_, i) => i - 1),
  );
});

// ---------------------------------------------------------------- int32

Deno.test("i32 arithmetic matches integer semantics (division truncates, as WGSL)", async () => {
  const r = new Rng(500);
  // [7, 33] runs the scalar kernels, [8, 32] their vec4 forms.
  for (const [sa, sb] of [[[7, 33], [33]], [[8, 32], [32]]]) {
    const a = r.intRef(sa, -1000, 1000);
    const b = mapRef(r.intRef(sb, 1, 50), (v) => (r.next() < 0.5 ? -v : v));
    const I = (x: Ref) => ({ ref: x, dtype: "i32" as const });
    const opts = { dtype: "i32" as const, rtol: 0, atol: 0 };
    await checkOp(
      "i32 add",
      [I(a), I(b)],
      (x, y) => add(x, y),
      zipRef(a, b, (p, q) => p + q),
      opts,
    );
    await checkOp(
      "i32 sub",
      [I(a), I(b)],
      (x, y) => sub(x, y),
      zipRef(a, b, (p, q) => p - q),
      opts,
    );
    await checkOp(
      "i32 mul",
      [I(a), I(b)],
      (x, y) => mul(x, y),
      zipRef(a, b, (p, q) => p * q),
      opts,
    );
    await checkOp(
      "i32 div",
      [I(a), I(b)],
      (x, y) => div(x, y),
      zipRef(a, b, (p, q) => Math.trunc(p / q)),
      opts,
    );
    await checkOp("i32 max", [I(a), I(b)], (x, y) => maximum(x, y), zipRef(a, b, Math.max), opts);
    await checkOp("i32 min", [I(a), I(b)], (x, y) => minimum(x, y), zipRef(a, b, Math.min), opts);
    await checkOp("i32 neg", [I(a)], neg, mapRef(a, (v) => -v), opts);
    await checkOp("i32 abs", [I(a)], abs, mapRef(a, Math.abs), opts);
    await checkOp("i32 relu", [I(a)], relu, mapRef(a, (v) => Math.max(v, 0)), opts);
    await checkOp("i32 + 3", [I(a)], (x) => add(x, 3), mapRef(a, (v) => v + 3), opts);
    await checkOp("i32 * -2", [I(a)], (x) => mul(x, -2), mapRef(a, (v) => v * -2), opts);
    await checkOp("7 - i32", [I(a)], (x) => sub(7, x), mapRef(a, (v) => 7 - v), opts);
    await checkOp("i32 / 7", [I(a)], (x) => div(x, 7), mapRef(a, (v) => Math.trunc(v / 7)), opts);
  }
});

Deno.test("u32 arithmetic wraps modulo 2^32", async () => {
  const a = ref([3], [5, 0, 4294967295]);
  const b = ref([3], [7, 1, 1]);
  const U = (x: Ref) => ({ ref: x, dtype: "u32" as const });
  await checkOp(
    "u32 sub",
    [U(a), U(b)],
    (x, y) => sub(x, y),
    ref([3], [4294967294, 4294967295, 4294967294]),
    {
      dtype: "u32",
    },
  );
  await checkOp("u32 add", [U(a), U(b)], (x, y) => add(x, y), ref([3], [12, 1, 0]), {
    dtype: "u32",
  });
});

Deno.test("i32 tensors are read back as Int32Array with exact values", async () => {
  const x = tensor(Int32Array.from([-2147483648, -1, 0, 2147483647]));
  assert.equal(x.dtype, "i32");
  const y = await x.toArray();
  assert.ok(y instanceof Int32Array);
  assert.deepEqual(Array.from(y), [-2147483648, -1, 0, 2147483647]);
  const d = await download(neg(tensor([5], { dtype: "i32" })));
  assert.deepEqual(Array.from(d.data), [-5]);
});

Deno.test("unary ops saturate cleanly at extreme inputs", async () => {
  const x = ref([6], [-1000, -100, -30, 30, 100, 1000]);
  for (const name of ["exp", "sigmoid", "tanh", "gelu", "gelu_tanh", "relu"]) {
    const fn = UNARY.find(([n]) => n === name)![1];
    const want = mapRef(x, (v) => {
      const r = Math.fround(UNARY_REF[name](v)); // exp overflows to Infinity in f32
      return Math.abs(r) < 1e-37 ? 0 : r; // and f32 flushes what float64 keeps as tiny
    });
    // WGSL allows exp() an error of 3 + 2|x| ULP: ~1e-5 relative at |x| = 30.
    await checkOp(`${name} extremes`, [x], fn, want, { rtol: 1e-5, atol: 1e-30 });
  }
  const z = ref([3], [0, -1, 0]);
  await checkOp("log(0), log(-1)", [z], log, ref([3], [-Infinity, NaN, -Infinity]));
});

Deno.test({
  // WGSL lets compilers assume no NaN (Mesa folds v != v to false): the kernels test the bits.
  name: "comparisons and relu follow IEEE/PyTorch semantics for NaN",
  fn: async () => {
    const x = tensor([NaN, 1]);
    assert.deepEqual(Array.from(await ne(x, x).toArray()), [1, 0]);
    assert.deepEqual(Array.from(await ne(x, 1).toArray()), [1, 0]);
    assert.deepEqual(Array.from(await eq(x, x).toArray()), [0, 1]);
    assert.ok(Number.isNaN((await relu(x).toArray())[0]));
    assert.ok(Number.isNaN((await maximum(x, 0).toArray())[0]));
  },
});

Deno.test({
  // An integer tensor with a fractional number is promoted to f32, as in PyTorch.
  name: "i32 tensors compare with fractional numbers as PyTorch does",
  fn: async () => {
    const i = tensor([1, 2, 3], { dtype: "i32" });
    assert.deepEqual(Array.from(await lt(i, 2.5).toArray()), [1, 1, 0]);
    assert.deepEqual(Array.from(await eq(i, 2.5).toArray()), [0, 0, 0]);
    const m = mul(i, 0.5);
    assert.equal(m.dtype, "f32");
    assert.deepEqual(Array.from(await m.toArray()), [0.5, 1, 1.5]);
  },
});

Deno.test("zeros() clears a reused pool buffer for every dtype; full(-0) keeps the sign bit", async () => {
  for (const dtype of ["f32", "i32", "u32"] as const) {
    const dirty = full([1000], 7, dtype);
    await dirty.toArray();
    dirty.dispose(); // back to the pool: the next [1000] tensor reuses this buffer
    const z = zeros([1000], dtype);
    assert.ok((await z.toArray()).every((v) => v === 0), dtype);
    z.dispose();
  }
  const nz = full([4], -0);
  assert.ok([...(await nz.toArray())].every((v) => Object.is(v, -0)));
  nz.dispose();
});
