/**
 * Models laid out exactly as their reference implementations (same module
 * names, so `stateDict()` keys and shapes match and the references'
 * checkpoints load with `loadStateDict`): torchvision 0.14's ResNet-18/34/50,
 * VGG-11 (with and without BatchNorm) and MobileNetV2, with options for
 * CIFAR-sized inputs; Hugging Face transformers' BERT (`bert`,
 * `bertForSequenceClassification`, presets in `BERT_CONFIGS`); timm's Vision
 * Transformer and DeiT (`visionTransformer`, `deit_tiny`, `deit_small`,
 * `deit_base`).
 *
 * | builder                         | reference                              | parameters (default head) |
 * | ------------------------------- | -------------------------------------- | ------------------------- |
 * | `resnet18`                      | torchvision `resnet18`                 | 11,689,512                |
 * | `resnet34`                      | torchvision `resnet34`                 | 21,797,672                |
 * | `resnet50`                      | torchvision `resnet50`                 | 25,557,032                |
 * | `vgg11`                         | torchvision `vgg11`                    | 132,863,336               |
 * | `vgg11Bn`                       | torchvision `vgg11_bn`                 | 132,868,840               |
 * | `mobilenetV2`                   | torchvision `mobilenet_v2`             | 3,504,872                 |
 * | `bert()`                        | transformers `BertModel` (base)        | 109,482,240               |
 * | `bertForSequenceClassification` | `BertForSequenceClassification` (base) | 109,483,778               |
 * | `deit_tiny`                     | timm `deit_tiny_patch16_224`           | 5,717,416                 |
 * | `deit_small`                    | timm `deit_small_patch16_224`          | 22,050,664                |
 * | `deit_base`                     | timm `deit_base_patch16_224`           | 86,567,656                |
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
export {
  Attention,
  Block,
  deit_base,
  deit_small,
  deit_tiny,
  deitBase,
  deitSmall,
  deitTiny,
  Mlp,
  PatchEmbed,
  TokenEmbedding,
  VisionTransformer,
  visionTransformer,
  type VisionTransformerOptions,
  vitNumParameters,
  vitStateDictShapes,
} from "./vit.ts";

// torchvision's snake_case names, so code ported from PyTorch reads the same.
export { vgg11Bn as vgg11_bn } from "./vgg.ts";
export { mobilenetV2 as mobilenet_v2 } from "./mobilenet_v2.ts";
