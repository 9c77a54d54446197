/**
 * Layers, containers and losses, after `torch.nn`: the public way is
 * `import { nn } from "@frost/frost"` and `new nn.Linear(784, 128)`.
 *
 * @example
 * ```ts
 * import { randn, tensor } from "../../mod.ts";
 * import * as nn from "./mod.ts";
 * const model = new nn.Sequential(new nn.Linear(784, 128), new nn.ReLU(), new nn.Linear(128, 10));
 * const labels = tensor([3, 7], { dtype: "i32" });
 * const loss = nn.crossEntropy(model.forward(randn([2, 784])), labels);
 * loss.backward();
 * console.log(model.parameters()[0].grad?.shape); // [128, 784]
 * ```
 *
 * @module
 */

export {
  buffer,
  type ForwardHook,
  isBuffer,
  isParameter,
  type LoadStateDictOptions,
  type LoadStateDictResult,
  Module,
  ModuleList,
  parameter,
  StateDictError,
} from "./module.ts";
export { Linear, type LinearOptions } from "./linear.ts";
export { Conv2d, type Conv2dLayerOptions } from "./conv.ts";
export {
  GELU,
  type GELUOptions,
  Identity,
  LogSoftmax,
  ReLU,
  ReLU6,
  Sigmoid,
  Softmax,
  Tanh,
} from "./activation.ts";
export { Dropout, DropPath } from "./dropout.ts";
export {
  AdaptiveAvgPool2d,
  AvgPool2d,
  type AvgPool2dLayerOptions,
  MaxPool2d,
  type MaxPool2dLayerOptions,
} from "./pool.ts";
export { BatchNorm2d, type BatchNorm2dOptions } from "./batchnorm.ts";
export { LayerNorm, type LayerNormOptions } from "./layernorm.ts";
export { Embedding, type EmbeddingLayerOptions } from "./embedding.ts";
export { Flatten } from "./flatten.ts";
export { Sequential } from "./sequential.ts";
export {
  crossEntropy,
  type CrossEntropyOptions,
  embedding,
  type EmbeddingOptions,
  layerNorm,
  linear,
  mseLoss,
  type MseLossOptions,
  nllLoss,
  type NllLossOptions,
  type Reduction,
} from "./functional.ts";
