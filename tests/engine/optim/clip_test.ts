import assert from "node:assert/strict";
import { keep, tensor } from "../../../mod.ts";
import { clipGradNorm } from "../../../engine/optim/mod.ts";
import { assertClose, countDispatches, param, randn, rng, setGrad } from "./reference.ts";

/** torch.nn.utils.clip_grad_norm_ in float64: returns the norm and the clipped grads. */
function clipRef(grads: Float32Array[], maxNorm: number): { norm: number; out: Float64Array[] } {
  let ss = 0;
  for (const g of grads) for (const x of g) ss += x * x;
  const norm = Math.sqrt(ss);
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  return { norm, out: grads.map((g) => Float64Array.from(g, (x) => x * coef)) };
}

Deno.test("clipGradNorm() matches the float64 reference when clipping and when not", async () => {
  const rand = rng(21);
  for (const maxNorm of [1, 1e3]) {
    const sizes = [1, 37, 2000];
    const params = sizes.map((n) => param(randn(n, rand)));
    const grads = sizes.map((n) => randn(n, rand));
    params.forEach((p, i) => setGrad(p, grads[i]));
    const noGradParam = param(randn(3, rand)); // grad null: ignored
    const ref = clipRef(grads, maxNorm);
    let norm = tensor([0]);
    const { submits } = countDispatches(() => {
      norm.dispose();
      norm = clipGradNorm([...params, noGradParam], maxNorm);
    });
    assert.equal(submits, 0, "clipGradNorm must not wait on the GPU");
    assert.deepEqual(norm.shape, []);
    assertClose([await norm.item()], [ref.norm], `norm (maxNorm ${maxNorm})`);
    for (let i = 0; i < params.length; i++) {
      assertClose(await params[i].grad!.toArray(), ref.out[i], `grad ${i} (maxNorm ${maxNorm})`);
    }
    assert.equal(noGradParam.grad, null);
    norm.dispose();
    [...params, noGradParam].forEach((p) => {
      p.grad?.dispose();
      p.dispose();
    });
  }
});

Deno.test("clipGradNorm() scales gradients that share memory only once", async () => {
  // Backward hands the upstream gradient of `a + b` to both leaves as views of one buffer.
  const a = param(new Float32Array([1, 2]));
  const b = param(new Float32Array([3, 4]));
  a.add(b).mul(tensor([3, 4])).sum().backward();
  const norm = clipGradNorm([a, b], 1);
  // Two grads of [3, 4]: norm √50.
  assertClose([await norm.item()], [Math.sqrt(50)], "norm");
  const coef = 1 / (Math.sqrt(50) + 1e-6);
  assertClose(await a.grad!.toArray(), [3 * coef, 4 * coef], "a.grad");
  assertClose(await b.grad!.toArray(), [3 * coef, 4 * coef], "b.grad");
  norm.dispose();
  for (const p of [a, b]) {
    p.grad?.dispose();
    p.dispose();
  }
});

Deno.test("clipGradNorm() with no gradients returns a zero norm", async () => {
  const p = keep(tensor([1, 2]));
  const norm = clipGradNorm([p], 1);
  assert.equal(await norm.item(), 0);
  assert.throws(() => clipGradNorm([p], -1), /maxNorm must be a number ≥ 0/);
  norm.dispose();
  p.dispose();
});
