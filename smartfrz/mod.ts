/**
 * Layer freezing: the controllers that decide when a front block of a model
 * has converged and stop training it. SmartFRZ (Li et al., ICLR 2023) reads
 * each unit's weight history with an attention-based predictor; the linear
 * schedule and AutoFreeze are its paper's baselines. All share the units of
 * {@link unitsOf} and the hook interface of `hooks.ts`.
 *
 * @module
 */

export { AutoFreeze, type AutoFreezeOptions } from "./autofreeze.ts";
export { LinearFreezing, type LinearFreezingOptions } from "./linear.ts";
export type { EpochResult, IndexedBatch, StepContext, TrainerHook } from "./hooks.ts";
export {
  type FreezeOptions,
  type FreezeUnit,
  freezeUnit,
  FrozenPrefix,
  type Releases,
  unitParameters,
  unitsOf,
} from "./units.ts";
export {
  tailorIndices,
  WeightHistory,
  type WeightHistoryOptions,
  type WeightHistoryState,
} from "./history.ts";
export {
  FreezePredictor,
  loadPredictor,
  normalizeWindows,
  type PredictorCard,
  type PredictorInputs,
  type PredictorOptions,
} from "./predictor.ts";
export { type FreezeDecision, SmartFRZ, type SmartFRZOptions } from "./smartfrz.ts";
export { type FreezeSavings, freezeSavings } from "./savings.ts";
export {
  captureUnitOutputs,
  convergenceLabels,
  DEFAULT_RULE,
  LabelRecorder,
  type LabelRecorderOptions,
  type LabelRule,
  type UnitRecord,
} from "./labels.ts";
export { ForwardCache, type ForwardCacheOptions } from "./cache.ts";
