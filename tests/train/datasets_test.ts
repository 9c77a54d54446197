/**
 * The CLI's text pipeline: a GLUE-format directory becomes packed `[N, 3, T]`
 * batches whose order resumes exactly from a loader state, and `--train-limit`
 * draws the same subset every time.
 */
import assert from "node:assert/strict";
import { prepareData } from "../../train/datasets.ts";
import { writeToyCola } from "./_helpers.ts";

const args = (data: string) => ({
  dataset: "cola",
  data,
  batchSize: 8,
  seed: 3,
  imageSize: 64,
  maxLength: 16,
  trainLimit: 40,
});

async function take(it: AsyncIterator<{ x: Int32Array | Float32Array; y: Int32Array }>, n: number) {
  const out = [];
  for (let i = 0; i < n; i++) out.push((await it.next()).value);
  return out;
}

Deno.test("text batches pack ids, types and mask, and resume from a loader state", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeToyCola(dir, 96, 16);
    const a = await prepareData(args(dir));
    assert.equal(a.trainCount, 40, "--train-limit 40");
    assert.equal(a.train.batchesPerEpoch, 5);
    const it = a.train.batches()[Symbol.asyncIterator]();
    const [first] = await take(it, 2);
    const state = a.train.state!();
    const rest = await take(it, 3);
    // [N, 3, T]: row 0 of the first sample starts with [CLS] (101); its mask row starts with 1.
    const t = first.x.length / (3 * first.y.length);
    assert.equal(first.x[0], 101);
    assert.equal(first.x[2 * t], 1);

    const b = await prepareData(args(dir));
    b.train.restore!(state);
    const again = await take(b.train.batches()[Symbol.asyncIterator](), 3);
    assert.deepEqual(again.map((r) => [...r.x]), rest.map((r) => [...r.x]));
    assert.deepEqual(again.map((r) => [...r.y]), rest.map((r) => [...r.y]));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
