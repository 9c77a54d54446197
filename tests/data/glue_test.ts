import assert from "node:assert/strict";
import { join } from "node:path";
import {
  loadCola,
  loadGlue,
  loadMrpc,
  MRPC_HEADER,
  parseColaTsv,
  parseMrpcTsv,
} from "../../data/glue.ts";

// Rows in GLUE's exact layout (quotes are plain characters: GLUE reads TSVs with QUOTE_NONE).
const MRPC_TRAIN = "\ufeff" + MRPC_HEADER + "\r\n" +
  '1\t702876\t702977\tAmrozi accused his brother , whom he called " the witness " , of ' +
  'deliberately distorting his evidence .\tReferring to him as only " the witness " , Amrozi ' +
  "accused his brother of deliberately distorting his evidence .\r\n" +
  "0\t2108705\t2108831\tYucaipa owned Dominick 's before selling the chain to Safeway in 1998 " +
  "for $ 2.5 billion .\tYucaipa bought Dominick 's in 1995 for $ 693 million and sold it to " +
  "Safeway for $ 1.8 billion in 1998 .\r\n";
const MRPC_DEV = MRPC_HEADER + "\n" +
  "1\t1355540\t1355592\tHe said the foodservice pie business doesn 't fit the company 's " +
  'long-term growth strategy .\t" The foodservice pie business does not fit our long-term ' +
  "growth strategy .\n";
const COLA_TRAIN =
  "gj04\t1\t\tOur friends won't buy this analysis, let alone the next one we propose.\n" +
  "gj04\t1\t\tOne more pseudo generalization and I'm giving up.\n" +
  'gj04\t0\t*\tThey drank the pub "dry".\n';
const COLA_DEV = "gj04\t1\t\tThe sailors rode the breeze clear of the rocks.\r\n" +
  'gj04\t0\t*\tThe more you eat, the less you want"\r\n\r\n';

async function writeDir(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "glue_test_" });
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(join(dir, name), text);
  return dir;
}

Deno.test("parseMrpcTsv() reads GLUE's MRPC rows: BOM, CRLF, quotes as plain characters", () => {
  const rows = parseMrpcTsv(MRPC_TRAIN, "train.tsv");
  assert.equal(rows.length, 2);
  assert.deepEqual(rows[0], {
    textA:
      'Amrozi accused his brother , whom he called " the witness " , of deliberately distorting his evidence .',
    textB:
      'Referring to him as only " the witness " , Amrozi accused his brother of deliberately distorting his evidence .',
    label: 1,
  });
  assert.equal(rows[1].label, 0);
  assert.equal(
    rows[1].textB,
    "Yucaipa bought Dominick 's in 1995 for $ 693 million and sold it to Safeway for $ 1.8 billion in 1998 .",
  );
  // A quote opening a field must not start a quoted field either.
  assert.equal(parseMrpcTsv(MRPC_DEV, "dev.tsv")[0].textB?.[0], '"');
});

Deno.test("parseMrpcTsv() rejects a missing header, wrong column counts and bad labels with file:line", () => {
  assert.throws(
    () => parseMrpcTsv("1\ta\tb\tc\td\n", "x.tsv"),
    /^Error: x\.tsv:1: expected the MRPC header/,
  );
  assert.throws(() => parseMrpcTsv("", "empty.tsv"), /empty\.tsv:1: expected the MRPC header/);
  const body = (row: string) => `${MRPC_HEADER}\n1\t1\t2\ta\tb\n\n${row}\n`;
  assert.throws(
    () => parseMrpcTsv(body("1\t1\t2\tonly a"), "train.tsv"),
    /^Error: train\.tsv:4: expected 5 tab-separated columns, got 4$/,
  );
  assert.throws(
    () => parseMrpcTsv(body("1\t1\t2\ta\tb\tc"), "train.tsv"),
    /train\.tsv:4: expected 5 tab-separated columns, got 6/,
  );
  assert.throws(
    () => parseMrpcTsv(body("yes\t1\t2\ta\tb"), "train.tsv"),
    /^Error: train\.tsv:4: label must be 0 or 1, got "yes"$/,
  );
});

Deno.test("parseColaTsv() reads CoLA rows (no header) and reports malformed ones by line", () => {
  const rows = parseColaTsv(COLA_TRAIN, "train.tsv");
  assert.deepEqual(rows.map((r) => r.label), [1, 1, 0]);
  assert.equal(rows[2].textA, 'They drank the pub "dry".');
  assert.equal(rows[0].textB, undefined);
  assert.equal(parseColaTsv(COLA_DEV, "dev.tsv")[1].textA, 'The more you eat, the less you want"');
  assert.throws(
    () => parseColaTsv(COLA_TRAIN + "gj04\t1\tmissing sentence\n", "train.tsv"),
    /^Error: train\.tsv:4: expected 4 tab-separated columns, got 3$/,
  );
  assert.throws(
    () => parseColaTsv("gj04\t2\t*\tToo good.\n", "dev.tsv"),
    /^Error: dev\.tsv:1: label must be 0 or 1, got "2"$/,
  );
});

Deno.test("loadMrpc() and loadCola() read a GLUE task directory (dev.tsv is the test split)", async () => {
  const mrpcDir = await writeDir({ "train.tsv": MRPC_TRAIN, "dev.tsv": MRPC_DEV });
  const colaDir = await writeDir({ "train.tsv": COLA_TRAIN, "dev.tsv": COLA_DEV });
  try {
    const mrpc = await loadMrpc({ dir: mrpcDir });
    assert.equal(mrpc.train.length, 2);
    assert.equal(mrpc.test.length, 1);
    assert.deepEqual(mrpc.classes, ["not_equivalent", "equivalent"]);
    assert.equal(mrpc.source, join(mrpcDir, "{train.tsv,dev.tsv}"));
    const cola = await loadGlue("cola", { dir: colaDir });
    assert.deepEqual([cola.train.length, cola.test.length], [3, 2]);
    assert.deepEqual(cola.classes, ["unacceptable", "acceptable"]);
    assert.deepEqual(await loadGlue("mrpc", { dir: mrpcDir }), mrpc);
  } finally {
    await Deno.remove(mrpcDir, { recursive: true });
    await Deno.remove(colaDir, { recursive: true });
  }
});

Deno.test("loadMrpc() reads the original release's msr_paraphrase_{train,test}.txt", async () => {
  const dir = await writeDir({
    "msr_paraphrase_train.txt": MRPC_TRAIN,
    "msr_paraphrase_test.txt": MRPC_DEV,
  });
  try {
    const ds = await loadMrpc({ dir });
    assert.deepEqual([ds.train.length, ds.test.length], [2, 1]);
    assert.match(ds.source, /msr_paraphrase_train\.txt,msr_paraphrase_test\.txt/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("GLUE loaders name the file and line of a bad row, and the directory of missing files", async () => {
  const dir = await writeDir({ "train.tsv": COLA_TRAIN, "dev.tsv": "gj04\t1\tno sentence\n" });
  try {
    await assert.rejects(
      () => loadCola({ dir }),
      new RegExp(`^Error: ${join(dir, "dev.tsv").replaceAll(".", "\\.")}:1: expected 4`),
    );
    // A CoLA directory read as MRPC fails on the header, not somewhere later.
    await assert.rejects(() => loadMrpc({ dir }), /train\.tsv:1: expected the MRPC header/);
    await Deno.remove(join(dir, "train.tsv"));
    await assert.rejects(() => loadMrpc({ dir }), /no MRPC files \(expected GLUE's train\.tsv/);
    await assert.rejects(
      () => loadCola({ dir: join(dir, "nope") }),
      /nope\/train\.tsv: cannot read/,
    );
    await assert.rejects(
      () => loadGlue("sst2" as "cola", { dir }),
      /unknown task "sst2"/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
