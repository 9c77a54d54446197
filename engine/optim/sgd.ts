/**
 * Stochastic gradient descent with momentum, dampening, Nesterov momentum and
 * L2 weight decay, with the semantics of `torch.optim.SGD`.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";
import { bindingChunks, rangeOf, run, vecLanes } from "../dispatch.ts";
import { elementwiseGroups } from "../../kernels/elementwise.ts";
import { sgdProgram, sgdUniforms } from "../../kernels/optimizer.ts";
import {
  checkNonNegative,
  Optimizer,
  type ParamGroup,
  type ParamGroupInput,
  type ParamState,
} from "./optimizer.ts";

/** Hyperparameters of {@link SGD}. */
export interface SGDOptions {
  /** Learning rate. */
  lr: number;
  /** Momentum factor μ (0 disables the momentum buffer). Default 0. */
  momentum: number;
  /** Dampening of the gradient added to the momentum buffer. Default 0. */
  dampening: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0). Default false. */
  nesterov: boolean;
  /** L2 penalty added to the gradient (`g + wd·p`). Default 0. */
  weightDecay: number;
}

/** A parameter group of {@link SGD}. */
export type SGDParamGroup = ParamGroupInput<SGDOptions>;

/**
 * SGD, one fused kernel per parameter, exactly as PyTorch computes it:
 * `d = g + wd·p`; with momentum, `buf = d` on a parameter's first step and
 * `buf = μ·buf + (1 − dampening)·d` after; then `d = d + μ·buf` (Nesterov) or
 * `d = buf`; finally `p -= lr·d`.
 *
 * State: `momentum_buffer` per parameter when momentum > 0.
 *
 * @example
 * ```ts
 * import { tensor } from "../../mod.ts";
 * import { SGD } from "./sgd.ts";
 * const w = tensor([1, 2], { requiresGrad: true });
 * const opt = new SGD([w], { lr: 0.1, momentum: 0.9 });
 * w.mul(w).sum().backward();
 * opt.step();
 * opt.zeroGrad();
 * console.log(await w.toArray()); // [0.8, 1.6]
 * ```
 */
export class SGD extends Optimizer<SGDOptions> {
  /**
   * @param params Parameters, or groups `{params, lr?, momentum?, ...}` whose options override `opts`.
   * @param opts Hyperparameters; `lr` is required.
   */
  constructor(
    params: Tensor[] | SGDParamGroup[],
    opts: Partial<SGDOptions> & { lr: number },
  ) {
    super("SGD", params, {
      lr: opts.lr,
      momentum: opts.momentum ?? 0,
      dampening: opts.dampening ?? 0,
      nesterov: opts.nesterov ?? false,
      weightDecay: opts.weightDecay ?? 0,
    }, opts);
  }

  protected override validate(g: SGDOptions, where: string): void {
    checkNonNegative(g.lr, "learning rate", where);
    checkNonNegative(g.momentum, "momentum", where);
    checkNonNegative(g.dampening, "dampening", where);
    checkNonNegative(g.weightDecay, "weight decay", where);
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) {
      throw new RangeError(
        `${where}: Nesterov momentum requires a momentum > 0 and zero dampening`,
      );
    }
  }

  protected override update(
    param: Tensor,
    grad: Tensor,
    group: ParamGroup<SGDOptions>,
    state: ParamState,
  ): void {
    const withMomentum = group.momentum !== 0;
    const buf = withMomentum ? this.buffer(param, state, "momentum_buffer") : null;
    // Parameters above one binding's limit (VGG's 411 MB classifier weight) update piecewise.
    for (const [start, n] of bindingChunks(param.size)) {
      const r = (t: Tensor) => rangeOf(t.storage, start, n);
      const q = vecLanes(n);
      run(sgdProgram(withMomentum, q === 4), {
        inputs: [r(grad)],
        outputs: buf ? [r(param), r(buf.tensor)] : [r(param)],
        uniforms: sgdUniforms({
          n: n / q,
          first: buf?.fresh ?? false,
          nesterov: group.nesterov,
          lr: group.lr,
          momentum: group.momentum,
          dampening: group.dampening,
          weightDecay: group.weightDecay,
        }),
        workgroups: elementwiseGroups(n / q),
        flops: (withMomentum ? 7 : 3) * n,
        bytes: (withMomentum ? 20 : 12) * n,
      });
    }
  }

  protected override requiredBuffers(group: ParamGroup<SGDOptions>): string[] {
    return group.momentum !== 0 ? ["momentum_buffer"] : [];
  }

  protected override bufferNames(): readonly string[] {
    return ["momentum_buffer"];
  }
}
