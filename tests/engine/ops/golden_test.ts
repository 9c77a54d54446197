/**
 * Golden tests against PyTorch: tests/fixtures/{matmul,softmax,cross_entropy,gelu}.json
 * (see tests/fixtures/README.md). The fixtures were computed in float64 from float32
 * inputs and rounded to float32, so they are "true" values; the engine computes in f32.
 */

import assert from "node:assert/strict";
import {
  crossEntropy,
  gelu,
  logSoftmax,
  matmul,
  softmax,
  type Tensor,
  tensor,
} from "../../../mod.ts";
import {
  assertClose,
  crossEntropyRef,
  matmulRef,
  type Ref,
  ref,
  roundF32,
  softmaxRef,
  UNARY_REF,
} from "../../helpers/reference.ts";
import { poison, upload } from "../../helpers/gpu.ts";

interface Fx {
  shape: number[];
  data: number[];
}

const fixture = async (name: string) =>
  JSON.parse(await Deno.readTextFile(new URL(`../../fixtures/${name}.json`, import.meta.url)));
const asRef = (t: Fx): Ref => ref(t.shape, t.data);

/** Runs `f` on leaves made from `inputs`, backpropagates `gout`, returns output and grads. */
async function forwardBackward(
  inputs: Fx[],
  gout: Fx,
  f: (...xs: Tensor[]) => Tensor,
): Promise<{ out: Float32Array; grads: Float32Array[] }> {
  const xs = inputs.map((x) => upload(asRef(x), { requiresGrad: true }));
  poison([gout.data.length]);
  const y = f(...xs);
  assert.deepEqual(y.shape, gout.shape);
  const out = (await y.toArray()) as Float32Array;
  y.backward(upload(asRef(gout)));
  const grads: Float32Array[] = [];
  for (const x of xs) grads.push((await x.grad!.toArray()) as Float32Array);
  return { out, grads };
}

Deno.test("matmul() forward and gradients match PyTorch for every fixture case", async () => {
  const { cases } = await fixture("matmul");
  assert.equal(cases.length, 7);
  for (const c of cases) {
    const K = c.transA ? c.a.shape.at(-2) : c.a.shape.at(-1);
    const tol = { rtol: 1e-5, atol: 2e-7 * K + 2e-6 };
    const inputs = c.bias ? [c.a, c.b, c.bias] : [c.a, c.b];
    const act = c.epilogue === "bias_relu" ? "relu" : "none";
    const { out, grads } = await forwardBackward(
      inputs,
      c.gout,
      (a, b, bias) => matmul(a, b, { transA: c.transA, transB: c.transB, bias, act }),
    );
    assertClose(out, asRef(c.out), { ...tol, msg: `${c.name} out` });
    assertClose(grads[0], asRef(c.da), { ...tol, msg: `${c.name} da` });
    assertClose(grads[1], asRef(c.db), { ...tol, msg: `${c.name} db` });
    if (c.bias) assertClose(grads[2], asRef(c.dbias), { ...tol, msg: `${c.name} dbias` });
  }
});

Deno.test("softmax() and logSoftmax() forward and gradients match PyTorch, rows of ±80 included", async () => {
  const { cases } = await fixture("softmax");
  for (const c of cases) {
    for (const [key, fn] of [["softmax", softmax], ["log_softmax", logSoftmax]] as const) {
      const { out, grads } = await forwardBackward([c.x], c.gout, (x) => fn(x, -1));
      // log_softmax reaches -166 on the ±80 rows: the relative term covers it.
      assertClose(out, asRef(c[key].out), { rtol: 1e-5, atol: 1e-6, msg: `${c.name} ${key} out` });
      assertClose(grads[0], asRef(c[key].dx), {
        rtol: 1e-4,
        atol: 1e-5,
        msg: `${c.name} ${key} dx`,
      });
    }
  }
});

Deno.test("crossEntropy() loss and gradient match PyTorch for every fixture option", async () => {
  const fx = await fixture("cross_entropy");
  assert.ok(fx.cases.length >= 6);
  for (const c of fx.cases) {
    const opts = {
      reduction: c.reduction,
      labelSmoothing: c.label_smoothing,
      ignoreIndex: c.ignore_index,
    };
    const labels = tensor(Int32Array.from(c.labels.data));
    const x = upload(asRef(fx.logits), { requiresGrad: true });
    const loss = crossEntropy(x, labels, opts);
    assertClose([await loss.item()], [c.loss.data[0]], {
      rtol: 1e-5,
      atol: 1e-6,
      msg: `${c.name} loss`,
    });
    loss.backward();
    assertClose(await x.grad!.toArray(), asRef(c.dlogits), {
      rtol: 1e-4,
      atol: 1e-6,
      msg: `${c.name} dlogits`,
    });
  }
});

Deno.test("gelu() exact and tanh forms match PyTorch, forward and gradient", async () => {
  const fx = await fixture("gelu");
  for (const form of ["none", "tanh"] as const) {
    const { out, grads } = await forwardBackward([fx.x], fx.gout, (x) => gelu(x, form));
    assertClose(out, asRef(fx[form].out), { rtol: 1e-5, atol: 1e-6, msg: `gelu ${form} out` });
    assertClose(grads[0], asRef(fx[form].dx), { rtol: 1e-4, atol: 2e-6, msg: `gelu ${form} dx` });
  }
});

Deno.test("the float64 references agree with the PyTorch fixtures", async () => {
  // Validates tests/helpers/reference.ts itself, which every other test trusts. Inputs are
  // rounded to the float32 values PyTorch used (the JSON holds their shortest decimals).
  const input = (t: Fx) => roundF32(asRef(t));
  const mm = await fixture("matmul");
  for (const c of mm.cases) {
    const y = matmulRef(input(c.a), input(c.b), {
      transA: c.transA,
      transB: c.transB,
      bias: c.bias && input(c.bias),
      act: c.epilogue ? "relu" : "none",
    });
    assertClose(y.data, asRef(c.out), { rtol: 1e-6, atol: 1e-7, msg: `matmulRef ${c.name}` });
  }
  const sm = await fixture("softmax");
  for (const c of sm.cases) {
    assertClose(softmaxRef(input(c.x)).data, asRef(c.softmax.out), { rtol: 1e-6, atol: 1e-12 });
    assertClose(softmaxRef(input(c.x), -1, true).data, asRef(c.log_softmax.out), { rtol: 1e-6 });
  }
  const ce = await fixture("cross_entropy");
  for (const c of ce.cases) {
    const l = crossEntropyRef(input(ce.logits), c.labels.data, {
      reduction: c.reduction,
      labelSmoothing: c.label_smoothing,
      ignoreIndex: c.ignore_index,
    });
    assertClose(l.data, c.loss.data, { rtol: 1e-6, msg: `crossEntropyRef ${c.name}` });
  }
  const g = await fixture("gelu");
  const x = input(g.x);
  assertClose(x.data.map(UNARY_REF.gelu), asRef(g.none.out), { rtol: 1e-6, atol: 1e-7 });
  assertClose(x.data.map(UNARY_REF.gelu_tanh), asRef(g.tanh.out), { rtol: 1e-6, atol: 1e-7 });
});
