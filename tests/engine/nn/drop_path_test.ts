import assert from "node:assert/strict";
import { manualSeed, models, nn, ones, sum, tensor } from "../../../mod.ts";

Deno.test("DropPath drops whole samples with probability p and scales the rest by 1/(1-p)", async () => {
  const p = 0.25;
  const d = new nn.DropPath(p);
  manualSeed(3);
  const x = ones([4000, 2, 3]);
  const y = await d.forward(x).toArray();
  let dropped = 0;
  for (let i = 0; i < 4000; i++) {
    const row = y.slice(i * 6, (i + 1) * 6);
    const v = row[0];
    assert.ok(row.every((r) => r === v), `sample ${i} is dropped or kept as a whole`);
    assert.ok(v === 0 || Math.abs(v - 1 / (1 - p)) < 1e-6, `sample ${i}: ${v}`);
    if (v === 0) dropped++;
  }
  // Binomial(4000, 0.25): sd ≈ 27, so ±4 sd is ±0.027 of the fraction.
  assert.ok(Math.abs(dropped / 4000 - p) < 0.027, `dropped ${dropped / 4000}`);
  manualSeed(3);
  assert.deepEqual(await d.forward(x).toArray(), y, "reproducible under manualSeed");
  assert.equal(d.eval().forward(x), x, "eval: the input itself, like nn.Identity");
  assert.equal(String(d), "DropPath(drop_prob=0.25)");
  assert.throws(() => new nn.DropPath(1), /DropPath: p must be in \[0, 1\)/);
});

Deno.test("DropPath's gradient is its sample mask over 1-p", async () => {
  const d = new nn.DropPath(0.5);
  manualSeed(11);
  const x = tensor(new Float32Array(64 * 3).fill(2), { shape: [64, 3], requiresGrad: true });
  const y = d.forward(x);
  sum(y).backward();
  const [yv, g] = [await y.toArray(), await x.grad!.toArray()];
  for (let i = 0; i < yv.length; i++) assert.equal(g[i], yv[i] / 2);
  assert.ok(g.some((v) => v === 0) && g.some((v) => v === 2));
});

Deno.test("ViT spaces stochastic depth linearly over its blocks, as timm does", () => {
  const m = models.visionTransformer({
    imgSize: 8,
    patchSize: 4,
    embedDim: 8,
    depth: 3,
    numHeads: 2,
    numClasses: 2,
    dropPathRate: 0.2,
  });
  const blocks = [...m.blocks] as InstanceType<typeof models.Block>[];
  assert.ok(blocks[0].drop_path1 instanceof nn.Identity);
  assert.deepEqual(
    blocks.slice(1).map((b) => (b.drop_path2 as nn.DropPath).p),
    [0.1, 0.2],
  );
  const plain = models.visionTransformer({
    imgSize: 8,
    patchSize: 4,
    embedDim: 8,
    depth: 3,
    numHeads: 2,
    numClasses: 2,
  });
  assert.deepEqual(Object.keys(m.stateDict()), Object.keys(plain.stateDict()), "no new keys");
});
