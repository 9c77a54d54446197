/**
 * Batch normalisation over NCHW tensors ({@link batchNorm2d}) with fused
 * kernels (kernels/batchnorm.ts), and its backward rule.
 *
 * Forward saves the per-channel mean and `rstd = 1/√(var + eps)` (2·C floats)
 * rather than recomputing them; backward is one reduction pass over `g` (and
 * `x`) plus one elementwise pass, and skips what is not needed: no dx pass
 * when x needs no gradient, no reduction in eval mode when only dx is needed.
 *
 * Per-channel reductions split each channel's `N·H·W` values into parts (see
 * `partsFor`) so that a few channels over a large batch still spread over
 * enough workgroups.
 *
 * Measured on llvmpipe (2 cores, Mesa 22.3) for `x [16, 64, 32, 32]` (1M
 * f32), GPU timestamps, best of 12 (`deno task profile batchnorm
 * [--op train|eval] --backward`), in ms; a relu over the same tensor takes
 * 8.0 forward / 12.1 backward, an add 11.9:
 *
 * | mode  | forward                      | backward (dx, dweight, dbias)            |
 * | ----- | ---------------------------- | ---------------------------------------- |
 * | train | 18.8 (stats 8.6, apply 10.0) | 31.2 (grad stats 13.9, dx 15.7)          |
 * | eval  | 10.0 (apply)                 | 24 (grad stats for dweight, dx as apply) |
 *
 * Reading the channel's coefficients once per 4 elements of a plane instead
 * of per element (and no `(i / S) % C`) took apply from 20.2 to 10.0 ms, and
 * dx from 38 to 26 ms in an earlier, busier run.
 *
 * @module
 */

import { fmtShape, Tensor } from "../tensor.ts";
import { record, type VjpRule } from "../autograd.ts";
import { run, vecLanes } from "../dispatch.ts";
import {
  BN_PER_THREAD,
  BN_WG,
  bnAffineProgram,
  bnDxProgram,
  bnEvalStatsProgram,
  bnFinalizeProgram,
  bnGradFinalizeProgram,
  bnGradStatsProgram,
  bnStatsProgram,
  bnUniforms,
} from "../../kernels/batchnorm.ts";
import { elementwiseGroups } from "../../kernels/elementwise.ts";
import { foldGrid } from "../../kernels/program.ts";

/** Options of {@link batchNorm2d}. */
export interface BatchNormOptions {
  /**
   * Normalise with the batch's statistics and update the running ones
   * (default false, as `torch.nn.functional.batch_norm`).
   */
  training?: boolean;
  /**
   * Weight of the batch statistics in the running update (default 0.1);
   * `null` for a cumulative average, `1 / numBatchesTracked` (needs
   * `numBatchesTracked`).
   */
  momentum?: number | null;
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
  /**
   * An i32 scalar counter (`num_batches_tracked`) incremented on the GPU in
   * place by every training-mode call that updates running statistics.
   */
  numBatchesTracked?: Tensor | null;
  /**
   * A tensor shaped like `x` added to the normalised output (before `relu`):
   * a ResNet block's shortcut, fused into the same pass.
   */
  residual?: Tensor | null;
  /** Apply ReLU to the result, in the same pass (default false). */
  relu?: boolean;
}

/** Fewest values per part of a per-channel reduction, and the most parts per channel. */
const PART_MIN = 4096;
const MAX_PARTS = 64;
/**
 * Workgroups a per-channel reduction aims for. With few channels one
 * workgroup per channel would leave most of a GPU idle; even on llvmpipe's
 * 2 threads, `[16, 4, 128, 128]` statistics take 18 ms in 4 workgroups and
 * 13 ms in 64 (16 parts per channel). With 64 channels, splitting gains nothing.
 */
const TARGET_GROUPS = 64;

/**
 * Most values one lane of a per-channel reduction visits: one loop pass each,
 * within llvmpipe's 65,535 passes per invocation (`LOOP_BUDGET`,
 * kernels/program.ts). Within one storage binding (128 MiB here) the parts
 * below already keep lanes under 8,192; this holds the bound on any adapter.
 */
const MAX_PER_LANE = 16384;

/** Parts per channel for a reduction of `M` values in each of `C` channels. */
function partsFor(C: number, M: number): number {
  const want = Math.ceil(TARGET_GROUPS / Math.max(C, 1));
  return Math.max(
    1,
    Math.min(want, MAX_PARTS, Math.floor(M / PART_MIN)),
    Math.ceil(M / (BN_WG * MAX_PER_LANE)),
  );
}

function checkChannelTensor(name: string, t: Tensor | null, C: number, x: Tensor): void {
  if (t === null) return;
  if (t.dtype !== "f32" || t.ndim !== 1 || t.shape[0] !== C) {
    throw new RangeError(
      `batchNorm2d: ${name} must be an f32 [${C}] tensor for input ${
        fmtShape(x.shape)
      }, got ${t.dtype} ${fmtShape(t.shape)}`,
    );
  }
}

/**
 * Batch normalisation of `x [N, C, H, W]` per channel, as
 * `torch.nn.functional.batch_norm`:
 * `y = (x − mean) / √(var + eps) · weight + bias`.
 *
 * In training mode mean and (biased) variance come from the batch, over N, H
 * and W, and the running statistics, when given, are updated in place on the
 * GPU: `running = (1 − momentum)·running + momentum·batch`, using the
 * *unbiased* batch variance, as PyTorch does. The update is not an op on the
 * tape: it happens in forward only and backward never sees it. In eval mode
 * the running statistics are used (and left unchanged).
 *
 * @param x `[N, C, H, W]`, f32.
 * @param weight `[C]` scale, or null for 1.
 * @param bias `[C]` shift, or null for 0.
 * @param runningMean `[C]`, updated in training mode; required in eval mode.
 * @param runningVar `[C]`, likewise.
 * @param opts Training mode, momentum, eps and the batch counter; a fused
 *   residual add and ReLU (`relu(bn(x) + residual)` in one pass forward and
 *   two backward, for ResNet's blocks).
 * @returns The normalised tensor, shaped like `x`.
 *
 * @example
 * ```ts
 * import { batchNorm2d, ones, tensor, zeros } from "../../mod.ts";
 * const x = tensor([1, 3, 5, 7], { shape: [4, 1, 1, 1] });
 * const rm = zeros([1]), rv = ones([1]);
 * const y = batchNorm2d(x, null, null, rm, rv, { training: true, eps: 0 });
 * console.log(await y.toArray()); // ≈ [-1.342, -0.447, 0.447, 1.342]
 * console.log(await rm.toArray(), await rv.toArray()); // [0.4] [1.5667]
 * ```
 */
export function batchNorm2d(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  opts: BatchNormOptions = {},
): Tensor {
  const training = opts.training ?? false;
  const eps = opts.eps ?? 1e-5;
  const momentum = opts.momentum === undefined ? 0.1 : opts.momentum;
  const counter = opts.numBatchesTracked ?? null;
  const res = opts.residual ?? null;
  const relu = opts.relu ?? false;
  if (x.dtype !== "f32" || x.ndim !== 4) {
    throw new RangeError(
      `batchNorm2d: expected an f32 [N, C, H, W] input, got ${x.dtype} ${fmtShape(x.shape)}`,
    );
  }
  const [N, C, H, W] = x.shape;
  const S = H * W;
  const M = N * S;
  if (res && (res.dtype !== "f32" || !res.shape.every((d, i) => d === x.shape[i]))) {
    throw new RangeError(
      `batchNorm2d: residual must be an f32 tensor shaped like the input ${fmtShape(x.shape)}, ` +
        `got ${res.dtype} ${fmtShape(res.shape)}`,
    );
  }
  checkChannelTensor("weight", weight, C, x);
  checkChannelTensor("bias", bias, C, x);
  checkChannelTensor("runningMean", runningMean, C, x);
  checkChannelTensor("runningVar", runningVar, C, x);
  if ((runningMean === null) !== (runningVar === null)) {
    throw new TypeError("batchNorm2d: pass both runningMean and runningVar, or neither");
  }
  if (!(eps >= 0)) throw new RangeError(`batchNorm2d: eps must be ≥ 0, got ${eps}`);
  if (momentum !== null && !(momentum >= 0 && momentum <= 1)) {
    throw new RangeError(`batchNorm2d: momentum must be in [0, 1] or null, got ${momentum}`);
  }
  if (counter && (counter.dtype !== "i32" || counter.size !== 1)) {
    throw new TypeError(
      `batchNorm2d: numBatchesTracked must be an i32 scalar, got ${counter.dtype} ${
        fmtShape(counter.shape)
      }`,
    );
  }
  const running = runningMean !== null && runningVar !== null;
  if (!training && !running) {
    throw new TypeError(
      `batchNorm2d: eval mode (training: false) needs runningMean and runningVar for input ${
        fmtShape(x.shape)
      }`,
    );
  }
  if (training && M <= 1) {
    throw new RangeError(
      `batchNorm2d: expected more than 1 value per channel when training, got input ${
        fmtShape(x.shape)
      }`,
    );
  }
  const cumulative = training && running && momentum === null;
  if (cumulative && !counter) {
    throw new TypeError("batchNorm2d: momentum null (cumulative average) needs numBatchesTracked");
  }

  const mean = Tensor.empty([C]);
  const rstd = Tensor.empty([C]);
  const coef = Tensor.empty([C, 2]);
  const wb = [...(weight ? [weight.storage] : []), ...(bias ? [bias.storage] : [])];
  const variant = { weight: weight !== null, bias: bias !== null };
  if (training) {
    const P = partsFor(C, M);
    const chunk = chunkOf(M, P, S);
    const u = bnUniforms({ N, C, S, P, chunk, eps, momentum: momentum ?? 0 });
    const part = Tensor.empty([C, P, 3]);
    const q = vecLanes(S);
    run(bnStatsProgram(q === 4), {
      inputs: [x.storage],
      outputs: [part.storage],
      uniforms: bnUniforms({ N, C, S: S / q, P, chunk: chunk / q, eps, momentum: 0 }),
      workgroups: [P, C, 1],
      bytes: 4 * x.size,
      flops: 6 * x.size,
    });
    const updates = running
      ? [runningMean!.storage, runningVar!.storage, ...(counter ? [counter.storage] : [])]
      : [];
    run(
      bnFinalizeProgram({
        ...variant,
        running,
        counter: running && counter !== null,
        cumulative,
      }),
      {
        inputs: [part.storage, ...wb],
        outputs: [mean.storage, rstd.storage, coef.storage, ...updates],
        uniforms: u,
        workgroups: 1,
      },
    );
    part.dispose();
  } else {
    run(bnEvalStatsProgram(variant), {
      inputs: [runningMean!.storage, runningVar!.storage, ...wb],
      outputs: [mean.storage, rstd.storage, coef.storage],
      uniforms: bnUniforms({ N, C, S, P: 1, chunk: 0, eps, momentum: 0 }),
      workgroups: Math.ceil(C / 64),
    });
  }
  const out = affine(x, coef, N, C, S, false, res, relu);
  coef.dispose();

  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : []), ...(res ? [res] : [])];
  record(
    "batchNorm",
    { training, weight: weight !== null, bias: bias !== null, residual: res !== null, relu },
    inputs,
    out,
    (needs) => {
      const saved = [mean, rstd];
      if ((needs[0] && training) || (weight && needs[1])) saved.push(x);
      if (needs[0] && weight) saved.push(weight);
      if (relu) saved.push(out);
      return saved;
    },
  );
  mean.dispose();
  rstd.dispose();
  return out;
}

/** Whether the elementwise passes use the per-plane schedule (see kernels/batchnorm.ts). */
const perPlane = (S: number) => S >= BN_WG;

/**
 * Values per part of a per-channel reduction split in `P` parts: a multiple
 * of the pixels per load (4 when a plane holds a multiple of 4), so that a
 * vec4 never straddles two parts.
 */
function chunkOf(M: number, P: number, S: number): number {
  const q = vecLanes(S);
  return Math.ceil(M / P / q) * q;
}

/** Workgroups of an elementwise pass over `[N, C, S]`. */
function elementwiseGrid(N: number, C: number, S: number): number | [number, number, number] {
  if (!perPlane(S)) return elementwiseGroups(N * C * S);
  const [y, z] = foldGrid(N * C);
  return [Math.ceil(S / (BN_WG * BN_PER_THREAD)), y, z];
}

/** `y = x·coef[c, 0] + coef[c, 1]` over `[N, C, S]`, then `+ res` and ReLU when asked. */
function affine(
  x: Tensor,
  coef: Tensor,
  N: number,
  C: number,
  S: number,
  backward = false,
  res: Tensor | null = null,
  relu = false,
): Tensor {
  const y = Tensor.empty(x.shape);
  if (x.size > 0) {
    const q = vecLanes(S);
    const v = { vec: q === 4, relu, residual: res !== null };
    run(bnAffineProgram(perPlane(S / q), backward, v), {
      inputs: [x.storage, coef.storage, ...(res ? [res.storage] : [])],
      outputs: [y.storage],
      uniforms: bnUniforms({ N, C, S: S / q, P: 1, chunk: 0, eps: 0, momentum: 0 }),
      workgroups: elementwiseGrid(N, C, S / q),
      bytes: (res ? 12 : 8) * x.size,
      flops: (2 + (res ? 1 : 0) + (relu ? 1 : 0)) * x.size,
    });
  }
  return y;
}

/** Backward of batch norm (see kernels/batchnorm.ts for the formulas). */
export const batchNormVjp: VjpRule<"batchNorm"> = (node, gOut) => {
  const { training, weight: hasW, bias: hasB, residual: hasR, relu } = node.attrs;
  const needX = node.needs[0];
  const needW = hasW && node.needs[1];
  const needB = hasB && node.needs[hasW ? 2 : 1];
  const needR = hasR && node.needs[node.needs.length - 1];
  const [mean, rstd, ...rest] = node.saved;
  const x = (needX && training) || needW ? rest.shift()! : null;
  const w = needX && hasW ? rest.shift()! : null;
  const y = relu ? rest.shift()! : null;
  const [N, C, H, W] = node.inputShapes[0];
  const S = H * W;
  const M = N * S;
  const q = vecLanes(S);
  const vec = q === 4;
  // With ReLU, the statistics pass also masks the gradient (gz = g where y > 0).
  const stats = needW || needB || (needX && training) || relu;
  const P = partsFor(C, M);
  const chunk = chunkOf(M, P, S);
  const u = bnUniforms({ N, C, S, P, chunk, eps: 0, momentum: 0 });
  const uq = bnUniforms({ N, C, S: S / q, P, chunk: chunk / q, eps: 0, momentum: 0 });
  let part: Tensor | null = null;
  let g = gOut;
  if (stats && M > 0) {
    part = Tensor.empty([C, P, 2]);
    const gz = relu ? Tensor.empty(gOut.shape) : null;
    run(bnGradStatsProgram(x !== null, { vec, relu }), {
      inputs: [
        gOut.storage,
        ...(x ? [x.storage, mean.storage] : []),
        ...(y ? [y.storage] : []),
      ],
      outputs: [part.storage, ...(gz ? [gz.storage] : [])],
      uniforms: uq,
      workgroups: [P, C, 1],
      bytes: 4 * ((x ? 2 : 1) + (relu ? 2 : 0)) * gOut.size,
      flops: 3 * gOut.size,
    });
    if (gz) g = gz;
  }
  const coef = needX ? Tensor.empty([C, training ? 3 : 2]) : null;
  const dw = needW ? Tensor.empty([C]) : null;
  const db = needB ? Tensor.empty([C]) : null;
  const outs = [coef, dw, db].filter((t): t is Tensor => t !== null);
  if (outs.length > 0) {
    run(
      bnGradFinalizeProgram({
        training,
        stats: part !== null,
        weight: w !== null,
        dx: needX,
        dw: needW,
        db: needB,
      }),
      {
        inputs: [
          ...(part ? [part.storage] : []),
          mean.storage,
          rstd.storage,
          ...(w ? [w.storage] : []),
        ],
        outputs: outs.map((t) => t.storage),
        uniforms: u,
        workgroups: Math.ceil(C / 64),
      },
    );
  }
  part?.dispose();
  let dx: Tensor | null = null;
  if (coef) {
    if (!training) dx = affine(g, coef, N, C, S, true);
    else {
      dx = Tensor.empty(node.inputShapes[0]);
      if (g.size > 0) {
        run(bnDxProgram(perPlane(S / q), vec), {
          inputs: [g.storage, x!.storage, coef.storage],
          outputs: [dx.storage],
          uniforms: uq,
          workgroups: elementwiseGrid(N, C, S / q),
          bytes: 12 * g.size,
          flops: 4 * g.size,
        });
      }
    }
    coef.dispose();
  }
  // The residual's gradient is the masked gradient itself (or g, without ReLU).
  const dr = needR ? g : null;
  return [dx, ...(hasW ? [dw] : []), ...(hasB ? [db] : []), ...(hasR ? [dr] : [])];
};
