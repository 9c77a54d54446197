/**
 * Batch normalisation as a layer, after `torch.nn.BatchNorm2d`.
 *
 * @module
 */

import { buffer, Module, parameter } from "./module.ts";
import { Tensor } from "../tensor.ts";
import { full, ones, zeros } from "../ops/elementwise.ts";
import { batchNorm2d } from "../ops/batchnorm.ts";

/** Options of {@link BatchNorm2d}. */
export interface BatchNorm2dOptions {
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
  /** Weight of each batch in the running statistics (default 0.1); null: cumulative average. */
  momentum?: number | null;
  /** Learn a per-channel `weight` (init 1) and `bias` (init 0) (default true). */
  affine?: boolean;
  /** Keep running statistics for eval mode (default true); without them eval uses batch statistics. */
  trackRunningStats?: boolean;
}

/** A float as Python's `repr` prints it (`1e-05`, `0.1`). */
function pyFloat(v: number): string {
  if (v !== 0 && Math.abs(v) < 1e-4) {
    return v.toExponential().replace(/e([+-])(\d)$/, "e$10$2");
  }
  return Number.isInteger(v) ? `${v}.0` : String(v);
}

/**
 * Batch normalisation of `[N, C, H, W]` per channel (PyTorch's
 * `nn.BatchNorm2d`), with PyTorch's state-dict names: parameters `weight` and
 * `bias`, buffers `running_mean`, `running_var` and `num_batches_tracked`
 * (an i32 scalar; PyTorch's is int64, and loading converts it), so
 * torchvision checkpoints load as they are.
 *
 * In training mode it normalises with the batch statistics and updates the
 * running ones in place (momentum-weighted, with the unbiased variance) and
 * increments `num_batches_tracked`; after {@link Module.eval} it normalises
 * with the running statistics and updates nothing. Without
 * `trackRunningStats` it has no buffers and always uses batch statistics.
 *
 * **Frozen BatchNorm.** {@link Module.freeze} (or `requiresGrad = false` on
 * `weight` and `bias`) stops gradients only: as in PyTorch, the running
 * statistics still update whenever the layer is in training mode, because
 * they are buffers, not parameters. To freeze the statistics too (fine-tuning
 * with small batches, detection backbones' "FrozenBatchNorm"), put the layer
 * in eval mode, and do it again after every `model.train()` since that sets
 * training mode on all sub-modules:
 *
 * ```ts ignore
 * model.train();
 * for (const m of model.modules()) if (m instanceof nn.BatchNorm2d) m.freeze().eval();
 * ```
 *
 * A frozen layer in eval mode whose input needs no gradient records nothing
 * on the tape and keeps no activations.
 *
 * @example
 * ```ts
 * import { randn } from "../../mod.ts";
 * import { BatchNorm2d } from "./batchnorm.ts";
 * const bn = new BatchNorm2d(8);
 * console.log(Object.keys(bn.stateDict()));
 * // ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
 * const y = bn.forward(randn([4, 8, 5, 5])); // batch statistics; running ones updated
 * console.log(y.shape, await bn.num_batches_tracked!.item()); // [4, 8, 5, 5] 1
 * ```
 */
export class BatchNorm2d extends Module {
  /** Number of channels C. */
  readonly numFeatures: number;
  /** Added to the variance. */
  eps: number;
  /** Weight of each batch in the running statistics; null: cumulative average. */
  momentum: number | null;
  /** Whether `weight` and `bias` exist. */
  readonly affine: boolean;
  /** Whether the running statistics exist. */
  readonly trackRunningStats: boolean;
  /** `[C]` scale (init 1), or null without `affine`. */
  weight: Tensor | null;
  /** `[C]` shift (init 0), or null without `affine`. */
  bias: Tensor | null;
  /** `[C]` running mean (init 0), or null without `trackRunningStats`. */
  running_mean: Tensor | null;
  /** `[C]` running variance (init 1), or null without `trackRunningStats`. */
  running_var: Tensor | null;
  /** i32 scalar `[]`: training-mode forward passes so far, or null without `trackRunningStats`. */
  num_batches_tracked: Tensor | null;

  /**
   * @param numFeatures Channels C of the input.
   * @param opts eps, momentum, affine, trackRunningStats.
   */
  constructor(numFeatures: number, opts: BatchNorm2dOptions = {}) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures < 1) {
      throw new RangeError(`BatchNorm2d: numFeatures must be an integer ≥ 1, got ${numFeatures}`);
    }
    this.numFeatures = numFeatures;
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum === undefined ? 0.1 : opts.momentum;
    this.affine = opts.affine ?? true;
    this.trackRunningStats = opts.trackRunningStats ?? true;
    this.weight = this.affine ? parameter(ones([numFeatures])) : null;
    this.bias = this.affine ? parameter(zeros([numFeatures])) : null;
    const track = this.trackRunningStats;
    this.running_mean = track ? buffer(zeros([numFeatures])) : null;
    this.running_var = track ? buffer(ones([numFeatures])) : null;
    this.num_batches_tracked = track ? buffer(full([], 0, "i32")) : null;
  }

  /** Normalises `x [N, C, H, W]`. */
  forward(x: Tensor): Tensor {
    return this.forwardFused(x);
  }

  /**
   * `relu(bn(x) + residual)` with the add and the ReLU fused into batch
   * norm's own passes (either may be left out): what `nn.Sequential` runs for
   * a BatchNorm2d followed by a ReLU, and ResNet for its block ends. Unlike
   * `forward`, it does not run this module's forward hooks or override.
   */
  forwardFused(x: Tensor, opts: { residual?: Tensor | null; relu?: boolean } = {}): Tensor {
    if (!(x instanceof Tensor) || x.ndim !== 4 || x.shape[1] !== this.numFeatures) {
      throw new RangeError(
        `BatchNorm2d(${this.numFeatures}): expected an input [N, ${this.numFeatures}, H, W], got ${x}`,
      );
    }
    // PyTorch: batch statistics in training mode, and always when no running ones are kept.
    const useBatch = this.training || this.running_mean === null;
    const update = this.training && this.running_mean !== null;
    return batchNorm2d(
      x,
      this.weight,
      this.bias,
      update || !useBatch ? this.running_mean : null,
      update || !useBatch ? this.running_var : null,
      {
        training: useBatch,
        momentum: this.momentum,
        eps: this.eps,
        numBatchesTracked: update ? this.num_batches_tracked : null,
        residual: opts.residual ?? null,
        relu: opts.relu ?? false,
      },
    );
  }

  /** `8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True`, as PyTorch prints it. */
  override extraRepr(): string {
    const b = (v: boolean) => (v ? "True" : "False");
    return `${this.numFeatures}, eps=${pyFloat(this.eps)}, momentum=${
      this.momentum === null ? "None" : pyFloat(this.momentum)
    }, affine=${b(this.affine)}, track_running_stats=${b(this.trackRunningStats)}`;
  }
}
