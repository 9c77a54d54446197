import assert from "node:assert/strict";
import {
  add,
  arange,
  concat,
  crossEntropy,
  dropout,
  eq,
  exp,
  expand,
  gather,
  indexSelect,
  matmul,
  max,
  mean,
  mul,
  pad,
  permute,
  pow,
  reshape,
  scatterAdd,
  scope,
  slice,
  softmax,
  split,
  sum,
  type Tensor,
  tensor,
  where,
  zeros,
} from "../../../mod.ts";

const f32 = (shape: number[]) => zeros(shape);
const i32 = (shape: number[]) => zeros(shape, "i32");

/** Asserts that `fn` throws an error of class `type` whose message matches every pattern. */
function throwsWith(fn: () => unknown, type: ErrorConstructor, ...patterns: (string | RegExp)[]) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof type, `expected ${type.name}, got ${e}`);
    for (const p of patterns) {
      const ok = typeof p === "string" ? e.message.includes(p) : p.test(e.message);
      assert.ok(ok, `message ${JSON.stringify(e.message)} lacks ${p}`);
    }
    return true;
  });
}

Deno.test("mismatched shapes: the error names the op and both shapes", () => {
  throwsWith(() => add(f32([2, 3]), f32([4, 3])), RangeError, "add", "[2, 3]", "[4, 3]");
  throwsWith(() => mul(f32([5]), f32([2, 4])), RangeError, "mul", "[5]", "[2, 4]");
  throwsWith(() => eq(f32([3]), f32([2])), RangeError, "eq", "[3]", "[2]");
  throwsWith(() => pow(f32([2, 2]), f32([3])), RangeError, "pow", "[2, 2]", "[3]");
  throwsWith(
    () => where(f32([2]), f32([3]), f32([3])),
    RangeError,
    "where",
    "[2]",
    "[3]",
  );
  throwsWith(() => expand(f32([3, 2]), [3, 4]), RangeError, "expand", "[3, 2]", "[3, 4]");
  throwsWith(() => reshape(f32([2, 3]), [4, 2]), RangeError, "reshape", "[2, 3]", "[4, 2]");
  throwsWith(() => reshape(f32([2, 3]), [4, -1]), RangeError, "reshape", "[2, 3]", "[4, -1]");
  throwsWith(
    () => concat([f32([2, 3]), f32([3, 4])], 0),
    RangeError,
    "concat",
    "[2, 3]",
    "[3, 4]",
  );
  throwsWith(() => split(f32([5, 2]), [2, 2]), RangeError, "split", "[5, 2]");
  throwsWith(() => permute(f32([2, 3]), [0, 0]), RangeError, "permute", "[2, 3]");
  throwsWith(() => slice(f32([2, 3]), [0, 0, 0], [1, 1, 1]), RangeError, "slice", "[2, 3]");
  throwsWith(() => pad(f32([2]), [[-1, 0]]), RangeError, "pad", "[2]");
  throwsWith(() => sum(f32([2, 3]), 2), RangeError, "sum", "axis 2", "[2, 3]");
  throwsWith(() => max(f32([2, 3]), -3), RangeError, "max", "[2, 3]");
  throwsWith(() => softmax(f32([2, 3]), 2), RangeError, "softmax", "[2, 3]");
  throwsWith(
    () => crossEntropy(f32([4, 3]), i32([5])),
    RangeError,
    "crossEntropy",
    "[4, 3]",
    "[5]",
  );
  throwsWith(
    () => gather(f32([4, 3]), 1, i32([5, 3])),
    RangeError,
    "gather",
    "[5, 3]",
    "[4, 3]",
  );
  throwsWith(
    () => scatterAdd(f32([4, 3]), 0, i32([2]), f32([3, 3])),
    RangeError,
    "scatterAdd",
    "[4, 3]",
    "[3, 3]",
  );
  throwsWith(() => tensor([1, 2, 3], { shape: [2, 2] }), RangeError, "tensor", "[2, 2]");
  throwsWith(() => zeros([2, -1]), RangeError, "[2, -1]");
  throwsWith(() => zeros([1.5]), RangeError, "[1.5]");
});

Deno.test("matmul(): inner size mismatch, batch mismatch, bias and rank errors name both shapes", () => {
  throwsWith(
    () => matmul(f32([2, 3]), f32([4, 5])),
    RangeError,
    "matmul",
    "[2, 3]",
    "[4, 5]",
    "inner sizes differ (3 and 4)",
  );
  throwsWith(
    () => matmul(f32([3, 2]), f32([5, 4]), { transA: true, transB: true }),
    RangeError,
    "[3, 2]ᵀ",
    "[5, 4]ᵀ",
    "(3 and 4)",
  );
  throwsWith(() => matmul(f32([2, 2, 3]), f32([3, 3, 4])), RangeError, "matmul", "[2]", "[3]");
  throwsWith(
    () => matmul(f32([2, 3]), f32([3, 4]), { bias: f32([3]) }),
    RangeError,
    "bias",
    "[4]",
    "[3]",
  );
  throwsWith(() => matmul(f32([3]), f32([3, 4])), RangeError, "matmul", "[3]", "at least 2 axes");
});

Deno.test("wrong dtypes are TypeErrors that name the dtypes", () => {
  throwsWith(() => add(f32([2]), i32([2])), TypeError, "add", "f32", "i32");
  throwsWith(() => exp(i32([2])), TypeError, "exp", "i32");
  throwsWith(() => pow(i32([2]), i32([2])), TypeError, "pow", "i32");
  throwsWith(() => pow(i32([2]), 2), TypeError, "pow", "i32");
  throwsWith(() => matmul(i32([2, 2]), f32([2, 2])), TypeError, "matmul", "i32");
  throwsWith(() => mean(i32([2])), TypeError, "mean", "i32");
  throwsWith(() => softmax(i32([2])), TypeError, "softmax", "i32");
  throwsWith(() => crossEntropy(f32([2, 3]), f32([2])), TypeError, "labels", "f32");
  throwsWith(() => crossEntropy(i32([2, 3]), i32([2])), TypeError, "logits", "i32");
  throwsWith(() => indexSelect(f32([4]), 0, f32([2])), TypeError, "indexSelect", "f32");
  throwsWith(() => gather(f32([4]), 0, f32([2])), RangeError, "gather", "f32");
  throwsWith(() => where(f32([2]), f32([2]), i32([2])), TypeError, "where", "f32", "i32");
  throwsWith(
    () => (i32([2]).requiresGrad = true),
    TypeError,
    "requiresGrad",
    "i32",
  );
});

Deno.test("invalid options are RangeErrors", () => {
  throwsWith(() => dropout(f32([2]), 1), RangeError, "dropout", "1");
  throwsWith(() => dropout(f32([2]), -0.1), RangeError, "dropout");
  throwsWith(
    () => crossEntropy(f32([2, 3]), i32([2]), { labelSmoothing: 1.5 }),
    RangeError,
    "labelSmoothing",
  );
  throwsWith(() => arange(0, 5, 0), RangeError, "arange", "step");
  throwsWith(() => max(f32([2, 0]), 1), RangeError, "max", "empty");
});

Deno.test("use after dispose throws and names the tensor and the cause", async () => {
  const t = tensor([1, 2]);
  t.dispose();
  assert.equal(t.disposed, true);
  throwsWith(() => t.add(1), Error, "disposed", "[2]", "f32");
  throwsWith(() => add(f32([2]), t), Error, "disposed");
  await assert.rejects(() => t.toArray(), /disposed/);
  t.dispose(); // disposing twice is harmless
  const escaped = { t: null as Tensor | null };
  scope(() => {
    escaped.t = tensor([1]).mul(2);
  });
  throwsWith(() => escaped.t!.exp(), Error, "disposed", "scope");
});

Deno.test("a view outlives the tensor it was made from (the storage is refcounted)", async () => {
  const x = tensor([1, 2, 3, 4]);
  const v = x.reshape([2, 2]);
  x.dispose();
  assert.deepEqual(Array.from(await v.toArray()), [1, 2, 3, 4]);
});

Deno.test("backward() and item() errors: non-scalar, no grad, wrong gradient shape", async () => {
  const x = tensor([1, 2], { requiresGrad: true });
  throwsWith(() => x.mul(2).backward(), RangeError, "not a scalar");
  throwsWith(() => tensor([1]).mul(2).backward(), Error, "does not require grad");
  throwsWith(() => x.mul(2).backward(tensor([1, 2, 3])), RangeError, "[3]", "[2]");
  throwsWith(() => (x.mul(2).requiresGrad = false), Error, "leaf");
  await assert.rejects(
    () => tensor([1, 2]).item(),
    (e) => e instanceof RangeError && e.message.includes("item(): tensor has 2 elements"),
  );
});
