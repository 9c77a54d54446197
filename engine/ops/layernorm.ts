/**
 * Layer normalisation over the last axis ({@link layerNorm}) with fused
 * kernels (kernels/layernorm.ts), and its backward rule.
 *
 * Forward is one kernel that writes y and saves per row the mean (shifted
 * by the row's first element, see kernels/layernorm.ts) and
 * `rstd = 1/√(var + eps)` (2 floats per row); backward reads them instead of
 * recomputing the statistics, and runs only what the needed gradients use:
 * the dx kernel when x needs a gradient, the column-sum kernels when weight
 * or bias do (without reading x and the statistics when only bias does).
 *
 * @module
 */

import { fmtShape, Tensor } from "../tensor.ts";
import { record, type VjpRule } from "../autograd.ts";
import { run, vecLanes } from "../dispatch.ts";
import {
  LN_PARAM_TILE,
  LN_WG,
  lnColumnSumProgram,
  lnDxProgram,
  lnDxVecProgram,
  lnForwardProgram,
  lnForwardVecProgram,
  lnParamPartsProgram,
  lnUniforms,
} from "../../kernels/layernorm.ts";
import { full } from "./elementwise.ts";

/**
 * Most iterations of any kernel loop: llvmpipe runs a workgroup's invocations
 * on one CPU thread, and unbounded loops make single dispatches run for
 * seconds; and it ends an invocation's loops after 65,535 passes in all
 * (`LOOP_BUDGET`, kernels/program.ts), which two sweeps of 1,024 and the lane
 * merge stay far below. It bounds the row width (`C / 64` columns per lane)
 * and the rows or parts each column-sum invocation adds.
 */
const MAX_LOOP = 1024;

/** Widest row supported: 64 lanes with {@link MAX_LOOP} columns each. */
export const LAYER_NORM_MAX_WIDTH = LN_WG * MAX_LOOP;

/**
 * Tuning of the column sums (dweight, dbias), exported for tests that force
 * the multi-level path on small inputs.
 *
 * @internal
 */
export const layerNormTuning = {
  /** Most rows one part sums, and most parts one column-sum invocation adds. */
  maxChunk: MAX_LOOP,
  /**
   * Fewest rows per part: below this, a part's write of K·C partial sums
   * costs more than the rows it reduces.
   */
  minChunk: 16,
  /** Workgroups the first column-sum pass aims for, so that few columns still spread. */
  targetGroups: 256,
};

/**
 * Lanes per row: 1 (the one-invocation-per-row kernel) while a row fits in
 * {@link MAX_LOOP} iterations, else the fewest lanes that keep each lane's
 * share within it.
 */
function lanesPerRow(C: number): number {
  let T = 1;
  while (T * MAX_LOOP < C) T *= 2;
  return T;
}

function checkAffine(name: string, t: Tensor | null, C: number, x: Tensor): void {
  if (t === null) return;
  if (t.dtype !== "f32" || t.ndim !== 1 || t.shape[0] !== C) {
    throw new RangeError(
      `layerNorm: ${name} must be an f32 [${C}] tensor (the last axis of input ${
        fmtShape(x.shape)
      }), got ${t.dtype} ${fmtShape(t.shape)}`,
    );
  }
}

/**
 * Layer normalisation over the last axis, as
 * `torch.nn.functional.layer_norm(x, [C], weight, bias, eps)`:
 * `y = (x − mean) / √(var + eps) · weight + bias` with the mean and the
 * biased variance of each row of C values.
 *
 * Recorded as one op: backward computes the gradients of x, weight and bias
 * that are needed, and no others.
 *
 * @param x `[..., C]`, f32, at least one axis; `C ≤ 65536`.
 * @param weight `[C]` scale, or null for 1.
 * @param bias `[C]` shift, or null for 0.
 * @param eps Added to the variance before the square root (default 1e-5).
 * @returns The normalised tensor, shaped like `x`.
 *
 * @example
 * ```ts
 * import { layerNorm, tensor } from "../../mod.ts";
 * const x = tensor([1, 3, 5, 7, 2, 2, 2, 2], { shape: [2, 4] });
 * const y = layerNorm(x, tensor([1, 1, 2, 2]), tensor([0, 0, 0, 1]));
 * console.log(await y.toArray()); // ≈ [-1.342, -0.447, 0.894, 3.683, 0, 0, 0, 1]
 * ```
 */
export function layerNorm(
  x: Tensor,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  eps = 1e-5,
): Tensor {
  if (x.dtype !== "f32" || x.ndim === 0) {
    throw new RangeError(
      `layerNorm: expected an f32 input with at least one axis, got ${x.dtype} ${
        fmtShape(x.shape)
      }`,
    );
  }
  const C = x.shape[x.ndim - 1];
  checkAffine("weight", weight, C, x);
  checkAffine("bias", bias, C, x);
  if (!(eps >= 0) || !Number.isFinite(eps)) {
    throw new RangeError(`layerNorm: eps must be finite and ≥ 0, got ${eps}`);
  }
  if (C > LAYER_NORM_MAX_WIDTH) {
    throw new RangeError(
      `layerNorm: rows of ${C} values (input ${
        fmtShape(x.shape)
      }) are wider than the ${LAYER_NORM_MAX_WIDTH} supported`,
    );
  }
  const rows = x.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const y = Tensor.empty(x.shape);
  const mean = Tensor.empty([rows]);
  const rstd = Tensor.empty([rows]);
  if (x.size > 0) {
    const T = lanesPerRow(C);
    const flags = { weight: weight !== null, bias: bias !== null };
    // vec4 loads where a row of one invocation holds a multiple of 4 values.
    const program = T === 1 && vecLanes(C) === 4
      ? lnForwardVecProgram(flags)
      : lnForwardProgram({ ...flags, perRow: T === 1 });
    run(program, {
      inputs: [x, weight, bias].filter((t): t is Tensor => t !== null).map((t) => t.storage),
      outputs: [y.storage, mean.storage, rstd.storage],
      uniforms: lnUniforms({ rows, C, T, eps }),
      workgroups: Math.ceil(rows / (LN_WG / T)),
      bytes: 4 * (3 * x.size + 2 * rows),
      flops: 10 * x.size,
    });
  }
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  record("layerNorm", { weight: weight !== null, bias: bias !== null }, inputs, y, (needs) => {
    const needW = weight !== null && needs[1];
    const saved: Tensor[] = [];
    if (needs[0] || needW) saved.push(mean, rstd, x);
    if (needs[0] && weight) saved.push(weight);
    return saved;
  });
  mean.dispose();
  rstd.dispose();
  return y;
}

/**
 * Parts of the first column-sum pass over `rows`: enough workgroups to fill
 * a GPU, at least `minChunk` rows each, at most `maxChunk`.
 */
function partsFor(rows: number, C: number): { P: number; chunk: number } {
  const { maxChunk, minChunk, targetGroups } = layerNormTuning;
  const want = Math.ceil(targetGroups / Math.ceil(C / LN_PARAM_TILE));
  let P = Math.min(want, Math.ceil(rows / minChunk));
  P = Math.max(P, Math.ceil(rows / maxChunk), 1);
  const chunk = Math.ceil(rows / P);
  return { P: Math.ceil(rows / chunk), chunk };
}

/** dweight (`Σ g·x̂`) and/or dbias (`Σ g`) over the rows of `g [rows, C]`. */
function paramGrads(
  g: Tensor,
  x: Tensor | null,
  mean: Tensor | null,
  rstd: Tensor | null,
  rows: number,
  C: number,
  v: { dw: boolean; db: boolean },
): Tensor[] {
  const outs = [...(v.dw ? [Tensor.empty([C])] : []), ...(v.db ? [Tensor.empty([C])] : [])];
  if (rows === 0 || C === 0) {
    for (const t of outs) t.dispose();
    return outs.map(() => full([C], 0));
  }
  const K = outs.length;
  const W = K * C;
  let { P, chunk } = partsFor(rows, C);
  let part = P === 1 ? null : Tensor.empty([P, W]);
  run(lnParamPartsProgram({ ...v, final: part === null }), {
    inputs: [g, ...(v.dw ? [x!, mean!, rstd!] : [])].map((t) => t.storage),
    outputs: part ? [part.storage] : outs.map((t) => t.storage),
    uniforms: lnUniforms({ rows, C, chunk }),
    workgroups: [Math.ceil(C / LN_PARAM_TILE), P, 1],
    bytes: 4 * (v.dw ? 2 : 1) * rows * C,
    flops: 3 * rows * C,
  });
  while (part !== null) {
    chunk = Math.min(P, layerNormTuning.maxChunk);
    const P2 = Math.ceil(P / chunk);
    const next = P2 === 1 ? null : Tensor.empty([P2, W]);
    run(lnColumnSumProgram({ ...v, final: next === null }), {
      inputs: [part.storage],
      outputs: next ? [next.storage] : outs.map((t) => t.storage),
      uniforms: lnUniforms({ rows, C, chunk, P, W }),
      workgroups: [Math.ceil(W / LN_WG), P2, 1],
      bytes: 4 * P * W,
      flops: P * W,
    });
    part.dispose();
    part = next;
    P = P2;
  }
  return outs;
}

/** Backward of layer norm (see kernels/layernorm.ts for the formulas). */
export const layerNormVjp: VjpRule<"layerNorm"> = (node, g) => {
  const { weight: hasW, bias: hasB } = node.attrs;
  const needX = node.needs[0];
  const needW = hasW && node.needs[1];
  const needB = hasB && node.needs[hasW ? 2 : 1];
  const [mean, rstd, x, w] = node.saved;
  const shape = node.inputShapes[0];
  const C = shape[shape.length - 1];
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  let dx: Tensor | null = null;
  if (needX) {
    dx = Tensor.empty(shape);
    if (g.size > 0) {
      const T = lanesPerRow(C);
      const program = T === 1 && vecLanes(C) === 4
        ? lnDxVecProgram({ weight: hasW })
        : lnDxProgram({ weight: hasW, perRow: T === 1 });
      run(program, {
        inputs: [g, x, mean, rstd, ...(hasW ? [w] : [])].map((t) => t.storage),
        outputs: [dx.storage],
        uniforms: lnUniforms({ rows, C, T }),
        workgroups: Math.ceil(rows / (LN_WG / T)),
        bytes: 4 * (5 * g.size + 2 * rows),
        flops: 12 * g.size,
      });
    }
  }
  let dw: Tensor | null = null;
  let db: Tensor | null = null;
  if (needW || needB) {
    const grads = paramGrads(g, x ?? null, mean ?? null, rstd ?? null, rows, C, {
      dw: needW,
      db: needB,
    });
    if (needW) dw = grads.shift()!;
    if (needB) db = grads.shift()!;
  }
  return [dx, ...(hasW ? [dw] : []), ...(hasB ? [db] : [])];
};
