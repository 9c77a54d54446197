import assert from "node:assert/strict";
import { randn } from "../../mod.ts";
import * as nn from "../../engine/nn/mod.ts";
import {
  VGG,
  vgg11Bn,
  VGG_CONFIGS,
  type VggConfig,
  vggNumParameters,
  vggStateDictShapes,
} from "../../models/mod.ts";
import { checkKeys, checkParity, keysFixture, stateShapes } from "./parity.ts";

Deno.test("vgg11 and vgg11_bn (1000 classes) have torchvision's keys, shapes and counts, computed without allocating", async () => {
  // The full models are not built: classifier.0.weight alone is 25088×4096 (411 MB).
  const archs = await keysFixture();
  for (const [arch, batchNorm] of [["vgg11", false], ["vgg11_bn", true]] as const) {
    assert.deepEqual(vggStateDictShapes(VGG_CONFIGS.A, { batchNorm }), archs[arch].state_dict);
    assert.equal(vggNumParameters(VGG_CONFIGS.A, { batchNorm }), archs[arch].num_params);
  }
  assert.equal(vggNumParameters(VGG_CONFIGS.A), 132_863_336);
});

Deno.test("vgg11_bn with the compact classifier matches torchvision's CIFAR-style layout", async () => {
  await checkKeys("vgg11_bn_compact10", () => vgg11Bn({ numClasses: 10, compactClassifier: true }));
  const archs = await keysFixture();
  assert.deepEqual(
    vggStateDictShapes(VGG_CONFIGS.A, { batchNorm: true, numClasses: 10, compactClassifier: true }),
    archs.vgg11_bn_compact10.state_dict,
  );
});

Deno.test("vggStateDictShapes describes the module VGG builds, full and compact heads", () => {
  const cfg: VggConfig = [8, "M", 16, "M"];
  for (
    const opts of [
      { numClasses: 10 },
      { batchNorm: true, inChannels: 1, numClasses: 3 },
      { batchNorm: true, compactClassifier: true },
    ]
  ) {
    const model = new VGG(cfg, opts);
    assert.deepEqual(stateShapes(model), vggStateDictShapes(cfg, opts), JSON.stringify(opts));
    assert.equal(model.numParameters(), vggNumParameters(cfg, opts));
    model.dispose();
  }
});

Deno.test("a narrow vgg11_bn with the compact head gives torchvision's logits, loss and gradients", async () => {
  await checkParity("vgg11_bn_c8", (c) => {
    assert.equal(c.fn, "VGG");
    return new VGG(c.cfg as VggConfig, {
      batchNorm: c.batchNorm as boolean,
      numClasses: c.numClasses as number,
      compactClassifier: c.compactClassifier as boolean,
    });
  });
});

Deno.test("VGG init: conv bias 0, Linear N(0, 0.01) with bias 0; the full head pools to 7×7", async () => {
  const model = new VGG([8, "M"], { numClasses: 10 });
  try {
    const sd = model.stateDict();
    assert.ok((await sd["features.0.bias"].toArray()).every((v) => v === 0));
    assert.ok((await sd["classifier.6.bias"].toArray()).every((v) => v === 0));
    const w = await sd["classifier.3.weight"].toArray();
    let s = 0;
    for (const v of w) s += v * v;
    assert.ok(Math.abs(Math.sqrt(s / w.length) / 0.01 - 1) < 0.01);
    const y = model.eval().forward(randn([2, 3, 20, 20]));
    assert.deepEqual(y.shape, [2, 10]);
    assert.ok(model.classifier instanceof nn.Sequential);
  } finally {
    model.dispose();
  }
});

Deno.test("VGG rejects an empty or malformed config", () => {
  assert.throws(() => new VGG(["M"]), /no conv layer/);
  assert.throws(() => new VGG([8, 0]), /integers ≥ 1 or "M"/);
});
