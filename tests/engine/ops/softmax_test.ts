import assert from "node:assert/strict";
import {
  crossEntropy,
  type CrossEntropyOptions,
  logSoftmax,
  softmax,
  tensor,
} from "../../../mod.ts";
import { crossEntropyRef, type Ref, ref, Rng, softmaxRef } from "../../helpers/reference.ts";
import { checkOp, SIZES, upload } from "../../helpers/gpu.ts";
import { gradcheck } from "../../helpers/gradcheck.ts";

const AXES: [number[], number][] = [
  [[7, 33], -1],
  [[7, 33], 0],
  [[3, 5, 7], 1],
  [[3, 5, 7], 0],
  [[3, 5, 7], 2],
  [[2, 257], 1],
  [[4, 1], 1],
  [[5], 0],
];

for (const log of [false, true]) {
  const name = log ? "logSoftmax" : "softmax";
  const fn = log ? logSoftmax : softmax;

  Deno.test(`${name}() matches the float64 reference along every axis`, async () => {
    const r = new Rng(1);
    for (const [shape, axis] of AXES) {
      const x = r.normalRef(shape, 0, 3);
      await checkOp(
        `${name} [${shape}] axis ${axis}`,
        [x],
        (t) => fn(t, axis),
        softmaxRef(x, axis, log),
        {
          rtol: 1e-5,
          atol: 1e-6,
        },
      );
    }
    for (const n of SIZES) {
      const x = r.normalRef([3, n], 0, 3);
      await checkOp(`${name} [3, ${n}]`, [x], (t) => fn(t), softmaxRef(x, -1, log), { atol: 1e-6 });
    }
  });

  Deno.test(`${name}() is stable on rows of ±80`, async () => {
    const r = new Rng(2);
    const x = r.normalRef([4, 9]);
    for (let j = 0; j < 9; j++) {
      x.data[j] += 80; // all large positive: exp overflows without the max shift
      x.data[9 + j] -= 80; // all large negative: exp underflows to 0 without it
      x.data[18 + j] += r.next() < 0.5 ? 80 : -80; // mixed: some outputs underflow to 0
    }
    const out = softmaxRef(x, -1, log);
    await checkOp(`${name} ±80`, [x], (t) => fn(t), out, { rtol: 1e-5, atol: log ? 2e-5 : 1e-6 });
  });

  Deno.test(`${name}() backward matches finite differences along every axis`, async () => {
    const r = new Rng(3);
    for (const [shape, axis] of AXES.filter(([s]) => s.reduce((p, d) => p * d, 1) <= 128)) {
      await gradcheck(`${name} [${shape}] axis ${axis}`, {
        inputs: [r.normalRef(shape, 0, 2)],
        gpu: (t) => fn(t, axis),
        ref: (t) => softmaxRef(t, axis, log),
      });
    }
  });
}

// ---------------------------------------------------------------- cross-entropy

const CE_OPTIONS: CrossEntropyOptions[] = [
  {},
  { reduction: "sum" },
  { reduction: "none" },
  { labelSmoothing: 0.1 },
  { labelSmoothing: 0.3, reduction: "sum" },
  { labelSmoothing: 0.2, reduction: "none" },
  { labelSmoothing: 1 },
  { ignoreIndex: 3 },
  { ignoreIndex: 3, reduction: "none" },
  { ignoreIndex: 3, labelSmoothing: 0.1 },
];

/**
 * Labels in [0, C) with the ignore index in every fourth row and, when
 * `ignore` is not the default, class 3 in row 1 (a label equal to the ignore
 * index must be skipped, not scored).
 */
function labelsFor(r: Rng, n: number, c: number, ignore = -100): Ref {
  const y = r.intRef([n], 0, c);
  for (let i = 0; i < n; i += 4) y.data[i] = ignore;
  if (n > 1) y.data[1] = 3 % c;
  return y;
}

Deno.test("crossEntropy() matches the float64 reference for every option", async () => {
  const r = new Rng(10);
  for (const [n, c] of [[9, 10], [1, 7], [33, 5], [7, 257]]) {
    for (const opts of CE_OPTIONS) {
      const x = r.normalRef([n, c], 0, 2);
      const y = labelsFor(r, n, c, opts.ignoreIndex);
      await checkOp(
        `CE [${n},${c}] ${JSON.stringify(opts)}`,
        [x, { ref: y, dtype: "i32" }],
        (a, b) => crossEntropy(a, b, opts),
        crossEntropyRef(x, y.data, opts),
        { rtol: 1e-5, atol: 1e-5 },
      );
    }
  }
});

Deno.test("crossEntropy() is stable on logits of ±80", async () => {
  const x = ref([3, 4], [80, 81, 79, 80.5, -80, -81, -79, -80.5, 80, -80, 0, 80]);
  const y = [1, 2, 3];
  await checkOp(
    "CE ±80",
    [x, { ref: ref([3], y), dtype: "i32" }],
    (a, b) => crossEntropy(a, b, { reduction: "none" }),
    crossEntropyRef(x, y, { reduction: "none" }),
    { rtol: 1e-5, atol: 1e-5 },
  );
});

Deno.test("crossEntropy() gives NaN for labels out of range and for a mean over no rows", async () => {
  const x = tensor([1, 2, 3, 4, 5, 6], { shape: [2, 3] });
  const none = await crossEntropy(x, tensor([5, -1], { dtype: "i32" }), { reduction: "none" })
    .toArray();
  assert.ok(Number.isNaN(none[0]) && Number.isNaN(none[1]));
  const all = crossEntropy(x, tensor([-100, -100], { dtype: "i32" }));
  assert.ok(Number.isNaN(await all.item()), "mean over zero counted rows is 0/0, as PyTorch");
  const sum = crossEntropy(x, tensor([-100, -100], { dtype: "i32" }), { reduction: "sum" });
  assert.equal(await sum.item(), 0);
});

Deno.test("crossEntropy() backward matches finite differences for every option", async () => {
  const r = new Rng(11);
  for (const opts of CE_OPTIONS) {
    const x = r.normalRef([9, 6], 0, 2);
    const y = labelsFor(r, 9, 6, opts.ignoreIndex);
    const yt = upload(y, { dtype: "i32" });
    await gradcheck(`CE ${JSON.stringify(opts)}`, {
      inputs: [x],
      gpu: (a) => crossEntropy(a, yt, opts),
      ref: (a) => crossEntropyRef(a, y.data, opts),
    });
  }
});

Deno.test("crossEntropy() gives ignored rows a zero gradient", async () => {
  const x = tensor([1, 2, 3, 4, 5, 6], { shape: [2, 3], requiresGrad: true });
  crossEntropy(x, tensor([-100, 2], { dtype: "i32" })).backward();
  const g = await x.grad!.toArray();
  assert.deepEqual(Array.from(g.slice(0, 3)), [0, 0, 0]);
  assert.ok(g.slice(3).some((v) => v !== 0));
});

Deno.test("softmax() masks -Infinity entries and handles 0-d and length-1 rows", async () => {
  const x = ref([2, 3], [-Infinity, 0, 1, 5, -Infinity, -Infinity]);
  await checkOp("masked", [x], (t) => softmax(t), softmaxRef(x), { atol: 1e-7 });
  assert.equal(await softmax(tensor([3]).reshape([])).item(), 1);
  assert.deepEqual(Array.from(await logSoftmax(tensor([3, -2], { shape: [2, 1] })).toArray()), [
    0,
    0,
  ]);
});
