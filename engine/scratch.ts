/**
 * Scratch textures: packed operands that compute kernels (matmul, conv2d) read
 * through the texture path, one texture per role and size, reused across
 * calls. WebGPU orders a later pack after the earlier reads of the same
 * texture, so two kernels in one batch may share it. Beyond a byte budget the
 * least recently used are destroyed, once the batch being recorded is
 * submitted (it may still use them). memoryStats() counts them and
 * emptyCache() frees them.
 *
 * @module
 */

import { gpu } from "./device.ts";
import { destroyAfterSubmit, registerScratch } from "./memory.ts";

/** One cached texture with its 2-D-array view. */
export interface ScratchTexture {
  /** The device it was made on (a lost device's textures are not reused). */
  device: GPUDevice;
  /** The rgba32float texture. */
  texture: GPUTexture;
  /** Its `2d-array` view. */
  view: GPUTextureView;
  /** Bytes it holds. */
  bytes: number;
}

/**
 * `n` made a non-power of two (1 → 3, 2^k → 2^k + 1). llvmpipe compiles a
 * shader variant per combination of power-of-two flags of the bound textures'
 * sizes (they are part of its sampler "static state"): with two textures that
 * is up to 64 compilations of a kernel that takes ~1 s to compile, hit as new
 * shapes come. Measured on conv2d: a second shape cost 1,179 ms, 24 ms once
 * every scratch texture had non-power-of-two sizes.
 */
const npot = (n: number) => ((n & (n - 1)) === 0 ? (n === 1 ? 3 : n + 1) : n);

/** An LRU cache of scratch textures for one kernel family. */
export class ScratchTextures {
  readonly #label: string;
  readonly #budget: number;
  readonly #npot: boolean;
  #map = new Map<string, ScratchTexture>();
  #bytes = 0;

  /**
   * @param label Names the textures in errors ("matmul", "conv2d").
   * @param budgetBytes Bytes kept before the least recently used are destroyed.
   * @param opts `npot`: round every side to a non-power of two (see above).
   */
  constructor(label: string, budgetBytes: number, opts: { npot?: boolean } = {}) {
    this.#label = label;
    this.#budget = budgetBytes;
    this.#npot = opts.npot ?? false;
    registerScratch({ bytes: () => this.#bytes, release: () => this.#release(0) });
  }

  #release(keepBytes: number): void {
    for (const [k, e] of this.#map) {
      if (this.#bytes <= keepBytes) break;
      destroyAfterSubmit(e.texture);
      this.#map.delete(k);
      this.#bytes -= e.bytes;
    }
  }

  /** The texture for `role` of at least `w × h × layers` texels, made or reused. */
  get(role: string, w0: number, h0: number, layers0: number): ScratchTexture {
    const [w, h, layers] = this.#npot ? [npot(w0), npot(h0), npot(layers0)] : [w0, h0, layers0];
    const key = `${role}:${w}x${h}x${layers}`;
    const { device } = gpu();
    let s = this.#map.get(key);
    if (s) {
      this.#map.delete(key);
      if (s.device !== device) {
        // Made on a device that was lost since: its successor needs its own.
        this.#bytes -= s.bytes;
        s = undefined;
      }
    }
    if (!s) {
      const bytes = 16 * w * h * layers;
      this.#release(this.#budget - bytes);
      const texture = device.createTexture({
        label: `${this.#label} scratch ${key}`,
        size: [w, h, layers],
        format: "rgba32float",
        usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.STORAGE_BINDING |
          GPUTextureUsage.COPY_DST,
      });
      s = { device, texture, view: texture.createView({ dimension: "2d-array" }), bytes };
      this.#bytes += bytes;
    }
    this.#map.set(key, s);
    return s;
  }
}
