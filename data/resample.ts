/**
 * Image resampling on planar (CHW) pixel arrays, separable like Pillow's
 * `Image.resize`: per output row/column a list of source taps and weights,
 * applied horizontally then vertically.
 *
 * Filters (pixel centres at `i + 0.5`, so no half-pixel shift):
 * - `"nearest"`: the source pixel under the output pixel's centre (Pillow's
 *   NEAREST, PyTorch's `nearest-exact`).
 * - `"bilinear"`: the triangle filter, widened by the scale factor when
 *   shrinking so every source pixel contributes (Pillow's BILINEAR, which
 *   torchvision's `Resize` uses). When enlarging it equals textbook bilinear
 *   interpolation with `align_corners=False` and clamped edges.
 * - `"area"`: each output pixel averages the source area it covers, weighting
 *   border pixels by their covered fraction (OpenCV's INTER_AREA when shrinking).
 *
 * @module
 */

/** A resampling filter; see the module documentation. */
export type ResampleMode = "nearest" | "bilinear" | "area";

/** A source rectangle in pixels (may be fractional); it is what gets resized. */
export interface Region {
  /** Left edge. */
  x: number;
  /** Top edge. */
  y: number;
  /** Width, > 0. */
  width: number;
  /** Height, > 0. */
  height: number;
}

/** Options for {@link resample}. */
export interface ResampleOptions {
  /** Filter (default `"bilinear"`). */
  mode?: ResampleMode;
  /** Part of the source to resize (default: all of it). Taps outside the image are clamped. */
  region?: Region;
}

/** Taps of one axis: output `i` reads `count[i]` inputs from `start[i]` with `weights[i*taps ..]`. */
interface AxisTaps {
  start: Int32Array;
  count: Int32Array;
  weights: Float32Array;
  taps: number;
}

/** Source taps for `outSize` outputs covering `[offset, offset + span)` of an axis of `inSize`. */
function axisTaps(
  inSize: number,
  outSize: number,
  offset: number,
  span: number,
  mode: ResampleMode,
): AxisTaps {
  const scale = span / outSize;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  let taps: number;
  if (mode === "nearest") taps = 1;
  else if (mode === "bilinear") taps = Math.ceil(Math.max(scale, 1)) * 2 + 1;
  else taps = Math.ceil(scale) + 2;
  const weights = new Float32Array(outSize * taps);
  for (let i = 0; i < outSize; i++) {
    const w = weights.subarray(i * taps, (i + 1) * taps);
    let lo: number, hi: number;
    if (mode === "nearest") {
      lo = Math.min(Math.max(Math.floor(offset + (i + 0.5) * scale), 0), inSize - 1);
      hi = lo + 1;
      w[0] = 1;
    } else if (mode === "bilinear") {
      // Pillow's precompute_coeffs (libImaging/Resample.c) with the triangle filter.
      const center = offset + (i + 0.5) * scale;
      const fs = Math.max(scale, 1);
      lo = Math.max(Math.trunc(center - fs + 0.5), 0);
      hi = Math.min(Math.trunc(center + fs + 0.5), inSize);
      let total = 0;
      for (let j = lo; j < hi; j++) {
        const t = Math.max(0, 1 - Math.abs((j - center + 0.5) / fs));
        w[j - lo] = t;
        total += t;
      }
      if (total > 0) { for (let k = 0; k < hi - lo; k++) w[k] /= total; }
      else {
        lo = Math.min(Math.max(Math.floor(center), 0), inSize - 1);
        hi = lo + 1;
        w[0] = 1;
      }
    } else {
      const a = offset + i * scale;
      const b = a + scale;
      lo = Math.max(Math.floor(a), 0);
      hi = Math.min(Math.ceil(b), inSize);
      let total = 0;
      for (let j = lo; j < hi; j++) {
        const t = Math.max(0, Math.min(b, j + 1) - Math.max(a, j));
        w[j - lo] = t;
        total += t;
      }
      if (total > 0) { for (let k = 0; k < hi - lo; k++) w[k] /= total; }
      else {
        // The region lies wholly outside the image: clamp to the nearest edge pixel.
        lo = Math.min(Math.max(Math.floor(a), 0), inSize - 1);
        hi = lo + 1;
        w[0] = 1;
      }
    }
    start[i] = lo;
    count[i] = hi - lo;
  }
  return { start, count, weights, taps };
}

/**
 * Resizes a planar image (all of channel 0's rows, then channel 1's, ...).
 *
 * @param src Pixels, `channels * height * width` of them, any numeric array.
 * @param channels Number of planes.
 * @param height Source height.
 * @param width Source width.
 * @param outHeight Output height, a positive integer.
 * @param outWidth Output width, a positive integer.
 * @param opts Filter and source region.
 * @returns `channels * outHeight * outWidth` float32 values on the input's scale.
 *
 * @example
 * ```ts
 * import { resample } from "./resample.ts";
 *
 * // 2x2 -> 1x1: every filter averages the four pixels here.
 * console.log(resample([0, 10, 20, 30], 1, 2, 2, 1, 1, { mode: "area" })); // Float32Array [15]
 * ```
 */
export function resample(
  src: ArrayLike<number>,
  channels: number,
  height: number,
  width: number,
  outHeight: number,
  outWidth: number,
  opts: ResampleOptions = {},
): Float32Array {
  const mode = opts.mode ?? "bilinear";
  const r = opts.region ?? { x: 0, y: 0, width, height };
  for (const [what, v] of [["outHeight", outHeight], ["outWidth", outWidth]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new Error(`resample: ${what} must be a positive integer, got ${v}`);
    }
  }
  if (!(height >= 1 && width >= 1 && channels >= 1)) {
    throw new Error(`resample: empty source ${channels}x${height}x${width}`);
  }
  if (src.length !== channels * height * width) {
    throw new Error(
      `resample: source has ${src.length} values, ${channels}x${height}x${width} needs ` +
        `${channels * height * width}`,
    );
  }
  if (!(r.width > 0 && r.height > 0)) {
    throw new Error(`resample: region must have a positive size, got ${r.width}x${r.height}`);
  }
  const xt = axisTaps(width, outWidth, r.x, r.width, mode);
  const yt = axisTaps(height, outHeight, r.y, r.height, mode);
  // Only the source rows some output row reads need the horizontal pass.
  let rowLo = height, rowHi = 0;
  for (let i = 0; i < outHeight; i++) {
    rowLo = Math.min(rowLo, yt.start[i]);
    rowHi = Math.max(rowHi, yt.start[i] + yt.count[i]);
  }
  const rows = rowHi - rowLo;
  const tmp = new Float32Array(rows * outWidth);
  const out = new Float32Array(channels * outHeight * outWidth);
  for (let c = 0; c < channels; c++) {
    const plane = c * height * width;
    for (let y = 0; y < rows; y++) {
      const srow = plane + (y + rowLo) * width;
      const trow = y * outWidth;
      for (let i = 0; i < outWidth; i++) {
        const s = srow + xt.start[i];
        const n = xt.count[i];
        const wo = i * xt.taps;
        let acc = 0;
        for (let k = 0; k < n; k++) acc += src[s + k] * xt.weights[wo + k];
        tmp[trow + i] = acc;
      }
    }
    const oplane = c * outHeight * outWidth;
    for (let j = 0; j < outHeight; j++) {
      const s = yt.start[j] - rowLo;
      const n = yt.count[j];
      const wo = j * yt.taps;
      const orow = oplane + j * outWidth;
      for (let i = 0; i < outWidth; i++) {
        let acc = 0;
        for (let k = 0; k < n; k++) acc += tmp[(s + k) * outWidth + i] * yt.weights[wo + k];
        out[orow + i] = acc;
      }
    }
  }
  return out;
}
