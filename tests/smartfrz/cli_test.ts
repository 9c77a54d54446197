/**
 * `deno task train --freeze smartfrz` end to end: freezing with a given
 * predictor, the end-of-run summary, forward caching, usage errors, and a
 * run killed before and after its freezes resuming to exactly the
 * uninterrupted losses.
 */
import assert from "node:assert/strict";
import { saveSafetensors, smartfrz, tensor } from "../../mod.ts";
import { stepLosses, train, trainAndKill, writeToyDataset } from "../train/_helpers.ts";

/** A predictor that always answers "freeze" (zero weights, biased classifier). */
async function alwaysFreeze(path: string): Promise<void> {
  const p = new smartfrz.FreezePredictor({ size: 1024, hidden: 8, dim: 4 });
  const sd = p.stateDict();
  for (const [k, t] of Object.entries(sd)) {
    const v = k === "classifier.4.bias" ? [-5, 5] : new Array(t.size).fill(0);
    sd[k] = tensor(Float32Array.from(v), { shape: [...t.shape] });
  }
  await saveSafetensors(path, sd, { card: "test predictor: always freeze" });
  for (const t of Object.values(sd)) t.dispose();
  p.dispose();
}

const flags = (data: string, out: string, predictor: string) => [
  "--data",
  data,
  "--model",
  "mlp3",
  "--hidden",
  "32",
  "--epochs",
  "4",
  "--batch-size",
  "32",
  "--log-every",
  "1",
  "--checkpoint-every",
  "7",
  "--seed",
  "5",
  "--freeze",
  "smartfrz",
  "--predictor",
  predictor,
  "--out",
  out,
];

Deno.test("--freeze smartfrz freezes with the given predictor, resumes exactly and caches", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeToyDataset(dir, 640, 100); // 20 steps per epoch: a snapshot per step
    const pred = `${dir}/always.safetensors`;
    await alwaysFreeze(pred);
    const ref = await train(flags(dir, `${dir}/ref`, pred));
    assert.equal(ref.code, 0, ref.stderr);
    // The 30-snapshot window fills in epoch 2; at its end every unit freezes, front to back.
    assert.match(ref.stdout, /frozen: 0 \(epoch 2, step 40\), 2 \(epoch 2, step 40\), 4 \(epoch 2/);
    assert.match(ref.stdout, /freezing saved -?[\d.]+% of training time, [\d.]+% of FLOPs/);
    assert.match(ref.stdout, /epoch 3: .* 3 layers frozen/);
    const expected = await stepLosses(`${dir}/ref`);
    assert.equal(expected.length, 80);

    // Killed in epoch 2 (history in the checkpoint, no freeze yet), then in epoch 4 (after).
    for (const stopAt of [30, 70]) {
      const out = `${dir}/kill${stopAt}`;
      await trainAndKill(
        flags(dir, out, pred),
        async () => (await stepLosses(out)).length >= stopAt,
      );
      const r = await train([...flags(dir, out, pred), "--resume"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /resumed from/);
      assert.deepEqual(await stepLosses(out), expected, `killed after step ${stopAt}`);
    }

    // A missing predictor file is named.
    const missing = await train([...flags(dir, `${dir}/missing`, `${dir}/nope.safetensors`)]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /loadPredictor: cannot read .*nope\.safetensors/);

    // The cache: same losses as recomputing the frozen prefix; read in epochs 4 (filled in 3).
    const c = await train([...flags(dir, `${dir}/cached`, pred), "--cache-frozen"]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(
      c.stdout,
      /forward cache: 4 \(640\/640 samples\), [\d.]+ MiB; 20 steps read it, 20 filled it/,
    );
    const cached = await stepLosses(`${dir}/cached`);
    for (let i = 0; i < expected.length; i++) {
      assert.ok(
        Math.abs(cached[i][1] - expected[i][1]) <= 1e-6 * Math.abs(expected[i][1]),
        `step ${i + 1}: ${cached[i][1]} vs ${expected[i][1]}`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--cache-frozen and --predictor are refused where they cannot apply", async () => {
  const a = await train(["--cache-frozen"]);
  assert.equal(a.code, 2);
  assert.match(a.stderr, /--cache-frozen: caches a frozen prefix; choose a --freeze method/);
  const b = await train(["--freeze", "smartfrz", "--cache-frozen", "--dataset", "cifar10"]);
  assert.equal(b.code, 2);
  assert.match(b.stderr, /random augmentation/);
  const c = await train(["--predictor", "x.safetensors"]);
  assert.equal(c.code, 2);
  assert.match(c.stderr, /--predictor: .* add --freeze smartfrz/);
});
