import assert from "node:assert/strict";
import { join } from "node:path";
import {
  emailToText,
  loadSpamAssassin,
  type SpamAssassinDataset,
  type SpamExample,
} from "../../data/spam_assassin.ts";
import { decodeHeaderWords, decodeQuotedPrintable, stripHtml } from "../../data/email_text.ts";

const counts = (xs: SpamExample[]) => [0, 1].map((l) => xs.filter((x) => x.label === l).length);

const real = await loadSpamAssassin();

Deno.test("loadSpamAssassin() reads all 6046 messages and splits them 80/20 per class", () => {
  assert.equal(real.messages, 6046);
  assert.equal(real.duplicates, 130);
  assert.equal(real.conflicting, 0);
  assert.deepEqual(real.classes, ["ham", "spam"]);
  assert.match(real.source, /^npm:@stdlib\/datasets-spam-assassin@0\.2\.3 \(/);
  assert.equal(real.train.length, 4733);
  assert.equal(real.test.length, 1183);
  assert.deepEqual(counts(real.train), [3288, 1445]);
  assert.deepEqual(counts(real.test), [822, 361]);
  // Stratified: the spam share is the same in both splits (to rounding).
  const share = (xs: SpamExample[]) => counts(xs)[1] / xs.length;
  assert.ok(Math.abs(share(real.train) - share(real.test)) < 0.002);
  const groups = new Map<string, number>();
  for (const e of [...real.train, ...real.test]) {
    groups.set(e.group, (groups.get(e.group) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries(groups), {
    "easy-ham-1": 2472,
    "easy-ham-2": 1388,
    "hard-ham-1": 250,
    "spam-1": 481,
    "spam-2": 1325,
  });
});

Deno.test("loadSpamAssassin() never puts a message id or a text in both splits", () => {
  const trainIds = new Set(real.train.map((e) => e.id));
  assert.equal(trainIds.size, real.train.length);
  assert.ok(real.test.every((e) => !trainIds.has(e.id)));
  const trainTexts = new Set(real.train.map((e) => e.textA));
  assert.ok(real.test.every((e) => !trainTexts.has(e.textA)));
  // Deduplicated: every text once.
  assert.equal(new Set([...real.train, ...real.test].map((e) => e.textA)).size, 5916);
  for (const e of real.train) {
    assert.match(e.id, /^(easy-ham-[12]|hard-ham-1|spam-[12])\/\d{5}$/);
    assert.equal(e.label, e.group.startsWith("spam") ? 1 : 0);
  }
});

Deno.test("loadSpamAssassin({dedupe: false}) keeps every message, copies in the same split", async () => {
  const all: SpamAssassinDataset = await loadSpamAssassin({ dedupe: false });
  assert.equal(all.train.length + all.test.length, 6046);
  assert.deepEqual([all.train.length, all.test.length], [4862, 1184]);
  const trainTexts = new Set(all.train.map((e) => e.textA));
  assert.ok(all.test.every((e) => !trainTexts.has(e.textA)));
  // The distinct texts land where they do with dedupe.
  const realTest = new Set(real.test.map((e) => e.textA));
  assert.ok(all.test.every((e) => realTest.has(e.textA)));
});

Deno.test("spam texts are subject plus readable body: no headers, no HTML, one line", () => {
  const ex = real.train.find((e) => e.id === "easy-ham-1/00001")!;
  assert.ok(ex.textA.startsWith("Re: New Sequences Window Date: Wed, 21 Aug 2002"), ex.textA);
  for (const e of [...real.train, ...real.test]) {
    assert.doesNotMatch(e.textA, /\s\s|^\s|\s$|\n/);
    assert.doesNotMatch(e.textA, /^(Return-Path|Received|Delivered-To): /);
  }
  const html = [...real.train, ...real.test].filter((e) => /<(html|body|font|td)\b/i.test(e.textA));
  assert.ok(html.length <= 5, `${html.length} texts still look like HTML`);
});

/** A corpus directory in the package's layout. */
async function fakeCorpus(messages: { group: string; id: string; md5: string; text: string }[]) {
  const dir = await Deno.makeTempDir({ prefix: "spam_test_" });
  const list: string[] = [];
  for (const m of messages) {
    await Deno.mkdir(join(dir, m.group), { recursive: true });
    const name = `${m.id}.${m.md5}`;
    list.push(`${m.group}/${name}.txt`);
    await Deno.writeTextFile(
      join(dir, m.group, `${name}.json`),
      JSON.stringify({
        id: m.id,
        group: m.group,
        checksum: { type: "MD5", value: m.md5 },
        text: m.text,
      }),
    );
  }
  await Deno.writeTextFile(join(dir, "file_list.json"), JSON.stringify(list));
  return { dir, list };
}

const hex = (i: number) => i.toString(16).padStart(32, "0");

Deno.test("the split depends on the MD5s, not on file order, and keeps duplicates together", async () => {
  const msgs = Array.from({ length: 20 }, (_, i) => ({
    group: i % 2 ? "spam-1" : "easy-ham-1",
    id: String(i).padStart(5, "0"),
    md5: hex((i * 7919) % 101),
    text: `Subject: message ${i}\n\nbody ${i}`,
  }));
  // Two copies of one spam text with other headers.
  msgs.push({
    ...msgs[1],
    id: "00098",
    md5: hex(200),
    text: "Subject: message 1\nX-A: b\n\nbody 1",
  });
  msgs.push({
    ...msgs[1],
    id: "00099",
    md5: hex(201),
    text: "X-C: d\nSubject: message 1\n\nbody 1",
  });
  const a = await fakeCorpus(msgs);
  const b = await fakeCorpus([...msgs].reverse());
  try {
    const da = await loadSpamAssassin({ dir: a.dir });
    const db = await loadSpamAssassin({ dir: b.dir });
    const ids = (xs: SpamExample[]) => xs.map((e) => e.id).sort();
    assert.deepEqual(ids(da.train), ids(db.train));
    assert.deepEqual(ids(da.test), ids(db.test));
    assert.deepEqual([da.train.length, da.test.length], [16, 4]);
    assert.deepEqual(counts(da.test), [2, 2]);
    assert.equal(da.duplicates, 2);
    assert.equal(da.source, `${a.dir}; fixed stratified 80/20 split by MD5, duplicates removed`);
    // The kept copy is the one with the smallest MD5.
    assert.equal([...da.train, ...da.test].filter((e) => e.textA === "message 1 body 1").length, 1);
    const all = await loadSpamAssassin({ dir: a.dir, dedupe: false, testFraction: 0.5 });
    const copies = [...all.train, ...all.test].filter((e) => e.textA === "message 1 body 1");
    assert.equal(copies.length, 3);
    const inTest = new Set(all.test);
    assert.ok(copies.every((c) => inTest.has(c) === inTest.has(copies[0])));
  } finally {
    await Deno.remove(a.dir, { recursive: true });
    await Deno.remove(b.dir, { recursive: true });
  }
});

Deno.test("loadSpamAssassin() drops texts labelled both ham and spam when deduplicating", async () => {
  const c = await fakeCorpus([
    { group: "easy-ham-1", id: "00001", md5: hex(1), text: "Subject: same\n\nbody" },
    { group: "spam-2", id: "00001", md5: hex(2), text: "Subject: same\n\nbody" },
    { group: "spam-2", id: "00002", md5: hex(3), text: "Subject: other\n\nbody" },
  ]);
  try {
    const ds = await loadSpamAssassin({ dir: c.dir });
    assert.equal(ds.conflicting, 2);
    assert.deepEqual([...ds.train, ...ds.test].map((e) => e.id), ["spam-2/00002"]);
  } finally {
    await Deno.remove(c.dir, { recursive: true });
  }
});

Deno.test("loadSpamAssassin() names the file of a malformed message", async () => {
  const c = await fakeCorpus([{ group: "spam-1", id: "00001", md5: hex(1), text: "x" }]);
  try {
    const path = join(c.dir, "spam-1", `00001.${hex(1)}.json`);
    await Deno.writeTextFile(path, JSON.stringify({ id: "00001", group: "spam-1", text: "x" }));
    await assert.rejects(() => loadSpamAssassin({ dir: c.dir }), (e: Error) => {
      assert.ok(e.message.startsWith(`${path}: expected {id, group`), e.message);
      return true;
    });
    await Deno.writeTextFile(join(c.dir, "file_list.json"), JSON.stringify(["ham-9/x.txt"]));
    await assert.rejects(() => loadSpamAssassin({ dir: c.dir }), /unknown group "ham-9"/);
    await assert.rejects(() => loadSpamAssassin({ dir: c.dir, testFraction: 2 }), /testFraction/);
  } finally {
    await Deno.remove(c.dir, { recursive: true });
  }
});

Deno.test("emailToText() keeps the decoded subject and body and drops the headers", () => {
  const raw = "From someone@example.com  Thu Aug 22 12:36:23 2002\n" +
    "Received: from x\n\tby y\nSubject: =?utf-8?B?Q2Fmw6k=?= =?iso-8859-1?Q?_cr=E8me?=\n" +
    "  br\u00fbl\u00e9e\nX-Spam: yes\n\nHello\n\n  there.\n";
  assert.equal(emailToText(raw), "Café crème brûlée Hello there.");
  assert.equal(emailToText("Subject: only\n"), "only");
  assert.equal(emailToText("Subject: a\nSubject: b\n\nc"), "a c");
});

Deno.test("emailToText() decodes quoted-printable and base64 parts in their charset", () => {
  const qp = "Subject: s\nContent-Type: text/plain; charset=iso-8859-1\n" +
    "Content-Transfer-Encoding: Quoted-Printable\n\nsoft=\nbreak caf=E9 =3D 1=\r\n0 =ZZ";
  assert.equal(emailToText(qp), "s softbreak café = 10 =ZZ");
  assert.equal(decodeQuotedPrintable("=C3=A9t=C3=A9", "utf-8"), "été");
  // Bytes that are not UTF-8 despite the label are read as Windows-1252.
  assert.equal(decodeQuotedPrintable("caf=E9", "utf-8"), "café");
  const b64 = 'Subject: s\nContent-Type: text/plain; charset="utf-8"\n' +
    "Content-Transfer-Encoding: base64\n\nw6l0w6kg\nZW5jb2Rl\n";
  assert.equal(emailToText(b64), "s été encode");
  assert.equal(decodeHeaderWords("=?US-ASCII?Q?a_b?= c"), "a b c");
});

Deno.test("emailToText() walks MIME parts: richest alternative, text kept, attachments dropped", () => {
  const raw = 'Subject: m\nContent-Type: multipart/mixed; boundary="XX"\n\npreamble\n' +
    "--XX\nContent-Type: multipart/alternative; boundary=YY\n\n" +
    "--YY\nContent-Type: text/plain\n\nSee HTML\n" +
    "--YY\nContent-Type: text/html\nContent-Transfer-Encoding: quoted-printable\n\n" +
    "<html><style>p {x}</style><p>Buy <b>now</b> &amp; save&nbsp;=3D&#36;5</p><!-- hidden --></html>\n" +
    "--YY--\n" +
    "--XX\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAAA\n" +
    "--XX\nContent-Type: message/rfc822\n\nSubject: inner\n\ninner body\n" +
    "--XX--\nepilogue\n";
  assert.equal(emailToText(raw), "m Buy now & save =$5 inner inner body");
});

Deno.test("emailToText() strips HTML from text/plain bodies that are HTML", () => {
  assert.equal(emailToText("Subject: s\n\n<HTML><BODY>Hi<BR>you</BODY></HTML>"), "s Hi you");
  assert.equal(emailToText("Subject: s\n\nx < y and a<b"), "s x < y and a<b");
  assert.equal(stripHtml("a<script>var x = '<p>';</script>b&#x41;&unknown;"), "a b" + "A&unknown;");
});
