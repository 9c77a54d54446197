import assert from "node:assert/strict";
import {
  decodeSafetensors,
  encodeSafetensors,
  type HostTensor,
  readSafetensorsFile,
  SafetensorsError,
  writeSafetensorsFile,
} from "../../engine/safetensors.ts";

// ---------------------------------------------------------------- helpers

/** Seeded PRNG (mulberry32) so that a failing fuzz case can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomTensor(dtype: HostTensor["dtype"], shape: number[], rand: () => number): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (dtype === "f32") {
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = (rand() - 0.5) * 10 ** Math.floor(rand() * 12 - 6);
    return { dtype, shape, data };
  }
  if (dtype === "i32") {
    const data = new Int32Array(n);
    for (let i = 0; i < n; i++) data[i] = Math.floor(rand() * 2 ** 32) - 2 ** 31;
    return { dtype, shape, data };
  }
  const data = new Uint32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.floor(rand() * 2 ** 32);
  return { dtype, shape, data };
}

/** Compares host tensors bit for bit (so NaN payloads and -0 count). */
function assertSameTensor(actual: HostTensor, expected: HostTensor, name: string): void {
  assert.equal(actual.dtype, expected.dtype, `${name}: dtype`);
  assert.deepEqual(actual.shape, expected.shape, `${name}: shape`);
  assert.equal(actual.data.constructor, expected.data.constructor, `${name}: array type`);
  assert.deepEqual(
    new Uint8Array(actual.data.buffer, actual.data.byteOffset, actual.data.byteLength),
    new Uint8Array(expected.data.buffer, expected.data.byteOffset, expected.data.byteLength),
    `${name}: data`,
  );
}

/** Builds a file by hand: u64 header length, header text (unpadded), data. */
function makeFile(
  header: string | object,
  data: Uint8Array | number[] = [],
  headerLength?: bigint,
): Uint8Array {
  const text = typeof header === "string" ? header : JSON.stringify(header);
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function bytesOf(view: (dv: DataView) => void, length: number): Uint8Array {
  const out = new Uint8Array(length);
  view(new DataView(out.buffer));
  return out;
}

function headerText(file: Uint8Array): string {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  return new TextDecoder().decode(file.subarray(8, 8 + n));
}

function assertBad(bytes: Uint8Array, pattern: RegExp, source = "bad.safetensors"): void {
  assert.throws(
    () => decodeSafetensors(bytes, source),
    (e: unknown) => {
      assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${e}`);
      assert.match(e.message, /^bad\.safetensors: /);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

const F32x2 = { dtype: "F32", shape: [2], data_offsets: [0, 8] };

// ---------------------------------------------------------------- round trips

Deno.test("safetensors: round trip of every host dtype and odd shapes", () => {
  const rand = rng(1);
  const shapes = [[3, 5, 7], [1], [], [0, 3], [2, 0, 4], [13], [1, 1, 1, 1, 3]];
  const tensors: Record<string, HostTensor> = {};
  for (const dtype of ["f32", "i32", "u32"] as const) {
    shapes.forEach((shape, i) => tensors[`${dtype}.${i}`] = randomTensor(dtype, shape, rand));
  }
  // Special floats must survive bit for bit.
  tensors.special = {
    dtype: "f32",
    shape: [7],
    data: new Float32Array([NaN, -0, Infinity, -Infinity, 1e-45, 3.4028234e38, -1.5]),
  };
  // A view into a larger buffer at an odd element offset: only its own bytes count.
  const backing = new Int32Array([9, 9, 1, 2, 3, 9]);
  tensors.view = { dtype: "i32", shape: [3], data: backing.subarray(2, 5) };

  const bytes = encodeSafetensors(tensors);
  const { tensors: back, metadata } = decodeSafetensors(bytes);
  assert.deepEqual(metadata, {});
  assert.deepEqual(Object.keys(back).sort(), Object.keys(tensors).sort());
  for (const name of Object.keys(tensors)) assertSameTensor(back[name], tensors[name], name);
  assert.deepEqual(Array.from(back.view.data), [1, 2, 3]);
  assert.deepEqual(back["f32.2"].shape, []);
  assert.equal(back["f32.2"].data.length, 1);
  assert.equal(back["u32.3"].data.length, 0);
});

Deno.test("safetensors: awkward names (integer-like, unicode, __proto__) round trip", () => {
  const names = ["10", "2", "0", "__proto__", "é", "😀", "a", "", "constructor", 'q"\\\n'];
  const tensors: Record<string, HostTensor> = {};
  names.forEach((name, i) =>
    Object.defineProperty(tensors, name, {
      value: { dtype: "i32", shape: [1], data: new Int32Array([i]) },
      enumerable: true,
    })
  );
  const back = decodeSafetensors(encodeSafetensors(tensors)).tensors;
  assert.equal(Object.getPrototypeOf(back), Object.prototype);
  for (const [i, name] of names.entries()) {
    assert.ok(Object.hasOwn(back, name), name);
    assert.deepEqual(Array.from(back[name].data), [i], name);
  }
});

Deno.test("safetensors: metadata round trip", () => {
  const metadata = { format: "pt", step: "1200", "note é": 'quote " and\nnewline', empty: "" };
  const bytes = encodeSafetensors(
    { w: { dtype: "f32", shape: [2], data: new Float32Array([1, 2]) } },
    metadata,
  );
  assert.deepEqual(decodeSafetensors(bytes).metadata, metadata);
  // With metadata and no tensors too.
  assert.deepEqual(decodeSafetensors(encodeSafetensors({}, { a: "b" })), {
    tensors: {},
    metadata: { a: "b" },
  });
  // `__metadata__: null` is what serde treats as absent.
  assert.deepEqual(decodeSafetensors(makeFile('{"__metadata__":null}')).metadata, {});
});

// ---------------------------------------------------------------- Python layout

Deno.test("safetensors: layout matches the Python writer byte for byte", () => {
  // One f32 tensor: compact JSON, space padding to 8, then raw little-endian data.
  const data = new Float32Array([0, 1, 2, 3, 4, 5]);
  const out = encodeSafetensors({ "attn.0": { dtype: "f32", shape: [1, 2, 3], data } });
  const json = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
  const padded = json + " ".repeat((8 - json.length % 8) % 8);
  assert.deepEqual(out, makeFile(padded, new Uint8Array(data.buffer)));
  assert.equal((out.length - 24) % 8, 0);

  // Empty: "{}" plus six spaces; metadata only: "__metadata__" first.
  assert.deepEqual(encodeSafetensors({}), makeFile("{}      "));
  assert.deepEqual(
    encodeSafetensors({}, { framework: "pt" }),
    makeFile('{"__metadata__":{"framework":"pt"}}     '),
  );
});

Deno.test("safetensors: tensors are ordered by dtype alignment, then UTF-8 name", () => {
  const t = (dtype: HostTensor["dtype"]): HostTensor => ({
    dtype,
    shape: [1],
    data: dtype === "f32"
      ? new Float32Array(1)
      : dtype === "i32"
      ? new Int32Array(1)
      : new Uint32Array(1),
  });
  // Rust compares UTF-8 bytes: U+FF61 (EF BD A1) comes before U+1F600 (F0 9F 98 80),
  // although JS `<` on UTF-16 units (FF61 vs D83D) would put the emoji first.
  const out = encodeSafetensors({
    b: t("i32"),
    a: t("i32"),
    z: t("u32"),
    "😀": t("f32"),
    "\uff61": t("f32"),
    m: t("f32"),
  });
  const header = JSON.parse(headerText(out));
  const order = Object.entries(header as Record<string, { data_offsets: number[] }>)
    .sort((x, y) => x[1].data_offsets[0] - y[1].data_offsets[0])
    .map(([name]) => name);
  assert.deepEqual(order, ["m", "\uff61", "😀", "z", "a", "b"]);
  // The header text lists them in the same order as the offsets.
  const text = headerText(out);
  const positions = order.map((n) => text.indexOf(JSON.stringify(n)));
  assert.deepEqual(positions, [...positions].sort((a, b) => a - b));
});

// ---------------------------------------------------------------- conversions

Deno.test("safetensors: decodes F64, F16, BF16, I64, U64 and small integer dtypes", () => {
  const f64 = [1.5, -2.25, 1e300, 0.1];
  const f16 = [0x3c00, 0xc000, 0x0001, 0x7bff, 0x7c00, 0xfc00, 0x8000, 0x7e00, 0x3555];
  const bf16 = [0x3f80, 0xc0a0, 0x7f80, 0x0001];
  const i64 = [0n, -1n, 2147483647n, -2147483648n, 42n];
  const parts: Array<[string, string, number[], Uint8Array]> = [
    // A 3-byte tensor first so that every later tensor sits at an unaligned offset.
    ["u8", "U8", [3], new Uint8Array([0, 200, 255])],
    ["f64", "F64", [2, 2], bytesOf((v) => f64.forEach((x, i) => v.setFloat64(i * 8, x, true)), 32)],
    ["f16", "F16", [9], bytesOf((v) => f16.forEach((x, i) => v.setUint16(i * 2, x, true)), 18)],
    ["bf16", "BF16", [4], bytesOf((v) => bf16.forEach((x, i) => v.setUint16(i * 2, x, true)), 8)],
    ["i64", "I64", [5], bytesOf((v) => i64.forEach((x, i) => v.setBigInt64(i * 8, x, true)), 40)],
    ["u64", "U64", [1], bytesOf((v) => v.setBigUint64(0, 2147483647n, true), 8)],
    ["i8", "I8", [2], new Uint8Array([0x80, 0x7f])],
    ["i16", "I16", [2], bytesOf((v) => (v.setInt16(0, -300, true), v.setInt16(2, 300, true)), 4)],
    ["u16", "U16", [1], bytesOf((v) => v.setUint16(0, 65535, true), 2)],
    ["bool", "BOOL", [3], new Uint8Array([1, 0, 1])],
    ["f32", "F32", [2], bytesOf((v) => (v.setFloat32(0, 0.5, true), v.setFloat32(4, -3, true)), 8)],
    ["i32", "I32", [1], bytesOf((v) => v.setInt32(0, -7, true), 4)],
    ["u32", "U32", [1], bytesOf((v) => v.setUint32(0, 4000000000, true), 4)],
  ];
  const header: Record<string, unknown> = {};
  const chunks: number[] = [];
  for (const [name, dtype, shape, data] of parts) {
    header[name] = { dtype, shape, data_offsets: [chunks.length, chunks.length + data.length] };
    chunks.push(...data);
  }
  const { tensors } = decodeSafetensors(makeFile(header, chunks));
  const get = (name: string) => Array.from(tensors[name].data);

  assert.equal(tensors.f64.dtype, "f32");
  assert.deepEqual(tensors.f64.shape, [2, 2]);
  assert.deepEqual(get("f64"), [1.5, -2.25, Infinity, Math.fround(0.1)]);
  assert.deepEqual(get("f16").slice(0, 7), [1, -2, 2 ** -24, 65504, Infinity, -Infinity, -0]);
  assert.ok(Number.isNaN(get("f16")[7]));
  assert.equal(get("f16")[8], 0.333251953125);
  assert.equal(tensors.bf16.dtype, "f32");
  assert.deepEqual(get("bf16"), [1, -5, Infinity, 2 ** -133]);
  assert.equal(tensors.i64.dtype, "i32");
  assert.deepEqual(get("i64"), [0, -1, 2147483647, -2147483648, 42]);
  assert.deepEqual(get("u64"), [2147483647]);
  assert.deepEqual(get("u8"), [0, 200, 255]);
  assert.deepEqual(get("i8"), [-128, 127]);
  assert.deepEqual(get("i16"), [-300, 300]);
  assert.deepEqual(get("u16"), [65535]);
  assert.deepEqual(get("bool"), [1, 0, 1]);
  assert.equal(tensors.bool.dtype, "i32");
  assert.deepEqual(get("f32"), [0.5, -3]);
  assert.ok(tensors.f32.data instanceof Float32Array);
  assert.deepEqual(get("i32"), [-7]);
  assert.equal(tensors.u32.dtype, "u32");
  assert.deepEqual(get("u32"), [4000000000]);
});

Deno.test("safetensors: I64 and U64 values outside i32 are errors naming the tensor", () => {
  for (
    const [dtype, value] of [["I64", 2n ** 31n], ["I64", -(2n ** 31n) - 1n], ["U64", 2n ** 63n]]
  ) {
    const data = bytesOf((v) => {
      v.setBigInt64(0, 5n, true);
      v.setBigUint64(8, BigInt.asUintN(64, value as bigint), true);
    }, 16);
    assertBad(
      makeFile({ counts: { dtype, shape: [2], data_offsets: [0, 16] } }, data),
      new RegExp(`tensor "counts": ${dtype} value ${value} at element 1 does not fit in i32`),
    );
  }
});

Deno.test("safetensors: decoded arrays do not alias the input bytes", () => {
  const bytes = encodeSafetensors({
    w: { dtype: "f32", shape: [2], data: new Float32Array([1, 2]) },
  });
  const { tensors } = decodeSafetensors(bytes);
  bytes.fill(0, bytes.length - 8);
  assert.deepEqual(Array.from(tensors.w.data), [1, 2]);
  // Input that is itself a view at an odd offset of a bigger buffer.
  const shifted = new Uint8Array(bytes.length + 3);
  const original = encodeSafetensors({
    w: { dtype: "u32", shape: [1], data: new Uint32Array([7]) },
  });
  shifted.set(original, 3);
  const view = shifted.subarray(3, 3 + original.length);
  assert.deepEqual(Array.from(decodeSafetensors(view).tensors.w.data), [7]);
});

// ---------------------------------------------------------------- malformed files

Deno.test("safetensors: malformed files give SafetensorsError with a helpful message", () => {
  const eight = new Uint8Array(8);
  // Length prefix and header.
  assertBad(new Uint8Array(5), /5 bytes, too short/);
  assertBad(makeFile("{}", [], 1000n), /header length 1000 runs past the end of the 10-byte file/);
  assertBad(makeFile("{}", [], 2n ** 63n), /header length \d+ exceeds the 100000000-byte limit/);
  assertBad(makeFile("{}", [], 100_000_001n), /exceeds the 100000000-byte limit/);
  const badUtf8 = makeFile("{}  ");
  badUtf8[10] = 0xff;
  assertBad(badUtf8, /header is not valid UTF-8/);
  assertBad(makeFile('{"a": '), /header is not valid JSON/);
  assertBad(makeFile(""), /header is not valid JSON/);
  assertBad(makeFile("[1,2]"), /header must be a JSON object, got \[1,2\]/);
  assertBad(makeFile("null"), /header must be a JSON object, got null/);
  assertBad(makeFile('"x"'), /header must be a JSON object/);

  // Metadata.
  assertBad(makeFile({ __metadata__: [1] }), /__metadata__ must be an object of strings/);
  assertBad(makeFile({ __metadata__: { step: 3 } }), /__metadata__ "step" must be a string, got 3/);

  // Entries.
  assertBad(makeFile({ w: 5 }, eight), /tensor "w": entry must be an object, got 5/);
  assertBad(
    makeFile({ w: { shape: [2], data_offsets: [0, 8] } }, eight),
    /tensor "w": missing "dtype"/,
  );
  assertBad(
    makeFile({ w: { dtype: "F32", data_offsets: [0, 8] } }, eight),
    /tensor "w": missing "shape"/,
  );
  assertBad(
    makeFile({ w: { dtype: "F32", shape: [2] } }, eight),
    /tensor "w": missing "data_offsets"/,
  );
  assertBad(
    makeFile({ w: { ...F32x2, dtype: 4 } }, eight),
    /tensor "w": "dtype" must be a string, got 4/,
  );
  assertBad(makeFile({ w: { ...F32x2, dtype: "F31" } }, eight), /tensor "w": unknown dtype "F31"/);
  assertBad(makeFile({ w: { ...F32x2, dtype: "f32" } }, eight), /tensor "w": unknown dtype "f32"/);
  assertBad(
    makeFile({ w: { ...F32x2, dtype: "F8_E4M3", shape: [8] } }, eight),
    /tensor "w": dtype F8_E4M3 is not supported/,
  );
  assertBad(
    makeFile({ w: { ...F32x2, shape: 2 } }, eight),
    /tensor "w": "shape" must be an array, got 2/,
  );
  for (const bad of [-1, 1.5, "2", null, 1e300]) {
    assertBad(
      makeFile({ w: { ...F32x2, shape: [bad, 1] } }, eight),
      /tensor "w": shape .* not a non-negative integer/,
    );
  }
  for (const bad of [[0], [0, 8, 9], "0,8", [0, -8], [0, 8.5], [null, 8], {}]) {
    assertBad(
      makeFile({ w: { ...F32x2, data_offsets: bad } }, eight),
      /tensor "w": "data_offsets" must be \[begin, end\] non-negative integers/,
    );
  }
  assertBad(
    makeFile({ w: { ...F32x2, data_offsets: [8, 0] } }, eight),
    /tensor "w": .* begin > end/,
  );
  assertBad(
    makeFile({ w: { ...F32x2, data_offsets: [0, 16] } }, eight),
    /tensor "w": data_offsets \[0, 16\] run past the data section \(8 bytes\)/,
  );
  assertBad(
    makeFile({ w: { ...F32x2, shape: [3] } }, eight),
    /tensor "w": data_offsets \[0, 8\] span 8 bytes but shape \[3\] of F32 needs 12 bytes/,
  );
  assertBad(
    makeFile({ w: { ...F32x2, shape: [2 ** 40, 2 ** 40] } }, eight),
    /tensor "w": .* needs more than the whole data section/,
  );
  // A huge shape with a zero in it is an empty tensor, not an overflow.
  const empty = makeFile({ w: { dtype: "F32", shape: [2 ** 50, 0], data_offsets: [0, 0] } });
  assert.deepEqual(decodeSafetensors(empty).tensors.w.shape, [2 ** 50, 0]);

  // Coverage of the data section.
  const sixteen = new Uint8Array(16);
  assertBad(
    makeFile({ a: F32x2, b: { ...F32x2, data_offsets: [4, 12] } }, sixteen),
    /tensor "b": data_offsets \[4, 12\] overlap tensor "a" \(which ends at 8\)/,
  );
  assertBad(
    makeFile({ a: F32x2, b: { ...F32x2, data_offsets: [0, 8] } }, sixteen),
    /tensor "[ab]": data_offsets \[0, 8\] overlap tensor "[ab]"/,
  );
  assertBad(
    makeFile({
      a: { ...F32x2, shape: [1], data_offsets: [0, 4] },
      b: { ...F32x2, data_offsets: [8, 16] },
    }, sixteen),
    /tensor "b": data_offsets \[8, 16\] leave a gap of 4 unclaimed bytes at 4 after tensor "a"/,
  );
  assertBad(
    makeFile({ b: { ...F32x2, data_offsets: [8, 16] } }, sixteen),
    /tensor "b": .* leave a gap of 8 unclaimed bytes at 0; tensors must be contiguous/,
  );
  assertBad(
    makeFile({ a: F32x2 }, sixteen),
    /data section is 16 bytes but tensors cover only 8 \(last is "a"\); trailing bytes/,
  );
  assertBad(makeFile({}, [1]), /data section is 1 bytes but tensors cover only 0/);

  // Duplicate keys would otherwise silently drop a tensor.
  assertBad(
    makeFile(`{"a":${JSON.stringify(F32x2)},"\\u0061":${JSON.stringify(F32x2)}}`, eight),
    /header lists "a" more than once/,
  );
  // ...but the same key in nested objects or as a value is fine.
  const nested = makeFile(
    `{"__metadata__":{"a":"a","dtype":"x"},"a":${JSON.stringify(F32x2)}}`,
    eight,
  );
  assert.deepEqual(decodeSafetensors(nested).metadata, { a: "a", dtype: "x" });
});

Deno.test("safetensors: the encoder rejects inconsistent tensors", () => {
  const bad = (t: unknown, pattern: RegExp, metadata?: unknown) =>
    assert.throws(
      () =>
        encodeSafetensors(
          { w: t } as Record<string, HostTensor>,
          metadata as Record<string, string>,
        ),
      (e: unknown) => e instanceof SafetensorsError && pattern.test(e.message),
    );
  bad(
    { dtype: "f32", shape: [3], data: new Float32Array(2) },
    /"w": shape \[3\] holds 3 elements but data has 2/,
  );
  bad(
    { dtype: "f32", shape: [2], data: new Int32Array(2) },
    /"w": dtype f32 needs a Float32Array, got Int32Array/,
  );
  bad({ dtype: "f64", shape: [2], data: new Float32Array(2) }, /"w": unknown dtype "f64"/);
  bad({ dtype: "i32", shape: [-1], data: new Int32Array(0) }, /not a non-negative integer/);
  bad({ dtype: "i32", shape: [1], data: new Int32Array(1) }, /metadata "k" must be a string/, {
    k: 1,
  });
  assert.throws(
    () => encodeSafetensors({ __metadata__: { dtype: "i32", shape: [], data: new Int32Array(1) } }),
    /reserved/,
  );
});

// ---------------------------------------------------------------- fuzz

Deno.test("safetensors: 300 truncations and bit flips decode or throw SafetensorsError", () => {
  const rand = rng(20240611);
  const valid = encodeSafetensors({
    "layer.weight": randomTensor("f32", [3, 4], rand),
    "layer.bias": randomTensor("f32", [4], rand),
    idx: randomTensor("i32", [5], rand),
    mask: randomTensor("u32", [0, 2], rand),
    s: randomTensor("u32", [], rand),
  }, { format: "pt", epoch: "3" });
  const headerEnd = 8 + Number(new DataView(valid.buffer).getBigUint64(0, true));
  const started = performance.now();
  let decoded = 0;
  let rejected = 0;
  for (let trial = 0; trial < 300; trial++) {
    let bytes = valid.slice();
    const kind = trial % 4;
    if (kind === 0) {
      bytes = bytes.slice(0, Math.floor(rand() * bytes.length));
    } else {
      // Bit flips concentrated in the length prefix and header, where they matter.
      const flips = 1 + Math.floor(rand() * 4);
      for (let f = 0; f < flips; f++) {
        const end = kind === 3 ? bytes.length : headerEnd;
        const at = kind === 1 && rand() < 0.3 ? Math.floor(rand() * 8) : Math.floor(rand() * end);
        bytes[at] ^= 1 << Math.floor(rand() * 8);
      }
    }
    try {
      const { tensors } = decodeSafetensors(bytes, "fuzz.safetensors");
      for (const t of Object.values(tensors)) {
        assert.equal(t.data.length, t.shape.reduce((a, b) => a * b, 1));
      }
      decoded++;
    } catch (e) {
      if (!(e instanceof SafetensorsError)) {
        throw new Error(`trial ${trial}: expected SafetensorsError, got ${e}`, { cause: e });
      }
      assert.match(e.message, /^fuzz\.safetensors: /);
      rejected++;
    }
  }
  assert.equal(decoded + rejected, 300);
  assert.ok(rejected > 50, `only ${rejected} of 300 mutations were rejected`);
  assert.ok(performance.now() - started < 5000, "fuzzing took too long");
});

// ---------------------------------------------------------------- files

Deno.test("safetensors: atomic write leaves no temp file and replaces the old file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "frost_safetensors_" });
  try {
    const path = `${dir}/model.safetensors`;
    const first: Record<string, HostTensor> = {
      a: { dtype: "f32", shape: [2], data: new Float32Array([1, 2]) },
    };
    await writeSafetensorsFile(path, first, { v: "1" });
    await writeSafetensorsFile(
      path,
      { b: { dtype: "i32", shape: [], data: new Int32Array([5]) } },
      {
        v: "2",
      },
    );
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names, ["model.safetensors"]);
    const { tensors, metadata } = await readSafetensorsFile(path);
    assert.deepEqual(metadata, { v: "2" });
    assert.deepEqual(Object.keys(tensors), ["b"]);
    assert.deepEqual(Array.from(tensors.b.data), [5]);

    // A rejected write keeps the previous file intact and leaves nothing behind.
    await assert.rejects(
      writeSafetensorsFile(path, {
        bad: { dtype: "f32", shape: [3], data: new Float32Array(1) },
      }),
      SafetensorsError,
    );
    assert.deepEqual((await readSafetensorsFile(path)).metadata, { v: "2" });
    names.length = 0;
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names, ["model.safetensors"]);

    // An unwritable destination is a SafetensorsError naming the path.
    const missing = `${dir}/no/such/dir/x.safetensors`;
    await assert.rejects(
      writeSafetensorsFile(missing, {}),
      (e: unknown) => e instanceof SafetensorsError && e.message.startsWith(missing),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: read errors name the path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "frost_safetensors_" });
  try {
    const missing = `${dir}/missing.safetensors`;
    await assert.rejects(readSafetensorsFile(missing), (e: unknown) => {
      assert.ok(e instanceof SafetensorsError);
      assert.ok(e.message.startsWith(`${missing}: cannot read file`));
      assert.ok(e.cause instanceof Deno.errors.NotFound);
      return true;
    });
    const corrupt = `${dir}/corrupt.safetensors`;
    await Deno.writeFile(corrupt, makeFile({ w: F32x2 }, new Uint8Array(4)));
    await assert.rejects(readSafetensorsFile(corrupt), (e: unknown) => {
      assert.ok(e instanceof SafetensorsError);
      assert.match(e.message, new RegExp(`^${corrupt}: tensor "w": .*run past the data section`));
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------- PyTorch fixture

const FIXTURE = new URL("../fixtures/safetensors_torch.safetensors", import.meta.url);
const FIXTURE_JSON = new URL("../fixtures/safetensors_torch.json", import.meta.url);
const fixturePresent = (() => {
  try {
    Deno.statSync(FIXTURE);
    Deno.statSync(FIXTURE_JSON);
    return true;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "safetensors: decodes the PyTorch fixture exactly",
  ignore: !fixturePresent,
  fn: async () => {
    const expected = JSON.parse(await Deno.readTextFile(FIXTURE_JSON)) as {
      metadata?: Record<string, string>;
      dtypes?: Record<string, string>;
      tensors: Record<string, { shape: number[]; data: unknown[] }>;
    };
    const { tensors, metadata } = await readSafetensorsFile(decodeURIComponent(FIXTURE.pathname));
    assert.deepEqual(metadata, expected.metadata ?? {});
    assert.deepEqual(Object.keys(tensors).sort(), Object.keys(expected.tensors).sort());
    const hostOf: Record<string, string> = {
      F32: "f32",
      F16: "f32",
      BF16: "f32",
      F64: "f32",
      U32: "u32",
    };
    for (const [name, want] of Object.entries(expected.tensors)) {
      const got = tensors[name];
      assert.deepEqual(got.shape, want.shape, name);
      const fileDtype = expected.dtypes?.[name];
      if (fileDtype) assert.equal(got.dtype, hostOf[fileDtype] ?? "i32", name);
      const values = (want.data as unknown[]).flat(Infinity).map(Number);
      assert.equal(got.data.length, values.length, name);
      // JSON floats are the exact f32 (or f16/bf16) values, so rounding to f32 must match exactly.
      const rounded = got.dtype === "f32" ? values.map(Math.fround) : values;
      assert.deepEqual(Array.from(got.data), rounded, name);
    }
  },
});
