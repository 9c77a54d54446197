/**
 * Optimizers (SGD, AdamW) with one fused in-place kernel per parameter,
 * gradient clipping on the GPU, and learning-rate schedules.
 *
 * @example
 * ```ts
 * import { tensor } from "../../mod.ts";
 * import { AdamW, applySchedule, clipGradNorm, cosineLR, linearWarmup } from "./mod.ts";
 * const w = tensor([1, -2, 3], { requiresGrad: true });
 * const opt = new AdamW([w], { lr: 1e-2 });
 * const sched = linearWarmup(1e-2, 2, cosineLR(1e-2, 8));
 * for (let k = 0; k < 10; k++) {
 *   applySchedule(opt, sched, k);
 *   w.mul(w).sum().backward();
 *   clipGradNorm([w], 1);
 *   opt.step();
 *   opt.zeroGrad();
 * }
 * console.log(await w.toArray());
 * ```
 *
 * @module
 */

export {
  type BaseOptions,
  Optimizer,
  type OptimizerStateDict,
  type ParamGroup,
  type ParamGroupInput,
  type ParamState,
} from "./optimizer.ts";
export { SGD, type SGDOptions, type SGDParamGroup } from "./sgd.ts";
export { AdamW, type AdamWOptions, type AdamWParamGroup } from "./adamw.ts";
export { clipGradNorm } from "./clip.ts";
export {
  applySchedule,
  cosineLR,
  linearDecay,
  linearWarmup,
  type Schedule,
  stepLR,
} from "./schedule.ts";
