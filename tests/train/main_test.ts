/**
 * The training command line: bad flags get a clear message (no stack trace),
 * and a short run on a small IDX dataset written by the test trains, reports
 * held-out accuracy and exits 0.
 */
import assert from "node:assert/strict";
import { parseTrainArgs, warmupSteps } from "../../train/main.ts";
import { train, writeToyCola, writeToyDataset } from "./_helpers.ts";

Deno.test("parseTrainArgs() applies defaults and rejects unknown flags and bad values", () => {
  const a = parseTrainArgs([])!;
  assert.equal(a.model, "mlp");
  assert.equal(a.dataset, "fashion-mnist");
  assert.equal(a.epochs, 3);
  assert.equal(parseTrainArgs(["--help"]), null);
  assert.throws(() => parseTrainArgs(["--epochz", "2"]), /epochz/);
  assert.throws(() => parseTrainArgs(["--epochs", "two"]), /--epochs: expected an integer/);
  assert.throws(() => parseTrainArgs(["--lr=-1"]), /--lr: expected a number ≥ 0/);
  assert.throws(
    () => parseTrainArgs(["--model", "resnet9000"]),
    /--model: unknown value "resnet9000"/,
  );
});

Deno.test("parseTrainArgs() gives transformers their recipe and pairs models with their data kind", () => {
  const b = parseTrainArgs(["--model", "bert-mini", "--dataset", "spam"])!;
  assert.deepEqual(
    [b.optimizer, b.lr, b.batchSize, b.schedule, b.weightDecay, b.warmup],
    ["adamw", 5e-4, 32, "linear", 0.01, -1],
  );
  assert.equal(warmupSteps(b, 1000), 100, "10% of the steps warm up");
  const d = parseTrainArgs(["--model", "deit-tiny", "--lr", "0.002", "--warmup", "7"])!;
  assert.deepEqual([d.optimizer, d.lr, d.schedule, d.warmup], ["adamw", 0.002, "cosine", 7]);
  assert.equal(warmupSteps(d, 1000), 7);
  assert.throws(
    () => parseTrainArgs(["--model", "bert-mini"]),
    /--model bert-mini reads text: use --dataset spam \| mrpc \| cola/,
  );
  assert.throws(() => parseTrainArgs(["--dataset", "spam"]), /--dataset spam is text/);
});

Deno.test("deno task train: a bad flag prints the error and the help, exit code 2", async () => {
  const r = await train(["--batch-size", "0"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /error: --batch-size: expected an integer ≥ 1, got "0"/);
  assert.match(r.stderr, /Usage: deno task train/);
  assert.doesNotMatch(r.stderr, / {4}at /, "no stack trace");
});

Deno.test("deno task train --data DIR trains, shows progress and reports held-out accuracy", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeToyDataset(dir, 640, 200);
    const r = await train([
      "--data",
      dir,
      "--epochs",
      "2",
      "--batch-size",
      "64",
      "--hidden",
      "32",
      "--out",
      `${dir}/run`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /data: fashion-mnist from .* \(640 training, 200 held-out test images\)/,
    );
    assert.match(r.stdout, /epoch 2: train loss [\d.]+, test accuracy [\d.]+%/);
    assert.match(r.stderr, /samples\/s ETA/, "progress bar");
    const acc = Number(r.stdout.match(/test accuracy: ([\d.]+)%/)?.[1]);
    assert.ok(acc > 90, `a separable toy set should be learned, got ${acc}%`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task train --data DIR with a missing file names it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await train(["--data", dir, "--out", `${dir}/run`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /train-images-idx3-ubyte/);
    assert.doesNotMatch(r.stderr, / {4}at /, "no stack trace");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task train --model resnet18 trains a narrow ResNet on 1-channel images", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeToyDataset(dir, 96, 32);
    const r = await train([
      "--data",
      dir,
      "--model",
      "resnet18",
      "--width",
      "4",
      "--epochs",
      "1",
      "--batch-size",
      "32",
      "--out",
      `${dir}/run`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /model: resnet18 \(CIFAR stem\), width 4, \d+ parameters/);
    assert.match(r.stdout, /test accuracy: [\d.]+%/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task train --model bert-tiny learns a GLUE-format text task and reports held-out accuracy", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeToyCola(dir, 192, 64);
    const r = await train([
      "--model",
      "bert-tiny",
      "--dataset",
      "cola",
      "--data",
      dir,
      "--max-length",
      "16",
      "--batch-size",
      "16",
      "--epochs",
      "3",
      "--lr",
      "0.002",
      "--out",
      `${dir}/run`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\(192 training, 64 held-out test examples\)/);
    assert.match(
      r.stdout,
      /model: bert-tiny \(2 layers × 128, 2 heads, vocabulary 30522, 16 tokens\)/,
    );
    const acc = Number(r.stdout.match(/test accuracy: ([\d.]+)%/)?.[1]);
    assert.ok(acc > 90, `colour vs animal words should be learned, got ${acc}%`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task train --model deit-tiny trains a DeiT on 28-pixel images with 7-pixel patches", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeToyDataset(dir, 64, 32);
    const r = await train([
      "--data",
      dir,
      "--model",
      "deit-tiny",
      "--patch-size",
      "7",
      "--epochs",
      "1",
      "--batch-size",
      "32",
      "--out",
      `${dir}/run`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /model: deit_tiny \(28 px, patch 7, 17 tokens\), \d+ parameters/);
    assert.match(r.stdout, /test accuracy: [\d.]+%/);
    const bad = await train(["--data", dir, "--model", "deit-tiny", "--patch-size", "5"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /image side 28 is not a multiple of --patch-size 5/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
