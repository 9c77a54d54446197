/**
 * SmartFRZ's library parts: units of every model, forward hooks, frozen units
 * in eval mode, optimizer state released, tailored weight history on the GPU,
 * the predictor's input normalisation, and the online controller's policy,
 * logging and checkpoint state.
 */
import assert from "node:assert/strict";
import {
  manualSeed,
  memoryStats,
  models,
  nn,
  noGrad,
  optim,
  randn,
  smartfrz,
  type Tensor,
  tensor,
} from "../../mod.ts";
import { mixSeed } from "../../data/rng.ts";

const { unitsOf, WeightHistory, tailorIndices, FreezePredictor, SmartFRZ, freezeUnit } = smartfrz;

Deno.test("unitsOf names the front-to-back units of every model and refuses unknown ones", () => {
  const names = (m: nn.Module) => unitsOf(m).map((u) => u.name);
  manualSeed(0);
  assert.deepEqual(
    names(models.resnet18({ numClasses: 10, cifarStem: true, baseChannels: 4 })),
    ["stem", "layer1", "layer2", "layer3", "layer4"],
  );
  assert.deepEqual(
    names(models.vgg11Bn({ numClasses: 10, inChannels: 1, compactClassifier: true })),
    ["features.stage1", "features.stage2", "features.stage3", "features.stage4", "features.stage5"],
  );
  const mb = unitsOf(models.mobilenetV2({ numClasses: 10, widthMult: 0.25 }));
  assert.deepEqual(mb.map((u) => u.name), [
    "features.0-0",
    "features.1-1",
    "features.2-3",
    "features.4-6",
    "features.7-10",
    "features.11-13",
    "features.14-16",
    "features.17-17",
  ]);
  const bert = models.bertForSequenceClassification({
    ...models.BERT_CONFIGS["bert-tiny"],
    vocab_size: 50,
    num_labels: 2,
  });
  assert.deepEqual(names(bert), ["embeddings", "encoder.layer.0", "encoder.layer.1"]);
  const vit = models.deit_tiny({ imgSize: 8, patchSize: 4, inChans: 1, numClasses: 3 });
  const vu = unitsOf(vit);
  assert.equal(vu.length, 13);
  assert.equal(vu[0].name, "embeddings");
  assert.equal(vu[0].output, vit.patch_embed);
  // The embeddings unit holds the position embedding and the class token.
  const embedParams = new Set(smartfrz.unitParameters(vu[0]));
  assert.ok(embedParams.has(vit.pos_embed) && embedParams.has(vit.cls_token));
  // Sequential: each parametrised module with the parameter-free ones after it; never the head.
  const seq = new nn.Sequential(
    new nn.Linear(4, 4),
    new nn.ReLU(),
    new nn.Dropout(0.1),
    new nn.Linear(4, 4),
    new nn.ReLU(),
    new nn.Linear(4, 2),
  );
  const su = unitsOf(seq);
  assert.deepEqual(su.map((u) => [u.name, u.modules.length]), [["0", 3], ["3", 2]]);
  // No unit holds a head parameter, for every model above.
  for (const m of [seq, vit, bert]) {
    const inUnits = new Set(unitsOf(m).flatMap(smartfrz.unitParameters));
    assert.ok(inUnits.size < m.parameters().length);
  }
  class Custom extends nn.Module {
    forward(x: Tensor) {
      return x;
    }
  }
  assert.throws(() => unitsOf(new Custom()), /unitsOf: no freezing units known for Custom/);
  for (const m of [seq, vit, bert]) m.dispose();
});

Deno.test("registerForwardHook sees outputs of nested calls and is removed cleanly", () => {
  manualSeed(1);
  const net = models.resnet18({ numClasses: 3, cifarStem: true, baseChannels: 4, inChannels: 1 });
  const seen: number[][] = [];
  const remove = net.layer2.registerForwardHook((m, inputs, out) => {
    assert.equal(m, net.layer2);
    assert.equal(inputs.length, 1);
    seen.push([...out.shape]);
  });
  noGrad(() => net.forward(randn([2, 1, 8, 8])).dispose());
  remove();
  remove(); // idempotent
  noGrad(() => net.forward(randn([2, 1, 8, 8])).dispose());
  assert.deepEqual(seen, [[2, 8, 4, 4]]);
  assert.ok(!Object.hasOwn(net.layer2, "forward"), "no wrapper left once the last hook is gone");
  // The wrapper is not a field: state dict and children are unchanged.
  assert.equal(Object.keys(net.stateDict()).length, 122);
  net.dispose();
});

Deno.test("a frozen unit stays in eval mode: batch norm keeps its statistics, dropout is off", async () => {
  manualSeed(2);
  const bn = new nn.BatchNorm2d(3);
  const drop = new nn.Dropout(0.5);
  const unit = new nn.Sequential(new nn.Conv2d(1, 3, 3, { padding: 1 }), bn, drop);
  const head = new nn.Sequential(new nn.Flatten(), new nn.Linear(3 * 4 * 4, 2));
  const model = new nn.Sequential(unit, head);
  freezeUnit({ name: "u", modules: [unit] });
  model.train();
  assert.equal(bn.training, false);
  assert.equal(drop.training, false);
  assert.equal(head.training, true);
  const before = await bn.running_mean!.toArray();
  const x = randn([4, 1, 4, 4]);
  const a = noGrad(() => unit.forward(x));
  const b = noGrad(() => unit.forward(x));
  // Deterministic (no dropout) and the running statistics did not move.
  assert.deepEqual(await a.toArray(), await b.toArray());
  assert.deepEqual(await bn.running_mean!.toArray(), before);
  // A batch of one gives the same per-sample output as inside a batch (running statistics).
  const x0 = x.slice([0, 0, 0, 0], [1, 1, 4, 4]);
  const one = noGrad(() => unit.forward(x0));
  const all = await a.toArray();
  const first = await one.toArray();
  for (let i = 0; i < first.length; i++) assert.ok(Math.abs(first[i] - all[i]) < 1e-5);
  for (const t of [a, b, x, x0, one]) t.dispose();
  model.dispose();
});

Deno.test("Optimizer.release frees gradients and state; stateDict indices do not shift", async () => {
  manualSeed(3);
  const a = new nn.Linear(4, 4), b = new nn.Linear(4, 2);
  const opt = new optim.AdamW([...a.parameters(), ...b.parameters()], { lr: 0.01 });
  b.forward(a.forward(randn([3, 4]))).sum().backward();
  opt.step();
  const full = opt.stateBytes;
  assert.equal(full, 2 * 4 * (16 + 4 + 8 + 2));
  a.freeze();
  opt.release(a.parameters());
  assert.equal(opt.stateBytes, 2 * 4 * (8 + 2));
  assert.equal(a.weight.grad, null);
  const sd = opt.stateDict();
  assert.deepEqual(Object.keys(sd.paramSteps), ["2", "3"]);
  const frozenBefore = await a.weight.toArray();
  opt.zeroGrad();
  b.forward(a.forward(randn([3, 4]))).sum().backward();
  opt.step();
  assert.deepEqual(await a.weight.toArray(), frozenBefore);
  for (const t of Object.values(sd.buffers)) t.dispose();
  a.dispose();
  b.dispose();
});

Deno.test("tailorIndices: seeded, distinct when the unit is large enough, with replacement when not", () => {
  const a = tailorIndices(100_000, 1024, 5);
  assert.deepEqual(a, tailorIndices(100_000, 1024, 5));
  assert.notDeepEqual(a, tailorIndices(100_000, 1024, 6));
  assert.equal(new Set(a).size, 1024);
  assert.ok(
    a.every((v, i) => Number.isInteger(v) && v >= 0 && v < 100_000 && (i === 0 || v > a[i - 1])),
  );
  // Spread over the whole range, not bunched at the start.
  assert.ok(a[0] < 1000 && a[1023] > 99_000);
  const small = tailorIndices(10, 1024, 1);
  assert.equal(small.length, 1024);
  assert.equal(new Set(small).size, 10);
});

Deno.test("WeightHistory gathers the sampled weights on the GPU, in order, across parameters", async () => {
  manualSeed(4);
  const l0 = new nn.Linear(30, 20), l1 = new nn.Linear(20, 10), head = new nn.Linear(10, 2);
  const model = new nn.Sequential(l0, new nn.ReLU(), l1, new nn.ReLU(), head);
  const units = unitsOf(model);
  assert.equal(units.length, 2);
  const h = new WeightHistory(units, { size: 64, window: 3, seed: 9 });
  const sgd = new optim.SGD(model.parameters(), { lr: 1 });
  // CPU reference: the same positions over the concatenated parameters.
  const flat = async (u: number) => {
    const parts = await Promise.all(smartfrz.unitParameters(units[u]).map((p) => p.toArray()));
    return parts.flatMap((p) => Array.from(p));
  };
  const expected: number[][][] = [[], []];
  for (let step = 0; step < 5; step++) {
    for (const p of model.parameters()) p.grad = randn(p.shape, 0, 0.1);
    sgd.step();
    sgd.zeroGrad();
    h.record();
    for (let u = 0; u < 2; u++) {
      const w = await flat(u);
      const total = w.length;
      const idx = tailorIndices(total, 64, mixSeed(9, u));
      expected[u].push(Array.from(idx, (i) => w[i]));
    }
  }
  assert.equal(h.count(0), 5);
  for (let u = 0; u < 2; u++) {
    const win = h.window(u)!;
    assert.deepEqual(win.shape, [3, 64]);
    const got = Array.from(await win.toArray());
    const want = expected[u].slice(2).flat();
    assert.deepEqual(got, Array.from(Float32Array.from(want)));
    win.dispose();
  }
  // State round trip, then release frees the ring.
  const st = await h.state();
  const h2 = new WeightHistory(units, { size: 64, window: 3, seed: 9 });
  h2.restore(st);
  const [w1, w2] = [h.window(1)!, h2.window(1)!];
  assert.deepEqual(await w1.toArray(), await w2.toArray());
  w1.dispose();
  w2.dispose();
  const live = memoryStats().liveBytes;
  h.release(0);
  assert.ok(memoryStats().liveBytes < live);
  assert.equal(h.window(0), null);
  h.dispose();
  h2.dispose();
  model.dispose();
});

Deno.test("the predictor's inputs do not depend on the layer's scale or offset", async () => {
  manualSeed(5);
  const w = randn([2, 5, 16]);
  const scaled = noGrad(() => w.mul(37).add(4));
  const a = noGrad(() => smartfrz.normalizeWindows(w));
  const b = noGrad(() => smartfrz.normalizeWindows(scaled));
  for (const k of ["latest", "moves"] as const) {
    const x = await a[k].toArray(), y = await b[k].toArray();
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i] - y[i]) < 1e-4, `${k}[${i}]`);
  }
  // Moves are signed and compressed (|d| = 1 maps to 1, |d| = 10 to 1.33); identical snapshots have none.
  const m = Array.from(await a.moves.toArray());
  assert.ok(m.every((v) => Math.abs(v) < 1.5) && m.some((v) => v < 0) && m.some((v) => v > 0));
  const still = noGrad(() => randn([1, 1, 16]).expand([1, 4, 16]));
  for (const inputs of ["sorted", "raw"] as const) {
    const s = noGrad(() => smartfrz.normalizeWindows(still, inputs));
    assert.ok(Array.from(await s.moves.toArray()).every((v) => v === 0), inputs);
    s.latest.dispose();
    s.moves.dispose();
  }
  for (const t of [w, scaled, a.latest, a.moves, b.latest, b.moves, still]) t.dispose();

  // The paper's sizes: 3 MLPs 1024→256→256→64 and a 64→32→32→2 classifier.
  const p = new FreezePredictor();
  assert.equal(p.numParameters(), 3 * (1024 * 256 + 256 + 256 * 256 + 256 + 256 * 64 + 64) + 3202);
  p.dispose();
});

Deno.test("sorted inputs are the raw inputs sorted, whatever order the positions were picked in", async () => {
  manualSeed(17);
  const [B, W, S] = [3, 6, 40];
  const w = randn([B, W, S]);
  const raw = noGrad(() => smartfrz.normalizeWindows(w, "raw"));
  const sorted = noGrad(() => smartfrz.normalizeWindows(w, "sorted"));
  // Float64 reference: each raw row sorted.
  for (const k of ["latest", "moves"] as const) {
    const r = await raw[k].toArray(), s = await sorted[k].toArray();
    for (let i = 0; i < r.length; i += S) {
      const want = Float64Array.from(r.subarray(i, i + S)).sort();
      for (let j = 0; j < S; j++) assert.equal(s[i + j], Math.fround(want[j]), `${k}[${i + j}]`);
    }
  }
  // The same positions in another order (one permutation for the whole window) change nothing.
  const x = await w.toArray();
  const perm = Array.from({ length: S }, (_, j) => (j * 7 + 3) % S);
  const shuffled = tensor(x.map((_, i) => x[i - (i % S) + perm[i % S]]), { shape: [B, W, S] });
  const again = noGrad(() => smartfrz.normalizeWindows(shuffled, "sorted"));
  // (Equal up to rounding: the mean and deviation are summed in another order.)
  for (const k of ["latest", "moves"] as const) {
    const a = await again[k].toArray(), s = await sorted[k].toArray();
    for (let i = 0; i < s.length; i++) assert.ok(Math.abs(a[i] - s[i]) < 1e-5, `${k}[${i}]`);
  }
  // Sorted and raw predictors are told apart by the file that holds them.
  const p = new FreezePredictor({ size: S, hidden: 8, dim: 4, inputs: "raw" });
  assert.equal(p.inputs, "raw");
  assert.equal(new FreezePredictor({ size: S, hidden: 8, dim: 4 }).inputs, "sorted");
  assert.throws(
    // @ts-expect-error: not an input kind
    () => new FreezePredictor({ size: S, inputs: "shuffled" }),
    /inputs must be "sorted" or "raw", got "shuffled"/,
  );
  p.dispose();
  for (const t of [w, shuffled, raw.latest, raw.moves, sorted.latest, sorted.moves]) t.dispose();
  for (const t of [again.latest, again.moves]) t.dispose();
});

/** A predictor whose answers the test sets, unit by unit (by position in the batch). */
class ScriptedPredictor extends FreezePredictor {
  answers: number[][] = [];
  asked: number[] = [];
  constructor() {
    super({ size: 16, hidden: 8, dim: 4 });
  }
  override freezeProbability(windows: Tensor): Promise<number[]> {
    this.asked.push(windows.shape[0]);
    return Promise.resolve(this.answers.shift() ?? new Array(windows.shape[0]).fill(0));
  }
}

function fourUnits() {
  const ls = [0, 1, 2, 3].map(() => new nn.Linear(6, 6));
  const model = new nn.Sequential(...ls.flatMap((l) => [l, new nn.ReLU()]), new nn.Linear(6, 2));
  return { model, units: unitsOf(model) };
}

Deno.test("SmartFRZ records snapshots, asks about the leading active units and freezes front to back", async () => {
  manualSeed(6);
  const { model, units } = fourUnits();
  const opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  const predictor = new ScriptedPredictor();
  const frz = new SmartFRZ(units, { predictor, stepsPerEpoch: 10, window: 5, optimizer: opt });
  const logs: Record<string, unknown>[] = [];
  const step = async (s: number, epoch: number) => {
    model.forward(randn([4, 6])).sum().backward();
    opt.step();
    opt.zeroGrad();
    await frz.onStepEnd({ step: s, epoch, stepsPerEpoch: 10, log: (r) => logs.push(r) });
  };
  const end = (epoch: number, s: number) =>
    frz.onEpochEnd({} as smartfrz.EpochResult, {
      step: s,
      epoch,
      stepsPerEpoch: 10,
      log: (r) => logs.push(r),
    });
  for (let s = 1; s <= 10; s++) await step(s, 1);
  assert.equal(frz.history.count(0), 5); // every ⌊10 / 5⌋ = 2 steps
  // Units 0 and 2 say "freeze", 1 says no: only unit 0 freezes (front to back).
  predictor.answers = [[0.9, 0.2, 0.9, 0.9]];
  await end(1, 10);
  assert.deepEqual(predictor.asked, [4]);
  assert.deepEqual(frz.frozen(), ["0"]);
  assert.equal(units[0].modules[0].parameters()[0].requiresGrad, false);
  assert.deepEqual(logs.filter((r) => r.type === "freeze").map((r) => r.layer), ["0"]);
  assert.equal(frz.history.window(0), null, "a frozen unit's history is released");
  // The frozen unit's optimizer state is gone.
  assert.equal(opt.stateOf(0), undefined);
  assert.ok(opt.stateOf(2));
  // Next epoch: the three active units are asked; the first two freeze.
  for (let s = 11; s <= 20; s++) await step(s, 2);
  predictor.answers = [[0.8, 0.7, 0.1]];
  await end(2, 20);
  assert.deepEqual(predictor.asked, [4, 3]);
  assert.deepEqual(frz.frozen(), ["0", "2", "4"]);
  assert.deepEqual(
    frz.decisions.map((d) => [d.epoch, d.unit, d.frozen]),
    [
      [1, "0", true],
      [1, "2", false],
      [1, "4", false],
      [1, "6", false],
      [2, "2", true],
      [2, "4", true],
      [2, "6", false],
    ],
  );
  // Checkpoint state round trip into a fresh controller.
  const state = JSON.parse(JSON.stringify(await frz.state()));
  const again = new SmartFRZ(unitsOf(model), { predictor, stepsPerEpoch: 10, window: 5 });
  again.restoreFrozen(frz.frozen());
  again.restoreState(state);
  assert.deepEqual(again.decisions, frz.decisions);
  assert.equal(again.history.count(3), 10);
  const [w1, w2] = [frz.history.window(3)!, again.history.window(3)!];
  assert.deepEqual(await w1.toArray(), await w2.toArray());
  for (const t of [w1, w2]) t.dispose();
  frz.dispose();
  again.dispose();
  model.dispose();
});

Deno.test("SmartFRZ with frontToBack false freezes any converged unit; threshold and step decisions", async () => {
  manualSeed(7);
  const { model, units } = fourUnits();
  const predictor = new ScriptedPredictor();
  const frz = new SmartFRZ(units, {
    predictor,
    stepsPerEpoch: 4,
    window: 2,
    decideEvery: 4,
    threshold: 0.6,
    frontToBack: false,
  });
  const ctx = (s: number) => ({ step: s, epoch: 1, stepsPerEpoch: 4, log: () => {} });
  for (let s = 1; s <= 3; s++) await frz.onStepEnd(ctx(s));
  assert.deepEqual(predictor.asked, []);
  predictor.answers = [[0.5, 0.95, 0.1, 0.61]];
  await frz.onStepEnd(ctx(4));
  assert.deepEqual(frz.frozen(), ["2", "6"]);
  assert.equal(frz.count, 0);
  assert.equal(frz.isFrozen(1), true);
  // An epoch end decides nothing when decisions are by steps.
  await frz.onEpochEnd({} as smartfrz.EpochResult, ctx(4));
  assert.deepEqual(predictor.asked, [4]);
  frz.dispose();
  model.dispose();
});
