/**
 * `deno run -A bench/op_overhead.ts`: CPU time to record one small op (the
 * JavaScript and WebGPU calls that put a dispatch into the command batch),
 * without the GPU's time: each sample records 50 ops (their dispatches stay below `MAX_BATCH`, so
 * no submit happens inside the timed loop), then submits and waits untimed.
 * Reported: median microseconds per op over 15 samples, per op.
 *
 * Small shapes on purpose: these ops cost the GPU little, so in the MLP step,
 * matmul 256 and BERT's many small kernels the recording cost is what is left.
 *
 * @module
 */

import * as F from "../mod.ts";
import { flushErrors } from "../engine/dispatch.ts";
import { gpu } from "../engine/device.ts";

const a = F.randn([64, 64]), b = F.randn([64, 64]), v = F.randn([64]);
const w = F.randn([64]), bias = F.randn([64]);
const x4 = F.randn([8, 8, 8, 8]), k = F.randn([8, 8, 3, 3]);
const cases: [string, () => unknown][] = [
  ["add [64,64]", () => F.add(a, b)],
  ["add bias [64,64]+[64]", () => F.add(a, v)],
  ["relu [64,64]", () => F.relu(a)],
  ["mul by scalar [64,64]", () => F.mul(a, 2)],
  ["sum axis 1 [64,64]", () => F.sum(a, 1)],
  ["softmax [64,64]", () => F.softmax(a)],
  ["layerNorm [64,64]", () => F.layerNorm(a, w, bias)],
  ["matmul 64³", () => F.matmul(a, b)],
  ["conv2d 8×8×8×8, 3×3", () => F.conv2d(x4, k, { padding: 1 })],
];
const REPS = 50, SAMPLES = 15;
console.log(`CPU µs to record one op, on ${gpu().label} (median of ${SAMPLES} × ${REPS} ops)`);
for (const [name, fn] of cases) {
  const per: number[] = [];
  for (let s = 0; s < SAMPLES + 2; s++) {
    await flushErrors();
    const t = performance.now();
    for (let i = 0; i < REPS; i++) F.scope(() => void fn());
    const us = (performance.now() - t) * 1000 / REPS;
    if (s >= 2) per.push(us);
  }
  per.sort((p, q) => p - q);
  console.log(`${name.padEnd(24)} ${per[per.length >> 1].toFixed(1).padStart(7)} µs`);
}
await flushErrors();
