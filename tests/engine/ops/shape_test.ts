import assert from "node:assert/strict";
import {
  concat,
  expand,
  flatten,
  pad,
  permute,
  reshape,
  slice,
  split,
  squeeze,
  tensor,
  transpose,
  unsqueeze,
} from "../../../mod.ts";
import {
  concatRef,
  expandRef,
  padRef,
  permuteRef,
  type Ref,
  ref,
  Rng,
  sliceRef,
  splitRef,
  transposeRef,
} from "../../helpers/reference.ts";
import { checkOp, poison, upload } from "../../helpers/gpu.ts";
import { gradcheck } from "../../helpers/gradcheck.ts";

const reshaped = (x: Ref, shape: number[]): Ref => ref(shape, x.data);

/** permute(x, perm) against the float64 reference, exactly. */
function checkPermute(x: Ref, perm: number[]): Promise<void> {
  return checkOp(
    `permute [${x.shape}] [${perm}]`,
    [x],
    (t) => permute(t, perm),
    permuteRef(x, perm),
    {
      atol: 0,
      rtol: 0,
    },
  );
}

/** slice(x, starts, ends) against the float64 reference, exactly. */
function checkSlice(x: Ref, starts: number[], ends: number[]): Promise<void> {
  return checkOp(
    `slice [${starts}] [${ends}]`,
    [x],
    (t) => slice(t, starts, ends),
    sliceRef(x, starts, ends),
    {
      atol: 0,
    },
  );
}

Deno.test("reshape() is a view: same storage, same data, one size inferred", async () => {
  const x = upload(new Rng(1).nonzero([2, 3, 4]));
  const y = reshape(x, [4, -1]);
  assert.deepEqual(y.shape, [4, 6]);
  assert.equal(y.storage, x.storage);
  assert.deepEqual(await y.toArray(), await x.toArray());
  assert.deepEqual(reshape(x, [24]).shape, [24]);
  assert.deepEqual(reshape(x, [1, 2, 1, 12]).shape, [1, 2, 1, 12]);
  const s = reshape(tensor([5]), []);
  assert.deepEqual(s.shape, []);
  assert.equal(await s.item(), 5);
  const i = reshape(tensor([1, 2, 3, 4], { dtype: "i32" }), [2, 2]);
  assert.equal(i.dtype, "i32");
});

Deno.test("flatten(), squeeze() and unsqueeze() give the expected view shapes", () => {
  const x = upload(new Rng(2).nonzero([2, 1, 3, 1]));
  assert.deepEqual(flatten(x).shape, [6]);
  assert.deepEqual(flatten(x, 1).shape, [2, 3]);
  assert.deepEqual(flatten(x, 1, 2).shape, [2, 3, 1]);
  assert.deepEqual(flatten(x, 0, -2).shape, [6, 1]);
  assert.deepEqual(squeeze(x).shape, [2, 3]);
  assert.deepEqual(squeeze(x, 1).shape, [2, 3, 1]);
  assert.deepEqual(squeeze(x, -1).shape, [2, 1, 3]);
  assert.deepEqual(squeeze(x, 0).shape, [2, 1, 3, 1], "squeezing a non-1 axis is a no-op");
  assert.deepEqual(unsqueeze(x, 0).shape, [1, 2, 1, 3, 1]);
  assert.deepEqual(unsqueeze(x, -1).shape, [2, 1, 3, 1, 1]);
  assert.deepEqual(unsqueeze(x, 2).shape, [2, 1, 1, 3, 1]);
  for (const v of [flatten(x), squeeze(x), unsqueeze(x, 1)]) assert.equal(v.storage, x.storage);
  assert.deepEqual(flatten(tensor([3]).reshape([])).shape, [1]);
});

Deno.test("permute() and transpose() match the reference", async () => {
  const r = new Rng(3);
  const cases: [number[], number[]][] = [
    [[2, 3, 4], [2, 0, 1]],
    [[2, 3, 4], [0, 2, 1]],
    [[2, 3, 4], [-1, -3, -2]],
    [[3, 5, 7, 2], [3, 1, 0, 2]],
    [[1, 7, 1, 3], [3, 2, 1, 0]],
    [[33, 7], [1, 0]],
    [[257], [0]],
    [[2, 1, 2, 1, 2, 1, 2, 3], [7, 6, 5, 4, 3, 2, 1, 0]],
    // Innermost runs longer than one invocation's chunk (32), ragged at the end: the
    // attention heads' split [B, T, H, D] -> [B, H, T, D] and its inverse.
    [[2, 5, 3, 70], [0, 2, 1, 3]],
    [[2, 3, 5, 33], [0, 2, 1, 3]],
    // Contiguous neighbours merge into one run of 3·4·40 elements.
    [[3, 2, 4, 40], [1, 0, 2, 3]],
  ];
  for (const [shape, perm] of cases) {
    const x = r.nonzero(shape);
    await checkPermute(x, perm);
  }
  const x = r.nonzero([3, 4, 5]);
  await checkOp("transpose()", [x], (t) => transpose(t), transposeRef(x), { atol: 0 });
  await checkOp("transpose(0, 2)", [x], (t) => transpose(t, 0, 2), transposeRef(x, 0, 2), {
    atol: 0,
  });
  const xi = r.intRef([3, 4], -9, 9);
  await checkOp(
    "permute i32",
    [{ ref: xi, dtype: "i32" }],
    (t) => permute(t, [1, 0]),
    permuteRef(xi, [1, 0]),
    {
      dtype: "i32",
      atol: 0,
    },
  );
});

Deno.test("strided copies whose runs, strides and offsets are multiples of 4 (vec4) match the reference", async () => {
  const r = new Rng(31);
  // Attention's head split and merge at head size 64, and a permute of 8-wide runs.
  for (
    const [shape, perm] of [[[2, 5, 3, 64], [0, 2, 1, 3]], [[2, 3, 5, 64], [0, 2, 1, 3]], [[
      3,
      4,
      8,
    ], [1, 0, 2]]] as [number[], number[]][]
  ) {
    const x = r.nonzero(shape);
    await checkPermute(x, perm);
  }
  // Slices starting at a multiple of 4 (vec4) and not (scalar) in the same tensor.
  const y = r.nonzero([6, 16]);
  for (const [starts, ends] of [[[2, 4], [5, 12]], [[2, 3], [5, 11]], [[1], [4]]]) {
    await checkSlice(y, starts, ends);
  }
  // Concat along the last axis: pieces of 8 and 4 (vec4), then 4 and 3 (scalar).
  for (const shapes of [[[2, 8], [2, 4]], [[2, 4], [2, 3]]]) {
    const xs = shapes.map((sh) => r.nonzero(sh));
    await checkOp(
      `concat ${JSON.stringify(shapes)}`,
      xs,
      (...ts) => concat(ts, 1),
      concatRef(xs, 1),
      { atol: 0 },
    );
  }
});

Deno.test("slice() matches Python slicing: leading axes, negative indices, clamping, empty", async () => {
  const r = new Rng(4);
  const x = r.nonzero([7, 33, 3]);
  const cases: [number[], number[]][] = [
    [[1], [6]],
    [[0, 5], [7, 33]],
    [[2, 1, 1], [5, 32, 2]],
    [[-3, -10], [7, -1]],
    [[-100], [100]],
    [[0, 30], [7, 1000]],
    [[4], [2]],
    [[6, 32, 2], [7, 33, 3]],
  ];
  for (const [starts, ends] of cases) {
    await checkSlice(x, starts, ends);
  }
});

Deno.test("expand() broadcasts to a larger shape, with -1 keeping a size", async () => {
  const r = new Rng(5);
  const cases: [number[], number[]][] = [
    [[3, 1], [2, 3, 4]],
    [[1], [257]],
    [[], [2, 2]],
    [[3, 1], [-1, 5]],
    [[1, 4, 1], [3, 4, 2]],
    [[2, 3], [2, 3]],
  ];
  for (const [shape, to] of cases) {
    const x = r.nonzero(shape);
    await checkOp(`expand [${shape}] → [${to}]`, [x], (t) => expand(t, to), expandRef(x, to), {
      atol: 0,
    });
  }
});

Deno.test("concat() joins along any axis, with pieces of different sizes", async () => {
  const r = new Rng(6);
  const cases: [number[][], number][] = [
    [[[2, 3], [5, 3], [1, 3]], 0],
    [[[2, 3], [2, 1], [2, 7]], 1],
    [[[2, 3, 4], [2, 3, 1]], -1],
    [[[2, 1, 4], [2, 5, 4]], 1],
    [[[7]], 0],
    [[[1], [33], [257]], 0],
    [[[2, 0], [2, 3]], 1],
  ];
  for (const [shapes, axis] of cases) {
    const xs = shapes.map((s) => r.nonzero(s));
    await checkOp(
      `concat ${JSON.stringify(shapes)} axis ${axis}`,
      xs,
      (...ts) => concat(ts, axis),
      concatRef(xs, axis),
      { atol: 0 },
    );
  }
  const a = r.intRef([2, 2], -5, 5);
  const b = r.intRef([1, 2], -5, 5);
  await checkOp(
    "concat i32",
    [{ ref: a, dtype: "i32" }, { ref: b, dtype: "i32" }],
    (p, q) => concat([p, q]),
    concatRef([a, b]),
    { dtype: "i32", atol: 0 },
  );
});

Deno.test("split() returns copies of consecutive pieces along an axis", async () => {
  const r = new Rng(7);
  const x = r.nonzero([4, 9, 2]);
  for (
    const [sizes, axis] of [[[2, 5, 2], 1], [[1, 3], 0], [[1, 1], -1], [[9], 1], [[0, 4], 0]] as [
      number[],
      number,
    ][]
  ) {
    const xt = upload(x);
    const along = x.shape[axis < 0 ? axis + x.shape.length : axis];
    poison(sizes.map((s) => (x.data.length / along) * s));
    const pieces = split(xt, sizes, axis);
    const expected = splitRef(x, sizes, axis);
    assert.equal(pieces.length, sizes.length);
    for (let i = 0; i < pieces.length; i++) {
      assert.deepEqual(pieces[i].shape, expected[i].shape);
      assert.notEqual(pieces[i].storage, xt.storage);
      assert.deepEqual(
        Array.from(await pieces[i].toArray()),
        Array.from(expected[i].data).map(Math.fround),
      );
    }
  }
});

Deno.test("pad() pads leading axes with a constant", async () => {
  const r = new Rng(8);
  const cases: [number[], [number, number][], number][] = [
    [[2, 3], [[1, 1], [0, 2]], 0],
    [[2, 3], [[0, 0], [3, 0]], -1.5],
    [[3, 4, 5], [[1, 0]], 7],
    [[7], [[0, 0]], 0],
    [[1, 1, 1], [[2, 2], [2, 2], [2, 2]], 2],
    [[33], [[1, 257]], 0.25],
  ];
  for (const [shape, pads, value] of cases) {
    const x = r.nonzero(shape);
    await checkOp(
      `pad [${shape}] ${JSON.stringify(pads)} ${value}`,
      [x],
      (t) => pad(t, pads, value),
      padRef(x, pads, value),
      {
        atol: 0,
      },
    );
  }
  const xi = ref([2], [4, 5]);
  await checkOp(
    "pad i32",
    [{ ref: xi, dtype: "i32" }],
    (t) => pad(t, [[1, 2]], -3),
    ref([5], [-3, 4, 5, -3, -3]),
    {
      dtype: "i32",
      atol: 0,
    },
  );
});

// ---------------------------------------------------------------- gradients

Deno.test("reshape(), flatten(), squeeze() and unsqueeze() backward pass the gradient through", async () => {
  const r = new Rng(20);
  const x = r.nonzero([2, 1, 3, 2]);
  await gradcheck("reshape", {
    inputs: [x],
    gpu: (t) => reshape(t, [3, -1]),
    ref: (v) => reshaped(v, [3, 4]),
  });
  await gradcheck("flatten", {
    inputs: [x],
    gpu: (t) => flatten(t, 1),
    ref: (v) => reshaped(v, [2, 6]),
  });
  await gradcheck("squeeze", {
    inputs: [x],
    gpu: (t) => squeeze(t),
    ref: (v) => reshaped(v, [2, 3, 2]),
  });
  await gradcheck("unsqueeze", {
    inputs: [x],
    gpu: (t) => unsqueeze(t, 0),
    ref: (v) => reshaped(v, [1, 2, 1, 3, 2]),
  });
});

Deno.test("permute() and transpose() backward match finite differences", async () => {
  const r = new Rng(21);
  for (const perm of [[2, 0, 1], [1, 2, 0], [0, 2, 1]]) {
    await gradcheck(`permute [${perm}]`, {
      inputs: [r.nonzero([2, 3, 4])],
      gpu: (t) => permute(t, perm),
      ref: (v) => permuteRef(v, perm),
    });
  }
  await gradcheck("transpose", {
    inputs: [r.nonzero([3, 5])],
    gpu: (t) => transpose(t),
    ref: (v) => transposeRef(v),
  });
});

Deno.test("slice(), expand(), pad() backward match finite differences", async () => {
  const r = new Rng(22);
  const x = r.nonzero([4, 5, 3]);
  for (const [starts, ends] of [[[1, 2], [3, 5]], [[-2], [4]], [[0, 1, 1], [4, 4, 2]]]) {
    await gradcheck(`slice [${starts}] [${ends}]`, {
      inputs: [x],
      gpu: (t) => slice(t, starts, ends),
      ref: (v) => sliceRef(v, starts, ends),
    });
  }
  for (const [shape, to] of [[[3, 1], [2, 3, 4]], [[1], [5]], [[1, 4, 1], [3, 4, 2]]]) {
    await gradcheck(`expand [${shape}] → [${to}]`, {
      inputs: [r.nonzero(shape)],
      gpu: (t) => expand(t, to),
      ref: (v) => expandRef(v, to),
    });
  }
  const pads: [number, number][] = [[1, 0], [2, 1]];
  await gradcheck("pad", {
    inputs: [x],
    gpu: (t) => pad(t, pads, 3),
    ref: (v) => padRef(v, pads, 3),
  });
});

Deno.test("concat() and split() backward match finite differences", async () => {
  const r = new Rng(23);
  const shapes = [[2, 3], [2, 1], [2, 4]];
  await gradcheck("concat axis 1", {
    inputs: shapes.map((s) => r.nonzero(s)),
    gpu: (...ts) => concat(ts, 1),
    ref: (...vs) => concatRef(vs, 1),
  });
  await gradcheck("concat wrt middle only", {
    inputs: shapes.map((s) => r.nonzero(s)),
    gpu: (...ts) => concat(ts, -1),
    ref: (...vs) => concatRef(vs, -1),
    wrt: [false, true, false],
  });
  const x = r.nonzero([3, 7]);
  for (let k = 0; k < 3; k++) {
    await gradcheck(`split piece ${k}`, {
      inputs: [x],
      gpu: (t) => split(t, [2, 4, 1], 1)[k],
      ref: (v) => splitRef(v, [2, 4, 1], 1)[k],
    });
  }
});

Deno.test("concat() of a tensor with itself sums both gradient pieces", async () => {
  const x = tensor([1, 2], { requiresGrad: true });
  concat([x, x]).mul(tensor([1, 10, 100, 1000])).sum().backward();
  assert.deepEqual(Array.from(await x.grad!.toArray()), [101, 1010]);
});
