import assert from "node:assert/strict";
import { dirname, join } from "node:path";
// deno-lint-ignore no-import-prefix
import { encode as encodePng } from "npm:fast-png@8.0.0";
// deno-lint-ignore no-import-prefix
import jpeg from "npm:jpeg-js@0.4.4";
import { decodeImage, toPlanar } from "../../data/decode_image.ts";
import { findClasses, loadImageFolder, loadImageFolderSplit } from "../../data/image_folder.ts";

/** Interleaved RGB test pattern: R = 10x + y, G = 100 + 3y, B = 200 - x - seed. */
function rgbPattern(w: number, h: number, seed = 0): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      out[o] = 10 * x + y;
      out[o + 1] = 100 + 3 * y;
      out[o + 2] = 200 - x - seed;
    }
  }
  return out;
}

/** Planar copy of an interleaved image. */
function planar(hwc: Uint8Array, c: number): Uint8Array {
  const hw = hwc.length / c;
  const out = new Uint8Array(hwc.length);
  for (let p = 0; p < hw; p++) for (let k = 0; k < c; k++) out[k * hw + p] = hwc[p * c + k];
  return out;
}

function rgbPng(w: number, h: number, seed = 0): Uint8Array {
  return encodePng({ width: w, height: h, data: rgbPattern(w, h, seed), channels: 3 });
}

async function write(path: string, bytes: Uint8Array | string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  if (typeof bytes === "string") await Deno.writeTextFile(path, bytes);
  else await Deno.writeFile(path, bytes);
}

Deno.test("loadImageFolder() sorts classes and files like ImageFolder and labels test by train classes", async () => {
  const dir = await Deno.makeTempDir();
  const t = join(dir, "train");
  // Seed s marks each file so its position in the set can be checked.
  const files: [string, number][] = [
    ["b_dog/2.png", 3],
    ["b_dog/10.png", 2],
    ["b_dog/sub/0.png", 4],
    ["a_cat/x.PNG", 1],
    ["Zebra/z.png", 0],
  ];
  for (const [f, s] of files) await write(join(t, f), rgbPng(4, 3, s));
  await write(join(t, "b_dog", "notes.txt"), "not an image");
  await write(join(t, ".ipynb_checkpoints", "x.png"), rgbPng(4, 3));
  await write(join(t, "a_cat", ".hidden.png"), "junk");
  await write(join(dir, "val", "b_dog", "v.png"), rgbPng(4, 3, 5));
  const ds = await loadImageFolder({ dir, size: [3, 4] });
  // Code-unit order: upper case first, as Python's sorted().
  assert.deepEqual(ds.train.classes, ["Zebra", "a_cat", "b_dog"]);
  assert.deepEqual(await findClasses(t), ["Zebra", "a_cat", "b_dog"]);
  // Files sorted by name ("10.png" < "2.png"), then sub-folders.
  assert.deepEqual([...ds.train.labels], [0, 1, 2, 2, 2]);
  const seeds = [0, 1, 2, 3, 4];
  assert.equal(ds.train.n, 5);
  const per = 3 * 3 * 4;
  seeds.forEach((s, i) => {
    assert.deepEqual(
      ds.train.images.subarray(i * per, (i + 1) * per),
      planar(rgbPattern(4, 3, s), 3),
    );
  });
  assert.equal(ds.test.n, 1);
  assert.deepEqual([...ds.test.labels], [2]);
  assert.deepEqual(ds.test.classes, ds.train.classes);
  assert.deepEqual(ds.test.images, planar(rgbPattern(4, 3, 5), 3));
  assert.match(ds.source, /train \+ .*val$/);
});

Deno.test("loadImageFolder() prefers test/ over val/ unless told, and rejects classes unknown to train", async () => {
  const dir = await Deno.makeTempDir();
  await write(join(dir, "train", "a", "0.png"), rgbPng(2, 2, 0));
  await write(join(dir, "train", "b", "0.png"), rgbPng(2, 2, 1));
  await write(join(dir, "test", "b", "0.png"), rgbPng(2, 2, 2));
  await write(join(dir, "val", "a", "0.png"), rgbPng(2, 2, 3));
  assert.deepEqual([...(await loadImageFolder({ dir, size: 2 })).test.labels], [1]);
  assert.deepEqual([...(await loadImageFolder({ dir, size: 2, testSplit: "val" })).test.labels], [
    0,
  ]);
  await write(join(dir, "test", "c", "0.png"), rgbPng(2, 2, 4));
  await assert.rejects(
    loadImageFolder({ dir, size: 2 }),
    /test: class folder\(s\) c not among the 2 training classes/,
  );
});

Deno.test("loadImageFolder() errors name the missing folder, the empty class and the bad size", async () => {
  const dir = await Deno.makeTempDir();
  await assert.rejects(loadImageFolder({ dir, size: 8 }), /missing train\/ folder/);
  await write(join(dir, "train", "a", "0.png"), rgbPng(2, 2));
  await assert.rejects(loadImageFolder({ dir, size: 8 }), /missing test\/ or val\/ folder/);
  await Deno.mkdir(join(dir, "val", "a"), { recursive: true });
  await assert.rejects(
    loadImageFolder({ dir, size: 8 }),
    (e: Error) =>
      e.message.startsWith(join(dir, "val")) &&
      /no .*png.* files in class folder\(s\) a/.test(e.message),
  );
  await assert.rejects(loadImageFolderSplit(join(dir, "nope"), { size: 8 }), /no such directory/);
  await assert.rejects(
    loadImageFolderSplit(join(dir, "val", "a"), { size: 8 }),
    /no class folders/,
  );
  await assert.rejects(loadImageFolder({ dir, size: 0 }), /size must be a positive integer/);
  await assert.rejects(
    loadImageFolder({ dir, size: [4] as unknown as [number, number] }),
    /size must be/,
  );
});

Deno.test("loadImageFolder() names the corrupt, truncated or foreign image file", async () => {
  const dir = await Deno.makeTempDir();
  const png = rgbPng(16, 16);
  const jpg =
    jpeg.encode({ width: 16, height: 16, data: new Uint8Array(16 * 16 * 4).fill(90) }, 90).data;
  await write(join(dir, "val", "a", "0.png"), png);
  const cases: [string, Uint8Array | string, RegExp][] = [
    ["cut.png", png.subarray(0, png.length >> 1), /corrupt or truncated PNG/],
    ["cut.jpg", jpg.subarray(0, jpg.length - 40), /corrupt or truncated JPEG/],
    ["text.jpeg", "hello, not a jpeg", /not a PNG or JPEG image \(starts with 68 65 6c/],
    ["empty.png", new Uint8Array(0), /empty file/],
  ];
  // A flipped bit inside the compressed data fails the chunk's CRC.
  const flipped = png.slice();
  flipped[png.length - 20] ^= 0x10;
  cases.push(["crc.png", flipped, /corrupt or truncated PNG \(.*CRC/i]);
  for (const [name, bytes, want] of cases) {
    const bad = join(dir, "train", "a", name);
    await write(bad, bytes);
    await assert.rejects(
      loadImageFolder({ dir, size: 8 }),
      (e: Error) => e.message.startsWith(`${bad}: `) && want.test(e.message),
      name,
    );
    await Deno.remove(bad);
  }
});

Deno.test("loadImageFolder() resizes with the chosen filter and fit", async () => {
  const dir = await Deno.makeTempDir();
  // 8 wide, 4 high grey image, value 10x + y.
  const grey = new Uint8Array(32);
  for (let y = 0; y < 4; y++) for (let x = 0; x < 8; x++) grey[y * 8 + x] = 10 * x + y;
  await write(
    join(dir, "train", "a", "0.png"),
    encodePng({ width: 8, height: 4, data: grey, channels: 1 }),
  );
  await write(
    join(dir, "val", "a", "0.png"),
    encodePng({ width: 8, height: 4, data: grey, channels: 1 }),
  );
  // center-crop to 4x4 at scale 1: the middle columns 2..5, unchanged.
  const crop = await loadImageFolder({ dir, size: 4, channels: 1, fit: "center-crop" });
  const want = Array.from({ length: 16 }, (_, i) => 10 * ((i % 4) + 2) + (i >> 2));
  assert.deepEqual([...crop.train.images], want);
  // Area to 2x4 (halving both axes): 2x2 block means, rounded.
  const area = await loadImageFolder({ dir, size: [2, 4], channels: 1, resample: "area" });
  const blocks = Array.from({ length: 8 }, (_, i) => {
    const y = (i >> 2) * 2, x = (i % 4) * 2;
    return Math.round(
      (grey[y * 8 + x] + grey[y * 8 + x + 1] + grey[(y + 1) * 8 + x] + grey[(y + 1) * 8 + x + 1]) /
        4,
    );
  });
  assert.deepEqual([...area.train.images], blocks);
  // Stretch to 3 channels at 4x8 (nearest, doubling rows): grey replicated, rows repeated.
  const up = await loadImageFolder({ dir, size: [8, 8], channels: 3, resample: "nearest" });
  assert.equal(up.train.images.length, 3 * 64);
  for (let k = 0; k < 3; k++) {
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) {
        assert.equal(up.train.images[k * 64 + y * 8 + x], grey[(y >> 1) * 8 + x]);
      }
    }
  }
});

Deno.test("loadImageFolder() decodes JPEG (also under a .png name) and keeps at most maxPerClass", async () => {
  const dir = await Deno.makeTempDir();
  const [w, h] = [16, 8];
  const rgba = new Uint8Array(w * h * 4);
  for (let p = 0; p < w * h; p++) {
    rgba.set([60 + 4 * (p % w), 120, 200 - 8 * Math.floor(p / w), 255], p * 4);
  }
  const jpg = jpeg.encode({ width: w, height: h, data: rgba }, 100).data;
  for (const name of ["0.JPEG", "1.jpg", "2.png"]) await write(join(dir, "train", "a", name), jpg);
  await write(join(dir, "test", "a", "0.jpg"), jpg);
  const ds = await loadImageFolder({ dir, size: [h, w], maxPerClass: 2 });
  assert.equal(ds.train.n, 2);
  const want = planar(rgba.filter((_, i) => i % 4 !== 3), 3);
  const got = ds.train.images.subarray(0, 3 * w * h);
  // Lossy even at quality 100 (chroma subsampling, rounding): a few levels at most on smooth content.
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  assert.ok(worst <= 6, `max |jpeg - original| = ${worst}`);
  assert.deepEqual(ds.train.images.subarray(3 * w * h), got);
  await assert.rejects(loadImageFolder({ dir, size: 4, maxPerClass: 0 }), /maxPerClass/);
});

Deno.test("loadImageFolder() uses u16 labels beyond 256 classes", async () => {
  const dir = await Deno.makeTempDir();
  const png = rgbPng(1, 1);
  for (let c = 0; c < 300; c++) {
    await write(join(dir, "train", `c${String(c).padStart(3, "0")}`, "0.png"), png);
  }
  await write(join(dir, "val", "c299", "0.png"), png);
  const ds = await loadImageFolder({ dir, size: 1 });
  assert.ok(ds.train.labels instanceof Uint16Array);
  assert.equal(ds.train.labels[299], 299);
  assert.deepEqual([...ds.test.labels], [299]);
});

Deno.test("decodeImage() reads every PNG colour type and bit depth, Adam7 and palettes", () => {
  const px = (
    img: ReturnType<typeof decodeImage>,
  ) => [img.width, img.height, img.channels, [...img.data]];
  const grey = new Uint8Array([0, 85, 170, 255, 1, 2]);
  assert.deepEqual(
    px(decodeImage(encodePng({ width: 3, height: 2, data: grey, channels: 1 }), "g")),
    [
      3,
      2,
      1,
      [...grey],
    ],
  );
  // 16-bit samples round to the nearest 8-bit level.
  const g16 = new Uint16Array([0, 257 * 200, 65535, 257 * 3 + 128]);
  assert.deepEqual(
    px(decodeImage(encodePng({ width: 2, height: 2, data: g16, channels: 1, depth: 16 }), "g16")),
    [2, 2, 1, [0, 200, 255, 3]],
  );
  // 2-bit grey scales 0..3 to 0..255.
  const g2 = new Uint8Array([0b00011011, 0b11000000]);
  assert.deepEqual(
    px(decodeImage(encodePng({ width: 5, height: 1, data: g2, channels: 1, depth: 2 }), "g2")),
    [5, 1, 1, [0, 85, 170, 255, 255]],
  );
  const rgba = Uint8Array.from({ length: 5 * 4 * 4 }, (_, i) => (i * 13) % 256);
  const adam7 = encodePng({ width: 5, height: 4, data: rgba, channels: 4 }, { interlace: "Adam7" });
  assert.deepEqual(px(decodeImage(adam7, "i")), [5, 4, 4, [...rgba]]);
  const ga = new Uint8Array([10, 255, 20, 0]);
  assert.deepEqual(
    px(decodeImage(encodePng({ width: 2, height: 1, data: ga, channels: 2 }), "ga")),
    [
      2,
      1,
      2,
      [...ga],
    ],
  );
  // Palette (4-bit indices) with transparency: RGBA out. The translucent entries come first
  // because fast-png 8.0.0's encoder writes tRNS for the non-opaque entries only, packed.
  const palette = [[0, 255, 0, 128], [0, 0, 255, 0], [255, 0, 0, 255]];
  const idx = new Uint8Array([0x01, 0x20]);
  const pal = encodePng({ width: 3, height: 1, data: idx, channels: 1, depth: 4, palette });
  assert.deepEqual(px(decodeImage(pal, "p")), [3, 1, 4, [
    ...palette[0],
    ...palette[1],
    ...palette[2],
  ]]);
});

Deno.test("toPlanar() converts channels as Pillow's convert() does", () => {
  const rgba = {
    width: 2,
    height: 1,
    channels: 4 as const,
    data: new Uint8Array([255, 0, 0, 9, 10, 200, 30, 0]),
  };
  assert.deepEqual([...toPlanar(rgba, 3)], [255, 10, 0, 200, 0, 30]);
  assert.deepEqual([...toPlanar(rgba, 4)], [255, 10, 0, 200, 0, 30, 9, 0]);
  // ITU-R 601-2 luma in Pillow's fixed point.
  const luma = (r: number, g: number, b: number) =>
    (19595 * r + 38470 * g + 7471 * b + 0x8000) >> 16;
  assert.deepEqual([...toPlanar(rgba, 1)], [luma(255, 0, 0), luma(10, 200, 30)]);
  assert.deepEqual([...toPlanar(rgba, 1)], [76, 124]);
  const ga = { width: 2, height: 1, channels: 2 as const, data: new Uint8Array([7, 50, 8, 60]) };
  assert.deepEqual([...toPlanar(ga, 3)], [7, 8, 7, 8, 7, 8]);
  assert.deepEqual([...toPlanar(ga, 4)], [7, 8, 7, 8, 7, 8, 50, 60]);
  const g = { width: 2, height: 1, channels: 1 as const, data: new Uint8Array([7, 8]) };
  assert.deepEqual([...toPlanar(g, 4)], [7, 8, 7, 8, 7, 8, 255, 255]);
  assert.deepEqual([...toPlanar(g, 1)], [7, 8]);
});
