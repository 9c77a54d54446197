/**
 * A check of every new device before anything trains on it: a few small
 * products through each path that reads packed textures and through the
 * storage-buffer path, against float64 results computed here on the CPU.
 *
 * Why: wgpu's OpenGL backend once made the engine's `2d-array` textures
 * `TEXTURE_2D` or cube maps and every matmul above 2¹⁷ multiply-adds read
 * garbage, with no error anywhere; training ran on and ended at chance
 * accuracy. An adapter or backend that computes wrong numbers must stop the
 * engine with an error that names it. Set `FROST_SKIP_SELF_CHECK=1` to skip.
 *
 * The shapes are the layer counts that backend guessed wrongly (1 layer; a
 * square texture with 6 or 12 layers) on each packing path, plus NaN through
 * relu (GLSL's comparisons with NaN differ from WGSL's). The pipelines it
 * builds are the ones training uses, so their compile time is not lost.
 *
 * @module
 */

import { setSelfCheck } from "./device.ts";
import { noGrad } from "./autograd.ts";
import { type Tensor, tensor } from "./tensor.ts";
import { matmul } from "./ops/matmul.ts";
import { conv2d } from "./ops/conv.ts";
import { relu } from "./ops/elementwise.ts";

/** Deterministic values in [-1, 1): the check must not depend on the RNG kernels it does not test. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** float64 `a[b] · w[b]` for row-major `[batch, M, K]` by `[batch, K, N]` (`batch` 0: shared). */
function matmulRef(
  a: Float32Array,
  w: Float32Array,
  batch: number,
  M: number,
  K: number,
  N: number,
  sharedB: boolean,
): Float64Array {
  const out = new Float64Array(batch * M * N);
  for (let b = 0; b < batch; b++) {
    const bo = sharedB ? 0 : b * K * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += a[b * M * K + m * K + k] * w[bo + k * N + n];
        out[(b * M + m) * N + n] = acc;
      }
    }
  }
  return out;
}

/** float64 conv of `[N, C, H, W]` by `[O, C, 3, 3]`, stride 1, padding 1. */
function conv3x3Ref(
  x: Float32Array,
  w: Float32Array,
  [N, C, H, W]: number[],
  O: number,
): Float64Array {
  const out = new Float64Array(N * O * H * W);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      for (let y = 0; y < H; y++) {
        for (let xx = 0; xx < W; xx++) {
          let acc = 0;
          for (let c = 0; c < C; c++) {
            for (let i = 0; i < 3; i++) {
              for (let j = 0; j < 3; j++) {
                const iy = y + i - 1;
                const ix = xx + j - 1;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                acc += x[((n * C + c) * H + iy) * W + ix] * w[((o * C + c) * 3 + i) * 3 + j];
              }
            }
          }
          out[((n * O + o) * H + y) * W + xx] = acc;
        }
      }
    }
  }
  return out;
}

/** The worst error of `got` against `want`, relative to 1 + |want|; NaN must match NaN. */
function worst(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let e = 0;
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(want[i]) !== Number.isNaN(got[i])) return Infinity;
    if (Number.isNaN(want[i])) continue;
    const d = Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i]));
    e = Math.max(e, Number.isNaN(d) ? Infinity : d);
  }
  return e;
}

/**
 * Runs the checks on the current device: what came out wrong, or null.
 *
 * @example
 * ```ts
 * import { initGpu } from "./device.ts";
 * import { runSelfCheck } from "./self_check.ts";
 * await initGpu(); // runs the check once already
 * console.log(await runSelfCheck()); // null on a sound adapter
 * ```
 */
export async function runSelfCheck(): Promise<string | null> {
  const made: Tensor[] = [];
  const t = (data: Float32Array, shape: number[]) => {
    const x = tensor(data, { shape });
    made.push(x);
    return x;
  };
  const cases: { what: string; out: Tensor; want: ArrayLike<number> }[] = [];
  try {
    noGrad(() => {
      // [batch, M, K, N, B shared]: the storage path; the texture path with one layer (A and B);
      // with 12 layers of 8×8 (A) and 32×32 (B) texels.
      const products: [number, number, number, number, boolean][] = [
        [1, 5, 7, 6, false],
        [1, 64, 64, 36, false],
        [12, 8, 32, 128, false],
      ];
      for (const [batch, M, K, N, shared] of products) {
        const a = values(batch * M * K, M * 7 + K);
        const w = values((shared ? 1 : batch) * K * N, N * 13 + K);
        const lead = batch > 1 ? [batch] : [];
        const out = matmul(t(a, [...lead, M, K]), t(w, [...(shared ? [] : lead), K, N]));
        made.push(out);
        cases.push({
          what: `matmul [${[...lead, M, K]}]·[${[...lead, K, N]}]`,
          out,
          want: matmulRef(a, w, batch, M, K, N, shared),
        });
      }
      // Six square images: the packed batch is a square texture of 6 layers.
      const xs = [6, 2, 8, 8];
      const x = values(6 * 2 * 64, 5);
      const w = values(3 * 2 * 9, 6);
      const y = conv2d(t(x, xs), t(w, [3, 2, 3, 3]), { padding: 1 });
      made.push(y);
      cases.push({ what: "conv2d [6,2,8,8]*[3,2,3,3]", out: y, want: conv3x3Ref(x, w, xs, 3) });
      const r = relu(t(new Float32Array([NaN, -1, 2]), [3]));
      made.push(r);
      cases.push({ what: "relu([NaN, -1, 2])", out: r, want: [NaN, 0, 2] });
    });
    // One round trip for all (each read-back waits for a device poll: ~12 ms on llvmpipe).
    const results = await Promise.all(cases.map((c) => c.out.toArray()));
    for (const [i, c] of cases.entries()) {
      const e = worst(results[i], c.want);
      if (!(e < 1e-4)) {
        const shown = c.want.length <= 8
          ? ` (gave [${Array.from(results[i])}], expected [${Array.from(c.want)}])`
          : "";
        return `${c.what}: relative error ${e.toPrecision(3)}, expected < 1e-4${shown}`;
      }
    }
    return null;
  } finally {
    for (const x of made) x.dispose();
  }
}

setSelfCheck(runSelfCheck);
