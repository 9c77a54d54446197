/**
 * Saving and loading tensors (state dicts) as safetensors files, the format
 * PyTorch's `safetensors.torch.save_file` / `load_file` read and write.
 *
 * @module
 */

import { type Tensor, tensor } from "./tensor.ts";
import { type HostTensor, readSafetensorsFile, writeSafetensorsFile } from "./safetensors.ts";

/**
 * Reads every tensor back from the GPU and writes them to `path` atomically (a
 * crash leaves the old file or the new one, never a partial file). Keys keep
 * their names; the file orders them as the Python writer does.
 *
 * @param path Destination file.
 * @param stateDict Tensors by name, e.g. `model.stateDict()`.
 * @param metadata Optional string → string metadata (`__metadata__`).
 *
 * @example
 * ```ts
 * import { tensor } from "../mod.ts";
 * import { saveSafetensors } from "./checkpoint.ts";
 * const path = (await Deno.makeTempDir()) + "/w.safetensors";
 * await saveSafetensors(path, { w: tensor([1, 2, 3]) }, { step: "10" });
 * ```
 */
export async function saveSafetensors(
  path: string,
  stateDict: Record<string, Tensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const names = Object.keys(stateDict);
  const datas = await Promise.all(names.map((k) => stateDict[k].toArray()));
  const host: Record<string, HostTensor> = {};
  names.forEach((k, i) => {
    const t = stateDict[k];
    setEntry(host, k, { dtype: t.dtype, shape: [...t.shape], data: datas[i] });
  });
  await writeSafetensorsFile(path, host, metadata);
}

/**
 * Reads a safetensors file and uploads each tensor to the GPU. F16, BF16 and
 * F64 values arrive as f32, integer types as i32 (u32 for U32), as
 * `readSafetensorsFile` converts them. The tensors belong to the caller
 * (dispose them, or load them into a module and then dispose them).
 *
 * @param path File to read.
 * @returns Tensors by name, in file order.
 *
 * @example
 * ```ts
 * import { tensor } from "../mod.ts";
 * import { loadSafetensors, saveSafetensors } from "./checkpoint.ts";
 * const path = (await Deno.makeTempDir()) + "/w.safetensors";
 * await saveSafetensors(path, { w: tensor([1, 2, 3]) });
 * const sd = await loadSafetensors(path);
 * console.log(sd.w.shape); // [3]
 * ```
 */
export async function loadSafetensors(path: string): Promise<Record<string, Tensor>> {
  return (await loadSafetensorsWithMetadata(path)).tensors;
}

/**
 * {@link loadSafetensors}, also returning the file's `__metadata__` strings
 * (empty when absent).
 *
 * @example
 * ```ts
 * import { tensor } from "../mod.ts";
 * import { loadSafetensorsWithMetadata, saveSafetensors } from "./checkpoint.ts";
 * const path = (await Deno.makeTempDir()) + "/w.safetensors";
 * await saveSafetensors(path, { w: tensor([1, 2, 3]) }, { step: "10" });
 * const { tensors, metadata } = await loadSafetensorsWithMetadata(path);
 * console.log(Object.keys(tensors), metadata.step); // ["w"] "10"
 * ```
 */
export async function loadSafetensorsWithMetadata(
  path: string,
): Promise<{ tensors: Record<string, Tensor>; metadata: Record<string, string> }> {
  const file = await readSafetensorsFile(path);
  const tensors: Record<string, Tensor> = {};
  for (const [k, h] of Object.entries(file.tensors)) {
    setEntry(tensors, k, tensor(h.data, { shape: h.shape, dtype: h.dtype }));
  }
  return { tensors, metadata: file.metadata };
}

/** Sets an own enumerable property, even for a key like `__proto__`. */
function setEntry<T>(target: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}
