/**
 * Layer freezing: the controllers that decide when a front block of a model
 * has converged and stop training it. The linear schedule and AutoFreeze are
 * the SmartFRZ paper's baselines; the attention-based SmartFRZ predictor
 * builds on the same units and hooks.
 *
 * @module
 */

export { AutoFreeze, type AutoFreezeOptions } from "./autofreeze.ts";
export { LinearFreezing, type LinearFreezingOptions } from "./linear.ts";
export { type FreezeUnit, freezeUnit, FrozenPrefix } from "./units.ts";
