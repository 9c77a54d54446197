/**
 * PNG and JPEG decoding to 8-bit pixels, with the channel conversions
 * Pillow's `Image.convert` does.
 *
 * Decoders: `fast-png` (pure JS, inflate via `fflate`, every PNG colour type
 * and bit depth, Adam7, CRC checks) and `jpeg-js` (pure JS baseline and
 * progressive JPEG, grey/RGB/CMYK). Both run in Deno without native code and
 * are pinned. The format is taken from the file's magic bytes, not its name:
 * ImageNet's train set has a PNG and CMYK JPEGs under `.JPEG` names.
 *
 * @module
 */

// deno-lint-ignore no-import-prefix
import { decode as decodePngFile } from "npm:fast-png@8.0.0";
// deno-lint-ignore no-import-prefix
import jpeg from "npm:jpeg-js@0.4.4";

/** A decoded image: 8-bit samples, interleaved (HWC). */
export interface DecodedImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Samples per pixel: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA. */
  channels: 1 | 2 | 3 | 4;
  /** `height * width * channels` samples, row by row, channels interleaved. */
  data: Uint8Array;
}

/** A file format {@link decodeImage} reads. */
export type ImageFormat = "png" | "jpeg";

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * The format of an encoded image, from its magic bytes.
 *
 * @param bytes The file's contents.
 * @returns `"png"`, `"jpeg"`, or undefined for anything else.
 *
 * @example
 * ```ts
 * import { imageFormat } from "./decode_image.ts";
 *
 * console.log(imageFormat(new Uint8Array([0xff, 0xd8, 0xff, 0xe0]))); // "jpeg"
 * ```
 */
export function imageFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (bytes.length >= 8 && PNG_MAGIC.every((b, i) => bytes[i] === b)) return "png";
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    return "jpeg";
  }
  return undefined;
}

function why(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const cause = e instanceof Error && e.cause instanceof Error ? ` ${e.cause.message}` : "";
  return (msg + cause).trim();
}

/** Unpacks rows of `bits`-bit samples (1, 2 or 4) into one byte each, MSB first. */
function unpackBits(
  data: Uint8Array,
  width: number,
  height: number,
  channels: number,
  bits: number,
): Uint8Array {
  const perRow = width * channels;
  const rowBytes = Math.ceil((perRow * bits) / 8);
  const out = new Uint8Array(perRow * height);
  const mask = (1 << bits) - 1;
  for (let y = 0; y < height; y++) {
    for (let k = 0; k < perRow; k++) {
      const bit = k * bits;
      const byte = data[y * rowBytes + (bit >> 3)];
      out[y * perRow + k] = (byte >> (8 - bits - (bit & 7))) & mask;
    }
  }
  return out;
}

function decodePng(bytes: Uint8Array, name: string): DecodedImage {
  let png: ReturnType<typeof decodePngFile>;
  try {
    png = decodePngFile(bytes, { checkCrc: true });
  } catch (e) {
    throw new Error(`${name}: corrupt or truncated PNG (${why(e)})`);
  }
  const { width, height, depth, palette } = png;
  const ch = png.channels;
  const samples = width * height * ch;
  let data: Uint8Array;
  if (depth === 16) {
    const d = png.data as Uint16Array;
    if (d.length !== samples) throw new Error(`${name}: corrupt PNG (short pixel data)`);
    data = new Uint8Array(samples);
    // Rounds to the nearest 8-bit value (libpng's png_set_scale_16).
    for (let i = 0; i < samples; i++) data[i] = Math.round(d[i] / 257);
  } else {
    const raw = depth < 8
      ? unpackBits(png.data as Uint8Array, width, height, ch, depth)
      : png.data as Uint8Array;
    if (raw.length !== samples) throw new Error(`${name}: corrupt PNG (short pixel data)`);
    data = raw;
    if (palette === undefined && depth < 8) {
      const scale = 255 / ((1 << depth) - 1);
      data = data.map((v) => Math.round(v * scale));
    }
  }
  if (palette !== undefined) {
    const pc = palette[0]?.length === 4 ? 4 : 3;
    const out = new Uint8Array(width * height * pc);
    for (let i = 0; i < width * height; i++) {
      const color = palette[data[i]];
      if (color === undefined) {
        throw new Error(
          `${name}: corrupt PNG (palette index ${data[i]} >= palette size ${palette.length})`,
        );
      }
      for (let k = 0; k < pc; k++) out[i * pc + k] = color[k];
    }
    return { width, height, channels: pc, data: out };
  }
  if (ch < 1 || ch > 4) throw new Error(`${name}: PNG with ${ch} channels`);
  return { width, height, channels: ch as 1 | 2 | 3 | 4, data };
}

function decodeJpeg(bytes: Uint8Array, name: string): DecodedImage {
  let img: { width: number; height: number; data: Uint8Array };
  try {
    // jpeg-js expands grey to RGB and converts YCbCr/CMYK/YCCK to RGB itself.
    img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false });
  } catch (e) {
    throw new Error(`${name}: corrupt or truncated JPEG (${why(e)})`);
  }
  const { width, height, data } = img;
  if (!(width > 0 && height > 0) || data.length !== width * height * 3) {
    throw new Error(`${name}: corrupt JPEG (decoded ${width}x${height}, ${data.length} samples)`);
  }
  return { width, height, channels: 3, data };
}

/**
 * Decodes a PNG (any colour type, bit depth 1 to 16, palette, interlaced)
 * or a JPEG (baseline or progressive; grey, RGB or CMYK) to 8-bit samples.
 * Palette images become RGB or RGBA; 16-bit samples are rounded to 8 bits;
 * JPEGs always come out RGB.
 *
 * @param bytes The file's contents.
 * @param name What to call the file in error messages, normally its path.
 * @returns The pixels, interleaved.
 * @throws Error naming `name` for an empty file, an unknown format, or a corrupt or truncated image.
 *
 * @example
 * ```ts
 * import { decodeImage } from "./decode_image.ts";
 * // deno-lint-ignore no-import-prefix
 * import { encode } from "npm:fast-png@8.0.0";
 *
 * const png = encode({ width: 2, height: 1, data: new Uint8Array([0, 255]), channels: 1 });
 * console.log(decodeImage(png, "tiny.png")); // { width: 2, height: 1, channels: 1, data: Uint8Array [0, 255] }
 * ```
 */
export function decodeImage(bytes: Uint8Array, name: string): DecodedImage {
  if (bytes.length === 0) throw new Error(`${name}: empty file, expected a PNG or JPEG image`);
  const format = imageFormat(bytes);
  if (format === "png") return decodePng(bytes, name);
  if (format === "jpeg") return decodeJpeg(bytes, name);
  const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join(" ");
  throw new Error(`${name}: not a PNG or JPEG image (starts with ${head})`);
}

/**
 * Converts a decoded image to planar (CHW) bytes with the requested number
 * of channels, as Pillow's `convert("L" | "RGB" | "RGBA")` does: grey is
 * replicated to RGB, alpha is dropped (not composited) or set to 255, and
 * RGB becomes grey with ITU-R 601-2 luma `L = (19595 R + 38470 G + 7471 B + 2^15) >> 16`.
 *
 * @param img A decoded image.
 * @param channels 1 (grey), 3 (RGB) or 4 (RGBA).
 * @returns `channels * height * width` bytes, channel planes one after another.
 *
 * @example
 * ```ts
 * import { toPlanar } from "./decode_image.ts";
 *
 * const rgb = { width: 2, height: 1, channels: 3 as const, data: new Uint8Array([1, 2, 3, 4, 5, 6]) };
 * console.log(toPlanar(rgb, 3)); // Uint8Array [1, 4, 2, 5, 3, 6]
 * ```
 */
export function toPlanar(img: DecodedImage, channels: 1 | 3 | 4): Uint8Array {
  const { width, height, data } = img;
  const src = img.channels;
  const hw = width * height;
  const out = new Uint8Array(channels * hw);
  const hasColor = src >= 3;
  const alphaAt = src === 2 ? 1 : src === 4 ? 3 : -1;
  for (let p = 0; p < hw; p++) {
    const o = p * src;
    const r = data[o];
    const g = hasColor ? data[o + 1] : r;
    const b = hasColor ? data[o + 2] : r;
    if (channels === 1) {
      out[p] = hasColor ? (19595 * r + 38470 * g + 7471 * b + 0x8000) >>> 16 : r;
    } else {
      out[p] = r;
      out[hw + p] = g;
      out[2 * hw + p] = b;
      if (channels === 4) out[3 * hw + p] = alphaAt < 0 ? 255 : data[o + alphaAt];
    }
  }
  return out;
}
