/**
 * Runs the peer benchmarks alone (TensorFlow.js WebGPU and jax-js WebGPU) and
 * prints the comparison table with the "ours" column empty. `bench/compare.ts`
 * fills that column with our engine.
 *
 * ```sh
 * deno run --allow-read --allow-env bench/peers_main.ts [--quick]
 * ```
 *
 * @module
 */

import { DEFAULT_MATMUL, loadJax, peerRows, printTable } from "./peers.ts";
import { guessBackend } from "../engine/device.ts";

const quick = Deno.args.includes("--quick");
const adapter = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
const info = adapter?.info;
console.log(
  `adapter: ${
    info
      ? `${info.description || info.vendor}${
        info.isFallbackAdapter ? " (fallback adapter)" : ""
      }, wgpu ${guessBackend()} backend`
      : "none"
  }`,
);
try {
  const { device } = await loadJax();
  console.log(
    `jax-js device: ${device}${device === "webgpu" ? "" : " (WebGPU unavailable: fell back)"}`,
  );
} catch (e) {
  console.log(`jax-js failed to load: ${e}`);
}

const t0 = performance.now();
const rows = await peerRows({
  matmul: quick ? [{ n: 256, reps: 5 }] : DEFAULT_MATMUL,
  mlpReps: quick ? 5 : 15,
  log: (m) => console.log(`  ${m}`),
});
console.log(
  `\n(peers finished in ${
    ((performance.now() - t0) / 1000).toFixed(1)
  } s; medians after warm-up)\n`,
);
printTable(rows);
