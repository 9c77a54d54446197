import assert from "node:assert/strict";
import { crossEntropy, type Node, randn, reshape, slice, tensor } from "../../mod.ts";
import {
  Block,
  deit_base,
  deit_small,
  deit_tiny,
  deitBase,
  deitSmall,
  deitTiny,
  type VisionTransformer,
  visionTransformer,
  type VisionTransformerOptions,
  vitNumParameters,
  vitStateDictShapes,
} from "../../models/mod.ts";
import {
  assertScaledClose,
  checkTransformerParity,
  options,
  stateShapes,
  transformerKeys,
} from "./parity.ts";
import { tapeNodes } from "../helpers/tape_nodes.ts";

const SHAPE_OPTS: Record<string, VisionTransformerOptions> = {
  deit_tiny: { embedDim: 192, numHeads: 3 },
  deit_small: { embedDim: 384, numHeads: 6 },
  deit_base: {},
};

Deno.test("vitStateDictShapes gives timm's DeiT keys, shapes and parameter counts", async () => {
  const archs = await transformerKeys();
  for (const size of ["tiny", "small", "base"]) {
    const { config, state_dict, num_params } = archs[`deit_${size}_patch16_224`];
    assert.equal(config.fn, `deit_${size}`);
    assert.deepEqual(vitStateDictShapes(SHAPE_OPTS[`deit_${size}`]), state_dict, size);
    assert.equal(vitNumParameters(SHAPE_OPTS[`deit_${size}`]), num_params, size);
  }
  const micro = archs.deit_micro;
  assert.deepEqual(vitStateDictShapes(options(micro.config)), micro.state_dict);
  assert.equal(vitNumParameters(), 86_567_656);
});

Deno.test("deit_tiny() built on the GPU has timm's 152 keys in order and 5,717,416 parameters", async () => {
  const archs = await transformerKeys();
  const model = deit_tiny();
  try {
    assert.deepEqual(stateShapes(model), archs.deit_tiny_patch16_224.state_dict);
    assert.equal(model.numParameters(), 5_717_416);
    assert.deepEqual(model.namedBuffers(), []);
  } finally {
    model.dispose();
  }
  const micro = visionTransformer(options(archs.deit_micro.config));
  try {
    assert.deepEqual(stateShapes(micro), archs.deit_micro.state_dict);
    assert.equal(micro.numParameters(), archs.deit_micro.num_params);
  } finally {
    micro.dispose();
  }
});

Deno.test("deit_* take overrides (image size, patch, channels, classes) and have camelCase aliases", () => {
  assert.equal(deitTiny, deit_tiny);
  assert.equal(deitSmall, deit_small);
  assert.equal(deitBase, deit_base);
  const opts = { imgSize: 28, patchSize: 7, inChans: 1, numClasses: 10, depth: 1 };
  const model = deit_small(opts);
  try {
    const shapes = Object.fromEntries(stateShapes(model));
    assert.deepEqual(shapes.pos_embed, [1, 17, 384]);
    assert.deepEqual(shapes["patch_embed.proj.weight"], [384, 1, 7, 7]);
    assert.deepEqual(shapes["head.weight"], [10, 384]);
    assert.deepEqual(shapes["blocks.0.mlp.fc1.weight"], [1536, 384]);
    assert.deepEqual(
      stateShapes(model),
      vitStateDictShapes({ ...opts, embedDim: 384, numHeads: 6 }),
    );
    assert.equal(model.blocks.length, 1);
    assert.ok(model.blocks.at(0) instanceof Block);
  } finally {
    model.dispose();
  }
});

Deno.test("a micro DeiT gives timm's logits, loss and every gradient", async () => {
  await checkTransformerParity({
    name: "deit_micro",
    build: (o) => visionTransformer(o as VisionTransformerOptions),
    run: (model, io) => (model as VisionTransformer).forward(io.x),
    labels: "y",
  });
});

const small = (o: VisionTransformerOptions = {}) =>
  visionTransformer({
    imgSize: 8,
    patchSize: 4,
    embedDim: 12,
    depth: 2,
    numHeads: 3,
    numClasses: 4,
    ...o,
  });

Deno.test("VisionTransformer.forward equals the head on forwardFeatures' class token; numClasses 0 gives the features", async () => {
  const model = small().eval();
  const x = randn([3, 3, 8, 8]);
  try {
    const feats = model.forwardFeatures(x);
    assert.deepEqual(feats.shape, [3, 5, 12]);
    const cls = reshape(slice(feats, [0, 0], [3, 1]), [3, 12]);
    const want = model.head.forward(cls);
    assertScaledClose(await model.forward(x).toArray(), await want.toArray(), 1e-6, "logits");
    const headless = small({ numClasses: 0 });
    headless.loadStateDict(
      Object.fromEntries(Object.entries(model.stateDict()).filter(([k]) => !k.startsWith("head."))),
    );
    assertScaledClose(
      await headless.eval().forward(x).toArray(),
      await cls.toArray(),
      1e-6,
      "features",
    );
    headless.dispose();
  } finally {
    x.dispose();
    model.dispose();
  }
});

Deno.test("VisionTransformer rejects bad images and options with messages naming the shapes", () => {
  const model = small();
  const wrong = [
    randn([2, 3, 8, 9]),
    randn([2, 1, 8, 8]),
    randn([3, 8, 8]),
    tensor(new Int32Array(64 * 3), { shape: [1, 3, 8, 8], dtype: "i32" }),
  ];
  try {
    for (const x of wrong) {
      assert.throws(
        () => model.forward(x),
        new RegExp(
          `VisionTransformer\\(imgSize 8, patchSize 4\\): expected f32 images \\[batch, 3, 8, 8\\], got ${x.dtype} \\[${
            x.shape.join(", ")
          }\\]`,
        ),
      );
    }
  } finally {
    for (const x of wrong) x.dispose();
    model.dispose();
  }
  assert.throws(
    () => deit_tiny({ imgSize: 30, patchSize: 4 }),
    /imgSize 30 is not a multiple of patchSize 4/,
  );
  assert.throws(() => deit_tiny({ numHeads: 5 }), /embedDim 192 is not a multiple of numHeads 5/);
  assert.throws(() => deit_tiny({ depth: 0 }), /depth must be an integer ≥ 1, got 0/);
  assert.throws(() => deit_tiny({ attnDropRate: 1 }), /attnDropRate must be in \[0, 1\)/);
});

Deno.test("VisionTransformer initialisation follows timm/DeiT: trunc-normal(0.02) embeddings and Linears, zero biases, LayerNorm 1/0", async () => {
  const model = visionTransformer({
    imgSize: 32,
    patchSize: 4,
    embedDim: 48,
    depth: 1,
    numHeads: 3,
    numClasses: 10,
  });
  try {
    const std = (a: ArrayLike<number>) => {
      let s = 0;
      for (let i = 0; i < a.length; i++) s += a[i] * a[i];
      return Math.sqrt(s / a.length);
    };
    const sd = model.stateDict();
    for (const k of ["pos_embed", "blocks.0.attn.qkv.weight", "blocks.0.mlp.fc2.weight"]) {
      const s = std(await sd[k].toArray());
      assert.ok(Math.abs(s / 0.02 - 1) < 0.1, `${k}: std ${s}`);
    }
    for (const [k, t] of Object.entries(sd)) {
      const a = [...await t.toArray()];
      if (/norm\d?\.weight$/.test(k)) assert.ok(a.every((v) => v === 1), k);
      else if (k.endsWith(".bias") && !k.startsWith("patch_embed")) {
        assert.ok(a.every((v) => v === 0), k);
      }
    }
  } finally {
    model.dispose();
  }
});

Deno.test("freezing tokenEmbedding() (patch embedding, class and position tokens) and the first block cuts the ViT tape there", () => {
  const model = small();
  const x = randn([2, 3, 8, 8]);
  const y = tensor([1, 3], { dtype: "i32" });
  try {
    const count = (ns: Node[], op: string) => ns.filter((n) => n.op === op).length;
    const full = crossEntropy(model.forward(x), y);
    assert.equal(count(tapeNodes(full), "conv2d"), 1);
    assert.equal(count(tapeNodes(full), "layerNorm"), 5);
    full.dispose();
    // Freezing patch_embed alone leaves pos_embed trainable: every block stays on the tape.
    model.patch_embed.freeze();
    model.blocks.at(0).freeze();
    const leaky = crossEntropy(model.forward(x), y);
    assert.equal(count(tapeNodes(leaky), "layerNorm"), 5);
    leaky.dispose();
    model.tokenEmbedding().freeze();
    assert.equal(model.cls_token.requiresGrad, false);
    const cut = crossEntropy(model.forward(x), y);
    const ns = tapeNodes(cut);
    assert.equal(count(ns, "conv2d"), 0);
    assert.equal(count(ns, "layerNorm"), 3, "block 1's two norms and the final norm");
    cut.backward();
    assert.equal(model.pos_embed.grad, null);
    for (const p of model.blocks.at(0).parameters()) assert.equal(p.grad, null);
    for (const p of model.blocks.at(1).parameters()) assert.ok(p.grad);
    cut.dispose();
  } finally {
    x.dispose();
    y.dispose();
    model.dispose();
  }
});
