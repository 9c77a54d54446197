import assert from "node:assert/strict";
import { matmul, type MatmulOptions, ones, tensor } from "../../../mod.ts";
import { setDispatchObserver } from "../../../engine/dispatch.ts";
import { setMatmulPaths } from "../../../engine/ops/matmul.ts";
import {
  assertClose,
  matmulRef,
  type MatmulRefOptions,
  type Ref,
  Rng,
} from "../../helpers/reference.ts";
import { checkOp, poison, upload } from "../../helpers/gpu.ts";
import { gradcheck } from "../../helpers/gradcheck.ts";

const TRANSPOSES: [boolean, boolean][] = [[false, false], [true, false], [false, true], [
  true,
  true,
]];

/** Stored shapes of a and b for op(a) [.., M, K] and op(b) [.., K, N]. */
function operands(
  r: Rng,
  batchA: number[],
  batchB: number[],
  M: number,
  K: number,
  N: number,
  transA: boolean,
  transB: boolean,
): [Ref, Ref] {
  const a = r.nonzero([...batchA, ...(transA ? [K, M] : [M, K])], 0.1, 1);
  const b = r.nonzero([...batchB, ...(transB ? [N, K] : [K, N])], 0.1, 1);
  return [a, b];
}

// f32 accumulation over K terms of size ≤ 1: error grows like K·ε at worst.
const tol = (K: number) => ({ rtol: 1e-5, atol: 2e-7 * Math.max(K, 1) + 1e-6 });

Deno.test("matmul() matches the float64 reference at odd sizes for every transpose", async () => {
  const r = new Rng(1);
  const sizes: [number, number, number][] = [
    [1, 1, 1],
    [1, 7, 33],
    [7, 33, 1],
    [33, 257, 7],
    [257, 7, 33],
    [33, 33, 33],
    [7, 1, 257],
    [5, 4, 8],
  ];
  for (const [M, K, N] of sizes) {
    for (const [transA, transB] of TRANSPOSES) {
      const [a, b] = operands(r, [], [], M, K, N, transA, transB);
      await checkOp(
        `[${M}x${K}]@[${K}x${N}] tA=${transA} tB=${transB}`,
        [a, b],
        (x, y) => matmul(x, y, { transA, transB }),
        matmulRef(a, b, { transA, transB }),
        tol(K),
      );
    }
  }
});

Deno.test("matmul() batches, broadcasting the batch axes, for every transpose", async () => {
  const r = new Rng(2);
  const batches: [number[], number[]][] = [
    [[3], [3]],
    [[2, 1], [3]],
    [[], [3]],
    [[3], []],
    [[2, 3], [1, 3]],
    [[1], [2, 1]],
    [[1], [1]],
    [[2, 1, 3], [4, 1]],
  ];
  for (const [ba, bb] of batches) {
    for (const [transA, transB] of TRANSPOSES) {
      const [a, b] = operands(r, ba, bb, 4, 6, 5, transA, transB);
      await checkOp(
        `batch [${ba}] [${bb}] tA=${transA} tB=${transB}`,
        [a, b],
        (x, y) => matmul(x, y, { transA, transB }),
        matmulRef(a, b, { transA, transB }),
        tol(6),
      );
    }
  }
});

Deno.test("matmul() applies the bias and relu/gelu epilogue, fused when nothing needs grad", async () => {
  const r = new Rng(3);
  for (const act of ["none", "relu", "gelu"] as const) {
    for (const [transA, transB] of TRANSPOSES) {
      for (
        const [batch, M, K, N] of [[[], 7, 33, 5], [[2], 3, 4, 9], [[], 1, 1, 1]] as [
          number[],
          number,
          number,
          number,
        ][]
      ) {
        const [a, b] = operands(r, batch, [], M, K, N, transA, transB);
        const bias = r.nonzero([N], 0.1, 1);
        const opts: MatmulRefOptions = { transA, transB, bias, act };
        await checkOp(
          `bias ${act} [${batch}] ${M}x${K}x${N} tA=${transA} tB=${transB}`,
          [a, b, bias],
          (x, y, z) => matmul(x, y, { transA, transB, bias: z, act }),
          matmulRef(a, b, opts),
          tol(K),
        );
        if (act !== "none") {
          await checkOp(
            `no bias ${act} tA=${transA} tB=${transB}`,
            [a, b],
            (x, y) => matmul(x, y, { transA, transB, act }),
            matmulRef(a, b, { transA, transB, act }),
            tol(K),
          );
        }
      }
    }
  }
});

Deno.test("matmul() with a recorded gelu epilogue (unfused) gives the same forward values", async () => {
  const r = new Rng(4);
  const [a, b] = operands(r, [], [], 7, 33, 5, false, true);
  const bias = r.nonzero([5]);
  const at = upload(a, { requiresGrad: true });
  const bt = upload(b);
  const zt = upload(bias);
  poison([35]);
  const y = matmul(at, bt, { transB: true, bias: zt, act: "gelu" });
  assert.ok(y.node !== null);
  assertClose(await y.toArray(), matmulRef(a, b, { transB: true, bias, act: "gelu" }), tol(33));
});

Deno.test("matmul() with an empty inner axis gives zeros (plus the bias)", async () => {
  const a = tensor(new Float32Array(0), { shape: [3, 0] });
  const b = tensor(new Float32Array(0), { shape: [0, 4] });
  poison([12]);
  assert.deepEqual(Array.from(await matmul(a, b).toArray()), new Array(12).fill(0));
  poison([12]);
  const bias = tensor([1, 2, 3, 4]);
  assert.deepEqual(Array.from(await matmul(a, b, { bias }).toArray()), [
    1,
    2,
    3,
    4,
    1,
    2,
    3,
    4,
    1,
    2,
    3,
    4,
  ]);
});

Deno.test("matmul() sums a K beyond llvmpipe's loop budget in blocks on the storage path", async () => {
  // llvmpipe stops a shader invocation's loops after 65,535 passes in all (kernels/program.ts):
  // one dispatch looping over K = 70,000 summed the first 65,535 terms only. The texture path
  // is turned off so that these products, which would take it, reach the storage-buffer kernel.
  const r = new Rng(21);
  const prev = setMatmulPaths({ textures: false });
  try {
    const cases: [number, boolean, boolean, boolean][] = [
      [70_000, false, false, false],
      [70_000, true, true, true],
      [140_000, false, true, false],
      [140_000, true, false, true],
    ];
    // Blocks of 7 at small sizes: batched, every transpose, the epilogue applied once.
    setMatmulPaths({ bufferK: 7 });
    for (const [transA, transB] of TRANSPOSES) {
      const [a, b] = operands(r, [3], [3], 9, 20, 10, transA, transB);
      const bias = r.nonzero([10], 0.1, 1);
      await checkOp(
        `K=20 in blocks of 7, tA=${transA} tB=${transB} bias gelu`,
        [a, b, bias],
        (x, y, z) => matmul(x, y, { transA, transB, bias: z, act: "gelu" }),
        matmulRef(a, b, { transA, transB, bias, act: "gelu" }),
        tol(20),
      );
    }
    setMatmulPaths({ bufferK: 0 });
    for (const [K, transA, transB, epilogue] of cases) {
      const [a, b] = operands(r, [], [], 5, K, 6, transA, transB);
      const bias = r.nonzero([6], 0.1, 1);
      const act = epilogue ? "relu" as const : "none" as const;
      const inputs = epilogue ? [a, b, bias] : [a, b];
      await checkOp(
        `K=${K} tA=${transA} tB=${transB}${epilogue ? " bias relu" : ""}`,
        inputs,
        (x, y, z) => matmul(x, y, { transA, transB, bias: z, act }),
        matmulRef(a, b, { transA, transB, bias: epilogue ? bias : undefined, act }),
        tol(K),
      );
    }
  } finally {
    setMatmulPaths(prev);
  }
});

// ---------------------------------------------------------------- gradients

function gradCase(
  name: string,
  r: Rng,
  batchA: number[],
  batchB: number[],
  opts: MatmulOptions & { withBias?: boolean },
  wrt?: boolean[],
) {
  const { transA = false, transB = false, act = "none", withBias = false } = opts;
  const [a, b] = operands(r, batchA, batchB, 5, 7, 3, transA, transB);
  const inputs = withBias ? [a, b, r.nonzero([3], 0.1, 1)] : [a, b];
  return gradcheck(name, {
    inputs,
    gpu: (x, y, z) => matmul(x, y, { transA, transB, act, bias: z }),
    ref: (x, y, z) => matmulRef(x, y, { transA, transB, act, bias: z }),
    wrt,
  });
}

Deno.test("matmul() backward matches finite differences for every transpose", async () => {
  const r = new Rng(5);
  for (const [transA, transB] of TRANSPOSES) {
    await gradCase(`tA=${transA} tB=${transB}`, r, [], [], { transA, transB });
  }
});

Deno.test("matmul() backward sums gradients over broadcast batch axes", async () => {
  const r = new Rng(6);
  for (
    const [ba, bb] of [[[2, 1], [3]], [[], [2]], [[3], []], [[2], [2]]] as [number[], number[]][]
  ) {
    for (const [transA, transB] of [[false, false], [true, true]] as [boolean, boolean][]) {
      await gradCase(`batch [${ba}] [${bb}] tA=${transA} tB=${transB}`, r, ba, bb, {
        transA,
        transB,
      });
    }
  }
});

Deno.test("matmul() backward through bias and relu/gelu epilogues matches finite differences", async () => {
  const r = new Rng(7);
  for (const act of ["none", "relu", "gelu"] as const) {
    for (const [transA, transB] of TRANSPOSES) {
      await gradCase(`bias ${act} tA=${transA} tB=${transB}`, r, [], [], {
        transA,
        transB,
        act,
        withBias: true,
      });
    }
    await gradCase(`bias ${act} batched`, r, [2], [], { act, withBias: true });
    await gradCase(`${act} without bias`, r, [], [], { act });
  }
});

Deno.test("matmul() backward computes only the gradients that are required", async () => {
  const r = new Rng(8);
  const subsets = [[true, false, false], [false, true, false], [false, false, true], [
    true,
    false,
    true,
  ]];
  for (const wrt of subsets) {
    for (const [transA, transB] of TRANSPOSES) {
      await gradCase(`wrt ${wrt} tA=${transA} tB=${transB}`, r, [], [], {
        transA,
        transB,
        act: "relu",
        withBias: true,
      }, wrt);
    }
  }
});

Deno.test("matmul() of x[B, T, C] with a shared weight copies neither operand, forward or backward", async () => {
  const r = new Rng(9);
  const x = tensor(new Float32Array(r.uniformRef([3, 5, 8], -1, 1).data), {
    shape: [3, 5, 8],
    requiresGrad: true,
  });
  const w = tensor(new Float32Array(r.uniformRef([6, 8], -1, 1).data), {
    shape: [6, 8],
    requiresGrad: true,
  });
  const g = ones([3, 5, 6]);
  const names: string[] = [];
  setDispatchObserver({
    onDispatch: (name) => void names.push(name),
    beforeSubmit: () => {},
    afterSubmit: () => {},
    syncEach: false,
  });
  try {
    const y = matmul(x, w, { transB: true });
    assert.deepEqual(y.shape, [3, 5, 6]);
    y.backward(g);
    await y.toArray();
  } finally {
    setDispatchObserver(null);
  }
  // One product forward, one per gradient: no copies, no batch sums.
  assert.deepEqual(names, ["matmul_tB", "matmul", "matmul_tA"]);
  assert.deepEqual(w.grad?.shape, [6, 8]);
  for (const t of [x, w, g]) t.dispose();
});
