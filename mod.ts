/**
 * frost: a WebGPU deep-learning engine for Deno, with SmartFRZ layer freezing.
 *
 * Importing this module acquires the GPU device. Without a WebGPU adapter the
 * import still succeeds and the first GPU operation throws an error that says
 * how to get one.
 *
 * @example
 * ```ts
 * import { nn, optim, randn, tensor, memoryStats } from "./mod.ts";
 * const model = new nn.Sequential(new nn.Linear(784, 128), new nn.ReLU(), new nn.Linear(128, 10));
 * const opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
 * const x = randn([64, 784]);
 * const y = tensor(Int32Array.from({ length: 64 }, (_, i) => i % 10), { shape: [64], dtype: "i32" });
 * const loss = nn.crossEntropy(model.forward(x), y);
 * loss.backward();
 * opt.step();
 * opt.zeroGrad();
 * console.log(await loss.item(), memoryStats());
 * ```
 *
 * @module
 */

import { initGpu } from "./engine/device.ts";

await initGpu().catch(() => {
  // Reported by the first GPU operation (gpu() rethrows with instructions).
});

export * from "./engine/mod.ts";
export * as models from "./models/mod.ts";
export * as smartfrz from "./smartfrz/mod.ts";
