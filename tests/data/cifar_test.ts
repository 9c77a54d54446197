import assert from "node:assert/strict";
import { join } from "node:path";
import {
  CIFAR100_COARSE_CLASSES,
  CIFAR100_FINE_CLASSES,
  CIFAR10_CLASSES,
  CIFAR10_FILES,
  loadCifar10,
  loadCifar100,
} from "../../data/cifar.ts";
import { cifarPixel, cifarRecords } from "./helpers.ts";

/** Records per CIFAR-10 train file in these tests (the real files hold 10000 each). */
const PER_BATCH = [3, 2, 1, 2, 2];

/** Writes a tiny CIFAR-10 binary dataset; record k (train files in order, then test) has label k % 10. */
async function writeCifar10(dir: string, test = 3): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  let k = 0;
  for (const [f, name] of CIFAR10_FILES.train.entries()) {
    const labels = Array.from({ length: PER_BATCH[f] }, (_, j) => [(k + j) % 10]);
    await Deno.writeFile(join(dir, name), cifarRecords(labels, k));
    k += PER_BATCH[f];
  }
  const labels = Array.from({ length: test }, (_, j) => [(k + j) % 10]);
  await Deno.writeFile(join(dir, CIFAR10_FILES.test), cifarRecords(labels, k));
}

function expectedPixels(first: number, n: number): Uint8Array {
  const out = new Uint8Array(n * 3072);
  for (let k = 0; k < n; k++) {
    for (let p = 0; p < 3072; p++) out[k * 3072 + p] = cifarPixel(first + k, p);
  }
  return out;
}

Deno.test("loadCifar10() reads the train batches in order and keeps the R, G, B planes as NCHW", async () => {
  const dir = await Deno.makeTempDir();
  await writeCifar10(dir);
  const ds = await loadCifar10({ dir });
  const n = PER_BATCH.reduce((a, b) => a + b);
  assert.equal(ds.train.n, n);
  assert.equal(ds.test.n, 3);
  for (const set of [ds.train, ds.test]) {
    assert.deepEqual([set.channels, set.height, set.width], [3, 32, 32]);
    assert.deepEqual(set.classes, [...CIFAR10_CLASSES]);
  }
  assert.deepEqual(ds.train.labels, Uint8Array.from({ length: n }, (_, k) => k % 10));
  assert.deepEqual(ds.train.images, expectedPixels(0, n));
  assert.deepEqual(ds.test.labels, Uint8Array.from({ length: 3 }, (_, k) => (n + k) % 10));
  assert.deepEqual(ds.test.images, expectedPixels(n, 3));
  // Record byte 1 is red (0, 0), byte 1025 green (0, 0), byte 2049 blue (0, 0).
  assert.equal(ds.train.images[1024], cifarPixel(0, 1024));
  assert.equal(ds.source, dir);
});

Deno.test("loadCifar10() finds cifar-10-batches-bin/ below dir and reads batches.meta.txt", async () => {
  const root = await Deno.makeTempDir();
  const dir = join(root, "cifar-10-batches-bin");
  await writeCifar10(dir);
  const names = Array.from({ length: 10 }, (_, i) => `class ${i}`);
  await Deno.writeTextFile(join(dir, "batches.meta.txt"), names.join("\n") + "\n\n");
  const ds = await loadCifar10({ dir: root });
  assert.equal(ds.source, dir);
  assert.deepEqual(ds.train.classes, names);
  assert.deepEqual(ds.test.classes, names);
});

Deno.test("loadCifar10() lists every missing file", async () => {
  const dir = await Deno.makeTempDir();
  await writeCifar10(dir);
  await Deno.remove(join(dir, "data_batch_3.bin"));
  await Deno.remove(join(dir, "test_batch.bin"));
  await assert.rejects(
    loadCifar10({ dir }),
    (e: Error) =>
      e.message.includes("data_batch_3.bin, test_batch.bin") &&
      e.message.includes("cifar-10-batches-bin") && !e.message.includes("data_batch_1"),
  );
  await assert.rejects(
    loadCifar10({ dir: join(dir, "nowhere") }),
    /data_batch_1\.bin, data_batch_2\.bin, data_batch_3\.bin, data_batch_4\.bin, data_batch_5\.bin, test_batch\.bin/,
  );
});

Deno.test("loadCifar10() names the file whose size is not a whole number of records", async () => {
  const dir = await Deno.makeTempDir();
  await writeCifar10(dir);
  const path = join(dir, "data_batch_2.bin");
  const bytes = await Deno.readFile(path);
  await Deno.writeFile(path, bytes.subarray(0, bytes.length - 100));
  await assert.rejects(
    loadCifar10({ dir }),
    (e: Error) =>
      e.message.startsWith(path) && e.message.includes(`size ${2 * 3073 - 100} bytes`) &&
      e.message.includes("3073-byte"),
  );
  await Deno.writeFile(path, new Uint8Array(0));
  await assert.rejects(loadCifar10({ dir }), /data_batch_2\.bin: size 0 bytes/);
});

Deno.test("loadCifar10() names the file and record index of a label out of range", async () => {
  const dir = await Deno.makeTempDir();
  await writeCifar10(dir);
  const path = join(dir, "data_batch_4.bin");
  await Deno.writeFile(path, cifarRecords([[1], [10]]));
  await assert.rejects(
    loadCifar10({ dir }),
    (e: Error) =>
      e.message.startsWith(path) && /record 1 has label 10, outside .*0\.\.9/.test(e.message),
  );
});

Deno.test("loadCifar10() rejects a batches.meta.txt with the wrong number of names", async () => {
  const dir = await Deno.makeTempDir();
  await writeCifar10(dir);
  await Deno.writeTextFile(join(dir, "batches.meta.txt"), "a\nb\n");
  await assert.rejects(loadCifar10({ dir }), /batches\.meta\.txt: has 2 class names, expected 10/);
});

async function writeCifar100(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  // [coarse, fine] pairs that exercise both bytes, including the top of each range.
  await Deno.writeFile(join(dir, "train.bin"), cifarRecords([[19, 99], [0, 5], [7, 42], [3, 0]]));
  await Deno.writeFile(join(dir, "test.bin"), cifarRecords([[11, 64], [2, 13]], 4));
}

Deno.test("loadCifar100() picks the fine or the coarse label byte", async () => {
  const root = await Deno.makeTempDir();
  await writeCifar100(join(root, "cifar-100-binary"));
  const fine = await loadCifar100({ dir: root });
  assert.deepEqual(fine.train.labels, new Uint8Array([99, 5, 42, 0]));
  assert.deepEqual(fine.test.labels, new Uint8Array([64, 13]));
  assert.deepEqual(fine.train.classes, [...CIFAR100_FINE_CLASSES]);
  assert.deepEqual(fine.train.images, expectedPixels(0, 4));
  assert.deepEqual(fine.test.images, expectedPixels(4, 2));
  const coarse = await loadCifar100({ dir: join(root, "cifar-100-binary"), labels: "coarse" });
  assert.deepEqual(coarse.train.labels, new Uint8Array([19, 0, 7, 3]));
  assert.deepEqual(coarse.test.labels, new Uint8Array([11, 2]));
  assert.deepEqual(coarse.test.classes, [...CIFAR100_COARSE_CLASSES]);
  assert.deepEqual(coarse.train.images, fine.train.images);
  assert.match(coarse.source, /coarse labels/);
});

Deno.test("loadCifar100() reads fine/coarse_label_names.txt when present", async () => {
  const dir = await Deno.makeTempDir();
  await writeCifar100(dir);
  const coarse = Array.from({ length: 20 }, (_, i) => `super${i}`);
  await Deno.writeTextFile(join(dir, "coarse_label_names.txt"), coarse.join("\r\n"));
  const ds = await loadCifar100({ dir, labels: "coarse" });
  assert.deepEqual(ds.train.classes, coarse);
  // The fine names file is absent: the built-in names are used.
  assert.deepEqual((await loadCifar100({ dir })).train.classes, [...CIFAR100_FINE_CLASSES]);
});

Deno.test("loadCifar100() errors: missing files, record size, labels out of range, bad option", async () => {
  const dir = await Deno.makeTempDir();
  await writeCifar100(dir);
  await Deno.remove(join(dir, "test.bin"));
  await assert.rejects(loadCifar100({ dir }), /missing CIFAR-100 file\(s\) test\.bin/);
  await writeCifar100(dir);
  // A CIFAR-10 record (3073 bytes) in a CIFAR-100 file (3074-byte records).
  await Deno.writeFile(join(dir, "test.bin"), cifarRecords([[1], [2]]));
  await assert.rejects(loadCifar100({ dir }), /test\.bin: size 6146 bytes .* 3074-byte/);
  await Deno.writeFile(join(dir, "test.bin"), cifarRecords([[0, 1], [20, 1]]));
  await assert.rejects(
    loadCifar100({ dir, labels: "coarse" }),
    /test\.bin: record 1 has label 20, outside CIFAR-100 \(coarse\)'s 0\.\.19/,
  );
  await Deno.writeFile(join(dir, "test.bin"), cifarRecords([[0, 100]]));
  await assert.rejects(loadCifar100({ dir }), /test\.bin: record 0 has label 100/);
  await assert.rejects(
    loadCifar100({ dir, labels: "medium" as "fine" }),
    /labels must be "fine" or "coarse"/,
  );
});

Deno.test("CIFAR class-name tables have the datasets' sizes and label order", () => {
  assert.equal(CIFAR10_CLASSES.length, 10);
  assert.equal(CIFAR100_COARSE_CLASSES.length, 20);
  assert.equal(CIFAR100_FINE_CLASSES.length, 100);
  // The fine labels are the class names in alphabetical order.
  assert.deepEqual([...CIFAR100_FINE_CLASSES].sort(), [...CIFAR100_FINE_CLASSES]);
  assert.equal(new Set(CIFAR100_FINE_CLASSES).size, 100);
  assert.equal(CIFAR100_FINE_CLASSES[42], "leopard");
  assert.equal(CIFAR100_COARSE_CLASSES[9], "large_man-made_outdoor_things");
});
