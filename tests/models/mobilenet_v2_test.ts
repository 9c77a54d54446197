import assert from "node:assert/strict";
import { randn } from "../../mod.ts";
import {
  type InvertedResidual,
  makeDivisible,
  MobileNetV2,
  mobilenetV2,
} from "../../models/mod.ts";
import { checkKeys, checkParity } from "./parity.ts";

Deno.test("mobilenet_v2 has torchvision's keys, shapes and counts at width 1.0, 0.35, 0.75 and 1.4", async () => {
  await checkKeys("mobilenet_v2", () => mobilenetV2());
  await checkKeys("mobilenet_v2_x0.35_c10", () => mobilenetV2({ widthMult: 0.35, numClasses: 10 }));
  await checkKeys("mobilenet_v2_x0.75", () => mobilenetV2({ widthMult: 0.75 }));
  await checkKeys("mobilenet_v2_x1.4", () => mobilenetV2({ widthMult: 1.4 }));
});

Deno.test("makeDivisible rounds as torchvision's _make_divisible", () => {
  // Values from Python: _make_divisible(v, 8) for each v.
  const cases: [number, number][] = [
    [32 * 0.35, 16],
    [16 * 0.35, 8],
    [24 * 0.35, 8],
    [64 * 0.35, 24],
    [96 * 0.35, 32],
    [160 * 0.35, 56],
    [320 * 0.35, 112],
    [1280 * 1.4, 1792],
    [96 * 0.75, 72],
    [13, 16],
    [12, 16],
    [11.9, 16],
    [3, 8],
    [100, 104],
  ];
  for (const [v, want] of cases) assert.equal(makeDivisible(v, 8), want, `makeDivisible(${v}, 8)`);
  assert.equal(makeDivisible(7, 1), 7);
  assert.equal(makeDivisible(2, 8, 1), 9);
});

Deno.test("a MobileNetV2 at width 0.25 gives torchvision's logits, loss and gradients", async () => {
  await checkParity("mobilenet_v2_x0.25", (c) => {
    assert.equal(c.fn, "mobilenet_v2");
    return mobilenetV2({
      widthMult: c.widthMult as number,
      numClasses: c.numClasses as number,
      dropout: c.dropout as number,
    });
  });
});

Deno.test("MobileNetV2 blocks: residual only at stride 1 with equal channels; classifier is [Dropout, Linear]", async () => {
  const model = new MobileNetV2({ widthMult: 0.25, numClasses: 4, inChannels: 1 });
  try {
    const blocks = [...model.features].slice(1, -1) as InvertedResidual[];
    assert.equal(blocks.length, 17);
    // torchvision at width 0.25: the first block maps 8 → 8 channels, so it is residual too.
    assert.equal(blocks.map((b) => b.useResConnect ? 1 : 0).join(""), "10101101110110110");
    assert.deepEqual(model.stateDict()["features.0.0.weight"].shape, [8, 1, 3, 3]);
    const w = await model.stateDict()["classifier.1.weight"].toArray();
    let s = 0;
    for (const v of w) s += v * v;
    assert.ok(Math.abs(Math.sqrt(s / w.length) / 0.01 - 1) < 0.05);
    const y = model.eval().forward(randn([2, 1, 32, 32]));
    assert.deepEqual(y.shape, [2, 4]);
  } finally {
    model.dispose();
  }
});
