/**
 * `deno task frz:compare`: SmartFRZ against its baselines. For each workload
 * (a ResNet on Fashion-MNIST, a BERT on the SpamAssassin corpus) and seed it
 * trains with no freezing, linear freezing, AutoFreeze, SmartFRZ, and
 * SmartFRZ with the frozen prefix's forward cached, each run a separate
 * `deno task train` process so that every method starts equal (the same
 * kernel compilation, nothing warm from the run before).
 *
 * Every finished run's result is written to `OUT/results/<workload>/<method>-s<seed>.json`
 * and a restarted comparison skips it; an interrupted run resumes from its
 * last checkpoint (its time before the interruption counts). At the end (and
 * after every run) `OUT/compare.json` and `OUT/report.html` are rewritten
 * from all results so far:
 * `{"runs": [{"workload", "method", "seed", "accuracy", "seconds", "flops", "peakBytes", "frozen": [{"unit", "epoch"}]}]}`
 * where `seconds` is training time (evaluation excluded; `wallSeconds` has the
 * whole run) and `flops` the engine's count of the FLOPs its training-step
 * kernels did.
 *
 * ```
 * deno task frz:compare [--out bench/results/frz-compare] [--runs runs/frz-compare] [--quick]
 *                       [--data DIR] [--only WORKLOAD,...]
 *                       [--methods none,smartfrz,...] [--seeds 1,2,3]
 * ```
 *
 * @module
 */

import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { barChart, freezeTimeline, lineChart } from "./report/charts.ts";
import { escapeHtml, page, runColor, table } from "./report/html.ts";

/** One workload of the comparison. */
export interface CompareWorkload {
  /** Name (directory and table row). */
  name: string;
  /** `deno task train` flags (no --freeze, --seed, --out). */
  flags: string[];
}

/** The methods compared, with the flags that select them. */
export const METHODS: Record<string, string[]> = {
  none: ["--freeze", "none"],
  linear: ["--freeze", "linear"],
  autofreeze: ["--freeze", "autofreeze"],
  smartfrz: ["--freeze", "smartfrz"],
  "smartfrz+cache": ["--freeze", "smartfrz", "--cache-frozen", "--cache-budget", "3072"],
};

/** The comparison's workloads (the predictor was fit on other architectures: see frz_labels.ts). */
export const WORKLOADS: CompareWorkload[] = [
  {
    name: "resnet18-fashion",
    flags: [
      "--model",
      "resnet18",
      "--width",
      "8",
      "--train-limit",
      "20000",
      "--epochs",
      "10",
      "--batch-size",
      "128",
    ],
  },
  {
    name: "bertmini-spam",
    flags: ["--model", "bert-mini", "--dataset", "spam", "--max-length", "64", "--epochs", "8"],
  },
];

/** A tiny version of both workloads (a few minutes; used by the tests). */
export const QUICK: CompareWorkload[] = [
  {
    name: "quick-mlp3",
    flags: ["--model", "mlp3", "--hidden", "32", "--train-limit", "1024", "--epochs", "3"],
  },
  {
    name: "quick-berttiny",
    flags: [
      "--model",
      "bert-tiny",
      "--dataset",
      "spam",
      "--max-length",
      "16",
      "--train-limit",
      "256",
      "--epochs",
      "2",
    ],
  },
];

/** One finished run, as compare.json lists it. */
export interface CompareRun {
  workload: string;
  method: string;
  seed: number;
  /** Held-out accuracy after the last epoch, in [0, 1]. */
  accuracy: number;
  /** Training seconds (the epochs' steps; evaluation excluded). */
  seconds: number;
  /** Wall seconds of the whole run, evaluation included, across resumes. */
  wallSeconds: number;
  /** FLOPs of the training steps' kernels. */
  flops: number;
  /** Largest peak GPU memory of an epoch. */
  peakBytes: number;
  /** Units frozen, with the epoch each froze in. */
  frozen: { unit: string; epoch: number }[];
  /** Per epoch: cumulative training seconds and held-out accuracy (for the report). */
  curve: [number, number][];
  /** The adapter and backend. */
  device: string;
  /** The engine's source hash the run was measured with (see {@link engineId}). */
  engine?: string;
}

/**
 * A hash of the engine's and the kernels' sources (`engine/**`, `kernels/**`).
 * Times compare only within one engine: a restarted comparison reruns the
 * runs finished with another (their results move to `OUT/superseded/<id>/`),
 * and restarts from scratch an interrupted run begun with another.
 */
export async function engineId(): Promise<string> {
  const root = new URL("../", import.meta.url);
  const files: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(new URL(dir, root))) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.name.endsWith(".ts")) files.push(path);
    }
  };
  await walk("engine");
  await walk("kernels");
  files.sort();
  const parts: Uint8Array[] = [];
  for (const f of files) {
    parts.push(new TextEncoder().encode(`${f}\n`), await Deno.readFile(new URL(f, root)));
  }
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) all.set(p, (at += p.length) - p.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(digest.slice(0, 6), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Reads a finished run directory into a {@link CompareRun}. */
export async function readRun(
  dir: string,
  workload: string,
  method: string,
  seed: number,
): Promise<CompareRun> {
  const records = (await Deno.readTextFile(`${dir}/log.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  const config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  const epochs = records.filter((r) => r.type === "epoch");
  const summary = records.find((r) => r.type === "summary");
  if (!summary || summary.stopped !== "completed") {
    throw new Error(`${dir}: the run did not finish`);
  }
  let t = 0;
  const curve: [number, number][] = epochs.map((e) => [t += e.seconds, e.testAccuracy ?? NaN]);
  return {
    workload,
    method,
    seed,
    accuracy: summary.testAccuracy,
    seconds: epochs.reduce((a, e) => a + e.seconds, 0),
    wallSeconds: summary.seconds,
    flops: epochs.reduce((a, e) => a + (e.flops ?? 0), 0),
    peakBytes: Math.max(...epochs.map((e) => e.peakBytes)),
    frozen: records.filter((r) => r.type === "freeze").map((r) => ({
      unit: r.layer,
      epoch: r.epoch,
    })),
    curve,
    device: config.device,
  };
}

/** Mean and sample standard deviation. */
function meanStd(xs: number[]): [number, number] {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const v = xs.length > 1 ? xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1) : 0;
  return [m, Math.sqrt(v)];
}

/** The per-method summary rows of one workload (savings against "none" of the same seeds). */
export function summarize(runs: CompareRun[], workload: string) {
  const of = runs.filter((r) => r.workload === workload);
  const base = new Map(of.filter((r) => r.method === "none").map((r) => [r.seed, r]));
  return Object.keys(METHODS).filter((m) => of.some((r) => r.method === m)).map((method) => {
    const rs = of.filter((r) => r.method === method);
    const saved = (k: "seconds" | "flops") =>
      rs.filter((r) => base.has(r.seed)).map((r) => 1 - r[k] / base.get(r.seed)![k]);
    return {
      method,
      seeds: rs.length,
      accuracy: meanStd(rs.map((r) => 100 * r.accuracy)),
      seconds: meanStd(rs.map((r) => r.seconds)),
      timeSaved: saved("seconds").length ? meanStd(saved("seconds").map((x) => 100 * x)) : null,
      flopsSaved: saved("flops").length ? meanStd(saved("flops").map((x) => 100 * x)) : null,
      peakMiB: meanStd(rs.map((r) => r.peakBytes / 2 ** 20)),
    };
  });
}

const pm = (v: [number, number] | null, d = 1) =>
  v ? `${v[0].toFixed(d)} ± ${v[1].toFixed(d)}` : "–";

/** The table in Markdown (for the README and the closing note). */
export function markdownTable(runs: CompareRun[]): string {
  const lines = [
    "| workload | method | seeds | held-out accuracy (%) | training time (s) | time saved (%) | FLOPs saved (%) | peak memory (MiB) |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const w of [...new Set(runs.map((r) => r.workload))]) {
    for (const s of summarize(runs, w)) {
      lines.push(
        `| ${w} | ${s.method} | ${s.seeds} | ${pm(s.accuracy, 2)} | ${
          pm(s.seconds, s.seconds[0] < 100 ? 1 : 0)
        } | ${pm(s.timeSaved)} | ${pm(s.flopsSaved)} | ${pm(s.peakMiB)} |`,
      );
    }
  }
  return lines.join("\n");
}

/** The report page: table, accuracy against time, savings, freeze timelines. */
export function reportHtml(runs: CompareRun[]): string {
  const parts: string[] = [];
  const devices = [...new Set(runs.map((r) => r.device))];
  parts.push(
    `<h1>SmartFRZ comparison</h1><p>Device: ${
      escapeHtml(devices.join("; "))
    }. Savings are against the unfrozen run of the same seed; mean ± standard deviation over seeds. ` +
      "Training time excludes evaluation.</p>",
  );
  const methods = Object.keys(METHODS);
  for (const w of [...new Set(runs.map((r) => r.workload))]) {
    const rows = summarize(runs, w).map((s) => [
      s.method,
      s.seeds,
      pm(s.accuracy, 2),
      pm(s.seconds, s.seconds[0] < 100 ? 1 : 0),
      pm(s.timeSaved),
      pm(s.flopsSaved),
      pm(s.peakMiB),
    ]);
    parts.push(`<h2>${escapeHtml(w)}</h2>`);
    parts.push(
      table(
        [
          "method",
          "seeds",
          "accuracy (%)",
          "training time (s)",
          "time saved (%)",
          "FLOPs saved (%)",
          "peak MiB",
        ],
        rows,
        { numeric: [false, true, true, true, true, true, true] },
      ),
    );
    const of = runs.filter((r) => r.workload === w);
    const firstSeed = Math.min(...of.map((r) => r.seed));
    parts.push('<div class="grid">');
    parts.push(lineChart({
      title: `Held-out accuracy against training time (seed ${firstSeed})`,
      xLabel: "training time",
      xUnit: "seconds",
      yLabel: "accuracy",
      yUnit: "percent",
      xFromZero: true,
      series: of.filter((r) => r.seed === firstSeed).map((r) => ({
        name: r.method,
        color: runColor(methods.indexOf(r.method)),
        points: r.curve.map(([t, a]) => [t, Number.isNaN(a) ? null : a] as [number, number | null]),
      })),
    }));
    const sums = summarize(runs, w);
    parts.push(barChart({
      title: "Saved against no freezing",
      xLabel: "method",
      yLabel: "saved",
      yUnit: "percent",
      categories: sums.map((s) => s.method),
      series: [
        {
          name: "time",
          color: runColor(0),
          values: sums.map((s) => s.timeSaved ? s.timeSaved[0] / 100 : null),
        },
        {
          name: "FLOPs",
          color: runColor(1),
          values: sums.map((s) => s.flopsSaved ? s.flopsSaved[0] / 100 : null),
        },
      ],
    }));
    for (const r of of.filter((r) => r.seed === firstSeed && r.method !== "none")) {
      const epochs = r.curve.length;
      parts.push(freezeTimeline({
        title: `${r.method}: units frozen (seed ${r.seed})`,
        endStep: epochs,
        color: runColor(methods.indexOf(r.method)),
        events: r.frozen.map((f, i) => ({
          layer: f.unit,
          index: i,
          step: f.epoch,
          epoch: f.epoch,
          method: r.method,
        })),
        note: "x axis: epochs",
      }));
    }
    parts.push("</div>");
  }
  return page("SmartFRZ comparison", parts.join("\n"));
}

async function runOne(
  w: CompareWorkload,
  method: string,
  seed: number,
  out: string,
  runsDir: string,
  extra: string[],
  engine: string,
): Promise<CompareRun> {
  const name = `${method}-s${seed}.json`;
  const resultPath = `${out}/results/${w.name}/${name}`;
  const dir = `${runsDir}/${w.name}/${method}-s${seed}`;
  if (await exists(resultPath)) {
    const done: CompareRun = JSON.parse(await Deno.readTextFile(resultPath));
    if (done.engine === engine) return done;
    const old = `${out}/superseded/${done.engine ?? "unknown"}/${w.name}`;
    console.log(`  measured with engine ${done.engine ?? "(unrecorded)"}: moved to ${old}, rerun`);
    await Deno.mkdir(old, { recursive: true });
    await Deno.rename(resultPath, `${old}/${name}`);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  // An interrupted run resumes only on the engine it began with. A directory that does not
  // name its engine began with an unknown one (before ENGINE files): it, too, starts afresh,
  // or a run finished there would be read back as measured now.
  const began = await Deno.readTextFile(`${dir}/ENGINE`).catch(() => null);
  if (began?.trim() !== engine) await Deno.remove(dir, { recursive: true }).catch(() => {});
  const resume = await exists(`${dir}/LATEST`);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/ENGINE`, engine + "\n");
  const args = [
    "run",
    "--lock=deno.lock",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    new URL("./main.ts", import.meta.url).pathname,
    ...w.flags,
    ...(w.flags.includes("--dataset") ? [] : extra),
    ...METHODS[method],
    "--seed",
    String(seed),
    "--out",
    dir,
    ...(resume ? ["--resume"] : []),
  ];
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: new URL("../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const [status, stdout, stderr] = await Promise.all([
    child.status,
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  await Deno.writeTextFile(`${dir}/output.txt`, stdout + stderr, { append: resume });
  if (!status.success) {
    throw new Error(
      `${w.name} ${method} seed ${seed} failed (exit ${status.code}); see ${dir}/output.txt:\n${
        stderr.slice(-2000)
      }`,
    );
  }
  const run = { ...await readRun(dir, w.name, method, seed), engine };
  await Deno.mkdir(`${out}/results/${w.name}`, { recursive: true });
  await Deno.writeTextFile(`${resultPath}.tmp`, JSON.stringify(run, null, 1) + "\n");
  await Deno.rename(`${resultPath}.tmp`, resultPath);
  console.log(
    `  ${(100 * run.accuracy).toFixed(2)}%, ${run.seconds.toFixed(1)} s training ` +
      `(${((performance.now() - t0) / 1000).toFixed(0)} s here), ${
        (run.flops / 1e12).toFixed(3)
      } TFLOP, frozen: ${run.frozen.map((f) => `${f.unit}@${f.epoch}`).join(" ") || "none"}`,
  );
  return run;
}

async function writeOutputs(out: string, runs: CompareRun[]): Promise<void> {
  const compare = { runs: runs.map(({ curve: _c, ...r }) => r) };
  await Deno.writeTextFile(`${out}/compare.json`, JSON.stringify(compare, null, 1) + "\n");
  await Deno.writeTextFile(`${out}/report.html`, reportHtml(runs));
  await Deno.writeTextFile(`${out}/table.md`, markdownTable(runs) + "\n");
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: "string" },
      runs: { type: "string" },
      data: { type: "string" },
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      methods: { type: "string" },
      seeds: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      "Usage: deno task frz:compare [--out DIR] [--runs DIR] [--data DIR] [--quick] [--only WORKLOAD,...] " +
        "[--methods M,...] [--seeds 1,2,3]\n\n" +
        `Workloads: ${WORKLOADS.map((w) => w.name).join(", ")}; methods: ${
          Object.keys(METHODS).join(", ")
        }`,
    );
    return 0;
  }
  const out = values.out ?? (values.quick ? "runs/frz-compare-quick" : "bench/results/frz-compare");
  // Run directories (checkpoints, logs) stay out of the repository; results are small.
  const runsDir = resolve(values.runs ?? `runs/frz-compare${values.quick ? "-quick" : ""}`);
  // --data DIR: Fashion-MNIST's IDX files for the image workloads (as `deno task train --data`).
  const extra = values.data ? ["--data", values.data] : [];
  const only = values.only?.split(",");
  const workloads = (values.quick ? QUICK : WORKLOADS).filter((w) =>
    !only || only.includes(w.name)
  );
  const methods = values.methods?.split(",") ?? Object.keys(METHODS);
  for (const m of methods) {
    if (!METHODS[m]) throw new Error(`--methods: unknown method "${m}" (${Object.keys(METHODS)})`);
  }
  const seeds = (values.seeds ?? (values.quick ? "1" : "1,2,3")).split(",").map(Number);
  await Deno.mkdir(out, { recursive: true });
  const engine = await engineId();
  console.log(`engine ${engine}`);
  const runs: CompareRun[] = [];
  const total = workloads.length * methods.length * seeds.length;
  let i = 0;
  // Seeds outermost: a comparison stopped early has every method of the first seeds.
  for (const seed of seeds) {
    for (const w of workloads) {
      for (const m of methods) {
        i++;
        const done = await exists(`${out}/results/${w.name}/${m}-s${seed}.json`);
        console.log(`[${i}/${total}] ${w.name} ${m} seed ${seed}${done ? ": done before" : ""}`);
        runs.push(await runOne(w, m, seed, out, runsDir, extra, engine));
        await writeOutputs(out, runs);
      }
    }
  }
  console.log(markdownTable(runs));
  console.log(`wrote ${out}/compare.json, ${out}/report.html, ${out}/table.md`);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exitCode = await main(Deno.args);
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : e}`);
    Deno.exitCode = 1;
  }
}
