import assert from "node:assert/strict";
import { join } from "node:path";
import { parseIdx, readIdxFile } from "../../data/idx.ts";
import { encodeIdx, gzip, IDX_TYPE } from "./helpers.ts";

Deno.test("parseIdx() decodes every element type, big-endian", () => {
  const cases: [number, ArrayLike<number>, string][] = [
    [IDX_TYPE.u8, [0, 1, 127, 128, 255, 7], "Uint8Array"],
    [IDX_TYPE.i8, [-128, -1, 0, 1, 127, 5], "Int8Array"],
    [IDX_TYPE.i16, [-32768, -2, 0, 258, 32767, 1], "Int16Array"],
    [IDX_TYPE.i32, [-2147483648, -3, 0, 16909060, 2147483647, 9], "Int32Array"],
    [IDX_TYPE.f32, [-1.5, 0, 0.25, 3.5, 1e10, -0], "Float32Array"],
    [IDX_TYPE.f64, [Math.PI, -Math.E, 0, 1e-300, 1e300, 0.1], "Float64Array"],
  ];
  for (const [type, values, cls] of cases) {
    const { shape, data } = parseIdx(encodeIdx(type, [2, 3], values), "t.idx");
    assert.deepEqual(shape, [2, 3]);
    assert.equal(data.constructor.name, cls);
    assert.deepEqual(Array.from(data), Array.from(values));
  }
});

Deno.test("parseIdx() reads a big-endian multi-byte value in the right byte order", () => {
  const bytes = new Uint8Array([0, 0, 0x0c, 1, 0, 0, 0, 1, 0x01, 0x02, 0x03, 0x04]);
  assert.deepEqual(Array.from(parseIdx(bytes, "be.idx").data), [0x01020304]);
});

Deno.test("parseIdx() decompresses gzip input and gives the same result", () => {
  const raw = encodeIdx(IDX_TYPE.i16, [4], [1, -2, 300, -400]);
  const a = parseIdx(raw, "a.idx");
  const b = parseIdx(gzip(raw), "a.idx.gz");
  assert.deepEqual(b.shape, a.shape);
  assert.deepEqual(Array.from(b.data), Array.from(a.data));
});

Deno.test("parseIdx() returns a fresh array, not a view of the input", () => {
  const raw = encodeIdx(IDX_TYPE.u8, [3], [1, 2, 3]);
  const { data } = parseIdx(raw, "x");
  raw[raw.length - 1] = 99;
  assert.deepEqual(Array.from(data), [1, 2, 3]);
  assert.equal(data.byteOffset, 0);
  assert.equal(data.buffer.byteLength, 3);
});

Deno.test("parseIdx() accepts zero-length dimensions", () => {
  const { shape, data } = parseIdx(encodeIdx(IDX_TYPE.u8, [0, 28, 28], []), "empty.idx");
  assert.deepEqual(shape, [0, 28, 28]);
  assert.equal(data.length, 0);
});

function rejects(bytes: Uint8Array, name: string, ...patterns: RegExp[]): void {
  assert.throws(() => parseIdx(bytes, name), (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.ok(e.message.startsWith(`${name}: `), `message does not name the file: ${e.message}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

Deno.test("parseIdx() rejects a wrong magic number and names the file", () => {
  const bytes = encodeIdx(IDX_TYPE.u8, [2], [1, 2]);
  bytes[0] = 0x50;
  bytes[1] = 0x4b;
  rejects(bytes, "/d/zip-in-disguise", /bad IDX magic number 50 4b 08 01/);
});

Deno.test("parseIdx() rejects an unknown type code and names the file", () => {
  const bytes = encodeIdx(IDX_TYPE.u8, [2], [1, 2]);
  bytes[2] = 0x0a;
  rejects(bytes, "/d/weird-type", /unknown IDX element type 0x0a/);
});

Deno.test("parseIdx() rejects zero dimensions and names the file", () => {
  rejects(new Uint8Array([0, 0, 8, 0, 1]), "/d/zero-dims", /0 dimensions/);
});

Deno.test("parseIdx() rejects a truncated header and names the file", () => {
  rejects(new Uint8Array([0, 0]), "/d/tiny", /truncated IDX header: 2 byte/);
  rejects(new Uint8Array([]), "/d/empty", /truncated IDX header: 0 byte/);
  const bytes = encodeIdx(IDX_TYPE.u8, [10, 28, 28], new Uint8Array(7840));
  rejects(bytes.subarray(0, 10), "/d/cut-header", /3 dimension\(s\) need 16 header bytes/);
});

Deno.test("parseIdx() rejects a truncated file and names it", () => {
  const bytes = encodeIdx(IDX_TYPE.u8, [10, 28, 28], new Uint8Array(7840));
  rejects(
    bytes.subarray(0, bytes.length - 100),
    "/d/train-images-idx3-ubyte",
    /IDX data is truncated/,
    /\[10, 28, 28\] of ubyte need 7840 data bytes, file has 7740/,
  );
  const f32 = encodeIdx(IDX_TYPE.f32, [3], [1, 2, 3]);
  rejects(f32.subarray(0, f32.length - 1), "/d/f32", /f32 need 12 data bytes, file has 11/);
});

Deno.test("parseIdx() rejects data longer than its dimensions and names the file", () => {
  const bytes = encodeIdx(IDX_TYPE.u8, [3], [1, 2, 3, 4, 5]);
  rejects(
    bytes,
    "/d/long",
    /longer than its dimensions/,
    /need 3 data bytes, file has 5 \(2 extra\)/,
  );
});

Deno.test("parseIdx() rejects corrupt gzip and names the file", () => {
  const gz = gzip(encodeIdx(IDX_TYPE.u8, [100], new Uint8Array(100).fill(3)));
  rejects(gz.subarray(0, gz.length - 12), "/d/cut.gz", /gzip data is corrupt or truncated/);
  const flipped = gz.slice();
  flipped[12] ^= 0xff;
  rejects(flipped, "/d/flipped.gz", /gzip data is corrupt or truncated/);
});

Deno.test("parseIdx() checks the decompressed contents of a gzip file too", () => {
  const raw = encodeIdx(IDX_TYPE.u8, [10], new Uint8Array(10));
  rejects(gzip(raw.subarray(0, 15)), "/d/short.gz", /IDX data is truncated/);
});

Deno.test("readIdxFile() reads plain and gzipped files from disk", async () => {
  const dir = await Deno.makeTempDir({ prefix: "frost_idx_" });
  try {
    const raw = encodeIdx(IDX_TYPE.f64, [2, 2], [1.5, -2.5, 3.25, 4]);
    await Deno.writeFile(join(dir, "a.idx"), raw);
    await Deno.writeFile(join(dir, "a.idx.gz"), gzip(raw));
    for (const name of ["a.idx", "a.idx.gz"]) {
      const { shape, data } = await readIdxFile(join(dir, name));
      assert.deepEqual(shape, [2, 2]);
      assert.deepEqual(Array.from(data), [1.5, -2.5, 3.25, 4]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readIdxFile() names a missing file", async () => {
  const path = "/nonexistent/frost/t10k-labels-idx1-ubyte";
  await assert.rejects(readIdxFile(path), (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.ok(e.message.startsWith(`${path}: cannot read IDX file`), e.message);
    return true;
  });
});
