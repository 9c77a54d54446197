/**
 * 2-D pooling over NCHW tensors (`[N, C, H, W]`, or `[C, H, W]` without a
 * batch axis): {@link maxPool2d}, {@link avgPool2d} and
 * {@link adaptiveAvgPool2d}, with PyTorch's output sizes, padding and
 * tie-breaking rules, and their backward rules.
 *
 * Max pooling keeps the argmax indices (i32, one per output, 4 bytes per
 * output element) for backward instead of the input, and the backward is a
 * gather: each input element sums the gradients of the windows that picked
 * it, so results do not depend on scheduling (see kernels/pool.ts).
 *
 * Measured on llvmpipe (2 cores, Mesa 22.3) for `x [16, 64, 32, 32]` (1M
 * f32), GPU timestamps, best of 12 (`deno task profile pool --op max|avg|
 * adaptive [--k 3 --stride 2 --pad 1] --backward`), in ms, forward / backward
 * (backward = dx incl. any zero fill); a relu over the same tensor takes
 * 8.0 / 12.1:
 *
 * | op                          | forward | backward |
 * | --------------------------- | ------- | -------- |
 * | maxPool2d k2 s2 (scatter)   | 7.1     | 6.4      |
 * | maxPool2d k3 s2 p1 (gather) | 15.0    | 35.3     |
 * | avgPool2d k2 s2             | 8.5     | 24.4     |
 * | avgPool2d k3 s2 p1          | 14.3    | 32.1     |
 * | adaptiveAvgPool2d → 7×7     | 7.7     | 40.8     |
 * | adaptiveAvgPool2d → 1×1     | 4.7     | 8.7      |
 *
 * The gather backwards cost one invocation per input with a few scalarised
 * integer divisions each; the first version (linear index, one division and
 * modulo per window offset) took 48 / 62 ms for max k2 / k3 and 42 / 61 ms
 * for avg, and a runtime branch for global pooling instead of a separate
 * pipeline 24 ms (llvmpipe runs both sides of a non-uniform-looking branch).
 *
 * @module
 */

import { fmtShape, scope, sizeOf, Tensor, tracks } from "../tensor.ts";
import { record, type VjpRule } from "../autograd.ts";
import { run } from "../dispatch.ts";
import {
  adaptiveAvgPoolBackwardProgram,
  adaptiveAvgPoolForwardProgram,
  avgPoolBackwardProgram,
  avgPoolForwardProgram,
  maxPoolBackwardProgram,
  maxPoolForwardProgram,
  maxPoolScatterProgram,
  POOL_TILE,
  POOL_TILE_ROWS,
  POOL_UNIFORMS,
  POOL_WG,
} from "../../kernels/pool.ts";
import { type KernelProgram, LOOP_LIMIT } from "../../kernels/program.ts";
import { reshape } from "./shape.ts";
import { zeros } from "./elementwise.ts";
import { mean } from "./reduce.ts";

/**
 * Loop passes of a pooling kernel invocation over windows of `h × w` values
 * (forward) or `h × w` candidate windows (backward, {@link POOL_TILE_ROWS}
 * inputs per invocation), counting a pass per loop exit: llvmpipe allows
 * 65,535 per invocation in all (`LOOP_BUDGET`, kernels/program.ts), so no
 * kernel may exceed {@link LOOP_LIMIT} of them.
 */
function windowPasses(h: number, w: number): number {
  return POOL_TILE_ROWS * (h + 2) * (w + 2);
}

/** A size per spatial axis: one number for both, or `[h, w]`. */
export type Size2 = number | readonly [number, number];

/** Options of {@link maxPool2d}. */
export interface MaxPool2dOptions {
  /** Window size. */
  kernelSize: Size2;
  /** Step between windows (default: `kernelSize`). */
  stride?: Size2;
  /** Implicit −∞ padding on each side, at most half the kernel size (default 0). */
  padding?: Size2;
  /** Spacing between window elements (default 1). */
  dilation?: Size2;
  /** Rounds the output size up instead of down (default false). */
  ceilMode?: boolean;
}

/** Options of {@link avgPool2d}. */
export interface AvgPool2dOptions {
  /** Window size. */
  kernelSize: Size2;
  /** Step between windows (default: `kernelSize`). */
  stride?: Size2;
  /** Implicit zero padding on each side, at most half the kernel size (default 0). */
  padding?: Size2;
  /** Rounds the output size up instead of down (default false). */
  ceilMode?: boolean;
  /** Whether padded zeros count in the divisor (default true, as PyTorch). */
  countIncludePad?: boolean;
  /** Divides every window sum by this instead of the window size (PyTorch's `divisor_override`). */
  divisorOverride?: number;
}

/** Normalised pooling geometry: `[h, w]` per parameter. */
interface Geometry {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
}

function pair(op: string, name: string, v: Size2, min: number): [number, number] {
  const p: [number, number] = typeof v === "number" ? [v, v] : [v[0], v[1]];
  if (
    (typeof v !== "number" && (v as readonly number[]).length !== 2) ||
    !p.every((d) => Number.isInteger(d) && d >= min)
  ) {
    throw new RangeError(
      `${op}: ${name} must be an integer ≥ ${min} or a pair of them, got ${JSON.stringify(v)}`,
    );
  }
  return p;
}

/** PyTorch's `pooling_output_shape`. */
function outSize(i: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const span = i + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0);
  let o = Math.floor(span / s) + 1;
  // The last window must start inside the input or the left padding.
  if (ceil && (o - 1) * s >= i + p) o--;
  return o;
}

/** Checks the input's rank and dtype; returns it as 4-D plus whether it was 3-D. */
function as4d(op: string, x: Tensor): [Tensor, boolean] {
  if (x.dtype !== "f32") {
    throw new TypeError(`${op}: expected an f32 tensor, got ${x.dtype} ${fmtShape(x.shape)}`);
  }
  if (x.ndim === 4) return [x, false];
  if (x.ndim === 3) return [reshape(x, [1, ...x.shape]), true];
  throw new RangeError(
    `${op}: expected a 3-D [C, H, W] or 4-D [N, C, H, W] input, got ${fmtShape(x.shape)}`,
  );
}

function geometry(
  op: string,
  x: Tensor,
  o: { kernelSize: Size2; stride?: Size2; padding?: Size2; dilation?: Size2; ceilMode?: boolean },
): { g: Geometry; oh: number; ow: number } {
  const kernel = pair(op, "kernelSize", o.kernelSize, 1);
  const stride = o.stride === undefined ? kernel : pair(op, "stride", o.stride, 1);
  const padding = pair(op, "padding", o.padding ?? 0, 0);
  const dilation = pair(op, "dilation", o.dilation ?? 1, 1);
  if (padding[0] > kernel[0] >> 1 || padding[1] > kernel[1] >> 1) {
    throw new RangeError(
      `${op}: padding ${fmtShape(padding)} must be at most half of kernelSize ${fmtShape(kernel)}`,
    );
  }
  if (windowPasses(kernel[0], kernel[1]) > LOOP_LIMIT) {
    throw new RangeError(
      `${op}: kernelSize ${fmtShape(kernel)} is too large: the kernels loop over a window per ` +
        `invocation, and llvmpipe ends a shader's loops after 65,535 passes`,
    );
  }
  const [H, W] = x.shape.slice(-2);
  const oh = outSize(H, kernel[0], stride[0], padding[0], dilation[0], o.ceilMode ?? false);
  const ow = outSize(W, kernel[1], stride[1], padding[1], dilation[1], o.ceilMode ?? false);
  if (oh < 1 || ow < 1) {
    throw new RangeError(
      `${op}: input ${fmtShape(x.shape)} is too small for kernelSize ${fmtShape(kernel)}, ` +
        `padding ${fmtShape(padding)}, dilation ${
          fmtShape(dilation)
        }: the output would be ${oh}×${ow}`,
    );
  }
  return { g: { kernel, stride, padding, dilation }, oh, ow };
}

function uniforms(
  n: number,
  H: number,
  W: number,
  OH: number,
  OW: number,
  g: Geometry | null,
  extra: { countIncludePad?: boolean; divisor?: number } = {},
): Uint32Array {
  const v: Record<(typeof POOL_UNIFORMS)[number], number> = {
    n,
    H,
    W,
    OH,
    OW,
    kH: g?.kernel[0] ?? 0,
    kW: g?.kernel[1] ?? 0,
    sH: g?.stride[0] ?? 1,
    sW: g?.stride[1] ?? 1,
    pH: g?.padding[0] ?? 0,
    pW: g?.padding[1] ?? 0,
    dH: g?.dilation[0] ?? 1,
    dW: g?.dilation[1] ?? 1,
    countIncludePad: (extra.countIncludePad ?? true) ? 1 : 0,
    divisor: extra.divisor ?? 0,
    planeBase: 0,
  };
  return Uint32Array.from(POOL_UNIFORMS, (k) => v[k]);
}

function launch(
  program: KernelProgram,
  inputs: Tensor[],
  outputs: Tensor[],
  u: Uint32Array,
  reads: number,
): void {
  const n = u[0];
  if (n === 0) return;
  run(program, {
    inputs: inputs.map((t) => t.storage),
    outputs: outputs.map((t) => t.storage),
    uniforms: u,
    workgroups: Math.ceil(n / POOL_WG),
    bytes: 4 * (n * outputs.length + reads),
    flops: reads,
  });
}

/** A backward pass over input planes, in tiles (see kernels/pool.ts), ≤ 65,535 planes per dispatch. */
function launchTiled(
  program: KernelProgram,
  inputs: Tensor[],
  out: Tensor,
  u: Uint32Array,
  reads: number,
): void {
  const [N, C, H, W] = out.shape;
  const planes = N * C;
  if (out.size === 0) return;
  const base = POOL_UNIFORMS.indexOf("planeBase");
  for (let p0 = 0; p0 < planes; p0 += 65535) {
    const n = Math.min(65535, planes - p0);
    const uu = u.slice();
    uu[base] = p0;
    run(program, {
      inputs: inputs.map((t) => t.storage),
      outputs: [out.storage],
      uniforms: uu,
      workgroups: [Math.ceil(W / POOL_TILE), Math.ceil(H / (POOL_TILE * POOL_TILE_ROWS)), n],
      bytes: 4 * (n * H * W + (reads * n) / planes),
      flops: (reads * n) / planes,
    });
  }
}

function restore(out: Tensor, was3d: boolean): Tensor {
  return was3d ? reshape(out, out.shape.slice(1)) : out;
}

// ---------------------------------------------------------------- max

function maxPoolRaw(
  x: Tensor,
  opts: MaxPool2dOptions,
  indices: boolean,
): { out: Tensor; idx: Tensor | null; x4: Tensor; was3d: boolean; g: Geometry } {
  const [x4, was3d] = as4d("maxPool2d", x);
  const { g, oh, ow } = geometry("maxPool2d", x4, opts);
  const [N, C, H, W] = x4.shape;
  const shape = [N, C, oh, ow];
  const out = Tensor.empty(shape);
  const idx = indices ? Tensor.empty(shape, "i32") : null;
  const n = sizeOf(shape);
  launch(
    maxPoolForwardProgram(indices),
    [x4],
    idx ? [out, idx] : [out],
    uniforms(n, H, W, oh, ow, g),
    n * g.kernel[0] * g.kernel[1],
  );
  return { out, idx, x4, was3d, g };
}

/**
 * 2-D max pooling, as `torch.nn.functional.max_pool2d`: padding counts as −∞,
 * the first maximum of a window wins ties (it receives the whole gradient)
 * and NaN propagates. The output size per axis is
 * `⌊(H + 2·padding − dilation·(kernelSize − 1) − 1) / stride⌋ + 1` (rounded
 * up with `ceilMode`, dropping a last window that would start in the right
 * padding).
 *
 * @param x `[N, C, H, W]` or `[C, H, W]`, f32.
 * @param opts Kernel size, stride, padding, dilation and ceil mode.
 * @returns `[N, C, OH, OW]` (or `[C, OH, OW]`).
 *
 * @example
 * ```ts
 * import { maxPool2d, tensor } from "../../mod.ts";
 * const x = tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], { shape: [1, 1, 4, 4] });
 * console.log(await maxPool2d(x, { kernelSize: 2 }).toArray()); // [6, 8, 14, 16]
 * ```
 */
export function maxPool2d(x: Tensor, opts: MaxPool2dOptions): Tensor {
  const rec = tracks(x);
  const { out, idx, x4, was3d, g } = maxPoolRaw(x, opts, rec);
  record("maxPool2d", { ...g }, [x4], out, () => [idx!]);
  idx?.dispose();
  return restore(out, was3d);
}

/**
 * {@link maxPool2d} that also returns the argmax of each window as flat i32
 * positions `ih·W + iw` within the input plane (PyTorch's
 * `return_indices=True`; PyTorch's indices are int64).
 *
 * @example
 * ```ts
 * import { maxPool2dWithIndices, tensor } from "../../mod.ts";
 * const x = tensor([1, 5, 3, 2], { shape: [1, 1, 2, 2] });
 * const [y, idx] = maxPool2dWithIndices(x, { kernelSize: 2 });
 * console.log(await y.toArray(), await idx.toArray()); // [5] [1]
 * ```
 */
export function maxPool2dWithIndices(x: Tensor, opts: MaxPool2dOptions): [Tensor, Tensor] {
  const { out, idx, x4, was3d, g } = maxPoolRaw(x, opts, true);
  record("maxPool2d", { ...g }, [x4], out, () => [idx!]);
  return [restore(out, was3d), restore(idx!, was3d)];
}

/**
 * Backward of max pooling: each input sums the gradients of the windows that
 * picked it (a gather over candidate windows), or, when windows cannot
 * overlap, each output writes its gradient to its argmax in zeros.
 */
export const maxPool2dVjp: VjpRule<"maxPool2d"> = (node, grad) => {
  const [idx] = node.saved;
  const [N, C, H, W] = node.inputShapes[0];
  const [, , OH, OW] = grad.shape;
  const { kernel: k, stride: s, dilation: d } = node.attrs;
  const u = uniforms(N * C * H * W, H, W, OH, OW, node.attrs);
  if ((k[0] - 1) * d[0] + 1 <= s[0] && (k[1] - 1) * d[1] + 1 <= s[1]) {
    const dx = zeros([N, C, H, W]);
    u[0] = grad.size;
    launch(maxPoolScatterProgram(), [grad, idx], [dx], u, 2 * grad.size);
    return [dx];
  }
  const dx = Tensor.empty([N, C, H, W]);
  const dilated = d[0] > 1 || d[1] > 1;
  launchTiled(maxPoolBackwardProgram(dilated), [grad, idx], dx, u, 2 * dx.size * k[0] * k[1]);
  return [dx];
};

// ---------------------------------------------------------------- average

/**
 * 2-D average pooling, as `torch.nn.functional.avg_pool2d`: with
 * `countIncludePad` (the default) a window's divisor counts the zero padding
 * it covers, without it only the input elements; `divisorOverride` replaces
 * the divisor. Output sizes as in {@link maxPool2d} (dilation 1).
 *
 * @param x `[N, C, H, W]` or `[C, H, W]`, f32.
 * @param opts Kernel size, stride, padding, ceil mode and divisor options.
 * @returns `[N, C, OH, OW]` (or `[C, OH, OW]`).
 *
 * @example
 * ```ts
 * import { avgPool2d, tensor } from "../../mod.ts";
 * const x = tensor([1, 2, 3, 4], { shape: [1, 1, 2, 2] });
 * console.log(await avgPool2d(x, { kernelSize: 2 }).toArray()); // [2.5]
 * ```
 */
export function avgPool2d(x: Tensor, opts: AvgPool2dOptions): Tensor {
  const [x4, was3d] = as4d("avgPool2d", x);
  const { g, oh, ow } = geometry("avgPool2d", x4, { ...opts, dilation: 1 });
  const d = opts.divisorOverride;
  if (d !== undefined && !(Number.isInteger(d) && d > 0)) {
    throw new RangeError(`avgPool2d: divisorOverride must be a positive integer, got ${d}`);
  }
  const [N, C, H, W] = x4.shape;
  const out = Tensor.empty([N, C, oh, ow]);
  const n = N * C * oh * ow;
  const countIncludePad = opts.countIncludePad ?? true;
  const divisor = d ?? 0;
  launch(
    avgPoolForwardProgram(),
    [x4],
    [out],
    uniforms(n, H, W, oh, ow, g, { countIncludePad, divisor }),
    n * g.kernel[0] * g.kernel[1],
  );
  record("avgPool2d", { ...g, countIncludePad, divisor }, [x4], out);
  return restore(out, was3d);
}

/** Backward of average pooling: each window spreads `g / divisor` over the inputs it summed. */
export const avgPool2dVjp: VjpRule<"avgPool2d"> = (node, grad) => {
  const [N, C, H, W] = node.inputShapes[0];
  const [, , OH, OW] = grad.shape;
  const dx = Tensor.empty([N, C, H, W]);
  const n = N * C * H * W;
  const a = node.attrs;
  launchTiled(
    avgPoolBackwardProgram(),
    [grad],
    dx,
    uniforms(n, H, W, OH, OW, a, { countIncludePad: a.countIncludePad, divisor: a.divisor }),
    n * a.kernel[0] * a.kernel[1],
  );
  return [dx];
};

// ---------------------------------------------------------------- adaptive

/**
 * Adaptive average pooling to a fixed output size, as
 * `torch.nn.functional.adaptive_avg_pool2d`: output row `i` averages input
 * rows `⌊i·H/OH⌋ .. ⌈(i+1)·H/OH⌉ − 1` (windows may overlap or differ in size),
 * and likewise for columns. `[1, 1]` is global average pooling. A `null` size
 * keeps the input's size on that axis.
 *
 * @param x `[N, C, H, W]` or `[C, H, W]`, f32.
 * @param outputSize `[OH, OW]`, or one number for both.
 * @returns `[N, C, OH, OW]` (or `[C, OH, OW]`).
 *
 * @example
 * ```ts
 * import { adaptiveAvgPool2d, tensor } from "../../mod.ts";
 * const x = tensor([1, 2, 3, 4, 5, 6], { shape: [1, 1, 2, 3] });
 * console.log(await adaptiveAvgPool2d(x, [1, 1]).toArray()); // [3.5]
 * ```
 */
export function adaptiveAvgPool2d(
  x: Tensor,
  outputSize: number | readonly [number | null, number | null],
): Tensor {
  const [x4, was3d] = as4d("adaptiveAvgPool2d", x);
  const [N, C, H, W] = x4.shape;
  const req = typeof outputSize === "number" ? [outputSize, outputSize] : outputSize;
  const [oh, ow] = [req[0] ?? H, req[1] ?? W];
  if (req.length !== 2 || ![oh, ow].every((d) => Number.isInteger(d) && d >= 1)) {
    throw new RangeError(
      `adaptiveAvgPool2d: outputSize must be positive integers [OH, OW], got ${
        JSON.stringify(outputSize)
      }`,
    );
  }
  if (H === 0 || W === 0) {
    throw new RangeError(`adaptiveAvgPool2d: input ${fmtShape(x.shape)} has an empty plane`);
  }
  // Windows (forward) or candidate windows (backward) per axis, at most.
  const span = (n: number, o: number) => Math.max(Math.ceil(n / o), Math.ceil(o / n)) + 1;
  if (windowPasses(span(H, oh), span(W, ow)) > LOOP_LIMIT) {
    return adaptiveSeparable(x, H, W, oh, ow);
  }
  const out = Tensor.empty([N, C, oh, ow]);
  const n = N * C * oh * ow;
  launch(
    adaptiveAvgPoolForwardProgram(),
    [x4],
    [out],
    uniforms(n, H, W, oh, ow, null),
    N * C * H * W,
  );
  record("adaptiveAvgPool2d", {}, [x4], out);
  return restore(out, was3d);
}

/**
 * Adaptive average pooling with windows too large for one kernel invocation
 * (llvmpipe's loop budget, see {@link windowPasses}): the rows, then the
 * columns (the mean over a rectangle is the mean of its row means), each a
 * recorded op of its own; an axis whose windows alone are too large is
 * averaged by the reductions (one output, or equal windows), else refused.
 */
function adaptiveSeparable(x: Tensor, H: number, W: number, oh: number, ow: number): Tensor {
  if (oh !== H && ow !== W) {
    return scope(() => adaptiveAvgPool2d(adaptiveAvgPool2d(x, [oh, W]), [oh, ow]));
  }
  const [n, o, axis] = oh !== H ? [H, oh, x.ndim - 2] : [W, ow, x.ndim - 1];
  if (o === 1) return mean(x, axis, true);
  if (n % o === 0) {
    // Equal windows of n / o: a reshape and a mean.
    return scope(() => {
      const split = [...x.shape.slice(0, axis), o, n / o, ...x.shape.slice(axis + 1)];
      return mean(reshape(x, split), axis + 1);
    });
  }
  throw new RangeError(
    `adaptiveAvgPool2d: input ${fmtShape(x.shape)} to ${oh}×${ow} needs windows of ${
      Math.ceil(n / o)
    } values, too many for one kernel invocation (llvmpipe ends a shader's loops after 65,535 ` +
      `passes)`,
  );
}

/** Backward of adaptive average pooling. */
export const adaptiveAvgPool2dVjp: VjpRule<"adaptiveAvgPool2d"> = (node, grad) => {
  const [N, C, H, W] = node.inputShapes[0];
  const [, , OH, OW] = grad.shape;
  const dx = Tensor.empty([N, C, H, W]);
  const n = N * C * H * W;
  launchTiled(
    adaptiveAvgPoolBackwardProgram(OH === 1 && OW === 1),
    [grad],
    dx,
    uniforms(n, H, W, OH, OW, null),
    n,
  );
  return [dx];
};
