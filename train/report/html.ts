/**
 * HTML building blocks of the training reports: escaping, number formatting
 * with units, tables, and the page shell with its inline CSS and script.
 *
 * Pages are self-contained (no network, no external files) so a report can be
 * mailed, archived next to its run, or opened offline. The charts are SVG
 * drawn here, not in the browser, so a page shows its plots even with
 * scripts disabled; the inline script only adds hover read-outs and marks
 * the page `data-rendered` once it has measured every plotted mark (what the
 * tests check in headless Chromium).
 *
 * @module
 */

/**
 * Escapes text for HTML element content and quoted attribute values.
 *
 * @example
 * ```ts
 * import { escapeHtml } from "./html.ts";
 * console.log(escapeHtml(`<b class="x">&'`)); // &lt;b class=&quot;x&quot;&gt;&amp;&#39;
 * ```
 */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * JSON for an inline `<script type="application/json">`: every `<` is written
 * as `\u003c`, so no string in the data can close the script element.
 */
export function jsonForScript(v: unknown): string {
  return JSON.stringify(v).replace(/</g, "\\u003c");
}

/** Kinds of quantity an axis or a table cell shows. */
export type Unit = "none" | "percent" | "bytes" | "seconds";

/** Divisor and suffix that display a quantity in readable magnitudes. */
export interface UnitScale {
  /** Values are divided by this before display. */
  factor: number;
  /** Appended to the axis label, e.g. `"MiB"` (`""` for plain numbers). */
  suffix: string;
}

/**
 * The scale an axis whose largest magnitude is `maxAbs` shows `unit` in:
 * bytes in B/KiB/MiB/GiB, seconds in s/min/h, fractions in percent.
 *
 * @example
 * ```ts
 * import { unitScale } from "./html.ts";
 * console.log(unitScale("bytes", 7_000_000)); // { factor: 1048576, suffix: "MiB" }
 * ```
 */
export function unitScale(unit: Unit, maxAbs: number): UnitScale {
  switch (unit) {
    case "percent":
      return { factor: 0.01, suffix: "%" };
    case "bytes": {
      const units = ["B", "KiB", "MiB", "GiB", "TiB"];
      let k = 0;
      while (k < units.length - 1 && maxAbs >= 1024 ** (k + 1)) k++;
      return { factor: 1024 ** k, suffix: units[k] };
    }
    case "seconds":
      if (maxAbs >= 7200) return { factor: 3600, suffix: "h" };
      if (maxAbs >= 300) return { factor: 60, suffix: "min" };
      return { factor: 1, suffix: "s" };
    default:
      return { factor: 1, suffix: "" };
  }
}

/**
 * A number with about `digits` significant digits, without exponent notation
 * for everyday magnitudes and with thousands grouped.
 *
 * @example
 * ```ts
 * import { formatNumber } from "./html.ts";
 * console.log(formatNumber(5123.4), formatNumber(0.0123456)); // 5,123 0.01235
 * ```
 */
export function formatNumber(v: number, digits = 4): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const mag = Math.floor(Math.log10(Math.abs(v)));
  if (mag < -4 || mag >= 15) return v.toExponential(digits - 1);
  const decimals = Math.max(0, digits - 1 - mag);
  return v.toLocaleString("en-US", { maximumFractionDigits: decimals, minimumFractionDigits: 0 });
}

/**
 * A value with its unit for a table cell, e.g. `"6.68 MiB"`, `"2m05s"`,
 * `"88.10%"`; `"–"` for a missing value.
 *
 * @example
 * ```ts
 * import { formatValue } from "./html.ts";
 * console.log(formatValue(0.881, "percent"), formatValue(125, "seconds")); // 88.10% 2m05s
 * ```
 */
export function formatValue(v: number | null | undefined, unit: Unit): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  switch (unit) {
    case "percent":
      return `${(100 * v).toFixed(2)}%`;
    case "bytes": {
      const s = unitScale("bytes", Math.abs(v));
      return `${formatNumber(v / s.factor, 3)} ${s.suffix}`;
    }
    case "seconds": {
      if (v < 60) return `${v.toFixed(v < 10 ? 2 : 1)} s`;
      const h = Math.floor(v / 3600), m = Math.floor((v % 3600) / 60), sec = Math.floor(v % 60);
      return h > 0
        ? `${h}h${String(m).padStart(2, "0")}m`
        : `${m}m${String(sec).padStart(2, "0")}s`;
    }
    default:
      return formatNumber(v);
  }
}

/** A table cell: text (escaped when rendered) or trusted markup built by this module's callers. */
export type Cell = string | number | null | { html: string; sort?: number };

/** Renders a cell's content. */
function cellHtml(c: Cell): string {
  if (c === null) return "–";
  if (typeof c === "object") return c.html;
  return escapeHtml(String(c));
}

/**
 * An HTML table. Text cells are escaped; `{html}` cells are inserted as given.
 *
 * @example
 * ```ts
 * import { table } from "./html.ts";
 * console.log(table(["run", "accuracy"], [["<a>", "88%"]]).includes("&lt;a&gt;")); // true
 * ```
 */
export function table(
  headers: string[],
  rows: Cell[][],
  opts: { className?: string; numeric?: boolean[] } = {},
): string {
  const num = (i: number) => opts.numeric?.[i] ? ' class="num"' : "";
  const head = headers.map((h, i) => `<th${num(i)}>${escapeHtml(h)}</th>`).join("");
  const body = rows.map((r) =>
    `<tr>${r.map((c, i) => `<td${num(i)}>${cellHtml(c)}</td>`).join("")}</tr>`
  )
    .join("\n");
  const cls = opts.className ? ` class="${escapeHtml(opts.className)}"` : "";
  return `<table${cls}><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/** Colour-blind-safe categorical palette (Okabe & Ito, 2008), most distinct first. */
export const PALETTE = [
  "#0072B2",
  "#D55E00",
  "#009E73",
  "#CC79A7",
  "#E69F00",
  "#56B4E9",
  "#000000",
  "#B8A400",
];

/** Colour of the `i`-th run of a comparison (cycles after 8). */
export function runColor(i: number): string {
  return PALETTE[i % PALETTE.length];
}

/** Dash pattern of the `i`-th run: solid for the first 8, dashed for the next 8, ... */
export function runDash(i: number): string | undefined {
  return ["", "6 3", "2 3", "8 3 2 3"][Math.floor(i / PALETTE.length) % 4] || undefined;
}

const CSS = `
:root { --fg: #1d2330; --muted: #5b6475; --line: #d9dde5; --bg: #ffffff; --panel: #f6f7fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
main { max-width: 1320px; margin: 0 auto; padding: 20px 24px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.sub { color: var(--muted); margin: 0 0 12px; }
.warn { background: #fff4e0; border: 1px solid #f0c36d; padding: 8px 12px; border-radius: 6px;
  margin: 10px 0; }
.warn li { margin: 2px 0; }
table { border-collapse: collapse; margin: 6px 0 10px; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left;
  vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
td.num, th.num { text-align: right; }
table.kv th { text-align: left; width: 1%; white-space: nowrap; }
td code { font-size: 12px; }
.better { color: #00784a; font-weight: 600; }
.worse { color: #b03a00; font-weight: 600; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px;
  vertical-align: -1px; background: var(--c); }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 18px; }
figure.chart { margin: 0; background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 12px 6px; position: relative; }
figure.chart.wide { grid-column: 1 / -1; }
figcaption { font-weight: 600; margin-bottom: 2px; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; color: var(--muted);
  min-height: 16px; }
.legend .swatch { height: 3px; width: 18px; vertical-align: 3px; }
.legend .swatch.dashed { background: repeating-linear-gradient(90deg, var(--c) 0 5px,
  transparent 5px 8px); }
.chart-note { font-size: 12px; color: var(--muted); margin: 2px 0 4px; }
.wrap { position: relative; }
svg.plot { width: 100%; height: auto; display: block; overflow: visible; }
svg.plot text { font-size: 11px; fill: var(--muted); font-family: inherit; }
svg.plot text.axis-label { font-size: 12px; fill: var(--fg); }
svg.plot text.bar-label { fill: var(--fg); font-size: 10.5px; }
svg.plot .gridline { stroke: #e3e6ec; stroke-width: 1; }
svg.plot .axis { stroke: #9aa2b1; stroke-width: 1; }
svg.plot .rule { stroke: #9aa2b1; stroke-width: 1; stroke-dasharray: 3 3; }
svg.plot .rule.freeze { stroke: #7a4fbf; stroke-dasharray: 2 2; }
svg.plot text.rule-label { font-size: 10px; }
svg.plot .guide { stroke: #444; stroke-width: 1; stroke-dasharray: 2 2; }
.tip { position: absolute; pointer-events: none; background: rgba(255, 255, 255, 0.96);
  border: 1px solid var(--line); border-radius: 5px; padding: 5px 8px; font-size: 12px;
  box-shadow: 0 2px 8px rgba(0, 0, 0, .12); white-space: nowrap; z-index: 2; }
.tip b { display: block; margin-bottom: 2px; }
.empty { color: var(--muted); font-style: italic; padding: 24px 8px; }
a { color: #0b62a4; }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; }
@media print { .grid { display: block; } figure.chart { break-inside: avoid; margin-bottom: 12px; } }
`;

/*
 * Runs once after the page is parsed: measures every plotted mark in layout
 * (`data-plotted` on each plot, `data-rendered` on <body>: the number of
 * plots measured) and wires the hover read-outs of line charts. Built with
 * DOM text nodes only, so names from logs never become markup.
 */
const SCRIPT = String.raw`
(() => {
  "use strict";
  const fmt = (v) => {
    if (!isFinite(v)) return String(v);
    if (v === 0) return "0";
    const mag = Math.floor(Math.log10(Math.abs(v)));
    if (mag < -4 || mag >= 15) return v.toExponential(3);
    return v.toLocaleString("en-US", { maximumFractionDigits: Math.max(0, 3 - mag) });
  };
  const nearest = (p, x) => {
    if (p.length === 0) return -1;
    let lo = 0, hi = p.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (p[mid][0] < x) lo = mid; else hi = mid;
    }
    return Math.abs(p[lo][0] - x) <= Math.abs(p[hi][0] - x) ? lo : hi;
  };
  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  };
  function hover(svg, tip, d) {
    const guide = svg.querySelector(".guide");
    const hide = () => { tip.hidden = true; guide.setAttribute("visibility", "hidden"); };
    svg.addEventListener("pointerleave", hide);
    svg.addEventListener("pointermove", (ev) => {
      const m = svg.getScreenCTM();
      if (!m) return;
      const pt = new DOMPoint(ev.clientX, ev.clientY).matrixTransform(m.inverse());
      if (pt.x < d.l || pt.x > d.l + d.w) return hide();
      const x = d.x0 + ((pt.x - d.l) / d.w) * (d.x1 - d.x0);
      let best = null;
      const rows = [];
      for (const s of d.s) {
        const i = nearest(s.p, x);
        if (i < 0) continue;
        rows.push([s, s.p[i]]);
        if (best === null || Math.abs(s.p[i][0] - x) < Math.abs(best - x)) best = s.p[i][0];
      }
      if (best === null) return hide();
      tip.replaceChildren(el("b", d.xl + " " + fmt(best) + (d.xs ? " " + d.xs : "")));
      for (const [s, q] of rows) {
        const row = el("div");
        const sw = el("span", undefined, "swatch");
        sw.style.setProperty("--c", s.c);
        row.append(sw, el("span", (d.s.length > 1 ? s.n + ": " : "") + fmt(q[1]) +
          (d.ys ? " " + d.ys : "") + (q[0] !== best ? " (at " + fmt(q[0]) + ")" : "")));
        tip.append(row);
      }
      const gx = d.l + ((best - d.x0) / (d.x1 - d.x0)) * d.w;
      guide.setAttribute("x1", gx);
      guide.setAttribute("x2", gx);
      guide.setAttribute("visibility", "visible");
      tip.hidden = false;
      const wrap = tip.parentElement.getBoundingClientRect();
      const left = ev.clientX - wrap.left + 14;
      tip.style.left = Math.min(left, wrap.width - tip.offsetWidth - 4) + "px";
      tip.style.top = Math.max(0, ev.clientY - wrap.top - tip.offsetHeight - 10) + "px";
    });
  }
  let rendered = 0;
  for (const svg of document.querySelectorAll("svg.plot")) {
    let plotted = 0;
    for (const m of svg.querySelectorAll(".mark")) {
      const b = m.getBBox();
      if (b.width > 0 || b.height > 0) plotted++;
    }
    svg.setAttribute("data-plotted", String(plotted));
    rendered++;
    const fig = svg.closest("figure");
    const data = fig && fig.querySelector("script.chart-data");
    const tip = fig && fig.querySelector(".tip");
    if (data && tip) hover(svg, tip, JSON.parse(data.textContent));
  }
  document.body.setAttribute("data-rendered", String(rendered));
})();
`;

/**
 * A complete self-contained HTML document.
 *
 * @example
 * ```ts
 * import { page } from "./html.ts";
 * const html = page("run <1>", "<p>hello</p>");
 * console.log(html.startsWith("<!doctype html>"), html.includes("<title>run &lt;1&gt;</title>")); // true true
 * ```
 */
export function page(title: string, bodyHtml: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${bodyHtml}
<footer>Generated by frost <code>deno task report</code> on ${
    escapeHtml(new Date().toISOString())
  }. Self-contained: no network access needed.</footer>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
