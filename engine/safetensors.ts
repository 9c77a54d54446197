/**
 * The safetensors file format, as written and read by the Python `safetensors`
 * package, on host (CPU) data.
 *
 * Layout: an 8-byte little-endian u64 `N`, then `N` bytes of UTF-8 JSON (the
 * header), then the data section. The header maps each tensor name to
 * `{"dtype", "shape", "data_offsets": [begin, end]}` with offsets relative to
 * the start of the data section, plus an optional `"__metadata__"` object of
 * string → string. The data section must be covered exactly, with no gaps and no
 * overlaps, and all numbers are little-endian.
 *
 * Decoding validates every field against the file before touching the data, so
 * a corrupt or hostile file yields a {@link SafetensorsError} naming the file and
 * the tensor, never an out-of-bounds read or a `RangeError`.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
 *
 * const bytes = encodeSafetensors({
 *   w: { dtype: "f32", shape: [2], data: new Float32Array([1, 2]) },
 * }, { step: "10" });
 * const { tensors, metadata } = decodeSafetensors(bytes);
 * console.log(tensors.w.data, metadata.step); // Float32Array [1, 2] "10"
 * ```
 *
 * @module
 */

/**
 * Element types a {@link HostTensor} can hold.
 *
 * @example
 * ```ts
 * import type { HostDtype } from "./safetensors.ts";
 *
 * const dtype: HostDtype = "f32";
 * ```
 */
export type HostDtype = "f32" | "i32" | "u32";

/**
 * A tensor in host memory: row-major (C order) `data` with `product(shape)`
 * elements. A scalar has shape `[]` and one element.
 *
 * @example
 * ```ts
 * import type { HostTensor } from "./safetensors.ts";
 *
 * const t: HostTensor = { dtype: "i32", shape: [2, 2], data: new Int32Array([1, 2, 3, 4]) };
 * ```
 */
export type HostTensor = {
  dtype: HostDtype;
  shape: number[];
  data: Float32Array | Int32Array | Uint32Array;
};

/**
 * Any problem with a safetensors file or with tensors given to the encoder. The
 * message names the file (or `<bytes>`), the tensor when there is one, and what
 * is wrong.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, SafetensorsError } from "./safetensors.ts";
 *
 * try {
 *   decodeSafetensors(new Uint8Array(3), "model.safetensors");
 * } catch (e) {
 *   if (e instanceof SafetensorsError) console.log(e.message);
 * }
 * ```
 */
export class SafetensorsError extends Error {
  /**
   * @param message What is wrong, already naming the file and tensor.
   * @param options Standard error options (`cause`).
   *
   * @example
   * ```ts
   * import { SafetensorsError } from "./safetensors.ts";
   *
   * const e = new SafetensorsError("a.safetensors: tensor \"w\": bad shape");
   * console.log(e.name, e.message);
   * ```
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SafetensorsError";
  }
}

/** The Python library refuses headers above this size; so do we. */
const MAX_HEADER_BYTES = 100_000_000;

/** The JSON key holding file-level string metadata rather than a tensor. */
const METADATA_KEY = "__metadata__";

/** How each file dtype is stored and which host dtype it decodes to. */
interface FileDtypeInfo {
  size: number;
  host: HostDtype;
  /**
   * Position in the Rust `Dtype` enum, which is ordered by alignment; the Python
   * writer sorts tensors by this, descending, then by name.
   */
  rank: number;
}

const FILE_DTYPES: Readonly<Record<string, FileDtypeInfo>> = {
  BOOL: { size: 1, host: "i32", rank: 0 },
  U8: { size: 1, host: "i32", rank: 1 },
  I8: { size: 1, host: "i32", rank: 2 },
  I16: { size: 2, host: "i32", rank: 5 },
  U16: { size: 2, host: "i32", rank: 6 },
  F16: { size: 2, host: "f32", rank: 7 },
  BF16: { size: 2, host: "f32", rank: 8 },
  I32: { size: 4, host: "i32", rank: 9 },
  U32: { size: 4, host: "u32", rank: 10 },
  F32: { size: 4, host: "f32", rank: 11 },
  F64: { size: 8, host: "f32", rank: 12 },
  I64: { size: 8, host: "i32", rank: 13 },
  U64: { size: 8, host: "i32", rank: 14 },
};

/** Dtypes the Python library knows but we cannot convert, for a clearer message. */
const UNSUPPORTED_DTYPES = new Set([
  "F8_E5M2",
  "F8_E4M3",
  "F8_E8M0",
  "F4",
  "F6_E2M3",
  "F6_E3M2",
  "C64",
]);

const HOST_TO_FILE: Readonly<Record<HostDtype, string>> = { f32: "F32", i32: "I32", u32: "U32" };

/** Typed arrays view memory in host byte order; the format is little-endian. */
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const utf8Encoder = new TextEncoder();

/** Compares strings by UTF-8 bytes, as Rust's `str::cmp` does (JS `<` uses UTF-16 units). */
function compareUtf8(a: string, b: string): number {
  const x = utf8Encoder.encode(a);
  const y = utf8Encoder.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    if (x[i] !== y[i]) return x[i] - y[i];
  }
  return x.length - y.length;
}

/** Sets an own enumerable property, even for names like `__proto__`. */
function setEntry<T>(target: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function hasOwn(o: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, key);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A short printable form of a bad value for error messages. */
function describe(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    // BigInt and cyclic values cannot be stringified as JSON.
    s = typeof v === "bigint" ? `${v}n` : Object.prototype.toString.call(v);
  }
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}

/** Bytes of a typed array in little-endian order, without copying on little-endian hosts. */
function littleEndianBytes(data: Float32Array | Int32Array | Uint32Array): Uint8Array {
  if (HOST_IS_LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) {
    if (data instanceof Float32Array) view.setFloat32(i * 4, data[i], true);
    else view.setUint32(i * 4, data[i] >>> 0, true);
  }
  return out;
}

/**
 * Serializes tensors to safetensors bytes that the Python `safetensors` package
 * loads. Tensors are laid out as the Python writer does (by dtype alignment,
 * descending, then by UTF-8 name), offsets are contiguous, and the JSON header
 * is padded with spaces to a multiple of 8 bytes so that the data section is
 * 8-byte aligned in the file.
 *
 * @param tensors Tensors by name. `"__metadata__"` is reserved and rejected.
 * @param metadata Optional string → string file metadata (`__metadata__`).
 * @returns The complete file contents.
 * @throws {SafetensorsError} if a tensor's dtype, shape or data is inconsistent.
 *
 * @example
 * ```ts
 * import { encodeSafetensors } from "./safetensors.ts";
 *
 * const bytes = encodeSafetensors({
 *   "layer.0.weight": { dtype: "f32", shape: [2, 3], data: new Float32Array(6) },
 *   "step": { dtype: "i32", shape: [], data: new Int32Array([100]) },
 * }, { format: "pt" });
 * await Deno.writeFile((await Deno.makeTempDir()) + "/model.safetensors", bytes);
 * ```
 */
export function encodeSafetensors(
  tensors: Record<string, HostTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const where = "<encode>";
  const entries: Array<{ name: string; tensor: HostTensor; file: string; bytes: number }> = [];
  for (const name of Object.keys(tensors)) {
    const t = tensors[name];
    const label = `${where}: tensor ${JSON.stringify(name)}`;
    if (name === METADATA_KEY) {
      throw new SafetensorsError(`${label}: the name ${METADATA_KEY} is reserved for metadata`);
    }
    if (!isPlainObject(t)) throw new SafetensorsError(`${label}: not a HostTensor`);
    if (!hasOwn(HOST_TO_FILE, t.dtype)) {
      throw new SafetensorsError(`${label}: unknown dtype ${describe(t.dtype)}`);
    }
    const expectedArray = t.dtype === "f32"
      ? Float32Array
      : t.dtype === "i32"
      ? Int32Array
      : Uint32Array;
    if (!(t.data instanceof expectedArray)) {
      throw new SafetensorsError(
        `${label}: dtype ${t.dtype} needs a ${expectedArray.name}, got ${
          (t.data as object)?.constructor?.name ?? typeof t.data
        }`,
      );
    }
    if (!Array.isArray(t.shape)) throw new SafetensorsError(`${label}: shape is not an array`);
    let count = 1;
    for (const d of t.shape) {
      if (!Number.isSafeInteger(d) || d < 0) {
        throw new SafetensorsError(
          `${label}: shape ${describe(t.shape)} has ${describe(d)}, not a non-negative integer`,
        );
      }
      count *= d;
    }
    if (count !== t.data.length) {
      throw new SafetensorsError(
        `${label}: shape ${
          describe(t.shape)
        } holds ${count} elements but data has ${t.data.length}`,
      );
    }
    entries.push({ name, tensor: t, file: HOST_TO_FILE[t.dtype], bytes: t.data.byteLength });
  }
  entries.sort((a, b) =>
    FILE_DTYPES[b.file].rank - FILE_DTYPES[a.file].rank || compareUtf8(a.name, b.name)
  );

  // The header is assembled by hand: a JS object would move integer-like names
  // ("0", "1") to the front, breaking the order that the offsets follow.
  const parts: string[] = [];
  if (metadata !== undefined) {
    const keys = Object.keys(metadata).sort(compareUtf8);
    const fields = keys.map((k) => {
      const v = metadata[k];
      if (typeof v !== "string") {
        throw new SafetensorsError(
          `${where}: metadata ${JSON.stringify(k)} must be a string, got ${describe(v)}`,
        );
      }
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${fields.join(",")}}`);
  }
  let offset = 0;
  for (const e of entries) {
    const shape = e.tensor.shape.join(",");
    parts.push(
      `${JSON.stringify(e.name)}:{"dtype":"${e.file}","shape":[${shape}],` +
        `"data_offsets":[${offset},${offset + e.bytes}]}`,
    );
    offset += e.bytes;
  }
  const json = utf8Encoder.encode(`{${parts.join(",")}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;

  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let pos = 8 + headerLength;
  for (const e of entries) {
    out.set(littleEndianBytes(e.tensor.data), pos);
    pos += e.bytes;
  }
  return out;
}

/**
 * Finds a key repeated at the top level of a valid JSON object text. `JSON.parse`
 * keeps the last duplicate silently, which would hide a tensor; one linear scan
 * catches it.
 */
function findDuplicateTopLevelKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      const start = i++;
      while (text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      i++;
      if (depth === 1) {
        let j = i;
        while (j < text.length && " \t\r\n".includes(text[j])) j++;
        if (text[j] === ":") {
          const key = JSON.parse(text.slice(start, i)) as string;
          if (seen.has(key)) return key;
          seen.add(key);
        }
      }
      continue;
    }
    if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") depth--;
    i++;
  }
  return undefined;
}

interface ParsedEntry {
  name: string;
  file: string;
  info: FileDtypeInfo;
  shape: number[];
  count: number;
  begin: number;
  end: number;
}

/** Validates one header entry against the data section length. */
function parseEntry(source: string, name: string, raw: unknown, dataLength: number): ParsedEntry {
  const label = `${source}: tensor ${JSON.stringify(name)}`;
  if (!isPlainObject(raw)) {
    throw new SafetensorsError(`${label}: entry must be an object, got ${describe(raw)}`);
  }
  for (const field of ["dtype", "shape", "data_offsets"]) {
    if (!hasOwn(raw, field)) throw new SafetensorsError(`${label}: missing "${field}"`);
  }
  const file = raw.dtype;
  if (typeof file !== "string") {
    throw new SafetensorsError(`${label}: "dtype" must be a string, got ${describe(file)}`);
  }
  if (!hasOwn(FILE_DTYPES, file)) {
    throw new SafetensorsError(
      UNSUPPORTED_DTYPES.has(file)
        ? `${label}: dtype ${file} is not supported (cannot convert to f32/i32/u32)`
        : `${label}: unknown dtype ${describe(file)}`,
    );
  }
  const info = FILE_DTYPES[file];

  const shape = raw.shape;
  if (!Array.isArray(shape)) {
    throw new SafetensorsError(`${label}: "shape" must be an array, got ${describe(shape)}`);
  }
  // The element count is bounded by the data section, so multiply only while it
  // stays small; a zero anywhere makes the tensor empty however big the rest is.
  let count = 1;
  let tooBig = false;
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      throw new SafetensorsError(
        `${label}: shape ${describe(shape)} has ${describe(d)}, not a non-negative integer`,
      );
    }
    if (!tooBig) {
      count *= d;
      if (count > dataLength) tooBig = true;
    }
  }
  if (tooBig && shape.includes(0)) {
    count = 0;
    tooBig = false;
  }

  const offsets = raw.data_offsets;
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => typeof o === "number" && Number.isSafeInteger(o) && o >= 0)
  ) {
    throw new SafetensorsError(
      `${label}: "data_offsets" must be [begin, end] non-negative integers, got ${
        describe(offsets)
      }`,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) {
    throw new SafetensorsError(`${label}: data_offsets [${begin}, ${end}] has begin > end`);
  }
  if (end > dataLength) {
    throw new SafetensorsError(
      `${label}: data_offsets [${begin}, ${end}] run past the data section (${dataLength} bytes)`,
    );
  }
  const expected = tooBig ? Infinity : count * info.size;
  if (end - begin !== expected) {
    throw new SafetensorsError(
      `${label}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but shape ${
        describe(shape)
      } of ${file} needs ${tooBig ? "more than the whole data section" : `${expected} bytes`}`,
    );
  }
  return { name, file, info, shape: shape.slice() as number[], count, begin, end };
}

/** Converts one tensor's bytes (already bounds-checked) to host data. */
function convert(
  source: string,
  e: ParsedEntry,
  data: Uint8Array,
): Float32Array | Int32Array | Uint32Array {
  const n = e.count;
  const at = data.byteOffset + e.begin;
  const view = new DataView(data.buffer, at, e.end - e.begin);
  const label = `${source}: tensor ${JSON.stringify(e.name)}`;
  switch (e.file) {
    case "F32":
    case "I32":
    case "U32": {
      const Ctor = e.file === "F32" ? Float32Array : e.file === "I32" ? Int32Array : Uint32Array;
      if (HOST_IS_LITTLE_ENDIAN) {
        // `slice` copies into a fresh, aligned buffer: the offset in the file
        // need not be a multiple of 4, and the result must not alias the input.
        return new Ctor(data.slice(e.begin, e.end).buffer);
      }
      const out = new Ctor(n);
      for (let i = 0; i < n; i++) {
        out[i] = e.file === "F32" ? view.getFloat32(i * 4, true) : view.getUint32(i * 4, true);
      }
      return out;
    }
    case "F64": {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
      return out;
    }
    case "F16": {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
      return out;
    }
    case "BF16": {
      // bfloat16 is the top half of a float32, so widening is a shift.
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      // Both views use host byte order, so this is right on any host.
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      return out;
    }
    case "I64":
    case "U64": {
      // Read as two 32-bit halves: a value fits in i32 exactly when the high
      // word is the sign extension of the low one (and, for U64, is zero).
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const lo = view.getInt32(i * 8, true);
        const hi = view.getInt32(i * 8 + 4, true);
        if (hi !== lo >> 31 || (e.file === "U64" && hi !== 0)) {
          const big = e.file === "I64"
            ? view.getBigInt64(i * 8, true)
            : view.getBigUint64(i * 8, true);
          throw new SafetensorsError(
            `${label}: ${e.file} value ${big} at element ${i} does not fit in i32`,
          );
        }
        out[i] = lo;
      }
      return out;
    }
    case "BOOL": {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getUint8(i) !== 0 ? 1 : 0;
      return out;
    }
    case "U8":
    case "I8": {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = e.file === "U8" ? view.getUint8(i) : view.getInt8(i);
      return out;
    }
    case "I16":
    case "U16": {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        out[i] = e.file === "I16" ? view.getInt16(i * 2, true) : view.getUint16(i * 2, true);
      }
      return out;
    }
  }
  // Unreachable: parseEntry admits only the dtypes above.
  throw new SafetensorsError(`${label}: unknown dtype ${e.file}`);
}

/** IEEE 754 binary16 bits → number (exact: every half is a float32). */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * Parses safetensors bytes (as written by the Python `safetensors` package or
 * by {@link encodeSafetensors}). F32, I32 and U32 load as is; F64, F16 and BF16
 * widen or narrow to f32; I64, U64, I16, U16, I8, U8 and BOOL become i32 (a
 * 64-bit value outside the i32 range is an error). The returned arrays are
 * copies and never alias `bytes`.
 *
 * Everything is checked before any data is read: header length, UTF-8, JSON
 * shape, dtypes, shapes, offsets, and that the tensors tile the data section
 * exactly, with no gaps or overlaps (as the Python library requires).
 *
 * @param bytes The whole file.
 * @param source Name for error messages, usually the file path.
 * @returns Tensors by name (in file order) and the `__metadata__` strings
 *   (empty when absent).
 * @throws {SafetensorsError} naming `source`, the tensor, and the problem.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
 *
 * const bytes = encodeSafetensors({ w: { dtype: "f32", shape: [2], data: new Float32Array([1, 2]) } });
 * const { tensors, metadata } = decodeSafetensors(bytes, "model.safetensors");
 * for (const [name, t] of Object.entries(tensors)) console.log(name, t.dtype, t.shape);
 * console.log(metadata);
 * ```
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  source = "<bytes>",
): { tensors: Record<string, HostTensor>; metadata: Record<string, string> } {
  if (!(bytes instanceof Uint8Array)) {
    throw new SafetensorsError(`${source}: expected a Uint8Array of file contents`);
  }
  if (bytes.length < 8) {
    throw new SafetensorsError(
      `${source}: file is ${bytes.length} bytes, too short for the 8-byte header length`,
    );
  }
  const prefix = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const headerLength64 = prefix.getBigUint64(0, true);
  if (headerLength64 > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(
      `${source}: header length ${headerLength64} exceeds the ${MAX_HEADER_BYTES}-byte limit ` +
        `(not a safetensors file, or corrupt)`,
    );
  }
  const headerLength = Number(headerLength64);
  if (8 + headerLength > bytes.length) {
    throw new SafetensorsError(
      `${source}: header length ${headerLength} runs past the end of the ${bytes.length}-byte file`,
    );
  }

  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(
      bytes.subarray(8, 8 + headerLength),
    );
  } catch {
    throw new SafetensorsError(`${source}: header is not valid UTF-8`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(
      `${source}: header is not valid JSON (${(e as Error).message})`,
      { cause: e },
    );
  }
  if (!isPlainObject(header)) {
    throw new SafetensorsError(`${source}: header must be a JSON object, got ${describe(header)}`);
  }
  const duplicate = findDuplicateTopLevelKey(text);
  if (duplicate !== undefined) {
    throw new SafetensorsError(
      `${source}: header lists ${JSON.stringify(duplicate)} more than once`,
    );
  }

  const dataStart = 8 + headerLength;
  const data = bytes.subarray(dataStart);
  const metadata: Record<string, string> = {};
  const entries: ParsedEntry[] = [];
  for (const name of Object.keys(header)) {
    const raw = header[name];
    if (name === METADATA_KEY) {
      // serde reads `null` as "no metadata", so accept it too.
      if (raw === null) continue;
      if (!isPlainObject(raw)) {
        throw new SafetensorsError(
          `${source}: ${METADATA_KEY} must be an object of strings, got ${describe(raw)}`,
        );
      }
      for (const k of Object.keys(raw)) {
        if (typeof raw[k] !== "string") {
          throw new SafetensorsError(
            `${source}: ${METADATA_KEY} ${JSON.stringify(k)} must be a string, got ${
              describe(raw[k])
            }`,
          );
        }
        setEntry(metadata, k, raw[k] as string);
      }
      continue;
    }
    entries.push(parseEntry(source, name, raw, data.length));
  }

  // The tensors must tile the data section exactly, in offset order.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: ParsedEntry | undefined;
  for (const e of entries) {
    const label = `${source}: tensor ${JSON.stringify(e.name)}`;
    const after = previous ? ` after tensor ${JSON.stringify(previous.name)}` : "";
    if (e.begin < covered) {
      throw new SafetensorsError(
        `${label}: data_offsets [${e.begin}, ${e.end}] overlap tensor ${
          JSON.stringify(previous!.name)
        } (which ends at ${covered})`,
      );
    }
    if (e.begin > covered) {
      throw new SafetensorsError(
        `${label}: data_offsets [${e.begin}, ${e.end}] leave a gap of ${
          e.begin - covered
        } unclaimed bytes at ${covered}${after}; tensors must be contiguous`,
      );
    }
    covered = e.end;
    previous = e;
  }
  if (covered !== data.length) {
    throw new SafetensorsError(
      `${source}: data section is ${data.length} bytes but tensors cover only ${covered}` +
        (previous ? ` (last is ${JSON.stringify(previous.name)})` : "") +
        `; trailing bytes are not allowed`,
    );
  }

  const tensors: Record<string, HostTensor> = {};
  for (const e of entries) {
    setEntry(tensors, e.name, {
      dtype: e.info.host,
      shape: e.shape,
      data: convert(source, e, data),
    });
  }
  return { tensors, metadata };
}

/**
 * Writes tensors to `path` atomically: the bytes go to a sibling temporary file,
 * which is flushed to disk and then renamed over `path`. A crash leaves either
 * the old file or the complete new one under the real name, never a partial one.
 *
 * @param path Destination file.
 * @param tensors Tensors by name (see {@link encodeSafetensors}).
 * @param metadata Optional string → string file metadata.
 * @throws {SafetensorsError} for bad tensors, or when the file cannot be written
 *   (the I/O error is the `cause`).
 *
 * @example
 * ```ts
 * import { writeSafetensorsFile } from "./safetensors.ts";
 *
 * const path = (await Deno.makeTempDir()) + "/ckpt.safetensors";
 * await writeSafetensorsFile(path, {
 *   bias: { dtype: "f32", shape: [3], data: new Float32Array([0.1, 0.2, 0.3]) },
 * }, { step: "1000" });
 * ```
 */
export async function writeSafetensorsFile(
  path: string,
  tensors: Record<string, HostTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const bytes = encodeSafetensors(tensors, metadata);
  const suffix = Array.from(crypto.getRandomValues(new Uint8Array(6)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  const tmp = `${path}.tmp-${suffix}`;
  try {
    const file = await Deno.open(tmp, { write: true, createNew: true });
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new SafetensorsError(`${path}: cannot write file: ${(e as Error).message}`, {
      cause: e,
    });
  }
  // Make the rename itself durable. Directories cannot be opened for sync on
  // every platform (Windows), so this step is best effort.
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  const dir = slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
  try {
    const handle = await Deno.open(dir, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  } catch {
    // The data is already safe in the file; only the rename's durability is at stake.
  }
}

/**
 * Reads and decodes a safetensors file (see {@link decodeSafetensors}).
 *
 * @param path File to read.
 * @returns Tensors by name and the file's `__metadata__`.
 * @throws {SafetensorsError} naming `path`, for unreadable or malformed files
 *   (an I/O error, such as `Deno.errors.NotFound`, is the `cause`).
 *
 * @example
 * ```ts
 * import { readSafetensorsFile, writeSafetensorsFile } from "./safetensors.ts";
 *
 * const path = (await Deno.makeTempDir()) + "/ckpt.safetensors";
 * await writeSafetensorsFile(path, { bias: { dtype: "f32", shape: [1], data: new Float32Array([0.5]) } });
 * const { tensors } = await readSafetensorsFile(path);
 * console.log(tensors.bias.data);
 * ```
 */
export async function readSafetensorsFile(
  path: string,
): Promise<{ tensors: Record<string, HostTensor>; metadata: Record<string, string> }> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new SafetensorsError(`${path}: cannot read file: ${(e as Error).message}`, {
      cause: e,
    });
  }
  return decodeSafetensors(bytes, path);
}
