/**
 * The engine: device, tensors, memory, dispatch, autograd and ops.
 *
 * @module
 */

export { type Gpu, GpuError, initGpu } from "./device.ts";
// Installs the check that initGpu() runs on every new device (see self_check.ts).
import "./self_check.ts";
export {
  emptyCache,
  type MemoryCategory,
  type MemoryStats,
  memoryStats,
  resetPeakMemory,
  Storage,
} from "./memory.ts";
export { flopCount, flushErrors as synchronize, sync } from "./dispatch.ts";
export {
  type DType,
  keep,
  scope,
  type Shape,
  Tensor,
  tensor,
  type TensorData,
  type TensorOptions,
} from "./tensor.ts";
export type { BinaryFn, ScalarFn, UnaryFn } from "../kernels/elementwise.ts";
export { isGradEnabled, type Node, noGrad, type Op, type OpAttrs } from "./autograd.ts";
export {
  abs,
  add,
  arange,
  broadcastShapes,
  cast,
  cos,
  div,
  eq,
  exp,
  full,
  ge,
  gelu,
  gt,
  le,
  log,
  lt,
  maximum,
  minimum,
  mul,
  ne,
  neg,
  ones,
  pow,
  relu,
  relu6,
  rsqrt,
  sigmoid,
  sin,
  sqrt,
  sub,
  tanh,
  where,
  zeros,
} from "./ops/elementwise.ts";
export { argmax, max, mean, min, sum, variance } from "./ops/reduce.ts";
export { cka, type CkaOptions } from "./ops/cka.ts";
export { sort } from "./ops/sort.ts";
export { matmul, type MatmulOptions } from "./ops/matmul.ts";
export { conv2d, type Conv2dOptions } from "./ops/conv.ts";
export { crossEntropy, type CrossEntropyOptions, logSoftmax, softmax } from "./ops/softmax.ts";
export {
  concat,
  expand,
  flatten,
  pad,
  permute,
  reshape,
  slice,
  split,
  squeeze,
  transpose,
  unsqueeze,
} from "./ops/shape.ts";
export { gather, indexSelect, scatterAdd } from "./ops/index.ts";
export { dropout, getRngState, manualSeed, rand, randn, setRngState } from "./ops/random.ts";
export {
  adaptiveAvgPool2d,
  avgPool2d,
  type AvgPool2dOptions,
  maxPool2d,
  type MaxPool2dOptions,
  maxPool2dWithIndices,
  type Size2,
} from "./ops/pool.ts";
export { batchNorm2d, type BatchNormOptions } from "./ops/batchnorm.ts";
export { layerNorm } from "./ops/layernorm.ts";
export { embedding, type EmbeddingOptions } from "./ops/embedding.ts";
export {
  scaledDotProductAttention,
  type ScaledDotProductAttentionOptions,
} from "./ops/attention.ts";
export * as optim from "./optim/mod.ts";
export {
  formatPhases,
  formatProfile,
  type KernelStats,
  profile,
  profilePhase,
  type ProfileReport,
} from "./profiler.ts";
export * as nn from "./nn/mod.ts";
export { loadSafetensors, loadSafetensorsWithMetadata, saveSafetensors } from "./checkpoint.ts";
