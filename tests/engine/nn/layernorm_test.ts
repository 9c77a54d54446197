/**
 * nn.LayerNorm: PyTorch's names, init, repr and state dict, options, and
 * that forward is layerNorm() with the layer's parameters.
 */

import assert from "node:assert/strict";
import { layerNorm, nn, randn, tensor } from "../../../mod.ts";
import { assertClose } from "../../helpers/reference.ts";

Deno.test("nn.LayerNorm has PyTorch's parameter names, init and repr", async () => {
  const ln = new nn.LayerNorm(6);
  assert.deepEqual(Object.keys(ln.stateDict()), ["weight", "bias"]);
  assert.deepEqual(ln.namedParameters().map(([k, t]) => [k, t.shape]), [
    ["weight", [6]],
    ["bias", [6]],
  ]);
  assert.deepEqual(Array.from(await ln.weight!.toArray()), [1, 1, 1, 1, 1, 1]);
  assert.deepEqual(Array.from(await ln.bias!.toArray()), [0, 0, 0, 0, 0, 0]);
  assert.equal(String(ln), "LayerNorm((6,), eps=1e-05, elementwise_affine=True)");
  assert.equal(ln.numParameters(), 12);

  const plain = new nn.LayerNorm(6, { elementwiseAffine: false, eps: 1e-6 });
  assert.deepEqual(Object.keys(plain.stateDict()), []);
  assert.equal(String(plain), "LayerNorm((6,), eps=1e-06, elementwise_affine=False)");
  const noBias = new nn.LayerNorm(6, { bias: false });
  assert.deepEqual(Object.keys(noBias.stateDict()), ["weight"]);
  assert.equal(String(noBias), "LayerNorm((6,), eps=1e-05, elementwise_affine=True, bias=False)");
});

Deno.test("nn.LayerNorm loads a state dict and forwards as layerNorm() with its parameters", async () => {
  const ln = new nn.LayerNorm(4, { eps: 0.1 });
  const w = tensor([1, 2, 3, 4]), b = tensor([0.5, 0, -0.5, 1]);
  ln.loadStateDict({ weight: w, bias: b });
  const x = randn([2, 3, 4]);
  x.requiresGrad = true;
  const y = ln.forward(x);
  assertClose(await y.toArray(), await layerNorm(x, w, b, 0.1).toArray(), { rtol: 0, atol: 0 });
  y.sum().backward();
  assert.deepEqual(ln.weight!.grad!.shape, [4]);
  assert.deepEqual(ln.bias!.grad!.shape, [4]);
  // Σ over rows of dy = 1 per row: 6 rows.
  assertClose(await ln.bias!.grad!.toArray(), [6, 6, 6, 6]);
  assert.ok(x.grad !== null);
});

Deno.test("nn.LayerNorm rejects a wrong last axis and a bad size, naming the layer", () => {
  assert.throws(
    () => new nn.LayerNorm(8).forward(randn([2, 7])),
    /LayerNorm\(8\): expected an input \[\.\.\., 8\], got \[2, 7\]/,
  );
  assert.throws(() => new nn.LayerNorm(0), /LayerNorm: normalizedShape must be an integer ≥ 1/);
});
