/**
 * Crash safety: a run killed with SIGKILL mid-epoch, or in the middle of
 * writing a checkpoint, resumes from its last complete checkpoint and produces
 * exactly the losses of an uninterrupted run with the same seed on the same
 * adapter (every step's loss is logged and compared bit for bit).
 */
import assert from "node:assert/strict";
import { stepLosses, train, trainAndKill, writeToyDataset } from "./_helpers.ts";

const common = (data: string, out: string) => [
  "--data",
  data,
  "--epochs",
  "3",
  "--batch-size",
  "64",
  "--hidden",
  "16",
  "--log-every",
  "1",
  "--checkpoint-every",
  "4",
  "--seed",
  "7",
  "--out",
  out,
];

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test("a run killed mid-epoch or mid-checkpoint resumes with exactly the uninterrupted losses", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeToyDataset(dir, 640, 100); // 10 steps per epoch, 30 in all
    const ref = await train(common(dir, `${dir}/ref`));
    assert.equal(ref.code, 0, ref.stderr);
    const expected = await stepLosses(`${dir}/ref`);
    assert.equal(expected.length, 30);

    // 1. Killed in the middle of epoch 2 (after step 15; the last checkpoint is at step 12).
    const a = `${dir}/a`;
    await trainAndKill(common(dir, a), async () => (await stepLosses(a)).length >= 15);
    const partial = await stepLosses(a);
    assert.ok(partial.length >= 15 && partial.length < 30, `killed after ${partial.length} steps`);
    // A flag that would change the run is named and ignored; the same flags say nothing.
    const r1 = await train([...common(dir, a), "--resume", "--lr", "0.5"]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.match(r1.stdout, /resumed from .*ckpt-0+\d+ \(step \d+/);
    assert.match(
      r1.stdout,
      /warning: --resume continues .* ignoring --lr \(only --epochs may change\)/,
    );
    assert.deepEqual(await stepLosses(a), expected);
    // The summary counts the time before the interruption too: at least the epochs' own times.
    const records = (await Deno.readTextFile(`${a}/log.jsonl`)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    const epochSeconds = records.filter((r) => r.type === "epoch").reduce(
      (t, r) => t + r.seconds,
      0,
    );
    const summary = records.find((r) => r.type === "summary");
    assert.ok(
      summary.seconds >= epochSeconds,
      `summary ${summary.seconds} s < the epochs' ${epochSeconds} s`,
    );

    // 2. Killed while a checkpoint is being written (the write is held open half-way).
    const b = `${dir}/b`;
    await trainAndKill(
      common(dir, b),
      async () => {
        for await (const e of Deno.readDir(b)) if (e.name.includes(".tmp-")) return true;
        return false;
      },
      { FROST_CHECKPOINT_PAUSE_MS: "3000" },
    );
    const latest = (await Deno.readTextFile(`${b}/LATEST`).catch(() => "")).trim();
    if (latest) {
      assert.ok(await exists(`${b}/${latest}/state.json`), "LATEST names a complete checkpoint");
    }
    const r2 = await train([...common(dir, b), "--resume"]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.doesNotMatch(r2.stdout, /warning/);
    assert.deepEqual(await stepLosses(b), expected);
    const leftovers = [];
    for await (const e of Deno.readDir(b)) if (e.name.includes(".tmp-")) leftovers.push(e.name);
    assert.deepEqual(leftovers, [], "interrupted writes are cleaned up");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a loss that becomes NaN stops the run with a clear message and keeps the last good checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeToyDataset(dir, 640, 100);
    const out = `${dir}/run`;
    const r = await train([
      ...common(dir, out),
      "--lr",
      "1e30",
      "--schedule",
      "constant",
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: the training loss became NaN at step \d+|a parameter became/);
    assert.match(r.stderr, /Training stopped/);
    assert.doesNotMatch(r.stderr, / {4}at /);
    const log = await Deno.readTextFile(`${out}/log.jsonl`);
    assert.match(log, /"stopped":"nan"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
