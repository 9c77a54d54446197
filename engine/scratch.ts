/**
 * Scratch textures: packed operands that compute kernels (matmul, conv2d) read
 * through the texture path, one texture per role and size, reused across
 * calls. WebGPU orders a later pack after the earlier reads of the same
 * texture, so two kernels in one batch may share it. Beyond a byte budget the
 * least recently used are destroyed, once the batch being recorded is
 * submitted (it may still use them), except the newest texture of each role:
 * an op uses one texture per role and may record more dispatches with it
 * after a submit, so the textures of the op being recorded are never
 * destroyed under it. memoryStats() counts them and emptyCache() frees them.
 *
 * @module
 */

import { gpu } from "./device.ts";
import { destroyAfterSubmit, registerScratch } from "./memory.ts";

/** One cached texture with its 2-D-array view. */
export interface ScratchTexture {
  /** The device it was made on (a lost device's textures are not reused). */
  device: GPUDevice;
  /** What it holds for its op ("A", "x", ...): the newest texture of a role is never evicted. */
  role: string;
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

/**
 * The size to allocate for a `w × h × layers` texture that is bound as a
 * `2d-array`, whatever the backend. WebGPU lets any 2-D texture be viewed as
 * an array, but wgpu's OpenGL backend must fix a texture's GL target when it
 * creates it and guesses from the size: one layer becomes `TEXTURE_2D`, a
 * square one with a multiple of 6 layers a cube map (array). A `2d-array`
 * view of either then reads garbage without any error (seen with Mesa 22.3:
 * matmul and conv results off by 10-100). So a scratch texture always has at
 * least 2 layers and is never a square with a multiple of 6 layers; the
 * kernels never read the extra layer. (WebGPU's compatibility-mode
 * `textureBindingViewDimension` says this directly, where it is supported.)
 */
export function arrayTextureSize(
  w: number,
  h: number,
  layers: number,
  maxLayers = Infinity,
): [number, number, number] {
  let l = Math.max(2, layers);
  let width = w;
  if (width === h && l % 6 === 0) {
    if (l + 1 <= maxLayers) l++;
    else width++;
  }
  return [width, h, l];
}

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
    registerScratch({ bytes: () => this.#bytes, release: () => this.#release(0, true) });
  }

  /**
   * Destroys the least recently used textures until `keepBytes` remain, sparing the newest
   * of each role but `superseded` (being replaced by its op), unless `all`.
   */
  #release(keepBytes: number, all = false, superseded?: string): void {
    const newest = new Set<ScratchTexture>();
    if (!all) {
      const roles = new Set<string>(superseded === undefined ? [] : [superseded]);
      for (const e of [...this.#map.values()].reverse()) {
        if (!roles.has(e.role)) newest.add(e);
        roles.add(e.role);
      }
    }
    for (const [k, e] of this.#map) {
      if (this.#bytes <= keepBytes) break;
      if (newest.has(e)) continue;
      destroyAfterSubmit(e.texture);
      this.#map.delete(k);
      this.#bytes -= e.bytes;
    }
  }

  /**
   * Like {@link get}, but the texture leaves the cache: it is the caller's
   * until {@link give} returns it (a conv's packed input kept for backward),
   * and no later `get` hands it out meanwhile.
   */
  take(role: string, w: number, h: number, layers: number): ScratchTexture {
    const s = this.get(role, w, h, layers);
    this.#map.delete(this.#keyOf(s));
    this.#bytes -= s.bytes;
    return s;
  }

  /** Returns a texture from {@link take} to the cache (dropped if its device was lost). */
  give(s: ScratchTexture): void {
    let device: GPUDevice;
    try {
      device = gpu().device;
    } catch {
      return; // the device is lost (or gone): the texture went with it
    }
    if (s.device !== device) return;
    const key = this.#keyOf(s);
    const old = this.#map.get(key);
    if (old) {
      // Another of the same size was made meanwhile: keep one.
      destroyAfterSubmit(s.texture);
      return;
    }
    this.#release(this.#budget - s.bytes, false, undefined);
    this.#map.set(key, s);
    this.#bytes += s.bytes;
  }

  #keyOf(s: ScratchTexture): string {
    return `${s.role}:${s.texture.width}x${s.texture.height}x${s.texture.depthOrArrayLayers}`;
  }

  /** The texture for `role` of at least `w × h × layers` texels, made or reused. */
  get(role: string, w0: number, h0: number, layers0: number): ScratchTexture {
    const { device, limits } = gpu();
    const [w, h, layers] = arrayTextureSize(
      ...(this.#npot ? [npot(w0), npot(h0), npot(layers0)] as const : [w0, h0, layers0] as const),
      limits.maxTextureArrayLayers,
    );
    const key = `${role}:${w}x${h}x${layers}`;
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
      this.#release(this.#budget - bytes, false, role);
      const texture = device.createTexture({
        label: `${this.#label} scratch ${key}`,
        size: [w, h, layers],
        format: "rgba32float",
        usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.STORAGE_BINDING |
          GPUTextureUsage.COPY_DST,
      });
      s = { device, role, texture, view: texture.createView({ dimension: "2d-array" }), bytes };
      this.#bytes += bytes;
    }
    this.#map.set(key, s);
    return s;
  }
}
