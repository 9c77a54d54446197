import assert from "node:assert/strict";
import { gather, indexSelect, scatterAdd, tensor } from "../../../mod.ts";
import { gatherInto } from "../../../engine/ops/index.ts";
import {
  gatherRef,
  indexSelectRef,
  type Ref,
  ref,
  Rng,
  scatterAddRef,
} from "../../helpers/reference.ts";
import { checkOp, upload } from "../../helpers/gpu.ts";
import { gradcheck } from "../../helpers/gradcheck.ts";

const I = (x: Ref) => ({ ref: x, dtype: "i32" as const });

/** Indices into an axis of size d: repeats guaranteed, optionally out of range ones. */
function indices(r: Rng, shape: number[], d: number, outOfRange = false): Ref {
  const idx = r.intRef(shape, 0, d);
  if (idx.data.length > 1) idx.data[idx.data.length - 1] = idx.data[0];
  if (outOfRange && idx.data.length > 3) {
    idx.data[1] = -1;
    idx.data[2] = d;
  }
  return idx;
}

Deno.test("indexSelect() matches torch.index_select with repeated indices on every axis", async () => {
  const r = new Rng(1);
  const cases: [number[], number, number][] = [
    [[7, 5], 0, 12],
    [[7, 5], 1, 3],
    [[3, 33, 2], 1, 40],
    [[3, 4, 257], -1, 7],
    [[257], 0, 257],
    [[1, 3], 0, 5],
    [[4, 3], 0, 0],
  ];
  for (const [shape, axis, n] of cases) {
    const x = r.nonzero(shape);
    const d = shape[axis < 0 ? axis + shape.length : axis];
    const idx = indices(r, [n], d);
    await checkOp(
      `indexSelect [${shape}] axis ${axis} n ${n}`,
      [x, I(idx)],
      (t, i) => indexSelect(t, axis, i),
      indexSelectRef(x, axis, idx.data),
      { atol: 0 },
    );
  }
});

Deno.test("indexSelect() reads 0 for out-of-range indices and works on i32 data", async () => {
  const r = new Rng(2);
  const x = r.nonzero([5, 3]);
  const idx = ref([6], [4, -1, 5, 0, 100, 4]);
  await checkOp(
    "oob",
    [x, I(idx)],
    (t, i) => indexSelect(t, 0, i),
    indexSelectRef(x, 0, idx.data),
    {
      atol: 0,
    },
  );
  const xi = r.intRef([5, 3], -50, 50);
  await checkOp(
    "i32",
    [I(xi), I(idx)],
    (t, i) => indexSelect(t, 1, i),
    indexSelectRef(xi, 1, idx.data),
    {
      dtype: "i32",
      atol: 0,
    },
  );
});

Deno.test("gather() matches torch.gather on every axis, with repeats and out-of-range indices", async () => {
  const r = new Rng(3);
  const cases: [number[], number, number][] = [
    [[7, 5], 0, 9],
    [[7, 5], 1, 2],
    [[3, 33, 2], 1, 33],
    [[3, 4, 5], 2, 7],
    [[3, 4, 5], -3, 1],
    [[257], 0, 300],
  ];
  for (const [shape, axis, j] of cases) {
    const x = r.nonzero(shape);
    const a = axis < 0 ? axis + shape.length : axis;
    const ishape = shape.map((d, i) => (i === a ? j : d));
    const idx = indices(r, ishape, shape[a], true);
    await checkOp(
      `gather [${shape}] axis ${axis} index [${ishape}]`,
      [x, I(idx)],
      (t, i) => gather(t, axis, i),
      gatherRef(x, axis, idx),
      { atol: 0 },
    );
  }
  const xi = r.intRef([3, 4], -9, 9);
  const idx = indices(r, [3, 2], 4);
  await checkOp("gather i32", [I(xi), I(idx)], (t, i) => gather(t, 1, i), gatherRef(xi, 1, idx), {
    dtype: "i32",
    atol: 0,
  });
});

Deno.test("scatterAdd() accumulates repeated indices and skips out-of-range ones", async () => {
  const r = new Rng(4);
  // 1-D (index-select style) indices along each axis.
  const oneD: [number[], number, number][] = [
    [[7, 5], 0, 20],
    [[7, 5], 1, 9],
    [[3, 6, 2], 1, 33],
    [[257], 0, 1000],
  ];
  for (const [shape, axis, n] of oneD) {
    const base = r.nonzero(shape);
    const srcShape = shape.map((d, i) => (i === axis ? n : d));
    const src = r.nonzero(srcShape);
    const idx = indices(r, [n], shape[axis], true);
    await checkOp(
      `scatterAdd 1-D [${shape}] axis ${axis} n ${n}`,
      [base, I(idx), src],
      (b, i, s) => scatterAdd(b, axis, i, s),
      scatterAddRef(base, axis, idx, src),
      { rtol: 1e-5, atol: 1e-5 },
    );
  }
  // Gather-style indices (the shape of src).
  const full: [number[], number, number][] = [
    [[7, 5], 0, 9],
    [[7, 5], 1, 3],
    [[3, 4, 5], 2, 11],
  ];
  for (const [shape, axis, j] of full) {
    const base = r.nonzero(shape);
    const srcShape = shape.map((d, i) => (i === axis ? j : d));
    const src = r.nonzero(srcShape);
    const idx = indices(r, srcShape, shape[axis], true);
    await checkOp(
      `scatterAdd gather-style [${shape}] axis ${axis}`,
      [base, I(idx), src],
      (b, i, s) => scatterAdd(b, axis, i, s),
      scatterAddRef(base, axis, idx, src),
      { rtol: 1e-5, atol: 1e-5 },
    );
  }
});

Deno.test("scatterAdd() into one element sums every contribution (the CAS loop loses none)", async () => {
  const n = 4096;
  const src = ref([n]).data.fill(1);
  const idx = ref([n]);
  await checkOp(
    "all into 0",
    [ref([3], [0.5, 0, 0]), I(idx), ref([n], src)],
    (b, i, s) => scatterAdd(b, 0, i, s),
    ref([3], [n + 0.5, 0, 0]),
    { atol: 0 },
  );
});

// ---------------------------------------------------------------- gradients

Deno.test("indexSelect() backward accumulates the gradient of repeated indices", async () => {
  const r = new Rng(10);
  for (const [shape, axis] of [[[5, 3], 0], [[5, 3], 1], [[2, 4, 3], 1]] as [number[], number][]) {
    const idx = indices(r, [7], shape[axis], true);
    const it = upload(idx, { dtype: "i32" });
    await gradcheck(`indexSelect [${shape}] axis ${axis}`, {
      inputs: [r.nonzero(shape)],
      gpu: (t) => indexSelect(t, axis, it),
      ref: (v) => indexSelectRef(v, axis, idx.data),
    });
  }
});

Deno.test("gather() backward matches finite differences", async () => {
  const r = new Rng(11);
  for (
    const [shape, axis, j] of [[[5, 3], 0, 6], [[5, 3], 1, 4], [[2, 4, 3], 2, 5]] as [
      number[],
      number,
      number,
    ][]
  ) {
    const ishape = shape.map((d, i) => (i === axis ? j : d));
    const idx = indices(r, ishape, shape[axis], true);
    const it = upload(idx, { dtype: "i32" });
    await gradcheck(`gather [${shape}] axis ${axis}`, {
      inputs: [r.nonzero(shape)],
      gpu: (t) => gather(t, axis, it),
      ref: (v) => gatherRef(v, axis, idx),
    });
  }
});

Deno.test("scatterAdd() backward matches finite differences for base and src", async () => {
  const r = new Rng(12);
  const cases: [number[], number, number[]][] = [
    [[5, 3], 0, [7]],
    [[5, 3], 1, [5, 4]],
    [[2, 4, 3], 1, [6]],
    [[6], 0, [9]],
  ];
  for (const [shape, axis, ishape] of cases) {
    const srcShape = shape.map((d, i) => (i === axis ? ishape[ishape.length === 1 ? 0 : axis] : d));
    const idx = indices(r, ishape, shape[axis], true);
    const it = upload(idx, { dtype: "i32" });
    for (const wrt of [[true, true], [false, true], [true, false]]) {
      await gradcheck(`scatterAdd [${shape}] axis ${axis} index [${ishape}] wrt ${wrt}`, {
        inputs: [r.nonzero(shape), r.nonzero(srcShape)],
        gpu: (b, s) => scatterAdd(b, axis, it, s),
        ref: (b, s) => scatterAddRef(b, axis, idx, s),
        wrt,
      });
    }
  }
});

Deno.test("gatherInto() writes picked entries into a range of an existing tensor, past 65,535 workgroups", async () => {
  // 65,535 workgroups of 64 cover 4,194,240 entries; a few more need the folded grid.
  const n = 65_535 * 64 + 1000;
  const src = new Float32Array(5000).map((_, i) => i * 0.5 - 7);
  const idx = Int32Array.from({ length: n }, (_, j) => (j * 7919) % 5000);
  const dst = tensor(new Float32Array(n + 3).fill(-1));
  const x = tensor(src);
  const index = tensor(idx, { dtype: "i32" });
  gatherInto(dst, 3, x, index);
  const got = (await dst.toArray()) as Float32Array;
  assert.deepEqual(Array.from(got.subarray(0, 3)), [-1, -1, -1]);
  let bad = 0;
  for (let j = 0; j < n; j++) if (got[3 + j] !== src[idx[j]]) bad++;
  assert.equal(bad, 0, `${bad} of ${n} entries wrong`);
  assert.throws(() => gatherInto(dst, 10, x, index), /gatherInto: .* offset \+ index length/);
  for (const v of [dst, x, index]) v.dispose();
});
