/**
 * Kernel variants chosen by measurement, per adapter.
 *
 * `deno task tune` (bench/tune.ts) times every tile of the texture matmul
 * (`TEX_TILES` in kernels/matmul.ts) on the shapes of the models of
 * `deno task train`, with GPU timestamps, and writes the fastest per shape
 * class to a JSON file keyed by the adapter, its driver and wgpu's backend
 * (`gpu().label`). The engine reads that file once, on the first product
 * whose tile it looks up: `FROST_TUNE_FILE`, else
 * `~/.cache/frost/tune.json`. Without the file, without permission to read
 * it, with `FROST_TUNE=0`, or for a shape class or adapter it does not list,
 * the default tile is used ({@link defaultTexTile}): results never depend on
 * the choice, only speed does (every tile is checked against the float64
 * reference by tests/engine/ops/matmul_texture_test.ts).
 *
 * Tuning is ahead of time only, not on first use: timing a kernel means
 * waiting for the GPU, and every wait costs at least 10 ms in Deno 2.9
 * (bench/README.md), which inside a training step would cost more than most
 * choices gain. Shape classes round M, N and K up to powers of two.
 *
 * @module
 */

import { gpu, readEnv } from "./device.ts";
import { DEFAULT_TEX_TILE, TEX_TILES, type TexTile } from "../kernels/matmul.ts";

/** The file's format: choices by adapter label, kernel family and shape class. */
export interface TuningFile {
  /** Format version (1). */
  format: 1;
  /** Per adapter label (`gpu().label`): per family, the chosen variant's name by shape class. */
  adapters: Record<string, { matmul_tex?: Record<string, string> }>;
}

let table: TuningFile | null | undefined;

/** Where the tuning file is read from and written to. */
export function tuningPath(): string {
  const explicit = readEnv("FROST_TUNE_FILE");
  if (explicit) return explicit;
  const home = readEnv("HOME") ?? readEnv("USERPROFILE") ?? ".";
  return `${home}/.cache/frost/tune.json`;
}

/**
 * Parses a tuning file's text, checking its shape and that every variant it
 * names exists (a file from another version names tiles by what they are).
 */
export function parseTuning(text: string, source = "tuning file"): TuningFile {
  const bad = (why: string) => new Error(`${source}: ${why}`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw bad(`not JSON (${(e as Error).message})`);
  }
  const f = v as TuningFile;
  if (!f || typeof f !== "object" || f.format !== 1 || typeof f.adapters !== "object") {
    throw bad('expected {"format": 1, "adapters": {...}}');
  }
  for (const [label, fams] of Object.entries(f.adapters)) {
    for (const [cls, name] of Object.entries(fams.matmul_tex ?? {})) {
      if (!(name in TEX_TILES)) throw bad(`${label}: matmul_tex ${cls}: unknown tile "${name}"`);
    }
  }
  return f;
}

/** Reads the tuning file once; a missing or unreadable one means defaults. */
function load(): TuningFile | null {
  if (table !== undefined) return table;
  table = null;
  if (readEnv("FROST_TUNE") === "0") return table;
  const path = tuningPath();
  let text: string;
  try {
    // Never a permission prompt: a library user may not have granted --allow-read.
    if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") return table;
    text = Deno.readTextFileSync(path);
  } catch {
    return table; // absent, or unreadable: the defaults
  }
  try {
    table = parseTuning(text, path);
  } catch (e) {
    console.warn(`frost: ignoring ${(e as Error).message}`);
  }
  return table;
}

/**
 * Replaces the tuning table in this process (`null`: defaults; `undefined`:
 * read the file again on next use). Used by `deno task tune` and tests.
 */
export function setTuning(t: TuningFile | null | undefined): void {
  table = t;
}

const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(16, n)));

/** The shape class of an `M × K · K × N` product: each size rounded up to a power of two. */
export function matmulClass(M: number, N: number, K: number): string {
  return `${pow2(M)}x${pow2(N)}x${pow2(K)}`;
}

/**
 * The tile used where the tuning file names none. On CPU-emulated adapters
 * (llvmpipe, lavapipe, SwiftShader) it depends on the size of one product's
 * output, `M × N`:
 * - above 128×128, `32x32/8x1`, which `deno task tune` (or its
 *   grid-transposed twin `32x32/8x1r`) measured 1.22-1.46× faster than the
 *   earlier default `32x16/8x1` on 8 of its 9 products here (not on
 *   BERT-mini's 2048×256·256×256, where `32x16/8x1` stayed best). As the
 *   default it took a BERT-mini step's texture-matmul kernels from
 *   1,143-1,241 to 1,033-1,056 ms and the step from 1,567-1,903 to
 *   1,445-1,495 ms (2 interleaved pairs of `deno task profile --model
 *   bert-mini`, vulkan, 2026-12-08);
 * - up to 128×128, `32x16/8x1`, and up to 64×64, `16x8/8x2`: on the batched
 *   small products of attention the 32×32 tile was 1.6-1.8× slower. Wall
 *   ms per batched call (packing included, 5 calls per wait for the GPU):
 *   128 products of 64×64·64×64 (BERT-mini's q·kᵀ, p·v and their
 *   gradients) 32×32 10.8-12.5, 32×16 7.6-9.1, 16×8 6.1-7.0; 128 of
 *   128×64·64×128: 32×32 21.0, 32×16 12.7, 16×8 16.2; 128 of
 *   64×128·128×64: 32×32 16.3, 32×16 10.8, 16×8 9.2 (vulkan, 2026-12-08;
 *   a single 2048×64·64×256 product, by contrast, was fastest with 32×32).
 *
 * On other adapters `16x16/8x2` until a GPU's measurements say otherwise (a
 * GPU spills big register tiles worse).
 */
export function defaultTexTile(M = Infinity, N = Infinity): TexTile {
  if (!/llvmpipe|lavapipe|swiftshader/i.test(gpu().description)) return DEFAULT_TEX_TILE;
  const outputs = M * N;
  return outputs <= 64 * 64
    ? TEX_TILES["16x8/8x2"]
    : outputs <= 128 * 128
    ? TEX_TILES["32x16/8x1"]
    : TEX_TILES["32x32/8x1"];
}

/** The tile for a product of this shape on this adapter. */
export function matmulTile(M: number, N: number, K: number): TexTile {
  const t = load();
  const name = t?.adapters[gpu().label]?.matmul_tex?.[matmulClass(M, N, K)];
  return name ? TEX_TILES[name] : defaultTexTile(M, N);
}
