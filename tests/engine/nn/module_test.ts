import assert from "node:assert/strict";
import { keep, scope, type Tensor, zeros } from "../../../mod.ts";
import { randn } from "../../../engine/ops/random.ts";
import * as nn from "../../../engine/nn/mod.ts";

function mlp(): nn.Sequential {
  return new nn.Sequential(new nn.Linear(784, 128), new nn.ReLU(), new nn.Linear(128, 10));
}

/** A module shaped like a ResNet stage: nested names, a buffer, a shared child. */
class Block extends nn.Module {
  conv1 = new nn.Linear(4, 4, { bias: false });
  bn = new Norm(4);
  forward(x: Tensor): Tensor {
    return this.bn.forward(this.conv1.forward(x));
  }
}

class Norm extends nn.Module {
  weight: Tensor;
  bias: Tensor;
  runningMean: Tensor;
  scratch: Tensor;
  constructor(n: number) {
    super();
    this.weight = nn.parameter(zeros([n]).add(1));
    this.bias = nn.parameter(zeros([n]));
    this.runningMean = nn.buffer(zeros([n]));
    this.scratch = nn.buffer(zeros([n]), { persistent: false });
  }
  forward(x: Tensor): Tensor {
    return x.mul(this.weight).add(this.bias);
  }
}

class Net extends nn.Module {
  stem = new nn.Linear(4, 4);
  layer1 = new nn.Sequential(new Block(), new Block());
  head: nn.Linear;
  notAParameter: Tensor = keep(zeros([3]));
  constructor() {
    super();
    this.head = new nn.Linear(4, 2);
  }
  forward(x: Tensor): Tensor {
    return this.head.forward(this.layer1.forward(this.stem.forward(x)));
  }
}

Deno.test("Sequential(Linear(784,128), ReLU, Linear(128,10)) has PyTorch's names and count", () => {
  const m = mlp();
  assert.deepEqual(m.namedParameters().map(([k, t]) => [k, t.shape]), [
    ["0.weight", [128, 784]],
    ["0.bias", [128]],
    ["2.weight", [10, 128]],
    ["2.bias", [10]],
  ]);
  assert.deepEqual(Object.keys(m.stateDict()), ["0.weight", "0.bias", "2.weight", "2.bias"]);
  assert.equal(m.numParameters(), 101_770);
  assert.equal(m.parameters().length, 4);
  assert.deepEqual(m.namedModules().map(([k, x]) => [k, x.constructor.name]), [
    ["", "Sequential"],
    ["0", "Linear"],
    ["1", "ReLU"],
    ["2", "Linear"],
  ]);
  for (const p of m.parameters()) {
    assert.equal(p.requiresGrad, true);
    assert.equal(p.kept, true);
    assert.equal(p.storage.category, "parameter");
  }
  assert.equal(
    m.toString(),
    "Sequential(\n  (0): Linear(in_features=784, out_features=128, bias=True)\n  (1): ReLU()\n" +
      "  (2): Linear(in_features=128, out_features=10, bias=True)\n)",
  );
  m.dispose();
  assert.ok(m.parameters().every((p) => p.disposed));
});

Deno.test("nested modules get dotted names with buffers after parameters, as state_dict()", () => {
  const net = new Net();
  assert.deepEqual(Object.keys(net.stateDict()), [
    "stem.weight",
    "stem.bias",
    "layer1.0.conv1.weight",
    "layer1.0.bn.weight",
    "layer1.0.bn.bias",
    "layer1.0.bn.runningMean",
    "layer1.1.conv1.weight",
    "layer1.1.bn.weight",
    "layer1.1.bn.bias",
    "layer1.1.bn.runningMean",
    "head.weight",
    "head.bias",
  ]);
  assert.deepEqual(net.namedBuffers().map(([k]) => k), [
    "layer1.0.bn.runningMean",
    "layer1.0.bn.scratch",
    "layer1.1.bn.runningMean",
    "layer1.1.bn.scratch",
  ]);
  assert.equal(net.namedParameters().length, 10);
  assert.equal(net.numParameters(), 20 + 2 * (16 + 8) + 10);
  assert.deepEqual(net.namedChildren().map(([k]) => k), ["stem", "layer1", "head"]);
  net.dispose();
});

Deno.test("a module reached twice is listed once, as PyTorch's named_parameters()", () => {
  const shared = new nn.Linear(3, 3);
  const m = new nn.Sequential(shared, new nn.ReLU(), shared);
  assert.deepEqual(m.namedParameters().map(([k]) => k), ["0.weight", "0.bias"]);
  assert.equal(m.modules().length, 3);
  m.dispose();
});

Deno.test("registerParameter, registerBuffer and addModule name members at run time", () => {
  class Dyn extends nn.Module {
    constructor() {
      super();
      this.registerParameter("alpha", zeros([2]));
      this.registerParameter("beta", null);
      this.addModule("fc", new nn.Linear(2, 2));
      this.registerBuffer("count", zeros([1], "i32"));
    }
    forward(x: Tensor): Tensor {
      return x;
    }
  }
  const d = new Dyn();
  assert.deepEqual(Object.keys(d.stateDict()), ["alpha", "count", "fc.weight", "fc.bias"]);
  assert.throws(() => d.addModule("a.b", new nn.ReLU()), /invalid member name/);
  d.dispose();
});

Deno.test("an array of modules is rejected with a pointer to ModuleList", () => {
  class Bad extends nn.Module {
    layers = [new nn.Linear(2, 2)];
    forward(x: Tensor): Tensor {
      return x;
    }
  }
  assert.throws(() => new Bad().parameters(), /use ModuleList/);
  const list = new nn.ModuleList([new nn.Linear(2, 3), new nn.Tanh()]);
  assert.equal(list.length, 2);
  assert.equal(list.at(-1).constructor.name, "Tanh");
  assert.deepEqual(list.namedParameters().map(([k]) => k), ["0.weight", "0.bias"]);
  list.dispose();
});

Deno.test("train() and eval() propagate the training flag to every sub-module", () => {
  const net = new Net();
  net.eval();
  assert.ok(net.modules().every((m) => !m.training));
  net.train();
  assert.ok(net.modules().every((m) => m.training));
  net.layer1.train(false);
  assert.deepEqual(net.modules().map((m) => m.training), [
    true,
    true,
    false,
    false,
    false,
    false,
    false,
    false,
    false,
    true,
  ]);
  net.dispose();
});

Deno.test("eval() disables Dropout; training mode drops about p of the values", async () => {
  const m = new nn.Sequential(new nn.Dropout(0.5));
  const x = zeros([1000]).add(1);
  const yTrain = await m.forward(x).toArray();
  const zeroed = yTrain.filter((v) => v === 0).length;
  assert.ok(zeroed > 400 && zeroed < 600, `zeroed ${zeroed} of 1000`);
  assert.ok(yTrain.every((v) => v === 0 || v === 2));
  m.eval();
  assert.deepEqual(Array.from(await m.forward(x).toArray()), new Array(1000).fill(1));
  assert.throws(() => new nn.Dropout(1), /p must be in/);
});

Deno.test("freeze() makes the tape record nothing for the frozen layers", () => {
  const m = new nn.Sequential(
    new nn.Linear(6, 5),
    new nn.ReLU(),
    new nn.Linear(5, 4),
    new nn.GELU(),
    new nn.Linear(4, 3),
  );
  const x = randn([2, 6]);
  scope(() => {
    m.freeze();
    assert.ok(m.parameters().every((p) => !p.requiresGrad));
    assert.equal(m.numParameters({ trainable: true }), 0);
    const y = m.forward(x);
    assert.equal(y.requiresGrad, false);
    assert.equal(y.node, null);
  });
  scope(() => {
    // SmartFRZ freezes a prefix: outputs of the frozen part carry no node.
    m.unfreeze();
    (m.at(0) as nn.Linear).freeze();
    (m.at(2) as nn.Linear).freeze();
    const h0 = m.at(0).forward(x);
    const h1 = m.at(1).forward(h0);
    const h2 = m.at(2).forward(h1);
    const h3 = m.at(3).forward(h2);
    assert.ok([h0, h1, h2, h3].every((h) => h.node === null && !h.requiresGrad));
    const y = m.at(4).forward(h3);
    assert.equal(y.requiresGrad, true);
    assert.equal(y.node?.op, "matmul");
    assert.deepEqual(y.node?.needs, [false, true, true]);
    y.sum().backward();
    const grads = m.parameters().map((p) => p.grad !== null);
    assert.deepEqual(grads, [false, false, false, false, true, true]);
  });
  m.dispose();
  x.dispose();
});

Deno.test("Sequential frees intermediates early without breaking backward", () => {
  const m = new nn.Sequential(
    new nn.Linear(3, 3),
    new nn.Identity(),
    new nn.Tanh(),
    new nn.Flatten(),
  );
  const x = randn([2, 3]);
  scope(() => {
    const y = m.forward(x);
    assert.ok(!x.disposed);
    y.sum().backward();
  });
  assert.ok(m.parameters().every((p) => p.grad !== null));
  assert.equal(new nn.Sequential().forward(x), x);
  m.dispose();
  x.dispose();
});
