/**
 * The texture path of matmul (products of at least 2¹⁷ multiply-adds; see
 * engine/ops/matmul.ts): packing with padding, the plain-copy layouts, the
 * fused epilogue, and the chunks beyond the texture limits. matmul_test.ts
 * covers the storage-buffer path, which the smaller products take.
 *
 * @module
 */

import { matmul } from "../../../mod.ts";
import { setMatmulTextureChunks } from "../../../engine/ops/matmul.ts";
import { matmulRef, Rng } from "../../helpers/reference.ts";
import { checkOp } from "../../helpers/gpu.ts";
import {
  defaultTexTile,
  matmulClass,
  matmulTile,
  parseTuning,
  setTuning,
} from "../../../engine/tune.ts";
import { TEX_TILES } from "../../../kernels/matmul.ts";
import { gpu } from "../../../engine/device.ts";
import assert from "node:assert/strict";

const TRANSPOSES: [boolean, boolean][] = [[false, false], [true, false], [false, true], [
  true,
  true,
]];

const tol = (K: number) => ({ rtol: 1e-5, atol: 2e-7 * Math.max(K, 1) + 1e-6 });

function operands(
  r: Rng,
  batchA: number[],
  batchB: number[],
  [M, K, N]: number[],
  transA: boolean,
  transB: boolean,
) {
  const a = r.nonzero([...batchA, ...(transA ? [K, M] : [M, K])], 0.1, 1);
  const b = r.nonzero([...batchB, ...(transB ? [N, K] : [K, N])], 0.1, 1);
  return [a, b];
}

/** Checks `[batchA]·[batchB]` products of `[M, K, N]` for each case and pair of transposes. */
async function checkBatched(
  r: Rng,
  cases: [number[], number[], number[]][],
  transposes: [boolean, boolean][],
): Promise<void> {
  for (const [ba, bb, mkn] of cases) {
    for (const [transA, transB] of transposes) {
      const [a, b] = operands(r, ba, bb, mkn, transA, transB);
      await checkOp(
        `[${ba}]x[${bb}] [${mkn}] tA=${transA} tB=${transB}`,
        [a, b],
        (x, y) => matmul(x, y, { transA, transB }),
        matmulRef(a, b, { transA, transB }),
        tol(mkn[1]),
      );
    }
  }
}

Deno.test("matmul() matches the float64 reference on the texture path at odd sizes", async () => {
  const r = new Rng(11);
  // K and N not multiples of 4 (padded texels), M not a multiple of the 32-row tile.
  const sizes = [[65, 130, 67], [33, 257, 33], [257, 33, 17], [1, 513, 257]];
  for (const mkn of sizes) {
    for (const [transA, transB] of TRANSPOSES) {
      const [a, b] = operands(r, [], [], mkn, transA, transB);
      await checkOp(
        `[${mkn}] tA=${transA} tB=${transB}`,
        [a, b],
        (x, y) => matmul(x, y, { transA, transB }),
        matmulRef(a, b, { transA, transB }),
        tol(mkn[1]),
      );
    }
  }
});

Deno.test("matmul() copies 64-aligned operands into textures, batched and broadcast", async () => {
  const r = new Rng(12);
  const cases: [number[], number[], number[]][] = [
    [[3], [3], [40, 64, 128]],
    [[2, 1], [3], [24, 128, 64]],
    [[], [3], [64, 64, 64]],
    [[3], [], [64, 64, 68]],
  ];
  await checkBatched(r, cases, TRANSPOSES);
});

Deno.test("matmul() fuses bias and relu/gelu on the texture path", async () => {
  const r = new Rng(13);
  for (const act of ["none", "relu", "gelu"] as const) {
    for (const [transA, transB] of [[false, true], [true, false]] as [boolean, boolean][]) {
      const mkn = [70, 64, 37];
      const [a, b] = operands(r, [2], [], mkn, transA, transB);
      const bias = r.nonzero([mkn[2]], 0.1, 1);
      await checkOp(
        `bias ${act} tA=${transA} tB=${transB}`,
        [a, b, bias],
        (x, y, z) => matmul(x, y, { transA, transB, bias: z, act }),
        matmulRef(a, b, { transA, transB, bias, act }),
        tol(mkn[1]),
      );
    }
  }
});

Deno.test("matmul() splits rows and batch entries beyond the texture limits", async () => {
  // Chunks of 40 rows and 3 batch entries stand in for the adapter's texture limits (16,384 rows
  // and 2,048 layers here, more elsewhere), so the test is small and the same on every adapter.
  const r = new Rng(14);
  const [rows, layers] = [40, 3];
  const prev = setMatmulTextureChunks({ rows, layers });
  try {
    // One more row than a chunk holds, in both A layouts (the copy and the pack).
    for (const [transA, K] of [[false, 64], [true, 10]] as [boolean, number][]) {
      const [a, b] = operands(r, [], [], [rows + 1, K, 400], transA, false);
      await checkOp(
        `${rows + 1} rows tA=${transA}`,
        [a, b],
        (x, y) => matmul(x, y, { transA }),
        matmulRef(a, b, { transA }),
        tol(K),
      );
    }
    // One more batch entry than a chunk of layers, both operands batched (a shared operand
    // folds the batch into rows instead): two chunks, the second of one entry.
    const [a, b] = operands(r, [layers + 1], [layers + 1], [16, 64, 36], false, true);
    await checkOp(
      `${layers + 1} batch entries`,
      [a, b],
      (x, y) => matmul(x, y, { transB: true }),
      matmulRef(a, b, { transB: true }),
      tol(64),
    );
  } finally {
    setMatmulTextureChunks(prev);
  }
});

Deno.test("matmul() sums a K beyond the texture limit and llvmpipe's loop budget in blocks", async () => {
  // K = 70,000 and 140,000 need 5 and 9 blocks of the 16,384-texel texture limit here (the
  // storage path took them before, and its loop stopped after 65,535 terms: kernels/program.ts).
  // K = 70,016 with N = 64 takes the plain-copy layouts of both operands.
  const r = new Rng(16);
  const cases: [number, number, number, boolean, boolean][] = [
    [5, 70_000, 6, false, false],
    [5, 70_000, 6, true, true],
    [5, 140_000, 6, false, true],
    [5, 140_000, 6, true, false],
    [1, 70_016, 64, false, false],
  ];
  for (const [M, K, N, transA, transB] of cases) {
    const [a, b] = operands(r, [], [], [M, K, N], transA, transB);
    await checkOp(
      `${M}x${K}x${N} tA=${transA} tB=${transB}`,
      [a, b],
      (x, y) => matmul(x, y, { transA, transB }),
      matmulRef(a, b, { transA, transB }),
      tol(K),
    );
  }
});

Deno.test("matmul() adds the blocks of K with the rows and batch chunks, epilogue once", async () => {
  // Blocks of 64 values of k (and the row and layer chunks of the test above) at small sizes:
  // the bias and gelu must apply to the whole sum, once.
  const r = new Rng(17);
  const prev = setMatmulTextureChunks({ rows: 40, layers: 3, k: 64 });
  try {
    for (
      const [transA, transB, K] of [[false, false, 200], [true, true, 130], [false, true, 256]] as [
        boolean,
        boolean,
        number,
      ][]
    ) {
      const [a, b] = operands(r, [4], [4], [41, K, 36], transA, transB);
      const bias = r.nonzero([36], 0.1, 1);
      await checkOp(
        `K=${K} tA=${transA} tB=${transB} bias gelu`,
        [a, b, bias],
        (x, y, z) => matmul(x, y, { transA, transB, bias: z, act: "gelu" }),
        matmulRef(a, b, { transA, transB, bias, act: "gelu" }),
        tol(K),
      );
    }
  } finally {
    setMatmulTextureChunks(prev);
  }
});

Deno.test("matmul() is right for texture layer counts that wgpu's GL backend guesses wrongly", async () => {
  // wgpu's GL backend makes a 1-layer texture TEXTURE_2D and a square one with a multiple of
  // 6 layers a cube map: [16, 64]·[64, 256] packs A as 16×16 and B as 64×64 texels a layer.
  const r = new Rng(15);
  const cases: [number[], number[], number[]][] = [
    [[], [], [16, 64, 256]],
    [[6], [6], [16, 64, 256]],
    [[12], [12], [16, 64, 256]],
    [[6], [], [16, 64, 256]],
    [[], [6], [16, 64, 256]],
  ];
  await checkBatched(r, cases, [[false, false], [true, true]]);
});

Deno.test("matmul() gives the float64 result with every tile deno task tune may choose", async () => {
  const r = new Rng(14);
  // Odd sizes (partial tiles on every side), a batch, and the fused epilogue.
  const shapes = [[70, 130, 37], [33, 64, 65]];
  try {
    for (const name of Object.keys(TEX_TILES)) {
      const matmul_tex: Record<string, string> = {};
      for (const [M, K, N] of shapes) matmul_tex[matmulClass(M, N, K)] = name;
      setTuning({ format: 1, adapters: { [gpu().label]: { matmul_tex } } });
      for (const [M, K, N] of shapes) {
        assert.deepEqual(matmulTile(M, N, K), TEX_TILES[name]);
        for (const [transA, transB] of [[false, false], [true, true]] as [boolean, boolean][]) {
          const [a, b] = operands(r, [2], [], [M, K, N], transA, transB);
          const bias = r.nonzero([N], 0.1, 1);
          await checkOp(
            `tile ${name} [${M}, ${K}, ${N}] tA=${transA} tB=${transB}`,
            [a, b, bias],
            (x, y, z) => matmul(x, y, { transA, transB, bias: z, act: "relu" }),
            matmulRef(a, b, { transA, transB, bias, act: "relu" }),
            tol(K),
          );
        }
      }
    }
  } finally {
    setTuning(undefined);
  }
});

Deno.test("a tuning file is checked: format, and tiles that exist", () => {
  const ok = parseTuning(
    '{"format": 1, "adapters": {"a": {"matmul_tex": {"16x16x16": "8x8/8x4"}}}}',
  );
  assert.equal(ok.adapters.a.matmul_tex!["16x16x16"], "8x8/8x4");
  assert.throws(() => parseTuning("{", "t.json"), /t.json: not JSON/);
  assert.throws(() => parseTuning('{"format": 2, "adapters": {}}'), /expected \{"format": 1/);
  assert.throws(
    () => parseTuning('{"format": 1, "adapters": {"a": {"matmul_tex": {"16x16x16": "3x3/1x1"}}}}'),
    /a: matmul_tex 16x16x16: unknown tile "3x3\/1x1"/,
  );
});

Deno.test("the engine reads its tiles from FROST_TUNE_FILE, for this adapter only", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/tune.json`;
  const prev = Deno.env.get("FROST_TUNE_FILE");
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      format: 1,
      adapters: {
        [gpu().label]: { matmul_tex: { "256x256x256": "8x8/8x4" } },
        "another adapter": { matmul_tex: { "512x512x512": "2x4/32x8" } },
      },
    }),
  );
  try {
    Deno.env.set("FROST_TUNE_FILE", path);
    setTuning(undefined); // read the file again on next use
    assert.deepEqual(matmulTile(200, 256, 130), TEX_TILES["8x8/8x4"]);
    assert.deepEqual(matmulTile(512, 512, 512), defaultTexTile(512, 512)); // not this adapter's
  } finally {
    if (prev === undefined) Deno.env.delete("FROST_TUNE_FILE");
    else Deno.env.set("FROST_TUNE_FILE", prev);
    setTuning(undefined);
    await Deno.remove(dir, { recursive: true });
  }
});
