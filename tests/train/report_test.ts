/**
 * Training reports: run directories are parsed (a killed run's unfinished
 * last line is dropped, a malformed line elsewhere is an error naming file
 * and line), single and comparison pages carry every plot and table, escape
 * what the logs say, need no network, and render in headless Chromium with
 * every plotted mark laid out (skipped where Chromium is not installed).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseLog, readRun } from "../../train/report/run_data.ts";
import {
  renderComparison,
  renderReport,
  writeComparison,
  writeReport,
} from "../../train/report.ts";
import { parseReportArgs } from "../../train/report_main.ts";

const root = new URL("../../", import.meta.url).pathname;

interface SyntheticRun {
  model?: string;
  epochs: number;
  stepsPerEpoch: number;
  /** `[layer, index, step]` freeze events; frozen layers speed steps up and save memory. */
  freezes?: [string, number, number][];
  /** Text appended after the last record (an unfinished line of a killed run). */
  tail?: string;
  /** Step `elapsed` counts from the epoch's start (as the trainer writes it), not the run's. */
  elapsedPerEpoch?: boolean;
}

/** Writes a plausible run directory: loss decays, accuracy rises, freezing speeds steps up. */
async function writeRun(dir: string, o: SyntheticRun): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    join(dir, "config.json"),
    JSON.stringify({
      model: o.model ?? "mlp",
      dataset: "fashion-mnist",
      args: { epochs: o.epochs, batchSize: 128, lr: 0.05, freeze: o.freezes ? "smartfrz" : "none" },
      device: "llvmpipe (LLVM 15.0.6, 256 bits)",
      started: "2026-11-27T09:00:00.000Z",
      parameters: 203530,
    }),
  );
  const lines: string[] = [];
  const freezes = [...(o.freezes ?? [])].sort((a, b) => a[2] - b[2]);
  let elapsed = 0, step = 0;
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    let epochSeconds = 0;
    for (let k = 1; k <= o.stepsPerEpoch; k++) {
      step++;
      const frozen = freezes.filter((f) => f[2] <= step).length;
      const dt = 0.025 / (1 + 0.4 * frozen);
      elapsed += dt;
      epochSeconds += dt;
      for (const [layer, index, at] of freezes) {
        if (at === step) {
          lines.push(
            JSON.stringify({ type: "freeze", step, epoch, layer, index, method: "smartfrz" }),
          );
        }
      }
      if (k % 50 === 0 || k === o.stepsPerEpoch) {
        const live = 7_000_000 - 900_000 * frozen;
        lines.push(JSON.stringify({
          type: "step",
          step,
          epoch,
          loss: 0.3 + 2 * Math.exp(-step / 250) + 0.03 * Math.sin(step / 7),
          lr: 0.025 * (1 + Math.cos((Math.PI * step) / (o.epochs * o.stepsPerEpoch))),
          samplesPerSecond: 128 / dt,
          elapsed: o.elapsedPerEpoch ? epochSeconds : elapsed,
          liveBytes: live,
          peakBytes: live + 150_000,
          frozenLayers: frozen,
        }));
      }
    }
    lines.push(JSON.stringify({
      type: "epoch",
      epoch,
      trainLoss: 0.3 + 2 * Math.exp(-step / 300),
      testAccuracy: 0.89 - 0.2 * Math.exp(-epoch),
      seconds: epochSeconds,
      samplesPerSecond: (128 * o.stepsPerEpoch) / epochSeconds,
      peakBytes: 7_150_000,
      frozenLayers: freezes.filter((f) => f[2] <= step).length,
    }));
  }
  lines.push(JSON.stringify({
    type: "summary",
    testAccuracy: 0.89 - 0.2 * Math.exp(-o.epochs),
    seconds: elapsed + 0.5 * o.epochs,
    epochs: o.epochs,
    stopped: "completed",
  }));
  await Deno.writeTextFile(join(dir, "log.jsonl"), lines.join("\n") + "\n" + (o.tail ?? ""));
}

/** Two runs in a temp dir: a plain baseline and a SmartFRZ run with three freezes. */
async function twoRuns(): Promise<{ tmp: string; base: string; frz: string }> {
  const tmp = await Deno.makeTempDir({ prefix: "frost_report_" });
  const base = join(tmp, "baseline");
  const frz = join(tmp, "smartfrz");
  await writeRun(base, { epochs: 3, stepsPerEpoch: 469 });
  await writeRun(frz, {
    epochs: 3,
    stepsPerEpoch: 469,
    freezes: [["layer1", 1, 600], ["layer2", 2, 900], ["conv</text><script>x</script>", 0, 1150]],
    tail: '{"type":"step","step":14',
    elapsedPerEpoch: true,
  });
  return { tmp, base, frz };
}

const count = (s: string, needle: string) => s.split(needle).length - 1;

/** The data blocks of a page's line charts, in page order. */
function chartData(html: string): { s: { n: string; p: [number, number][] }[] }[] {
  return [...html.matchAll(/<script type="application\/json" class="chart-data">(.*?)<\/script>/g)]
    .map((m) => JSON.parse(m[1]));
}

Deno.test("parseLog() drops an unfinished last line and rejects a malformed line with file:line", () => {
  const log = parseLog(
    '{"type":"step","step":50,"epoch":1,"loss":0.7}\n\n{"type":"future"}\n{"type":"ep',
    "runs/a/log.jsonl",
  );
  assert.equal(log.steps.length, 1);
  assert.equal(log.steps[0].loss, 0.7);
  assert.equal(log.steps[0].lr, null);
  assert.match(log.warnings[0], /runs\/a\/log\.jsonl:4: ignored an unfinished last line/);
  assert.throws(
    () =>
      parseLog('{"type":"step","step":50}\n{"type":"st\n{"type":"summary"}\n', "runs/a/log.jsonl"),
    /runs\/a\/log\.jsonl:2: malformed JSON/,
  );
  // A complete but malformed last line (it has its newline) is an error too.
  assert.throws(() => parseLog('{"type":"step","step":50}\n{oops}\n', "f"), /f:2: malformed JSON/);
  assert.throws(() => parseLog('{"type":"step","loss":1}\n', "f"), /f:1: missing field "step"/);
  assert.throws(() => parseLog('{"type":"epoch","epoch":"1"}\n', "f"), /f:1: field "epoch"/);
  assert.throws(() => parseLog("[1]\n", "f"), /f:1: expected a JSON object/);
  // NaN losses are logged as null by JSON: they leave a gap, not an error.
  assert.equal(parseLog('{"type":"step","step":5,"loss":null}', "f").steps[0].loss, null);
});

Deno.test("readRun() reads config and log, and names a directory that is not a run", async () => {
  const { tmp, frz } = await twoRuns();
  try {
    const run = await readRun(frz);
    assert.equal(run.name, "smartfrz");
    assert.equal(run.config.model, "mlp");
    assert.equal(run.config.parameters, 203530);
    assert.equal(run.epochs.length, 3);
    assert.equal(run.freezes.length, 3);
    assert.equal(run.steps.length, 3 * 10);
    assert.equal(run.summary?.stopped, "completed");
    assert.equal(run.warnings.length, 1, "the unfinished tail is reported");
    await assert.rejects(readRun(join(tmp, "nope")), /nope: not a run directory \(.*config\.json/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("writeReport() writes a self-contained page with every plot and escapes log text", async () => {
  const { tmp, base, frz } = await twoRuns();
  try {
    const plain = await Deno.readTextFile(await writeReport(base));
    const frozen = await Deno.readTextFile(await writeReport(frz));
    for (const html of [plain, frozen]) {
      assert.match(html, /^<!doctype html>/);
      assert.doesNotMatch(
        html,
        /<script[^>]+src=|<link |https?:\/\/|url\(/,
        "no external resource",
      );
      for (const title of ["Training loss", "Held-out accuracy", "Time per epoch", "GPU memory"]) {
        assert.ok(html.includes(`<figcaption>${title}</figcaption>`), title);
      }
      assert.match(html, /Final held-out accuracy<\/th><td>88\.00%/);
      assert.match(html, /Peak GPU memory<\/th><td>6\.82 MiB/);
    }
    assert.equal(count(plain, '<svg class="plot"'), 6);
    assert.equal(count(plain, 'data-kind="timeline"'), 0, "a plain run has no freeze timeline");
    assert.equal(count(frozen, '<svg class="plot"'), 7);
    assert.equal(count(frozen, 'class="mark span"'), 3, "one timeline row per frozen layer");
    assert.equal(count(frozen, 'class="rule freeze"'), 3 * 3, "freeze rules on the step plots");
    assert.ok(frozen.includes("ignored an unfinished last line"));
    // The hostile layer name appears only escaped: in SVG text, titles and JSON.
    assert.ok(!frozen.includes("<script>x</script>"));
    assert.ok(frozen.includes("conv&lt;/text&gt;&lt;script&gt;x&lt;/script&gt;"));
    assert.equal(count(frozen, "<script"), count(frozen, "</script>"));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("writeComparison() puts runs side by side against the first as baseline", async () => {
  const { tmp, base, frz } = await twoRuns();
  try {
    await writeReport(frz);
    const out = await writeComparison([base, frz], join(tmp, "out", "compare.html"));
    const html = await Deno.readTextFile(out);
    assert.doesNotMatch(html, /<script[^>]+src=|<link |https?:\/\//);
    // Overlaid curves: one path per run in each line plot.
    const loss = html.slice(
      html.indexOf("Training loss vs step"),
      html.indexOf("Training loss vs training time"),
    );
    assert.equal(count(loss, 'class="mark line"'), 2);
    // Training time keeps growing across epochs whether `elapsed` restarts each epoch or not.
    const time = chartData(html)[1];
    assert.deepEqual(time.s.map((s) => s.n), ["baseline", "smartfrz"]);
    for (const s of time.s) {
      assert.ok(s.p.every((p, i) => i === 0 || p[0] > s.p[i - 1][0]), `${s.n}: increasing time`);
    }
    assert.ok(Math.abs(time.s[0].p.at(-1)![0] - 3 * 469 * 0.025) < 0.01);
    assert.ok(time.s[1].p.at(-1)![0] < 0.8 * time.s[0].p.at(-1)![0], "freezing saved time");
    assert.equal(count(html, 'data-kind="line"'), 6);
    assert.equal(count(html, 'data-kind="hbar"'), 2);
    assert.equal(count(html, 'data-kind="timeline"'), 1);
    assert.ok(
      html.includes("No layer was frozen in this run."),
      "the baseline's timeline placeholder",
    );
    assert.match(html, /\(baseline\)/);
    // Freezing speeds the synthetic run up: the speed-up column says so.
    assert.match(html, /<span class="better">1\.\d\d×<\/span>/);
    assert.match(html, /<td><code>none<\/code><\/td><td><code>smartfrz<\/code><\/td>/);
    assert.ok(html.includes('href="../smartfrz/report.html"'), "links to the run's own report");
    assert.ok(!html.includes('href="../baseline/report.html"'), "no link to a report not written");
    assert.throws(() => renderComparison([]), /no runs/);
    const plain = (name: string, args: Record<string, unknown>) => ({
      name,
      dir: name,
      config: { args },
      ...parseLog('{"type":"step","step":5,"loss":1}', "f"),
    });
    const two = renderComparison([
      plain("a", { lr: 0.1, out: "runs/a", given: ["lr"] }),
      plain("b", { lr: 0.2, out: "runs/b", given: [] }),
    ]);
    assert.ok(two.includes("No run froze any layer."));
    assert.equal(count(two, 'data-kind="timeline"'), 0);
    assert.match(two, /<td>lr<\/td><td><code>0.1<\/code><\/td><td><code>0.2<\/code>/);
    assert.ok(!two.includes("<td>out</td>") && !two.includes("<td>given</td>"));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("deno task report: writes reports and the comparison; errors are one clear line", async () => {
  assert.deepEqual(parseReportArgs(["a"]), { runs: ["a"], out: null });
  assert.deepEqual(parseReportArgs(["a", "b", "--out", "x.html"]), {
    runs: ["a", "b"],
    out: "x.html",
  });
  assert.throws(() => parseReportArgs([]), /no run directory/);
  assert.throws(() => parseReportArgs(["--outt", "x"]), /outt/);
  const { tmp, base, frz } = await twoRuns();
  const cli = async (...args: string[]) => {
    const r = await new Deno.Command(Deno.execPath(), {
      // The permissions of the task line in deno.json.
      args: ["run", "--allow-read", "--allow-write", join(root, "train/report_main.ts"), ...args],
      cwd: tmp,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
  };
  try {
    const ok = await cli("baseline", "smartfrz");
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(
      ok.stdout,
      /wrote baseline\/report\.html\nwrote smartfrz\/report\.html\nwrote runs\/compare\.html/,
    );
    const html = await Deno.readTextFile(join(tmp, "runs/compare.html"));
    assert.ok(html.includes('href="../baseline/report.html"'));
    await Deno.writeTextFile(
      join(base, "log.jsonl"),
      '{"type":"step","step":1}\n{bad}\n{"type":"step","step":2}\n',
    );
    const bad = await cli("smartfrz", "baseline");
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: baseline\/log\.jsonl:2: malformed JSON/);
    assert.doesNotMatch(bad.stderr, / {4}at /, "no stack trace");
    const usage = await cli();
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /error: no run directory given\n\nUsage: deno task report/);
    void frz;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

/** Debian's chromium, if installed (`apt-get install chromium`). */
const chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});

/** The DOM of `file` after its scripts ran, from headless Chromium. */
async function renderedDom(file: string, profile: string): Promise<string> {
  const r = await new Deno.Command(chromium!, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${profile}`,
      "--window-size=1280,2000",
      "--dump-dom",
      `file://${file}`,
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  return new TextDecoder().decode(r.stdout);
}

/** Every `<svg class="plot">` start tag's attributes, and the number of marks it holds. */
function plots(html: string): { attrs: string; marks: number }[] {
  return html.split(/<svg class="plot"/).slice(1).map((part) => ({
    attrs: part.slice(0, part.indexOf(">")),
    marks: count(part.slice(0, part.indexOf("</svg>")), 'class="mark'),
  }));
}

Deno.test({
  name: "reports render in headless Chromium: every plot lays out all of its marks",
  ignore: chromium === undefined,
  async fn() {
    const { tmp, base, frz } = await twoRuns();
    try {
      const pages = [
        await writeReport(base),
        await writeReport(frz),
        await writeComparison([base, frz], join(tmp, "compare.html")),
      ];
      for (const [i, file] of pages.entries()) {
        const source = await Deno.readTextFile(file);
        const expected = plots(source);
        const dom = await renderedDom(file, join(tmp, `profile${i}`));
        const rendered = dom.match(/<body data-rendered="(\d+)"/);
        assert.ok(rendered, `${file}: the page script ran to the end`);
        assert.equal(Number(rendered[1]), expected.length, file);
        const got = plots(dom);
        assert.equal(got.length, expected.length);
        for (const [k, p] of got.entries()) {
          const plotted = p.attrs.match(/data-plotted="(\d+)"/);
          assert.ok(plotted, `${file}: plot ${k} measured`);
          assert.ok(expected[k].marks > 0);
          assert.equal(Number(plotted[1]), expected[k].marks, `${file}: plot ${k} marks with area`);
        }
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test("renderReport() leaves epochs without evaluation out of the accuracy plot", () => {
  const log = parseLog(
    [1, 2, 3, 4].map((e) =>
      JSON.stringify({
        type: "epoch",
        epoch: e,
        seconds: 2,
        testAccuracy: e % 2 ? null : 0.8 + e / 100,
      })
    ).join("\n"),
    "f",
  );
  const html = renderReport({ name: "a", dir: "runs/a", config: { args: {} }, ...log });
  const acc = chartData(html).find((d) => d.s[0].n === "accuracy")!;
  assert.deepEqual(acc.s[0].p, [[2, 82], [4, 84]]);
  assert.ok(html.includes("84.00%"));
});

Deno.test("renderReport() shows a placeholder, not a broken plot, for a run with no records", () => {
  const html = renderReport({
    name: "empty",
    dir: "runs/empty",
    config: { args: {} },
    ...parseLog("", "f"),
  });
  assert.equal(count(html, '<svg class="plot"'), 0);
  assert.ok(html.includes("No data logged for this plot."));
  assert.ok(html.includes("incomplete: no summary"));
});
