/**
 * The one timing rule of the `deno task bench` suites: an iteration records
 * `reps` calls of a body (each in its own scope, so its tensors are freed) and
 * ends with `await synchronize()`, which submits them and waits for the GPU,
 * so the measured time covers the GPU work and not only the recording. Not a
 * suite itself (its name does not end in `_bench.ts`).
 *
 * @module
 */

import { scope, synchronize } from "../mod.ts";

/**
 * Registers one bench that runs `body` `reps` times per iteration, then waits
 * for the GPU. The name gets a "×reps" suffix.
 */
export function gpuBench(
  name: string,
  group: string,
  reps: number,
  body: () => unknown,
  baseline = false,
): void {
  Deno.bench({
    name: `${name} ×${reps}`,
    group,
    baseline,
    // Deno measures for at least 0.5 s anyway; these only cap the slow cases.
    warmup: 1,
    n: 3,
    async fn(ctx) {
      ctx.start();
      for (let r = 0; r < reps; r++) scope(() => void body());
      await synchronize();
      ctx.end();
    },
  });
}
