/**
 * `deno task bench` suite for the vision ops, at ResNet-like but small shapes
 * (llvmpipe runs WGSL on two CPU cores): the fixed cost of one
 * `synchronize()`, conv2d forward (3×3, 3×3 stride 2, 1×1) and backward (data and weight gradients, or the weight gradient
 * alone, as for a first layer), depthwise 3×3 conv forward and backward,
 * batchNorm2d (training forward, eval forward, training backward) and
 * pooling (max 2×2, max 3×3 stride 2 padding 1, avg 2×2, global average, and
 * max 2×2 backward).
 *
 * A forward iteration records `reps` ops (the "×reps" in the name) and ends
 * with `await synchronize()`, which submits them and waits for the GPU. A
 * backward iteration runs its forward and waits for it before the clock
 * starts, then times `backward()` and the wait, so only the backward kernels
 * are measured. Inputs are made once per group.
 *
 * @module
 */

import {
  adaptiveAvgPool2d,
  avgPool2d,
  batchNorm2d,
  conv2d,
  type Conv2dOptions,
  maxPool2d,
  ones,
  randn,
  synchronize,
  type Tensor,
  zeros,
} from "../mod.ts";
import { gpuBench } from "./gpu_timing.ts";

/**
 * Registers one bench of a backward pass: `forward` builds the graph from
 * `leaves` (fresh gradients each time) outside the timed region; the clock
 * covers `backward(grad)` and the wait for the GPU.
 */
function backwardBench(
  name: string,
  group: string,
  leaves: Tensor[],
  forward: () => Tensor,
): void {
  let grad: Tensor | null = null;
  Deno.bench({
    name,
    group,
    warmup: 1,
    n: 3,
    async fn(ctx) {
      for (const t of leaves) t.requiresGrad = true;
      const out = forward();
      grad ??= randn(out.shape);
      await synchronize();
      ctx.start();
      out.backward(grad);
      await synchronize();
      ctx.end();
      out.dispose();
      for (const t of leaves) {
        t.grad?.dispose();
        t.grad = null;
        t.requiresGrad = false;
      }
    },
  });
}

// The fixed cost every iteration below pays: one submit and wait with nothing recorded.
Deno.bench({
  name: "synchronize() alone",
  group: "overhead",
  warmup: 1,
  n: 5,
  async fn() {
    await synchronize();
  },
});

// conv2d: [8, 64, 16, 16] images, ResNet-18's first stage at half resolution.
{
  const group = "conv2d [8,64,16,16]";
  const x = randn([8, 64, 16, 16]);
  const w3 = randn([64, 64, 3, 3]);
  const w3s2 = randn([128, 64, 3, 3]);
  const w1 = randn([128, 64, 1, 1]);
  const conv = (w: Tensor, opts: Conv2dOptions) => () => conv2d(x, w, opts);
  gpuBench("conv2d 3×3 64→64 pad 1", group, 2, conv(w3, { padding: 1 }), true);
  gpuBench(
    "conv2d 3×3 64→128 stride 2 pad 1",
    group,
    2,
    conv(w3s2, { stride: 2, padding: 1 }),
  );
  gpuBench("conv2d 1×1 64→128", group, 2, conv(w1, {}));
  backwardBench("conv2d 3×3 backward (data + weight)", group, [x, w3], conv(w3, { padding: 1 }));
  backwardBench("conv2d 3×3 backward (weight only)", group, [w3], conv(w3, { padding: 1 }));
  backwardBench(
    "conv2d 3×3 stride 2 backward (data + weight)",
    group,
    [x, w3s2],
    conv(w3s2, { stride: 2, padding: 1 }),
  );
}

// Depthwise 3×3 (MobileNetV2's), [16, 128, 16, 16].
{
  const group = "depthwise [16,128,16,16]";
  const x = randn([16, 128, 16, 16]);
  const w = randn([128, 1, 3, 3]);
  const dw = () => conv2d(x, w, { padding: 1, groups: 128 });
  gpuBench("depthwise 3×3 pad 1", group, 4, dw, true);
  backwardBench("depthwise 3×3 backward (data + weight)", group, [x, w], dw);
}

// batchNorm2d, [16, 64, 32, 32] (ResNet-18's first stage on CIFAR at batch 16).
{
  const group = "batchNorm2d [16,64,32,32]";
  const x = randn([16, 64, 32, 32]);
  const weight = ones([64]);
  const bias = zeros([64]);
  const rm = zeros([64]);
  const rv = ones([64]);
  const train = () => batchNorm2d(x, weight, bias, rm, rv, { training: true });
  gpuBench("batchNorm2d training forward", group, 4, train, true);
  gpuBench("batchNorm2d eval forward", group, 4, () => batchNorm2d(x, weight, bias, rm, rv));
  backwardBench("batchNorm2d training backward", group, [x, weight, bias], train);
}

// Pooling, [16, 64, 32, 32].
{
  const group = "pool [16,64,32,32]";
  const x = randn([16, 64, 32, 32]);
  gpuBench("maxPool2d 2×2", group, 4, () => maxPool2d(x, { kernelSize: 2 }), true);
  gpuBench(
    "maxPool2d 3×3 stride 2 pad 1",
    group,
    4,
    () => maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }),
  );
  gpuBench("avgPool2d 2×2", group, 4, () => avgPool2d(x, { kernelSize: 2 }));
  gpuBench("adaptiveAvgPool2d 1×1", group, 4, () => adaptiveAvgPool2d(x, 1));
  backwardBench("maxPool2d 2×2 backward", group, [x], () => maxPool2d(x, { kernelSize: 2 }));
}
