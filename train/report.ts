/**
 * Training reports: a self-contained HTML page per run directory (loss,
 * held-out accuracy, time, memory, and which layer froze when), and a page
 * comparing several runs side by side, the first being the baseline the
 * others are measured against (how SmartFRZ is compared with full training
 * and other freezing methods).
 *
 * A run directory holds `config.json` and `log.jsonl` as written by
 * `deno task train`; see {@link readRun} for the record types.
 *
 * @module
 */

import { dirname, join, relative, resolve } from "node:path";
import {
  epochEnds,
  finalAccuracy,
  freezeMethods,
  lastStep,
  peakMemory,
  readRun,
  type RunData,
  stepTimes,
  stoppedReason,
  totalSeconds,
} from "./report/run_data.ts";
import { barChart, freezeTimeline, hbarChart, lineChart, type Rule } from "./report/charts.ts";
import {
  type Cell,
  escapeHtml as esc,
  formatNumber,
  formatValue,
  page,
  runColor,
  runDash,
  table,
} from "./report/html.ts";

export { readRun, type RunData } from "./report/run_data.ts";

const FREEZE_COLOR = "#7a4fbf";

function bestEpoch(run: RunData): { epoch: number; accuracy: number } | null {
  let best: { epoch: number; accuracy: number } | null = null;
  for (const e of run.epochs) {
    if (e.testAccuracy !== null && (best === null || e.testAccuracy > best.accuracy)) {
      best = { epoch: e.epoch, accuracy: e.testAccuracy };
    }
  }
  return best;
}

function meanThroughput(run: RunData): number | null {
  const v = run.epochs.map((e) => e.samplesPerSecond).filter((x): x is number => x !== null);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}

function epochsDone(run: RunData): number {
  return run.summary?.epochs ?? run.epochs.length;
}

function statusText(run: RunData): string {
  const s = stoppedReason(run);
  if (s === "completed") return "completed";
  if (s === "nan") return "stopped: loss became NaN (diverged)";
  if (s === "interrupted") return "interrupted";
  if (s === "incomplete") return "incomplete: no summary (killed, or still running)";
  return s;
}

function freezeText(run: RunData): string {
  if (run.freezes.length === 0) return "none";
  const layers = new Set(run.freezes.map((f) => f.layer)).size;
  return `${freezeMethods(run)}: ${layers} layer${layers === 1 ? "" : "s"} frozen`;
}

function argText(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v) ?? String(v);
}

function warnings(items: string[]): string {
  return items.length
    ? `<div class="warn"><ul>${items.map((w) => `<li>${esc(w)}</li>`).join("")}</ul></div>`
    : "";
}

/** Warnings a reader of the run's figures should see first. */
function runWarnings(run: RunData): string[] {
  const w = [...run.warnings];
  if (stoppedReason(run) !== "completed") w.push(`${run.name}: ${statusText(run)}.`);
  return w;
}

/**
 * Held-out accuracy against cumulative training seconds at the end of each
 * evaluated epoch (stops at the first untimed epoch).
 */
function accuracyOverTime(run: RunData): [number, number][] {
  const out: [number, number][] = [];
  let t = 0;
  for (const e of run.epochs) {
    if (e.seconds === null) break;
    t += e.seconds;
    if (e.testAccuracy !== null) out.push([t, e.testAccuracy]);
  }
  return out;
}

/**
 * Held-out accuracy per evaluated epoch. Epochs without an evaluation
 * (`--eval-every`) are left out rather than drawn as gaps: nothing failed there.
 */
function accuracyByEpoch(run: RunData): [number, number][] {
  return run.epochs.filter((e) => e.testAccuracy !== null).map((e) => [e.epoch, e.testAccuracy!]);
}

function epochRules(run: RunData): Rule[] {
  const ends = epochEnds(run);
  return ends.slice(0, -1).map((e) => ({
    x: e.step,
    label: `e${e.epoch}`,
    title: `end of epoch ${e.epoch} (step ${e.step})`,
  }));
}

/**
 * The HTML page of one run.
 *
 * @example
 * ```ts
 * import { parseLog } from "./report/run_data.ts";
 * import { renderReport } from "./report.ts";
 * const log = parseLog('{"type":"step","step":50,"epoch":1,"loss":0.9}\n', "log.jsonl");
 * const html = renderReport({ name: "demo", dir: "runs/demo", config: { args: {} }, ...log });
 * console.log(html.includes("Training loss")); // true
 * ```
 */
export function renderReport(run: RunData): string {
  const c = run.config;
  const best = bestEpoch(run);
  const steps = run.steps;
  const summary: [string, Cell][] = [
    ["Run", run.name],
    ["Model", c.model ?? null],
    ["Dataset", c.dataset ?? null],
    ["Data source", c.source ?? null],
    ["Parameters", c.parameters !== undefined ? c.parameters.toLocaleString("en-US") : null],
    ["Device", c.device ?? null],
    ["Started", c.started ?? null],
    ["Status", statusText(run)],
    ["Epochs", epochsDone(run)],
    ["Final held-out accuracy", formatValue(finalAccuracy(run), "percent")],
    [
      "Best held-out accuracy",
      best ? `${formatValue(best.accuracy, "percent")} (epoch ${best.epoch})` : null,
    ],
    ["Total time", formatValue(totalSeconds(run), "seconds")],
    [
      "Mean throughput",
      meanThroughput(run) === null ? null : `${formatNumber(meanThroughput(run)!, 4)} samples/s`,
    ],
    ["Peak GPU memory", formatValue(peakMemory(run), "bytes")],
    ["Layer freezing", freezeText(run)],
  ];
  const freezeRules: Rule[] = run.freezes.map((f) => ({
    x: f.step,
    label: "❄",
    title: `${f.layer} frozen at step ${f.step}${f.method ? ` by ${f.method}` : ""}`,
    kind: "freeze",
  }));
  const rules = [...epochRules(run), ...freezeRules];
  const charts = [
    lineChart({
      title: "Training loss",
      xLabel: "step",
      yLabel: "loss",
      xFromZero: true,
      series: [{ name: "loss", color: runColor(0), points: steps.map((s) => [s.step, s.loss]) }],
      rules,
      note: run.freezes.length ? "Dashed purple lines: a layer froze." : undefined,
    }),
    lineChart({
      title: "Held-out accuracy",
      xLabel: "epoch",
      xInteger: true,
      yLabel: "accuracy",
      yUnit: "percent",
      series: [{
        name: "accuracy",
        color: runColor(2),
        points: accuracyByEpoch(run),
      }],
    }),
    barChart({
      title: "Time per epoch",
      xLabel: "epoch",
      yLabel: "time",
      yUnit: "seconds",
      categories: run.epochs.map((e) => String(e.epoch)),
      series: [{ name: "time", color: runColor(0), values: run.epochs.map((e) => e.seconds) }],
      note: "Training steps only (evaluation excluded).",
    }),
    lineChart({
      title: "GPU memory",
      xLabel: "step",
      yLabel: "memory",
      yUnit: "bytes",
      xFromZero: true,
      yFromZero: true,
      series: [
        { name: "live", color: runColor(0), points: steps.map((s) => [s.step, s.liveBytes]) },
        { name: "peak", color: runColor(1), points: steps.map((s) => [s.step, s.peakBytes]) },
      ],
      rules,
      note: "Peak is reset at the start of each epoch.",
    }),
    lineChart({
      title: "Throughput",
      xLabel: "step",
      yLabel: "samples/s",
      xFromZero: true,
      yFromZero: true,
      series: [{
        name: "samples/s",
        color: runColor(0),
        points: steps.map((s) => [s.step, s.samplesPerSecond]),
      }],
      rules,
    }),
    lineChart({
      title: "Learning rate",
      xLabel: "step",
      yLabel: "learning rate",
      xFromZero: true,
      yFromZero: true,
      series: [{ name: "lr", color: runColor(4), points: steps.map((s) => [s.step, s.lr]) }],
    }),
  ];
  if (run.freezes.length > 0) {
    charts.push(freezeTimeline({
      title: "Frozen layers",
      events: run.freezes,
      endStep: lastStep(run),
      color: FREEZE_COLOR,
      epochEnds: epochEnds(run),
      note: "Each row is a layer; its bar starts at the step it froze.",
      wide: true,
    }));
  }
  const epochTable = table(
    [
      "epoch",
      "train loss",
      "held-out accuracy",
      "time",
      "samples/s",
      "peak memory",
      "frozen layers",
    ],
    run.epochs.map((e) => [
      e.epoch,
      e.trainLoss === null ? null : e.trainLoss.toFixed(4),
      formatValue(e.testAccuracy, "percent"),
      formatValue(e.seconds, "seconds"),
      e.samplesPerSecond === null ? null : formatNumber(e.samplesPerSecond, 4),
      formatValue(e.peakBytes, "bytes"),
      e.frozenLayers,
    ]),
    { numeric: [true, true, true, true, true, true, true] },
  );
  const argRows: Cell[][] = Object.entries(c.args).map((
    [k, v],
  ) => [k, { html: `<code>${esc(argText(v))}</code>` }]);
  const sub = [c.model, c.dataset, c.device, c.started].filter(Boolean).join(" · ");
  const body = `<h1>Training report: ${esc(run.name)}</h1>
<p class="sub">${esc(sub)}</p>
${warnings(runWarnings(run))}
<h2>Summary</h2>
${kvTable(summary)}
<h2>Plots</h2>
<div class="grid">
${charts.join("\n")}
</div>
<h2>Epochs</h2>
${run.epochs.length ? epochTable : '<p class="empty">No epoch finished.</p>'}
<h2>Configuration</h2>
${argRows.length ? table(["flag", "value"], argRows) : '<p class="empty">No flags recorded.</p>'}`;
  return page(`Training report: ${run.name}`, body);
}

function kvTable(rows: [string, Cell][]): string {
  return `<table class="kv"><tbody>\n${
    rows.map(([k, v]) =>
      `<tr><th>${esc(k)}</th><td>${
        v === null ? "–" : typeof v === "object" ? v.html : esc(String(v))
      }</td></tr>`
    ).join("\n")
  }\n</tbody></table>`;
}

/** Options of {@link renderComparison}. */
export interface ComparisonOptions {
  /** Per-run links to their own report pages (relative URLs), by run index. */
  links?: (string | null)[];
}

function relativeTo(
  v: number | null,
  base: number | null,
  kind: "ratio-faster" | "percent-lower" | "points-higher",
): Cell {
  if (v === null || base === null || base === 0) return null;
  if (kind === "points-higher") {
    const d = 100 * (v - base);
    const cls = d > 0.005 ? "better" : d < -0.005 ? "worse" : "";
    return {
      html: `<span class="${cls}">${d >= 0 ? "+" : "−"}${Math.abs(d).toFixed(2)} pt</span>`,
    };
  }
  if (kind === "ratio-faster") {
    const r = base / v;
    const cls = r > 1.005 ? "better" : r < 0.995 ? "worse" : "";
    return { html: `<span class="${cls}">${r.toFixed(2)}×</span>` };
  }
  const d = 100 * (v / base - 1);
  const cls = d < -0.5 ? "better" : d > 0.5 ? "worse" : "";
  return { html: `<span class="${cls}">${d >= 0 ? "+" : "−"}${Math.abs(d).toFixed(1)}%</span>` };
}

const IGNORED_DIFFERENCES = ["out", "given", "resume"];

/** Settings (config fields and flags) whose values differ between runs. */
function differingSettings(runs: RunData[]): { key: string; values: string[] }[] {
  const keys = new Set<string>(["model", "dataset", "device"]);
  for (const r of runs) for (const k of Object.keys(r.config.args)) keys.add(k);
  // Where a run was written and which flags were typed differ between any two runs and say
  // nothing about what was trained; each run's own report lists them.
  for (const k of IGNORED_DIFFERENCES) keys.delete(k);
  const out: { key: string; values: string[] }[] = [];
  for (const k of keys) {
    const values = runs.map((r) => {
      const v = k === "model" || k === "dataset" || k === "device"
        ? (r.config[k] ?? r.config.args[k])
        : r.config.args[k];
      return v === undefined ? "–" : argText(v);
    });
    if (new Set(values).size > 1) out.push({ key: k, values });
  }
  return out;
}

/** Unique display names: base names, or the paths where base names collide. */
function displayNames(runs: RunData[]): string[] {
  const count = new Map<string, number>();
  for (const r of runs) count.set(r.name, (count.get(r.name) ?? 0) + 1);
  return runs.map((r) => (count.get(r.name)! > 1 ? r.dir : r.name));
}

/**
 * The HTML page comparing runs; `runs[0]` is the baseline of the relative
 * columns (accuracy difference, speed-up, memory change).
 *
 * @example
 * ```ts
 * import { parseLog } from "./report/run_data.ts";
 * import { renderComparison } from "./report.ts";
 * const run = (name: string, loss: number) => ({ name, dir: `runs/${name}`, config: { args: {} },
 *   ...parseLog(`{"type":"step","step":50,"epoch":1,"loss":${loss}}\n`, "log.jsonl") });
 * const html = renderComparison([run("baseline", 0.9), run("smartfrz", 0.8)]);
 * console.log(html.includes("smartfrz")); // true
 * ```
 */
export function renderComparison(runs: RunData[], opts: ComparisonOptions = {}): string {
  if (runs.length === 0) throw new Error("renderComparison: no runs");
  const names = displayNames(runs);
  const base = runs[0];
  const baseAcc = finalAccuracy(base), baseTime = totalSeconds(base), baseMem = peakMemory(base);
  const swatch = (i: number) =>
    `<span class="swatch" style="--c:${runColor(i)}"></span>${
      opts.links?.[i] ? `<a href="${esc(opts.links[i]!)}">${esc(names[i])}</a>` : esc(names[i])
    }${i === 0 && runs.length > 1 ? " <small>(baseline)</small>" : ""}`;
  const rows: Cell[][] = runs.map((r, i) => {
    const best = bestEpoch(r);
    const acc = finalAccuracy(r), t = totalSeconds(r), m = peakMemory(r);
    return [
      { html: swatch(i) },
      r.config.model ?? null,
      r.config.dataset ?? null,
      freezeText(r),
      epochsDone(r),
      formatValue(acc, "percent"),
      i === 0 ? null : relativeTo(acc, baseAcc, "points-higher"),
      best ? `${formatValue(best.accuracy, "percent")} (e${best.epoch})` : null,
      formatValue(t, "seconds"),
      i === 0 ? null : relativeTo(t, baseTime, "ratio-faster"),
      formatValue(m, "bytes"),
      i === 0 ? null : relativeTo(m, baseMem, "percent-lower"),
      statusText(r),
    ];
  });
  const summary = table(
    [
      "run",
      "model",
      "dataset",
      "layer freezing",
      "epochs",
      "final accuracy",
      "Δ accuracy",
      "best accuracy",
      "total time",
      "speed-up",
      "peak memory",
      "Δ memory",
      "status",
    ],
    rows,
    {
      numeric: [false, false, false, false, true, true, true, true, true, true, true, true, false],
    },
  );
  const diffs = differingSettings(runs);
  const diffTable = diffs.length
    ? table(
      ["setting", ...names],
      diffs.map((d) => [d.key, ...d.values.map((v): Cell => ({ html: `<code>${esc(v)}</code>` }))]),
    )
    : '<p class="empty">All runs used the same settings.</p>';

  const series = (pick: (r: RunData) => [number, number | null][]) =>
    runs.map((r, i) => ({ name: names[i], color: runColor(i), dash: runDash(i), points: pick(r) }));
  const xMax = Math.max(...runs.map(lastStep), 1);
  const maxEpoch = runs.reduce((m, r) => r.epochs.reduce((n, e) => Math.max(n, e.epoch), m), 0);
  const charts = [
    lineChart({
      title: "Training loss vs step",
      xLabel: "step",
      yLabel: "loss",
      xFromZero: true,
      series: series((r) => r.steps.map((s) => [s.step, s.loss])),
    }),
    lineChart({
      title: "Training loss vs training time",
      xLabel: "training time",
      xUnit: "seconds",
      yLabel: "loss",
      xFromZero: true,
      series: series((r) => {
        const t = stepTimes(r);
        return r.steps.flatMap((s, i): [number, number | null][] =>
          t[i] === null ? [] : [[t[i]!, s.loss]]
        );
      }),
    }),
    lineChart({
      title: "Held-out accuracy vs epoch",
      xLabel: "epoch",
      xInteger: true,
      yLabel: "accuracy",
      yUnit: "percent",
      series: series(accuracyByEpoch),
    }),
    lineChart({
      title: "Held-out accuracy vs training time",
      xLabel: "training time",
      xUnit: "seconds",
      yLabel: "accuracy",
      yUnit: "percent",
      xFromZero: true,
      series: series(accuracyOverTime),
      note: "At the end of each epoch; time sums the epochs' training steps (evaluation excluded).",
    }),
    hbarChart({
      title: "Total time",
      unit: "seconds",
      rows: runs.map((r, i) => {
        const t = totalSeconds(r);
        return {
          label: names[i],
          value: t,
          color: runColor(i),
          note: i > 0 && t && baseTime ? `${(baseTime / t).toFixed(2)}× vs baseline` : undefined,
        };
      }),
    }),
    hbarChart({
      title: "Peak GPU memory",
      unit: "bytes",
      rows: runs.map((r, i) => {
        const m = peakMemory(r);
        return {
          label: names[i],
          value: m,
          color: runColor(i),
          note: i > 0 && m && baseMem
            ? `${m <= baseMem ? "−" : "+"}${Math.abs(100 * (m / baseMem - 1)).toFixed(1)}%`
            : undefined,
        };
      }),
    }),
    barChart({
      title: "Time per epoch",
      xLabel: "epoch",
      yLabel: "time",
      yUnit: "seconds",
      categories: Array.from({ length: maxEpoch }, (_, i) => String(i + 1)),
      series: runs.map((r, i) => ({
        name: names[i],
        color: runColor(i),
        values: Array.from(
          { length: maxEpoch },
          (_, k) => r.epochs.find((e) => e.epoch === k + 1)?.seconds ?? null,
        ),
      })),
    }),
    lineChart({
      title: "Throughput",
      xLabel: "step",
      yLabel: "samples/s",
      xFromZero: true,
      yFromZero: true,
      series: series((r) => r.steps.map((s) => [s.step, s.samplesPerSecond])),
    }),
    lineChart({
      title: "Peak GPU memory vs step",
      xLabel: "step",
      yLabel: "memory",
      yUnit: "bytes",
      xFromZero: true,
      yFromZero: true,
      series: series((r) => r.steps.map((s) => [s.step, s.peakBytes])),
      note: "Peak since the start of the epoch.",
    }),
  ];
  const timelines = runs.map((r, i) =>
    freezeTimeline({
      title: `Frozen layers: ${names[i]}`,
      events: r.freezes,
      endStep: lastStep(r),
      xMax,
      color: runColor(i),
      epochEnds: epochEnds(r),
    })
  );
  const allWarnings = runs.flatMap((r) => runWarnings(r));
  const body = `<h1>Comparison of ${runs.length} training run${runs.length === 1 ? "" : "s"}</h1>
<p class="sub">${names.map(esc).join(" · ")}. The first run, ${
    esc(names[0])
  }, is the baseline of the relative columns (Δ accuracy, speed-up, Δ memory).</p>
${warnings(allWarnings)}
<h2>Summary</h2>
${summary}
<h2>Settings that differ</h2>
${diffTable}
<h2>Plots</h2>
<div class="grid">
${charts.join("\n")}
</div>
<h2>Layer freezing</h2>
${
    runs.some((r) => r.freezes.length > 0)
      ? `<p class="sub">Same step axis for every run. Each row is a layer; its bar starts at the step it froze.</p>
<div class="grid">
${timelines.join("\n")}
</div>`
      : '<p class="empty">No run froze any layer.</p>'
  }`;
  return page(`Comparison: ${names.join(", ")}`, body);
}

/**
 * Reads the run directory `runDir` and writes its report to
 * `runDir/report.html`; returns that path.
 *
 * @example
 * ```ts
 * import { writeReport } from "./report.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/config.json`, '{"model":"mlp","dataset":"mnist","args":{}}');
 * await Deno.writeTextFile(`${dir}/log.jsonl`, '{"type":"step","step":50,"epoch":1,"loss":0.9}\n');
 * const path = await writeReport(dir);
 * console.log(path.endsWith("report.html")); // true
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeReport(runDir: string): Promise<string> {
  const run = await readRun(runDir);
  const out = join(runDir, "report.html");
  await Deno.writeTextFile(out, renderReport(run));
  return out;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Reads the run directories and writes the page comparing them to `out`
 * (creating its directory); the first run is the baseline. Runs whose
 * `report.html` exists are linked from the page. Returns `out`.
 *
 * @example
 * ```ts
 * import { writeComparison } from "./report.ts";
 * const root = await Deno.makeTempDir();
 * for (const name of ["baseline", "smartfrz"]) {
 *   await Deno.mkdir(`${root}/${name}`);
 *   await Deno.writeTextFile(`${root}/${name}/config.json`, '{"args":{}}');
 *   await Deno.writeTextFile(`${root}/${name}/log.jsonl`, '{"type":"epoch","epoch":1,"testAccuracy":0.8}\n');
 * }
 * await writeComparison([`${root}/baseline`, `${root}/smartfrz`], `${root}/compare.html`);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function writeComparison(
  runDirs: string[],
  out = "runs/compare.html",
): Promise<string> {
  const runs: RunData[] = [];
  for (const d of runDirs) runs.push(await readRun(d));
  const outDir = dirname(resolve(out));
  const links: (string | null)[] = [];
  for (const r of runs) {
    const report = join(r.dir, "report.html");
    links.push(
      await exists(report)
        ? relative(outDir, resolve(report)).split(/[\\/]/).map(encodeURIComponent).join("/")
        : null,
    );
  }
  await Deno.mkdir(outDir, { recursive: true });
  await Deno.writeTextFile(out, renderComparison(runs, { links }));
  return out;
}
