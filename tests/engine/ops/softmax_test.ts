import assert from "node:assert/strict";
import {
  crossEntropy,
  type CrossEntropyOptions,
  logSoftmax,
  softmax,
  tensor,
} from "../../../mod.ts";
import {
  assertClose,
  crossEntropyRef,
  type Ref,
  ref,
  Rng,
  softmaxRef,
} from "../../helpers/reference.ts";
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

// ---------------------------------------------------------------- long rows

/**
 * Row lengths around llvmpipe's loop budget (65,535 loop passes per invocation, all loops
 * together: kernels/program.ts): 30,522 (BERT's vocabulary; the row kernels' two sweeps fit,
 * their former three did not) and 70,000 (beyond one sweep: the long-row paths).
 */
const LONG_ROWS = [30_522, 70_000];

/** `Σ_j w·y` per row of `y [rows, n]`. */
function rowDots(y: Ref, w: Ref, n: number): number[] {
  const out: number[] = [];
  for (let o = 0; o < y.data.length; o += n) {
    let d = 0;
    for (let j = 0; j < n; j++) d += w.data[o + j] * y.data[o + j];
    out.push(d);
  }
  return out;
}

Deno.test("softmax() and logSoftmax() forward and backward over rows beyond the loop budget", async () => {
  const r = new Rng(20);
  for (const n of LONG_ROWS) {
    const x = r.normalRef([2, n], 0, 3);
    x.data[5] = -Infinity; // a masked entry takes no part
    const w = r.normalRef([2, n]);
    for (const log of [false, true]) {
      const fn = log ? logSoftmax : softmax;
      const y = softmaxRef(x, -1, log);
      // The f32 sum of n exponentials carries a relative error of about √n·ε or more.
      await checkOp(`${log ? "log" : ""}softmax [2, ${n}]`, [x], (t) => fn(t), y, {
        rtol: 2e-4,
        atol: log ? 1e-4 : 1e-8,
      });
      // d Σ w·f(x) / dx: softmax y·(w − Σw·y); log-softmax w − softmax(x)·Σw.
      const p = log ? softmaxRef(x) : y;
      const dots = log ? rowDots(p, ref(w.shape, w.data.map(() => 1)), n) : rowDots(y, w, n);
      const sums = rowDots(w, ref(w.shape, w.data.map(() => 1)), n);
      const want = ref(
        x.shape,
        x.data.map((_, i) => {
          const row = Math.floor(i / n);
          return log ? w.data[i] - p.data[i] * sums[row] : y.data[i] * (w.data[i] - dots[row]);
        }),
      );
      const xt = upload(x, { requiresGrad: true });
      const wt = upload(w);
      fn(xt).mul(wt).sum().backward();
      // Log-softmax: e^y carries y's error, times Σw (|Σw| ≈ √n here) against terms w ≈ 1.
      assertClose(await xt.grad!.toArray(), want, {
        rtol: 1e-4,
        atol: log ? 1e-4 : 1e-6,
        msg: `${log ? "log" : ""}softmax backward [2, ${n}]`,
      });
      xt.dispose();
      wt.dispose();
    }
  }
});

Deno.test("crossEntropy() forward and backward over rows beyond the loop budget", async () => {
  const r = new Rng(21);
  for (const n of LONG_ROWS) {
    for (const opts of [{ labelSmoothing: 0.1 }, { ignoreIndex: 3, reduction: "sum" as const }]) {
      const x = r.normalRef([4, n], 0, 2);
      const y = labelsFor(r, 4, n, opts.ignoreIndex);
      await checkOp(
        `CE [4, ${n}] ${JSON.stringify(opts)}`,
        [x, { ref: y, dtype: "i32" }],
        (a, b) => crossEntropy(a, b, opts),
        crossEntropyRef(x, y.data, opts),
        { rtol: 1e-5, atol: 1e-4 },
      );
      // d loss / dx = (softmax(x) − t) per counted row, over the count for the mean.
      const eps = opts.labelSmoothing ?? 0;
      const ignore = opts.ignoreIndex ?? -100;
      const p = softmaxRef(x);
      const counted = Array.from(y.data).filter((v) => v !== ignore).length;
      const scale = "reduction" in opts ? 1 : 1 / counted;
      const want = ref(
        x.shape,
        x.data.map((_, i) => {
          const row = Math.floor(i / n);
          if (y.data[row] === ignore) return 0;
          const t = (i - row * n === y.data[row] ? 1 - eps : 0) + eps / n;
          return (p.data[i] - t) * scale;
        }),
      );
      const xt = upload(x, { requiresGrad: true });
      const yt = upload(y, { dtype: "i32" });
      crossEntropy(xt, yt, opts).backward();
      assertClose(await xt.grad!.toArray(), want, {
        rtol: 1e-4,
        atol: 1e-7,
        msg: `CE backward [4, ${n}] ${JSON.stringify(opts)}`,
      });
      xt.dispose();
      yt.dispose();
    }
  }
});
