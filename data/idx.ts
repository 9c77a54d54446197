/**
 * Reader for the IDX array format used by MNIST, Fashion-MNIST, EMNIST and
 * friends, plain or gzip-compressed.
 *
 * Layout: two zero bytes, a type byte, a dimension count, then one big-endian
 * u32 per dimension, then the elements in row-major order, big-endian.
 *
 * Every malformed input throws an `Error` whose message starts with the name
 * passed in (normally the file path), so a bad download points at its file.
 *
 * @module
 */

import { gunzipSync } from "node:zlib";

/** The element arrays an IDX file can hold, one per IDX type code. */
export type IdxData =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Float32Array
  | Float64Array;

/** A decoded IDX array: its dimensions and its elements in row-major order. */
export interface IdxArray {
  /** Dimension sizes, outermost first (e.g. `[60000, 28, 28]`). */
  shape: number[];
  /** The elements, converted to the platform's byte order; length is the product of `shape`. */
  data: IdxData;
}

interface IdxType {
  label: string;
  size: number;
  make(n: number): IdxData;
  read(view: DataView, offset: number): number;
}

const TYPES: ReadonlyMap<number, IdxType> = new Map<number, IdxType>([
  [0x08, {
    label: "ubyte",
    size: 1,
    make: (n) => new Uint8Array(n),
    read: (v, o) => v.getUint8(o),
  }],
  [0x09, { label: "sbyte", size: 1, make: (n) => new Int8Array(n), read: (v, o) => v.getInt8(o) }],
  [0x0b, { label: "i16", size: 2, make: (n) => new Int16Array(n), read: (v, o) => v.getInt16(o) }],
  [0x0c, { label: "i32", size: 4, make: (n) => new Int32Array(n), read: (v, o) => v.getInt32(o) }],
  [
    0x0d,
    { label: "f32", size: 4, make: (n) => new Float32Array(n), read: (v, o) => v.getFloat32(o) },
  ],
  [
    0x0e,
    { label: "f64", size: 8, make: (n) => new Float64Array(n), read: (v, o) => v.getFloat64(o) },
  ],
]);

function hex(bytes: Uint8Array, n: number): string {
  return Array.from(bytes.subarray(0, n), (b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** True when `bytes` starts with the gzip magic number (1f 8b). */
function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function gunzip(bytes: Uint8Array, name: string): Uint8Array {
  try {
    return gunzipSync(bytes);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(`${name}: gzip data is corrupt or truncated (${why})`);
  }
}

/**
 * Decodes an IDX file held in memory. Gzip input (magic 1f 8b) is decompressed
 * first, so `.gz` downloads can be passed as they are.
 *
 * Throws an `Error` naming `name` and the defect for: a bad magic number, an
 * unknown type code, zero dimensions, a header cut short, data shorter or
 * longer than the dimensions say, and corrupt gzip data.
 *
 * @param bytes The file's contents.
 * @param name What to call the input in error messages, normally its path.
 * @returns The shape and the elements (a fresh array, not a view of `bytes`).
 *
 * @example
 * ```ts
 * import { parseIdx } from "./idx.ts";
 *
 * // A 2x3 ubyte array.
 * const bytes = new Uint8Array([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]);
 * const { shape, data } = parseIdx(bytes, "tiny.idx");
 * console.log(shape, data); // [2, 3] Uint8Array(6) [1, 2, 3, 4, 5, 6]
 * ```
 */
export function parseIdx(bytes: Uint8Array, name: string): IdxArray {
  if (isGzip(bytes)) bytes = gunzip(bytes, name);
  if (bytes.length < 4) {
    throw new Error(
      `${name}: truncated IDX header: ${bytes.length} byte(s), the magic number alone needs 4`,
    );
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new Error(
      `${name}: bad IDX magic number ${hex(bytes, 4)} (expected 00 00 <type> <ndim>)`,
    );
  }
  const code = bytes[2];
  const type = TYPES.get(code);
  if (type === undefined) {
    throw new Error(
      `${name}: unknown IDX element type 0x${code.toString(16).padStart(2, "0")} ` +
        `(known: 0x08 ubyte, 0x09 sbyte, 0x0b i16, 0x0c i32, 0x0d f32, 0x0e f64)`,
    );
  }
  const ndim = bytes[3];
  if (ndim === 0) throw new Error(`${name}: IDX header declares 0 dimensions`);
  const headerLen = 4 + 4 * ndim;
  if (bytes.length < headerLen) {
    throw new Error(
      `${name}: truncated IDX header: ${ndim} dimension(s) need ${headerLen} header bytes, ` +
        `file has ${bytes.length}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  let count = 1;
  for (let i = 0; i < ndim; i++) {
    const d = view.getUint32(4 + 4 * i);
    shape.push(d);
    count *= d;
  }
  const need = count * type.size;
  const have = bytes.length - headerLen;
  if (have !== need) {
    const dims = `[${shape.join(", ")}] of ${type.label}`;
    throw new Error(
      have < need
        ? `${name}: IDX data is truncated: dimensions ${dims} need ${need} data bytes, file has ${have}`
        : `${name}: IDX data is longer than its dimensions: ${dims} need ${need} data bytes, ` +
          `file has ${have} (${have - need} extra)`,
    );
  }
  const data = type.make(count);
  if (data instanceof Uint8Array || data instanceof Int8Array) {
    // One-byte elements have no byte order; Int8Array.set wraps 0x80..0xff to negatives.
    data.set(bytes.subarray(headerLen));
  } else {
    // IDX is big-endian; typed arrays use the platform's order, so go element by element.
    for (let i = 0, o = headerLen; i < count; i++, o += type.size) data[i] = type.read(view, o);
  }
  return { shape, data };
}

/**
 * Reads and decodes an IDX file (plain or gzip-compressed) from disk.
 *
 * @param path File to read; it is also the name used in error messages.
 * @returns The decoded array, as {@link parseIdx} returns it.
 *
 * @example
 * ```ts
 * import { readIdxFile } from "./idx.ts";
 *
 * // 3 unsigned bytes: magic 0x00000801 (u8, one axis), the length, the values.
 * const path = await Deno.makeTempFile({ suffix: "-labels-idx1-ubyte" });
 * await Deno.writeFile(path, new Uint8Array([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 9]));
 * const labels = await readIdxFile(path);
 * console.log(labels.shape, labels.data); // [ 3 ] Uint8Array(3) [ 7, 2, 9 ]
 * ```
 */
export async function readIdxFile(path: string): Promise<IdxArray> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(`${path}: cannot read IDX file (${why})`);
  }
  return parseIdx(bytes, path);
}
