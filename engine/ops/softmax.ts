/**
 * Softmax, log-softmax and the fused cross-entropy loss.
 *
 * @module
 */

import { fmtShape, scope, Tensor } from "../tensor.ts";
import { noGrad, record, type VjpRule } from "../autograd.ts";
import { run } from "../dispatch.ts";
import { gpu } from "../device.ts";
import {
  crossEntropyGradElementsProgram,
  crossEntropyGradProgram,
  crossEntropyProgram,
  crossEntropyRowsProgram,
  SOFTMAX_MAX_ROW,
  softmaxGradProgram,
  softmaxProgram,
} from "../../kernels/softmax.ts";
import { add, div, exp, log as logOf, mul, sub } from "./elementwise.ts";
import { max, sum } from "./reduce.ts";
import { reshape, transpose } from "./shape.ts";

function rowsUniform(rows: number, n: number, ignore = 0, eps = 0): Uint8Array {
  const u = new ArrayBuffer(16);
  new Uint32Array(u, 0, 2).set([rows, n]);
  new Int32Array(u)[2] = ignore;
  new Float32Array(u)[3] = eps;
  return new Uint8Array(u);
}

const groups = (rows: number) => Math.ceil(rows / 64);

/**
 * Whether rows of `n` values of `x` take the long-row paths: the
 * one-invocation-per-row kernels loop over a row twice, within llvmpipe's loop
 * budget only up to {@link SOFTMAX_MAX_ROW} values (kernels/softmax.ts). A
 * tensor above one storage binding stays with the kernel, which refuses it
 * by name.
 */
const longRows = (x: Tensor, n: number) =>
  n > SOFTMAX_MAX_ROW && 4 * x.size <= gpu().limits.maxStorageBufferBindingSize;

/**
 * Softmax (or log-softmax) over the last axis of rows too long for the row
 * kernels: the row maximum and the sum of exponentials from the tree
 * reductions, the rest elementwise. Not recorded.
 */
function softmaxLong(x: Tensor, log: boolean): Tensor {
  return noGrad(() =>
    scope(() => {
      const d = sub(x, max(x, -1, true));
      const e = exp(d);
      const z = sum(e, -1, true);
      return log ? sub(d, logOf(z)) : div(e, z);
    })
  );
}

/** `log Σ exp(x)` over the last axis of `x [rows, n]`, as `[rows]`, by reductions. Not recorded. */
function logSumExp(x: Tensor): Tensor {
  return noGrad(() =>
    scope(() => {
      const m = max(x, -1, true);
      return reshape(add(m, logOf(sum(exp(sub(x, m)), -1, true))), [x.shape[0]]);
    })
  );
}

function softmaxLast(x: Tensor, log: boolean): Tensor {
  if (x.dtype !== "f32") {
    throw new TypeError(`${log ? "logSoftmax" : "softmax"}: expected f32, got ${x.dtype}`);
  }
  const n = x.shape.at(-1) ?? 1;
  const rows = n === 0 ? 0 : x.size / n;
  if (rows > 0 && longRows(x, n)) {
    const y = softmaxLong(x, log);
    record("softmax", { log }, [x], y, () => [y]);
    return y;
  }
  const out = Tensor.empty(x.shape, "f32");
  if (rows > 0) {
    run(softmaxProgram(log), {
      inputs: [x.storage],
      outputs: [out.storage],
      uniforms: rowsUniform(rows, n),
      workgroups: groups(rows),
      bytes: 8 * x.size,
      flops: 4 * x.size,
    });
  }
  record("softmax", { log }, [x], out, () => [out]);
  return out;
}

function alongAxis(x: Tensor, axis: number, f: (t: Tensor) => Tensor): Tensor {
  // A 0-d tensor has one implicit axis (axis 0 or -1), as in PyTorch.
  const a = axis < 0 ? axis + Math.max(x.ndim, 1) : axis;
  if (a < 0 || a >= Math.max(x.ndim, 1)) {
    throw new RangeError(`softmax: axis ${axis} is out of range for ${fmtShape(x.shape)}`);
  }
  if (x.ndim === 0 || a === x.ndim - 1) return f(x);
  return scope(() => transpose(f(transpose(x, a, -1)), a, -1));
}

/**
 * Softmax along `axis` (last by default), computed stably.
 *
 * @example
 * ```ts
 * import { softmax, tensor } from "../../mod.ts";
 * console.log(await softmax(tensor([1, 1])).toArray()); // [0.5, 0.5]
 * ```
 */
export function softmax(x: Tensor, axis = -1): Tensor {
  return alongAxis(x, axis, (t) => softmaxLast(t, false));
}

/** Log-softmax along `axis` (last by default), computed stably. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return alongAxis(x, axis, (t) => softmaxLast(t, true));
}

/** Options of {@link crossEntropy}. */
export interface CrossEntropyOptions {
  /** How per-row losses combine (default "mean", over rows not ignored). */
  reduction?: "mean" | "sum" | "none";
  /** Mix of the one-hot target with the uniform distribution (PyTorch's `label_smoothing`). */
  labelSmoothing?: number;
  /** Rows with this label contribute nothing (default -100, as PyTorch). */
  ignoreIndex?: number;
}

/**
 * Cross-entropy between `logits [N, C]` and integer `labels [N]` (i32), fused
 * with the log-softmax. Labels outside `[0, C)` other than the ignore index
 * give NaN.
 *
 * @example
 * ```ts
 * import { crossEntropy, tensor } from "../../mod.ts";
 * const loss = crossEntropy(tensor([2, 0, 0, 0, 2, 0], { shape: [2, 3] }), tensor([0, 1], { dtype: "i32" }));
 * console.log(await loss.item());
 * ```
 */
export function crossEntropy(
  logits: Tensor,
  labels: Tensor,
  opts: CrossEntropyOptions = {},
): Tensor {
  const { reduction = "mean", labelSmoothing = 0, ignoreIndex = -100 } = opts;
  if (logits.ndim !== 2 || labels.ndim !== 1 || labels.shape[0] !== logits.shape[0]) {
    throw new RangeError(
      `crossEntropy: expected logits [N, C] and labels [N], got ${fmtShape(logits.shape)} and ${
        fmtShape(labels.shape)
      }`,
    );
  }
  if (labels.dtype !== "i32") {
    throw new TypeError(`crossEntropy: labels must be i32, got ${labels.dtype}`);
  }
  if (logits.dtype !== "f32") {
    throw new TypeError(`crossEntropy: logits must be f32, got ${logits.dtype}`);
  }
  if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) {
    throw new RangeError(`crossEntropy: labelSmoothing must be in [0, 1], got ${labelSmoothing}`);
  }
  const [rows, n] = logits.shape;
  const loss = Tensor.empty([rows], "f32");
  const counted = Tensor.empty([rows], "f32");
  if (rows > 0 && longRows(logits, n)) {
    // Row statistics by reductions, then O(1) per row.
    const lse = logSumExp(logits);
    const tot = noGrad(() => sum(logits, -1));
    run(crossEntropyRowsProgram(), {
      inputs: [logits.storage, labels.storage, lse.storage, tot.storage],
      outputs: [loss.storage, counted.storage],
      uniforms: rowsUniform(rows, n, ignoreIndex, labelSmoothing),
      workgroups: groups(rows),
    });
    lse.dispose();
    tot.dispose();
  } else if (rows > 0) {
    run(crossEntropyProgram(), {
      inputs: [logits.storage, labels.storage],
      outputs: [loss.storage, counted.storage],
      uniforms: rowsUniform(rows, n, ignoreIndex, labelSmoothing),
      workgroups: groups(rows),
      bytes: 4 * logits.size,
      flops: 4 * logits.size,
    });
  }
  record("crossEntropy", { labelSmoothing, ignoreIndex }, [logits], loss, () => [logits, labels]);
  if (reduction === "none") {
    counted.dispose();
    return loss;
  }
  const total = sum(loss);
  loss.dispose();
  if (reduction === "sum") {
    counted.dispose();
    return total;
  }
  const count = noGrad(() => sum(counted));
  counted.dispose();
  const out = div(total, count);
  total.dispose();
  count.dispose();
  return out;
}

/** Backward of softmax / log-softmax (one fused kernel). */
export const softmaxVjp: VjpRule<"softmax"> = (node, g) => {
  const [y] = node.saved;
  const n = y.shape.at(-1) ?? 1;
  const rows = n === 0 ? 0 : y.size / n;
  if (rows > 0 && longRows(y, n)) {
    // log: g − e^y·Σg; else y·(g − Σg·y), the row sums by reductions.
    return [
      scope(() =>
        node.attrs.log
          ? sub(g, mul(exp(y), sum(g, -1, true)))
          : mul(y, sub(g, sum(mul(g, y), -1, true)))
      ),
    ];
  }
  const dx = Tensor.empty(y.shape, "f32");
  if (rows > 0) {
    run(softmaxGradProgram(node.attrs.log), {
      inputs: [y.storage, g.storage],
      outputs: [dx.storage],
      uniforms: rowsUniform(rows, n),
      workgroups: groups(rows),
    });
  }
  return [dx];
};

/** Backward of the per-row cross-entropy (one fused kernel). */
export const crossEntropyVjp: VjpRule<"crossEntropy"> = (node, g) => {
  const [x, labels] = node.saved;
  const [rows, n] = x.shape;
  const dx = Tensor.empty(x.shape, "f32");
  if (rows > 0 && longRows(x, n)) {
    const lse = logSumExp(x);
    run(crossEntropyGradElementsProgram(), {
      inputs: [x.storage, labels.storage, g.storage, lse.storage],
      outputs: [dx.storage],
      uniforms: rowsUniform(rows, n, node.attrs.ignoreIndex, node.attrs.labelSmoothing),
      workgroups: Math.ceil((rows * n) / 64),
    });
    lse.dispose();
  } else if (rows > 0) {
    run(crossEntropyGradProgram(), {
      inputs: [x.storage, labels.storage, g.storage],
      outputs: [dx.storage],
      uniforms: rowsUniform(rows, n, node.attrs.ignoreIndex, node.attrs.labelSmoothing),
      workgroups: groups(rows),
    });
  }
  return [dx];
};
