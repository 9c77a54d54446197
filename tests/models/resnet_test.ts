import assert from "node:assert/strict";
import { randn } from "../../mod.ts";
import * as nn from "../../engine/nn/mod.ts";
import {
  type BasicBlock,
  type Bottleneck,
  ResNet,
  resnet18,
  resnet34,
  resnet50,
} from "../../models/mod.ts";
import { checkKeys, checkParity } from "./parity.ts";

Deno.test("resnet18/34/50 have torchvision's state-dict keys, shapes and parameter counts", async () => {
  await checkKeys("resnet18", () => resnet18());
  await checkKeys("resnet34", () => resnet34());
  await checkKeys("resnet50", () => resnet50());
});

Deno.test("ResNet variants match torchvision: CIFAR stem, 1 input channel, wide, ResNeXt", async () => {
  await checkKeys("resnet18_cifar10", () => resnet18({ numClasses: 10, cifarStem: true }));
  await checkKeys("resnet18_gray", () => resnet18({ inChannels: 1 }));
  await checkKeys("wide_resnet50_2", () => resnet50({ widthPerGroup: 128 }));
  await checkKeys("resnext50_32x4d", () => resnet50({ groups: 32, widthPerGroup: 4 }));
});

function buildResNet(c: Record<string, unknown>): ResNet {
  assert.equal(c.fn, "ResNet");
  return new ResNet(c.block as "basic" | "bottleneck", c.layers as number[], {
    baseChannels: c.baseChannels as number,
    cifarStem: c.cifarStem as boolean | undefined,
    numClasses: c.numClasses as number,
  });
}

Deno.test("a narrow ResNet-18 with CIFAR stem gives torchvision's logits, loss and gradients", async () => {
  await checkParity("resnet18_c8", buildResNet);
});

Deno.test("a narrow bottleneck ResNet with the ImageNet stem gives torchvision's logits, loss and gradients", async () => {
  await checkParity("resnet_bneck_c8", buildResNet);
});

Deno.test("ResNet init: kaiming-normal fan-out convs, BatchNorm 1/0, zeroInitResidual zeroes the last BN of each block", async () => {
  const model = resnet18({ numClasses: 10, baseChannels: 16, zeroInitResidual: true });
  try {
    // layer3.0.conv2: [64, 64, 3, 3], fan-out 576: std √(2/576) ≈ 0.0589.
    const w = await model.layer3.at(0).stateDict()["conv2.weight"].toArray();
    let s = 0;
    for (const v of w) s += v * v;
    const std = Math.sqrt(s / w.length);
    assert.ok(Math.abs(std / Math.sqrt(2 / 576) - 1) < 0.05, `conv std ${std}`);
    const bn1 = (model.layer1.at(0) as BasicBlock).bn1;
    assert.deepEqual([...await bn1.weight!.toArray()], new Array(16).fill(1));
    assert.deepEqual([...await bn1.bias!.toArray()], new Array(16).fill(0));
    for (const layer of [model.layer1, model.layer2, model.layer3, model.layer4]) {
      for (const block of layer) {
        const bn2 = (block as BasicBlock).bn2;
        assert.deepEqual([...await bn2.weight!.toArray()], new Array(bn2.weight!.size).fill(0));
      }
    }
  } finally {
    model.dispose();
  }
  const b = new ResNet("bottleneck", [1, 1, 1, 1], { baseChannels: 4, zeroInitResidual: true });
  try {
    const block = b.layer2.at(0) as Bottleneck;
    assert.deepEqual([...await block.bn3.weight!.toArray()], new Array(32).fill(0));
    assert.deepEqual([...await block.bn2.weight!.toArray()], new Array(8).fill(1));
  } finally {
    b.dispose();
  }
});

Deno.test("ResNet forward: the ImageNet stem divides the side by 4, the CIFAR stem keeps it", async () => {
  const x = randn([1, 3, 32, 32]);
  for (const cifarStem of [false, true]) {
    const model = resnet18({ numClasses: 5, baseChannels: 4, cifarStem });
    assert.equal(model.maxpool instanceof nn.Identity, cifarStem);
    const stem = model.maxpool.forward(model.conv1.forward(x));
    assert.deepEqual(stem.shape, [1, 4, cifarStem ? 32 : 8, cifarStem ? 32 : 8]);
    const y = model.eval().forward(x);
    assert.deepEqual(y.shape, [1, 5]);
    assert.ok((await y.toArray()).every(Number.isFinite));
    model.dispose();
  }
});

Deno.test("ResNet rejects bad arguments with a message naming them", () => {
  assert.throws(() => new ResNet("basic", [2, 2, 2]), /layers must be 4 integers/);
  assert.throws(() => resnet18({ groups: 2 }), /BasicBlock only supports groups=1/);
  assert.throws(() => resnet18({ numClasses: 0 }), /numClasses must be an integer ≥ 1/);
  assert.throws(
    () => new ResNet("dense" as "basic", [1, 1, 1, 1]),
    /block must be "basic" or "bottleneck"/,
  );
});

Deno.test("fused batch norm + ReLU (+ shortcut) gives what hooked, unfused modules give, values and gradients", async () => {
  // Hooks on bn1 and relu send the stem, every BatchNorm→ReLU pair and every block end down
  // the unfused path (batch norm, add, ReLU apart); the same weights then must agree.
  const { scope, keep } = await import("../../mod.ts");
  const model = resnet18({ numClasses: 3, cifarStem: true, inChannels: 1, baseChannels: 4 });
  const x = randn([2, 1, 12, 12]);
  const run = async () => {
    const y = scope(() => {
      const y = model.forward(x);
      y.mul(y).sum().backward();
      return keep(y);
    });
    const out = [await y.toArray()];
    for (const p of model.parameters()) {
      out.push(await p.grad!.toArray());
      p.grad!.dispose();
      p.grad = null;
    }
    y.dispose();
    return out;
  };
  const fused = await run();
  let calls = 0;
  const removers = model.modules()
    .filter((m) => m instanceof nn.ReLU || m instanceof nn.BatchNorm2d)
    .map((m) => m.registerForwardHook(() => calls++));
  const plain = await run();
  for (const r of removers) r();
  // stem bn + relu, and per block bn1, relu ×2, bn2, plus downsample's bn in 3 blocks.
  assert.equal(calls, 2 + 8 * 4 + 3);
  fused.forEach((a, i) => {
    const scale = Math.max(...a.map(Math.abs), 1e-6);
    a.forEach((v, j) =>
      assert.ok(
        Math.abs(v - plain[i][j]) <= 1e-4 * scale,
        `tensor ${i}[${j}]: ${v} vs ${plain[i][j]}`,
      )
    );
  });
  model.dispose();
});
