/**
 * AdamW (Adam with decoupled weight decay; Loshchilov & Hutter, "Decoupled
 * Weight Decay Regularization", ICLR 2019), with the semantics of
 * `torch.optim.AdamW`.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";
import { bindingChunks, rangeOf, run, vecLanes } from "../dispatch.ts";
import { elementwiseGroups } from "../../kernels/elementwise.ts";
import { adamwProgram, adamwUniforms } from "../../kernels/optimizer.ts";
import {
  checkNonNegative,
  Optimizer,
  type ParamGroup,
  type ParamGroupInput,
  type ParamState,
} from "./optimizer.ts";

/** Hyperparameters of {@link AdamW}. */
export interface AdamWOptions {
  /** Learning rate. Default 1e-3. */
  lr: number;
  /** Decay rates (β₁, β₂) of the first and second moment estimates. Default [0.9, 0.999]. */
  betas: [number, number];
  /** Added to the denominator for stability. Default 1e-8. */
  eps: number;
  /** Decoupled weight decay: `p *= 1 − lr·wd` each step. Default 0.01. */
  weightDecay: number;
}

/** A parameter group of {@link AdamW}. */
export type AdamWParamGroup = ParamGroupInput<AdamWOptions>;

/**
 * AdamW, one fused kernel per parameter, exactly as PyTorch computes it: with
 * `t` the parameter's own step count, `p *= 1 − lr·wd`; `m = β₁m + (1−β₁)g`;
 * `v = β₂v + (1−β₂)g²`; `p -= (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)`.
 *
 * State: `exp_avg` (m) and `exp_avg_sq` (v) per parameter, allocated at its
 * first gradient. A parameter frozen for some steps keeps its own `t`, so its
 * bias correction restarts correctly when it is unfrozen.
 *
 * @example
 * ```ts
 * import { tensor } from "../../mod.ts";
 * import { AdamW } from "./adamw.ts";
 * const w = tensor([1, -2], { requiresGrad: true });
 * const opt = new AdamW([w], { lr: 0.1, weightDecay: 0 });
 * w.mul(w).sum().backward();
 * opt.step(); // the first Adam step moves each weight by about lr against its gradient's sign
 * opt.zeroGrad();
 * console.log(await w.toArray()); // ≈ [0.9, -1.9]
 * ```
 */
export class AdamW extends Optimizer<AdamWOptions> {
  /**
   * @param params Parameters, or groups `{params, lr?, betas?, ...}` whose options override `opts`.
   * @param opts Hyperparameters.
   */
  constructor(params: Tensor[] | AdamWParamGroup[], opts: Partial<AdamWOptions> = {}) {
    super("AdamW", params, {
      lr: opts.lr ?? 1e-3,
      betas: opts.betas ?? [0.9, 0.999],
      eps: opts.eps ?? 1e-8,
      weightDecay: opts.weightDecay ?? 0.01,
    }, opts);
  }

  protected override validate(g: AdamWOptions, where: string): void {
    checkNonNegative(g.lr, "learning rate", where);
    checkNonNegative(g.eps, "epsilon", where);
    checkNonNegative(g.weightDecay, "weight decay", where);
    if (!Array.isArray(g.betas) || g.betas.length !== 2) {
      throw new RangeError(`${where}: betas must be a pair [β₁, β₂]`);
    }
    g.betas.forEach((b, i) => {
      if (typeof b !== "number" || !(b >= 0 && b < 1)) {
        throw new RangeError(
          `${where}: invalid beta parameter at index ${i}: ${b} (need 0 ≤ β < 1)`,
        );
      }
    });
  }

  protected override update(
    param: Tensor,
    grad: Tensor,
    group: ParamGroup<AdamWOptions>,
    state: ParamState,
  ): void {
    const m = this.buffer(param, state, "exp_avg").tensor;
    const v = this.buffer(param, state, "exp_avg_sq").tensor;
    // Parameters above one binding's limit update piecewise.
    for (const [start, n] of bindingChunks(param.size)) {
      const r = (t: Tensor) => rangeOf(t.storage, start, n);
      const q = vecLanes(n);
      run(adamwProgram(q === 4), {
        inputs: [r(grad)],
        outputs: [r(param), r(m), r(v)],
        uniforms: adamwUniforms({
          n: n / q,
          step: state.step,
          lr: group.lr,
          beta1: group.betas[0],
          beta2: group.betas[1],
          eps: group.eps,
          weightDecay: group.weightDecay,
        }),
        workgroups: elementwiseGroups(n / q),
        flops: 14 * n,
        bytes: 28 * n,
      });
    }
  }

  protected override requiredBuffers(): string[] {
    return ["exp_avg", "exp_avg_sq"];
  }

  protected override bufferNames(): readonly string[] {
    return ["exp_avg", "exp_avg_sq"];
  }
}
