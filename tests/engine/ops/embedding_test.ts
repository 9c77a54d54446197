/**
 * embedding(): float64 references (lookup, scatter-add backward with a
 * padding row), gradcheck, golden PyTorch fixtures
 * (tests/fixtures/transformer_ops.json), out-of-range ids and errors.
 */

import assert from "node:assert/strict";
import { embedding, tensor, zeros } from "../../../mod.ts";
import { assertClose, type Ref, ref, Rng } from "../../helpers/reference.ts";
import { poison, upload } from "../../helpers/gpu.ts";
import { gradcheck } from "../../helpers/gradcheck.ts";

// ---------------------------------------------------------------- references

/** `weight[ids]` with zero rows for out-of-range ids (the engine's documented behaviour). */
function embeddingRef(ids: Ref, weight: Ref): Ref {
  const [num, dim] = weight.shape;
  const out = ref([...ids.shape, dim]);
  ids.data.forEach((id, i) => {
    if (id < 0 || id >= num) return;
    for (let k = 0; k < dim; k++) out.data[i * dim + k] = weight.data[id * dim + k];
  });
  return out;
}

/** dweight: rows of g added at their ids, none for the padding row or out-of-range ids. */
function embeddingGradRef(ids: Ref, g: Ref, shape: number[], paddingIdx = -1): Ref {
  const [num, dim] = shape;
  const dw = ref(shape);
  ids.data.forEach((id, i) => {
    if (id < 0 || id >= num || id === paddingIdx) return;
    for (let k = 0; k < dim; k++) dw.data[id * dim + k] += g.data[i * dim + k];
  });
  return dw;
}

const i32 = (x: Ref) => upload(x, { dtype: "i32" });
const TOL = { rtol: 1e-5, atol: 1e-6 };

// ---------------------------------------------------------------- forward and backward

Deno.test("embedding() matches the float64 reference for ids of any shape (0-d too)", async () => {
  const r = new Rng(1);
  // Row widths below, at and above the 64 lanes of a workgroup (1, 4 and 7 share a
  // workgroup between rows; 130 loops).
  const cases: [number[], number, number][] = [
    [[2, 3], 5, 4],
    [[7], 3, 1],
    [[], 9, 33],
    [[2, 2, 5], 40, 7],
    [[3, 9], 11, 130],
  ];
  for (const [idShape, num, dim] of cases) {
    const ids = r.intRef(idShape, 0, num);
    const w = r.normalRef([num, dim]);
    const idt = i32(ids), wt = upload(w);
    poison([ids.data.length * dim]);
    const out = embedding(idt, wt);
    assert.deepEqual(out.shape, [...idShape, dim]);
    assertClose(await out.toArray(), embeddingRef(ids, w), { ...TOL, msg: `ids [${idShape}]` });
  }
});

Deno.test("embedding() backward adds repeated ids and leaves the padding row (negative index too) at zero", async () => {
  const r = new Rng(2);
  const [num, dim] = [6, 5];
  // Every id repeated, the padding row (4) among them.
  const ids = ref([3, 4], [4, 1, 1, 0, 4, 5, 2, 1, 3, 4, 0, 5]);
  const w = r.normalRef([num, dim]), g = r.normalRef([3, 4, dim]);
  for (const [pad, row] of [[null, -1], [4, 4], [-2, 4], [0, 0]] as const) {
    const wt = upload(w, { requiresGrad: true });
    poison([num * dim]);
    const out = embedding(i32(ids), wt, { paddingIdx: pad });
    // The padding row is still looked up: only its gradient is dropped.
    assertClose(await out.toArray(), embeddingRef(ids, w), TOL);
    out.backward(upload(g));
    const want = embeddingGradRef(ids, g, [num, dim], row);
    assertClose(await wt.grad!.toArray(), want, { ...TOL, msg: `paddingIdx ${pad}` });
  }
});

Deno.test("embedding() weight gradient matches central differences", async () => {
  const r = new Rng(3);
  const ids = ref([2, 3], [2, 0, 2, 3, 1, 2]);
  await gradcheck("embedding [4, 3] table, ids [2, 3]", {
    inputs: [r.normalRef([4, 3])],
    gpu: (w) => embedding(i32(ids), w),
    ref: (w) => embeddingRef(ids, w),
  });
  // With a padding row the function is differentiated with that row held constant
  // (its values from the starting point), so central differences give it a zero gradient.
  const w0 = r.normalRef([4, 3]);
  await gradcheck("embedding with paddingIdx 2", {
    inputs: [w0],
    gpu: (w) => embedding(i32(ids), w, { paddingIdx: 2 }),
    ref: (w) => {
      const held = ref(w.shape, w.data);
      for (let k = 0; k < 3; k++) held.data[2 * 3 + k] = w0.data[2 * 3 + k];
      return embeddingRef(ids, held);
    },
  });
});

Deno.test("embedding() gives zero rows and no gradient for out-of-range ids", async () => {
  const r = new Rng(4);
  const w = r.normalRef([4, 3]);
  const ids = ref([5], [1, -1, 4, 1000, 3]);
  const wt = upload(w, { requiresGrad: true });
  poison([15]);
  const out = embedding(i32(ids), wt);
  const got = await out.toArray();
  assertClose(got, embeddingRef(ids, w), TOL);
  assert.deepEqual(Array.from(got.slice(3, 9)), [0, 0, 0, 0, 0, 0]);
  const g = r.normalRef([5, 3]);
  out.backward(upload(g));
  assertClose(await wt.grad!.toArray(), embeddingGradRef(ids, g, [4, 3]), TOL);
});

Deno.test("embedding() with 4096 ids into a 3000-row table matches the reference", async () => {
  const r = new Rng(5);
  const ids = r.intRef([64, 64], 0, 3000);
  const w = r.normalRef([3000, 8]);
  const wt = upload(w, { requiresGrad: true });
  const out = embedding(i32(ids), wt, { paddingIdx: 0 });
  assertClose(await out.toArray(), embeddingRef(ids, w), TOL);
  const g = r.normalRef([64, 64, 8]);
  out.backward(upload(g));
  // Sums of a few repeated rows in a CAS loop: order varies, so allow f32 rounding.
  assertClose(await wt.grad!.toArray(), embeddingGradRef(ids, g, [3000, 8], 0), {
    rtol: 1e-5,
    atol: 1e-5,
  });
});

// ---------------------------------------------------------------- PyTorch

interface Fx {
  shape: number[];
  data: number[];
}
interface EmbCase {
  name: string;
  padding_idx: number | null;
  weight: Fx;
  ids: Fx;
  out: Fx;
  gout: Fx;
  dweight: Fx;
}
const asRef = (t: Fx): Ref => ref(t.shape, t.data);
const fixtures: EmbCase[] = JSON.parse(
  await Deno.readTextFile(new URL("../../fixtures/transformer_ops.json", import.meta.url)),
).embedding;

Deno.test("embedding() matches PyTorch's F.embedding with padding_idx (output and weight gradient)", async () => {
  for (const c of fixtures) {
    const wt = upload(asRef(c.weight), { requiresGrad: true });
    // padding_neg1 is stored as the row PyTorch resolves it to; pass it negative as the user did.
    const pad = c.name === "padding_neg1" ? c.padding_idx! - c.weight.shape[0] : c.padding_idx;
    const out = embedding(i32(asRef(c.ids)), wt, { paddingIdx: pad });
    assert.deepEqual(out.shape, c.out.shape, c.name);
    assertClose(await out.toArray(), asRef(c.out), { ...TOL, msg: `${c.name} out` });
    out.backward(upload(asRef(c.gout)));
    assertClose(await wt.grad!.toArray(), asRef(c.dweight), { ...TOL, msg: `${c.name} dweight` });
  }
});

// ---------------------------------------------------------------- errors

Deno.test("embedding() errors name the op and the shapes", () => {
  const w = zeros([5, 3]);
  assert.throws(
    () => embedding(tensor([1, 2]), w),
    /embedding: ids must be an i32 tensor, got f32 \[2\]/,
  );
  assert.throws(
    () => embedding(tensor([1], { dtype: "i32" }), zeros([15])),
    /embedding: weight must be an f32 \[num, dim\] tensor, got f32 \[15\]/,
  );
  assert.throws(
    () => embedding(tensor([1], { dtype: "i32" }), w, { paddingIdx: 5 }),
    /embedding: paddingIdx 5 is out of range for weight \[5, 3\] \(expected an integer in \[-5, 5\)\)/,
  );
  assert.throws(
    () => embedding(tensor([1], { dtype: "i32" }), w, { paddingIdx: -6 }),
    /paddingIdx -6 is out of range/,
  );
  assert.throws(
    () => embedding(tensor([0], { dtype: "i32" }), zeros([1, 65537])),
    /embedding: rows of 65537 values \(weight \[1, 65537\]\) are wider than the 65536 supported/,
  );
});
