import assert from "node:assert/strict";
import {
  crossEntropy,
  manualSeed,
  memoryStats,
  nn,
  optim,
  randn,
  resetPeakMemory,
  scope,
  synchronize,
  tensor,
} from "../../mod.ts";
import { flushErrors } from "../../engine/dispatch.ts";

function labels(n: number, classes: number) {
  return tensor(Int32Array.from({ length: n }, (_, i) => (i * 7) % classes), { dtype: "i32" });
}

Deno.test("1,000 training steps of a small MLP leave live bytes where they were after step 10", async () => {
  manualSeed(3);
  const model = new nn.Sequential(new nn.Linear(16, 32), new nn.ReLU(), new nn.Linear(32, 4));
  const opt = new optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 });
  const x = randn([8, 16]);
  const y = labels(8, 4);
  let after10 = -1;
  let first = NaN;
  let last = NaN;
  for (let step = 1; step <= 1000; step++) {
    const loss = scope(() => {
      const l = crossEntropy(model.forward(x), y);
      l.backward();
      opt.step();
      opt.zeroGrad();
      return l.detach();
    });
    if (step === 1) first = await loss.item();
    if (step === 1000) last = await loss.item();
    loss.dispose();
    if (step % 100 === 0) await flushErrors();
    if (step === 10) after10 = memoryStats().liveBytes;
  }
  assert.equal(memoryStats().liveBytes, after10);
  assert(last < first, `the loss should fall on a fixed batch (${first} → ${last})`);
  model.dispose();
  opt.dispose();
  x.dispose();
  y.dispose();
});

function peakOfStep(
  model: nn.Sequential,
  x: ReturnType<typeof randn>,
  y: ReturnType<typeof labels>,
) {
  resetPeakMemory();
  const before = memoryStats().liveBytes;
  let saved = 0;
  scope(() => {
    const l = crossEntropy(model.forward(x), y);
    saved = memoryStats().byCategory.activation;
    l.backward();
  });
  for (const p of model.parameters()) {
    p.grad?.dispose();
    p.grad = null;
  }
  return { peak: memoryStats().peakBytes - before, saved };
}

Deno.test("a frozen first layer records no tape node and lowers the peak of forward + backward", () => {
  manualSeed(4);
  const model = new nn.Sequential(
    new nn.Linear(64, 256),
    new nn.ReLU(),
    new nn.Linear(256, 128),
    new nn.ReLU(),
    new nn.Linear(128, 10),
  );
  const x = randn([64, 64]);
  const y = labels(64, 10);
  const trainable = peakOfStep(model, x, y);

  const first = [...model][0];
  first.freeze();
  const h = first.forward(x);
  assert.equal(h.node, null, "the frozen layer's output must have no tape node");
  assert.equal(h.requiresGrad, false);
  h.dispose();
  const frozen = peakOfStep(model, x, y);
  for (const p of first.parameters()) {
    assert.equal(p.grad, null, "frozen parameters get no gradient");
  }

  assert(
    frozen.peak < trainable.peak,
    `peak with the first layer frozen (${frozen.peak} B) should be below trainable (${trainable.peak} B)`,
  );
  assert(
    frozen.saved < trainable.saved,
    `saved activations frozen (${frozen.saved} B) should be below trainable (${trainable.saved} B)`,
  );
  model.dispose();
  x.dispose();
  y.dispose();
});

Deno.test("backward() outside any scope leaves only the gradients behind", async () => {
  manualSeed(6);
  const w = randn([32, 16]);
  w.requiresGrad = true;
  const x = randn([8, 32]);
  const before = memoryStats().liveBytes;
  // Composites (variance, softmax over a middle axis) and the backward rules create
  // intermediates; none may outlive the call that made them. Every tensor the test itself
  // makes is disposed, so only w's gradient may remain.
  const h = x.matmul(w);
  const v = h.variance(0);
  const m = v.mean();
  const r = h.reshape([8, 4, 4]);
  const s = r.softmax(1);
  const mx = s.max();
  const loss = m.add(mx);
  loss.backward();
  for (const t of [h, v, m, r, s, mx, loss]) t.dispose();
  await synchronize();
  assert.equal(memoryStats().liveBytes - before, w.grad!.storage.capacity);
  w.grad!.dispose();
  w.dispose();
  x.dispose();
});

Deno.test("a scope that throws releases what it created", () => {
  const before = memoryStats().liveBytes;
  assert.throws(() =>
    scope(() => {
      randn([64, 64]).mul(2);
      throw new Error("boom");
    }), /boom/);
  assert.equal(memoryStats().liveBytes, before);
});
