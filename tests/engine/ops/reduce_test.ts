import assert from "node:assert/strict";
import { argmax, max, mean, min, sum, type Tensor, tensor, variance, zeros } from "../../../mod.ts";
import { sumTo } from "../../../engine/ops/reduce.ts";
import {
  argmaxRef,
  assertClose,
  normAxes,
  reduceRef,
  type Ref,
  ref,
  Rng,
  sumToRef,
  varianceRef,
} from "../../helpers/reference.ts";
import { checkOp, poison, SIZES, upload } from "../../helpers/gpu.ts";
import { gradcheck } from "../../helpers/gradcheck.ts";

type Axes = number | number[] | undefined;

// [shape, axes]: single, negative, multiple (adjacent and not), all, size-1 axes.
const CASES: [number[], Axes][] = [
  [[7, 33], 0],
  [[7, 33], 1],
  [[7, 33], -1],
  [[7, 33], [0, 1]],
  [[7, 33], undefined],
  [[3, 5, 7], [0, 2]],
  [[3, 5, 7], 1],
  [[3, 5, 7], [0, 1]],
  [[3, 5, 7], [1, 2]],
  [[3, 5, 7], [-1, 0]],
  [[1, 7, 1, 3], [0, 2]],
  [[1, 7, 1, 3], [1, 3]],
  [[2, 3, 2, 3, 2], [1, 3]],
  [[], undefined],
];

// Long reductions with few outputs take the shared-memory tree kernel (nRed ≥ 1024 and
// nOut < 4096 in engine/ops/reduce.ts), including strided ones.
const TREE: [number[], Axes][] = [
  [[3, 2049], 1],
  [[2049], undefined],
  [[2, 1500, 3], 1],
  [[1100, 2], 0],
  [[4, 40, 33], [1, 2]],
  // ≥ 8192 values into < 64 outputs: split into partial results first (two passes).
  [[100, 200], undefined],
  [[2, 12288], 1],
  [[12288, 3], 0],
  // 200,000 values along one axis (contiguous, strided, and the middle one of three): llvmpipe
  // ends an invocation's loops after 65,535 passes in all (kernels/program.ts), so the parts
  // must keep every lane's share short (1,024 values).
  [[3, 200_000], 1],
  [[200_000, 3], 0],
  [[2, 200_000, 2], 1],
];

const REDUCERS: ["sum" | "mean" | "max" | "min", (x: Tensor, a: Axes, k: boolean) => Tensor][] = [
  ["sum", (x, a, k) => sum(x, a, k)],
  ["mean", (x, a, k) => mean(x, a, k)],
  ["max", (x, a, k) => max(x, a, k)],
  ["min", (x, a, k) => min(x, a, k)],
];

function reducedCount(shape: number[], axes: Axes): number {
  return normAxes(shape.length, axes).reduce((p, a) => p * shape[a], 1);
}

for (const [name, fn] of REDUCERS) {
  Deno.test(`${name}() matches the reference over single, multiple and all axes, with keepdim`, async () => {
    const r = new Rng(10);
    for (const [shape, axes] of CASES) {
      for (const keepdim of [false, true]) {
        const x = r.nonzero(shape);
        await checkOp(
          `${name} [${shape}] axes ${JSON.stringify(axes)} keepdim ${keepdim}`,
          [x],
          (t) => fn(t, axes, keepdim),
          reduceRef(name, x, axes, keepdim),
          { rtol: 1e-5, atol: 1e-6 * reducedCount(shape, axes) },
        );
      }
    }
  });

  Deno.test(`${name}() matches the reference on long reductions (tree kernel)`, async () => {
    const r = new Rng(11);
    for (const [shape, axes] of TREE) {
      const x = r.nonzero(shape);
      await checkOp(
        `${name} [${shape}] axes ${JSON.stringify(axes)}`,
        [x],
        (t) => fn(t, axes, false),
        reduceRef(name, x, axes, false),
        { rtol: 1e-5, atol: 2e-6 * reducedCount(shape, axes) },
      );
    }
  });

  Deno.test(`${name}() over leading axes of a row-major block matches the reference (column kernel)`, async () => {
    const r = new Rng(13);
    // One part (< 256 rows), several parts with a ragged last one, parts of parts
    // (> 256² rows), and leading axes that fold into one.
    const cases: [number[], number[]][] = [
      [[7, 40], [0]],
      [[600, 33], [0]],
      [[66000, 32], [0]],
      [[3, 300, 64], [0, 1]],
    ];
    for (const [shape, axes] of cases) {
      const x = r.nonzero(shape);
      await checkOp(
        `${name} [${shape}] axes ${JSON.stringify(axes)}`,
        [x],
        (t) => fn(t, axes, false),
        reduceRef(name, x, axes, false),
        { rtol: 1e-5, atol: 2e-6 * reducedCount(shape, axes) },
      );
    }
  });

  Deno.test(`${name}() over all axes matches the reference at sizes ${SIZES.join(", ")}`, async () => {
    const r = new Rng(12);
    for (const n of SIZES) {
      const x = r.nonzero([n]);
      await checkOp(`${name} [${n}]`, [x], (t) => fn(t, undefined, false), reduceRef(name, x), {
        atol: 1e-6 * n,
      });
    }
  });
}

Deno.test("sum(), max() and min() reduce i32 tensors exactly", async () => {
  const r = new Rng(13);
  const x = r.intRef([7, 33], -1000, 1000);
  const I = { ref: x, dtype: "i32" as const };
  const exact = { dtype: "i32" as const, rtol: 0, atol: 0 };
  for (const axes of [0, 1, undefined] as Axes[]) {
    await checkOp(`i32 sum ${axes}`, [I], (t) => sum(t, axes), reduceRef("sum", x, axes), exact);
    await checkOp(`i32 max ${axes}`, [I], (t) => max(t, axes), reduceRef("max", x, axes), exact);
    await checkOp(`i32 min ${axes}`, [I], (t) => min(t, axes), reduceRef("min", x, axes), exact);
  }
  const long = r.intRef([2, 3000], -1000, 1000);
  await checkOp(
    "i32 sum tree",
    [{ ref: long, dtype: "i32" }],
    (t) => sum(t, 1),
    reduceRef("sum", long, 1),
    exact,
  );
});

Deno.test("sum() over an empty axis gives zeros in every output element", async () => {
  const x = zeros([3, 0]);
  poison([3]);
  const s = sum(x, 1);
  assert.deepEqual(s.shape, [3]);
  assert.deepEqual(Array.from(await s.toArray()), [0, 0, 0]);
});

// ---------------------------------------------------------------- argmax

Deno.test("argmax() matches the reference along each axis, with keepdim", async () => {
  const r = new Rng(20);
  for (
    const [shape, axis] of [
      [[257], 0],
      [[7, 33], 0],
      [[7, 33], 1],
      [[3, 5, 7], 1],
      [[3, 5, 7], -1],
      [[3, 5, 7], 0],
    ] as [number[], number][]
  ) {
    for (const keepdim of [false, true]) {
      const x = r.nonzero(shape);
      await checkOp(
        `argmax [${shape}] ${axis} ${keepdim}`,
        [x],
        (t) => argmax(t, axis, keepdim),
        argmaxRef(x, axis, keepdim),
        {
          dtype: "i32",
          rtol: 0,
          atol: 0,
        },
      );
    }
  }
});

Deno.test("argmax() returns the first index of tied maxima, in both kernels", async () => {
  // Short rows (one invocation per row).
  const x = ref([4, 5], [
    1,
    3,
    3,
    0,
    3,
    7,
    7,
    7,
    7,
    7,
    -1,
    -2,
    -1,
    -5,
    -1,
    0,
    0,
    0,
    0,
    9,
  ]);
  await checkOp("short rows", [x], (t) => argmax(t, 1), ref([4], [1, 0, 0, 4]), {
    dtype: "i32",
    atol: 0,
  });
  // Along axis 0 (strided).
  await checkOp("axis 0", [x], (t) => argmax(t, 0), argmaxRef(x, 0), { dtype: "i32", atol: 0 });
  // Long rows (tree kernel): ties at positions owned by different threads and strides.
  const n = 2048;
  const rows: number[][] = [[1500, 300], [64, 1], [2047, 1024, 1025], [5, 69, 133]];
  const long = ref([rows.length, n]);
  const rng = new Rng(21);
  rows.forEach((ties, i) => {
    for (let j = 0; j < n; j++) long.data[i * n + j] = rng.uniform(-1, 1);
    for (const t of ties) long.data[i * n + t] = 5;
  });
  await checkOp(
    "tree rows",
    [long],
    (t) => argmax(t, 1),
    ref([4], rows.map((t) => Math.min(...t))),
    {
      dtype: "i32",
      atol: 0,
    },
  );
});

Deno.test("argmax() treats NaN as the maximum, as PyTorch", async () => {
  const x = ref([2, 4], [1, NaN, 5, NaN, 2, 3, 1, 0]);
  await checkOp("nan", [x], (t) => argmax(t, 1), ref([2], [1, 1]), { dtype: "i32", atol: 0 });
  const long = ref([1, 2000]).data.map((_, i) => i % 7);
  long[1234] = NaN;
  await checkOp("nan tree", [ref([1, 2000], long)], (t) => argmax(t, 1), ref([1], [1234]), {
    dtype: "i32",
    atol: 0,
  });
});

Deno.test("argmax() works on i32 tensors", async () => {
  const x = ref([2, 3], [-5, 9, 9, 4, 2, 8]);
  await checkOp("i32", [{ ref: x, dtype: "i32" }], (t) => argmax(t, 1), ref([2], [1, 2]), {
    dtype: "i32",
    atol: 0,
  });
});

// ---------------------------------------------------------------- variance

Deno.test("variance() matches the reference for corrections 0 and 1, axes and keepdim", async () => {
  const r = new Rng(30);
  for (const [shape, axes] of CASES.filter(([s]) => s.length > 0)) {
    for (const correction of [0, 1]) {
      for (const keepdim of [false, true]) {
        const x = r.nonzero(shape);
        const n = reducedCount(shape, axes);
        if (n - correction <= 0) continue;
        await checkOp(
          `variance [${shape}] ${JSON.stringify(axes)} c=${correction} k=${keepdim}`,
          [x],
          (t) => variance(t, axes, { correction, keepdim }),
          varianceRef(x, axes, correction, keepdim),
          { rtol: 1e-4, atol: 1e-6 },
        );
      }
    }
  }
  // Default: all axes, Bessel's correction.
  const x = ref([4], [1, 2, 3, 4]);
  assertClose(await variance(upload(x)).toArray(), [5 / 3]);
});

// ---------------------------------------------------------------- gradients

const GRAD_CASES: [number[], Axes, boolean][] = [
  [[3, 4], 1, false],
  [[3, 4], 0, true],
  [[2, 3, 4], [0, 2], false],
  [[2, 3, 4], [0, 2], true],
  [[2, 3, 4], undefined, false],
  [[5], 0, true],
];

for (const [name, fn] of REDUCERS) {
  Deno.test(`${name}() backward matches finite differences over axes, with keepdim`, async () => {
    const r = new Rng(40);
    for (const [shape, axes, keepdim] of GRAD_CASES) {
      await gradcheck(`${name} [${shape}] ${JSON.stringify(axes)} ${keepdim}`, {
        inputs: [r.nonzero(shape)],
        gpu: (x) => fn(x, axes, keepdim),
        ref: (x) => reduceRef(name, x, axes, keepdim),
      });
    }
  });
}

Deno.test("variance() backward matches finite differences", async () => {
  const r = new Rng(41);
  for (const [shape, axes, keepdim] of GRAD_CASES) {
    for (const correction of [0, 1]) {
      await gradcheck(`variance [${shape}] ${JSON.stringify(axes)} c=${correction}`, {
        inputs: [r.nonzero(shape)],
        gpu: (x) => variance(x, axes, { correction, keepdim }),
        ref: (x) => varianceRef(x, axes, correction, keepdim),
      });
    }
  }
});

Deno.test("max() backward shares the gradient evenly among tied maxima (torch.amax)", async () => {
  const x = tensor([1, 3, 3, 2, 4, 4, 4, 0], { shape: [2, 4], requiresGrad: true });
  max(x, 1).sum().backward();
  assertClose(await x.grad!.toArray(), [0, 0.5, 0.5, 0, 1 / 3, 1 / 3, 1 / 3, 0]);
  const y = tensor([2, 2], { requiresGrad: true });
  max(y).backward();
  assertClose(await y.grad!.toArray(), [0.5, 0.5]);
});

Deno.test("sumTo() folds a broadcast gradient back to the operand's shape", async () => {
  const r = new Rng(42);
  const cases: [number[], number[]][] = [
    [[2, 3, 4], [3, 1]],
    [[2, 3, 4], [4]],
    [[2, 3, 4], [1, 3, 4]],
    [[2, 3, 4], []],
    [[2, 3, 4], [2, 3, 4]],
    [[5, 1, 7], [1, 1, 1]],
  ];
  for (const [gs, s] of cases) {
    const g: Ref = r.nonzero(gs);
    await checkOp(`sumTo [${gs}] → [${s}]`, [g], (t) => sumTo(t, s), sumToRef(g, s), {
      atol: 1e-5,
    });
  }
});

Deno.test("min() of integer tensors is exact at 0 and INT_MIN (no negation wrap-around)", async () => {
  const u = tensor([7, 0, 5, 4000000000], { dtype: "u32" });
  assert.deepEqual(Array.from(await min(u).toArray()), [0]);
  const i = tensor([3, -2147483648, 5, 2147483647], { dtype: "i32", shape: [2, 2] });
  assert.deepEqual(Array.from(await min(i, 1).toArray()), [-2147483648, 5]);
  assert.deepEqual(Array.from(await max(i, 0).toArray()), [5, 2147483647]);
});

Deno.test({
  // WGSL's max() is unspecified for NaN (Mesa returns the other operand): the kernel tests bits.
  name: "max() propagates NaN, as PyTorch",
  fn: async () => {
    const x = tensor([1, NaN, 3]);
    assert.ok(Number.isNaN(await max(x).item()));
    assert.ok(Number.isNaN(await min(x).item()));
  },
});

Deno.test("reductions of a 0-d tensor accept axis 0 and -1, as PyTorch", async () => {
  const x = tensor([4]).reshape([]);
  assert.equal(await sum(x, -1).item(), 4);
  assert.equal(await max(x, 0).item(), 4);
  assert.deepEqual(sum(x, -1, true).shape, []);
});
