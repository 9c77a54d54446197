/**
 * Vision models laid out exactly as torchvision 0.14's (same module names, so
 * `stateDict()` keys and shapes match and torchvision checkpoints load with
 * `loadStateDict`): ResNet-18/34/50, VGG-11 (with and without BatchNorm) and
 * MobileNetV2, with options for CIFAR-sized inputs.
 *
 * | builder       | torchvision     | parameters (1000 classes) |
 * | ------------- | --------------- | ------------------------- |
 * | `resnet18`    | `resnet18`      | 11,689,512                |
 * | `resnet34`    | `resnet34`      | 21,797,672                |
 * | `resnet50`    | `resnet50`      | 25,557,032                |
 * | `vgg11`       | `vgg11`         | 132,863,336               |
 * | `vgg11Bn`     | `vgg11_bn`      | 132,868,840               |
 * | `mobilenetV2` | `mobilenet_v2`  | 3,504,872                 |
 *
 * @example
 * ```ts
 * import { crossEntropy, randn, tensor } from "../mod.ts";
 * import { resnet18 } from "./mod.ts";
 * const model = resnet18({ numClasses: 10, cifarStem: true, baseChannels: 8 });
 * const loss = crossEntropy(model.forward(randn([2, 3, 32, 32])), tensor([3, 7], { dtype: "i32" }));
 * loss.backward();
 * console.log(Object.keys(model.stateDict())[0], model.conv1.weight.grad?.shape);
 * // "conv1.weight" [8, 3, 3, 3]
 * ```
 *
 * @module
 */

export {
  BasicBlock,
  Bottleneck,
  ResNet,
  resnet18,
  resnet34,
  resnet50,
  type ResNetBlock,
  type ResNetOptions,
} from "./resnet.ts";
export {
  makeLayers,
  VGG,
  vgg11,
  vgg11Bn,
  VGG_CONFIGS,
  type VggConfig,
  vggNumParameters,
  type VggOptions,
  vggStateDictShapes,
} from "./vgg.ts";
export {
  Conv2dNormActivation,
  type Conv2dNormActivationOptions,
  InvertedResidual,
  makeDivisible,
  MobileNetV2,
  mobilenetV2,
  type MobileNetV2Options,
} from "./mobilenet_v2.ts";

export {
  bert,
  BERT_CONFIGS,
  BertAttention,
  type BertConfig,
  bertConfig,
  BertEmbeddings,
  BertEncoder,
  BertForSequenceClassification,
  bertForSequenceClassification,
  type BertInputs,
  BertIntermediate,
  BertLayer,
  type BertLoadStateDictResult,
  BertModel,
  type BertModelOptions,
  type BertModelOutput,
  bertNumParameters,
  BertOutput,
  BertPooler,
  BertSelfAttention,
  BertSelfOutput,
  type BertShapesOptions,
  bertStateDictShapes,
} from "./bert.ts";

// torchvision's snake_case names, so code ported from PyTorch reads the same.
export { vgg11Bn as vgg11_bn } from "./vgg.ts";
export { mobilenetV2 as mobilenet_v2 } from "./mobilenet_v2.ts";
