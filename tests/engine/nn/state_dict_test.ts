import assert from "node:assert/strict";
import { type Tensor, tensor, zeros } from "../../../mod.ts";
import * as nn from "../../../engine/nn/mod.ts";
import {
  loadSafetensors,
  loadSafetensorsWithMetadata,
  saveSafetensors,
} from "../../../engine/checkpoint.ts";

const FIXTURES = new URL("../../fixtures/", import.meta.url);

interface JsonTensor {
  shape: number[];
  data: number[];
}

function torchMlp(): nn.Sequential {
  return new nn.Sequential(
    new nn.Linear(20, 32),
    new nn.ReLU(),
    new nn.Linear(32, 16),
    new nn.ReLU(),
    new nn.Linear(16, 10),
  );
}

/** The MLP's forward in float64 from PyTorch's float32 parameters. */
function mlpRef(params: Record<string, JsonTensor>, x: JsonTensor): Float64Array {
  let h = Float64Array.from(x.data);
  let n = x.shape[1];
  const rows = x.shape[0];
  for (const [i, layer] of [0, 2, 4].entries()) {
    const w = params[`${layer}.weight`];
    const b = params[`${layer}.bias`].data;
    const [m, k] = w.shape;
    assert.equal(k, n);
    const out = new Float64Array(rows * m);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < m; j++) {
        let s = b[j];
        for (let t = 0; t < k; t++) s += h[r * k + t] * w.data[j * k + t];
        out[r * m + j] = i < 2 ? Math.max(s, 0) : s;
      }
    }
    h = out;
    n = m;
  }
  return h;
}

function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  what: string,
) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    assert.ok(
      err <= tol * (1 + Math.abs(expected[i])),
      `${what}[${i}]: ${actual[i]} vs ${expected[i]} (error ${err})`,
    );
  }
}

Deno.test("loadStateDict copies in place, keeping tensor identity and requiresGrad", async () => {
  const a = new nn.Linear(3, 2);
  const b = new nn.Linear(3, 2);
  const weight = b.weight;
  b.bias!.requiresGrad = false;
  assert.deepEqual(b.loadStateDict(a.stateDict()), { missingKeys: [], unexpectedKeys: [] });
  assert.equal(b.weight, weight);
  assert.deepEqual(await b.weight.toArray(), await a.weight.toArray());
  assert.deepEqual(await b.bias!.toArray(), await a.bias!.toArray());
  assert.equal(b.weight.requiresGrad, true);
  assert.equal(b.bias!.requiresGrad, false);
  // A change to the source afterwards does not leak into the copy.
  a.loadStateDict({ weight: zeros([2, 3]), bias: zeros([2]) });
  assert.notDeepEqual(await b.weight.toArray(), await a.weight.toArray());
  a.dispose();
  b.dispose();
});

Deno.test("loadStateDict names missing, unexpected and mis-shaped keys, and changes nothing", async () => {
  const m = new nn.Sequential(new nn.Linear(4, 3), new nn.ReLU(), new nn.Linear(3, 2));
  const before = await m.parameters()[0].toArray();
  const sd: Record<string, Tensor> = {
    "0.weight": zeros([4, 3]),
    "0.bias": zeros([3]),
    "2.weight": zeros([2, 3]),
    "1.weight": zeros([1]),
  };
  assert.throws(() => m.loadStateDict(sd), (e: unknown) => {
    assert.ok(e instanceof nn.StateDictError);
    assert.deepEqual(e.missingKeys, ["2.bias"]);
    assert.deepEqual(e.unexpectedKeys, ["1.weight"]);
    assert.equal(e.shapeMismatches.length, 1);
    assert.match(e.message, /missing keys: "2\.bias"/);
    assert.match(e.message, /unexpected keys: "1\.weight"/);
    assert.match(e.message, /"0\.weight": expected \[3, 4\], got \[4, 3\]/);
    assert.match(e.message, /into Sequential/);
    return true;
  });
  assert.deepEqual(await m.parameters()[0].toArray(), before, "nothing copied");
  // Not strict: missing/unexpected are reported, but a shape mismatch still throws.
  assert.throws(() => m.loadStateDict(sd, { strict: false }), /shape mismatches: "0\.weight"/);
  sd["0.weight"] = zeros([3, 4]);
  const r = m.loadStateDict(sd, { strict: false });
  assert.deepEqual(r, { missingKeys: ["2.bias"], unexpectedKeys: ["1.weight"] });
  assert.deepEqual(Array.from(await m.parameters()[0].toArray()), new Array(12).fill(0));
  m.dispose();
});

Deno.test("saveSafetensors and loadSafetensors round-trip a state dict through a file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const m = new nn.Sequential(new nn.Linear(5, 4), new nn.Tanh(), new nn.Linear(4, 3));
    const path = `${dir}/model.safetensors`;
    const extra = { step: tensor([12], { dtype: "i32" }), mask: tensor([1, 0], { dtype: "u32" }) };
    await saveSafetensors(path, { ...m.stateDict(), ...extra }, { epoch: "3" });
    const { tensors, metadata } = await loadSafetensorsWithMetadata(path);
    assert.deepEqual(metadata, { epoch: "3" });
    for (const [k, t] of Object.entries({ ...m.stateDict(), ...extra })) {
      assert.deepEqual(tensors[k].shape, t.shape, k);
      assert.equal(tensors[k].dtype, t.dtype, k);
      assert.deepEqual(await tensors[k].toArray(), await t.toArray(), k);
    }
    const fresh = new nn.Sequential(new nn.Linear(5, 4), new nn.Tanh(), new nn.Linear(4, 3));
    fresh.loadStateDict(await loadSafetensors(path), { strict: false });
    const x = tensor([0.1, -0.2, 0.3, 0.4, -0.5], { shape: [1, 5] });
    assert.deepEqual(await fresh.forward(x).toArray(), await m.forward(x).toArray());
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name),
      ["model.safetensors"],
      "no temporary file left",
    );
    m.dispose();
    fresh.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a PyTorch MLP's safetensors file loads into Sequential and gives its forward", async () => {
  const fixture = JSON.parse(
    await Deno.readTextFile(new URL("safetensors_torch.json", FIXTURES)),
  ) as { tensors: Record<string, JsonTensor> };
  const sgd = JSON.parse(await Deno.readTextFile(new URL("mlp_sgd.json", FIXTURES))) as {
    keys: string[];
    x: JsonTensor;
    y: JsonTensor;
    steps: { loss: number; grads: Record<string, JsonTensor> }[];
  };
  const sd = await loadSafetensors(new URL("safetensors_torch.safetensors", FIXTURES).pathname);
  assert.deepEqual(Object.keys(sd).sort(), Object.keys(fixture.tensors).sort());
  const m = torchMlp();
  assert.deepEqual(Object.keys(m.stateDict()), sgd.keys);
  assert.throws(() => m.loadStateDict(sd), /unexpected keys: .*"num_batches_tracked"/);
  const r = m.loadStateDict(sd, { strict: false });
  assert.deepEqual(r.missingKeys, []);
  assert.deepEqual(r.unexpectedKeys.sort(), ["bhalf", "half", "num_batches_tracked"]);
  for (const [k, t] of Object.entries(m.stateDict())) {
    assert.deepEqual(await t.toArray(), Float32Array.from(fixture.tensors[k].data), k);
  }
  const x = tensor(sgd.x.data, { shape: sgd.x.shape });
  const y = tensor(sgd.y.data, { dtype: "i32" });
  const ref = mlpRef(fixture.tensors, sgd.x);
  for (const fuse of [false, true]) {
    m.fuse = fuse;
    const logits = m.forward(x);
    assertClose(await logits.toArray(), ref, 1e-5, `logits (fuse ${fuse})`);
    // The same model and batch give PyTorch's loss and gradients.
    const loss = nn.crossEntropy(logits, y);
    assertClose([await loss.item()], [sgd.steps[0].loss], 1e-5, "loss");
    loss.backward();
    for (const [k, p] of m.namedParameters()) {
      assertClose(
        await p.grad!.toArray(),
        sgd.steps[0].grads[k].data,
        1e-4,
        `grad ${k} (fuse ${fuse})`,
      );
      p.grad!.dispose();
      p.grad = null;
    }
  }
  for (const t of Object.values(sd)) t.dispose();
  m.dispose();
});
