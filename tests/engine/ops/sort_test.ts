import assert from "node:assert/strict";
import { noGrad, sort, tensor } from "../../../mod.ts";
import { type Ref, ref, Rng } from "../../helpers/reference.ts";
import { checkOp } from "../../helpers/gpu.ts";

/** Float64 reference: each last-axis row sorted ascending, NaN last. */
function sortRef(x: Ref): Ref {
  const n = x.shape.at(-1) ?? 1;
  const out = new Float64Array(x.data.length);
  for (let r = 0; r * n < x.data.length; r++) {
    const row = Array.from(x.data.slice(r * n, r * n + n)).sort((a, b) =>
      Number.isNaN(a) ? (Number.isNaN(b) ? 0 : 1) : Number.isNaN(b) ? -1 : a - b
    );
    out.set(row, r * n);
  }
  return ref(x.shape, out);
}

function random(shape: number[], rng: Rng): Ref {
  const x = ref(shape);
  for (let i = 0; i < x.data.length; i++) x.data[i] = Math.fround(rng.uniform(-3, 3));
  return x;
}

Deno.test("sort matches a float64 sort of every row, powers of two or not", async () => {
  const rng = new Rng(Date.now());
  // Row lengths below, at and between powers of two; 1-D, 3-D, one row.
  const shapes = [[1], [7], [3, 1], [5, 2], [4, 33], [3, 257], [2, 1024], [3, 1000], [2, 4096], [
    1,
    5000,
  ], [
    2,
    3,
    5,
  ], [2, 3, 129]];
  for (const shape of shapes) {
    const x = random(shape, rng);
    await checkOp(`sort [${shape}]`, [x], (t) => sort(t), sortRef(x), { rtol: 0, atol: 0 });
  }
});

Deno.test("sort: more rows than one grid dimension holds; ties, infinities, NaN last", async () => {
  const rng = new Rng(Date.now());
  const x = random([70_001, 3], rng);
  await checkOp("sort [70001, 3]", [x], (t) => sort(t), sortRef(x), { rtol: 0, atol: 0 });
  const special = ref([2, 6], [NaN, 2, -Infinity, 2, Infinity, -0, 1, NaN, NaN, -1, -1, 0]);
  await checkOp("sort specials", [special], (t) => sort(t), sortRef(special), { rtol: 0, atol: 0 });
});

Deno.test("sort refuses what it cannot do, naming the op and the shape", () => {
  assert.throws(() => sort(tensor([1, 2], { dtype: "i32" })), /sort: expected f32, got i32/);
  const w = tensor(new Float32Array(12), { shape: [3, 4], requiresGrad: true });
  assert.throws(() => sort(w), /sort: not differentiable; its input \[3, 4\] requires grad/);
  const s = noGrad(() => sort(w));
  assert.deepEqual(s.shape, [3, 4]);
  s.dispose();
  w.dispose();
  const empty = sort(tensor(new Float32Array(0), { shape: [0, 5] }));
  assert.deepEqual(empty.shape, [0, 5]);
  empty.dispose();
});
