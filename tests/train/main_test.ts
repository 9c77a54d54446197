/**
 * The training command line: bad flags get a clear message (no stack trace),
 * and a short run on a small IDX dataset written by the test trains, reports
 * held-out accuracy and exits 0.
 */
import assert from "node:assert/strict";
import { parseTrainArgs } from "../../train/main.ts";
import { train, writeToyDataset } from "./_helpers.ts";

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
