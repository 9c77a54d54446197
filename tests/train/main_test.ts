/**
 * The training command line: bad flags get a clear message (no stack trace),
 * and a short run on a small IDX dataset written by the test trains, reports
 * held-out accuracy and exits 0.
 */
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { parseTrainArgs } from "../../train/main.ts";

const root = new URL("../../", import.meta.url).pathname;

async function train(args: string[]) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "train/main.ts", ...args],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(180_000),
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

Deno.test("parseTrainArgs() applies defaults and rejects unknown flags and bad values", () => {
  const a = parseTrainArgs([])!;
  assert.equal(a.model, "mlp");
  assert.equal(a.dataset, "fashion-mnist");
  assert.equal(a.epochs, 3);
  assert.equal(parseTrainArgs(["--help"]), null);
  assert.throws(() => parseTrainArgs(["--epochz", "2"]), /epochz/);
  assert.throws(() => parseTrainArgs(["--epochs", "two"]), /--epochs: expected an integer/);
  assert.throws(() => parseTrainArgs(["--lr=-1"]), /--lr: expected a number ≥ 0/);
  assert.throws(() => parseTrainArgs(["--model", "resnet9000"]), /unknown model "resnet9000"/);
});

Deno.test("deno task train: a bad flag prints the error and the help, exit code 2", async () => {
  const r = await train(["--batch-size", "0"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /error: --batch-size: expected an integer ≥ 1, got "0"/);
  assert.match(r.stderr, /Usage: deno task train/);
  assert.doesNotMatch(r.stderr, / {4}at /, "no stack trace");
});

function idx(magicType: number, dims: number[], data: Uint8Array): Uint8Array {
  const head = new Uint8Array(4 + 4 * dims.length);
  const v = new DataView(head.buffer);
  v.setUint8(2, magicType);
  v.setUint8(3, dims.length);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  const out = new Uint8Array(head.length + data.length);
  out.set(head);
  out.set(data, head.length);
  return out;
}

/** A learnable toy set in the IDX format: class c lights up row band c of the image. */
async function writeToyDataset(dir: string, nTrain: number, nTest: number) {
  const make = (n: number, seed: number) => {
    const images = new Uint8Array(n * 784);
    const labels = new Uint8Array(n);
    let s = seed;
    for (let i = 0; i < n; i++) {
      const c = i % 10;
      labels[i] = c;
      for (let p = 0; p < 784; p++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        const row = Math.floor(p / 28);
        const on = row >= 2 * c + 4 && row < 2 * c + 7;
        images[i * 784 + p] = on ? 200 + (s >>> 27) : s >>> 26;
      }
    }
    return { images, labels };
  };
  const tr = make(nTrain, 1);
  const te = make(nTest, 2);
  await Deno.writeFile(
    `${dir}/train-images-idx3-ubyte.gz`,
    gzipSync(idx(8, [nTrain, 28, 28], tr.images)),
  );
  await Deno.writeFile(`${dir}/train-labels-idx1-ubyte`, idx(8, [nTrain], tr.labels));
  await Deno.writeFile(`${dir}/t10k-images-idx3-ubyte`, idx(8, [nTest, 28, 28], te.images));
  await Deno.writeFile(`${dir}/t10k-labels-idx1-ubyte.gz`, gzipSync(idx(8, [nTest], te.labels)));
}

Deno.test("deno task train --data DIR trains, shows progress and reports held-out accuracy", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeToyDataset(dir, 640, 200);
    const r = await train(["--data", dir, "--epochs", "2", "--batch-size", "64", "--hidden", "32"]);
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
    const r = await train(["--data", dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /train-images-idx3-ubyte/);
    assert.doesNotMatch(r.stderr, / {4}at /, "no stack trace");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
