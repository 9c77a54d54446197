/**
 * SVG charts for the training reports: line charts (with hover read-outs),
 * grouped and horizontal bar charts, and the freeze timeline.
 *
 * Drawn as SVG strings rather than with a browser charting library: the
 * reports need five chart kinds of a few hundred points each, which ~400
 * lines draw with no dependency to pin, inline or audit, and the plots then
 * show with scripts disabled and diff as text. Every data-carrying element
 * has class `mark`, which the page script (and the tests) measure.
 *
 * All text is escaped; colours come from the caller (the report's palette).
 *
 * @module
 */

import { escapeHtml as esc, formatNumber, jsonForScript, type Unit, unitScale } from "./html.ts";

/** Width and height of every chart's view box; the SVG scales to its column. */
const W = 640;
const H = 290;

/** One line of a line chart. `null` y values leave a gap. */
export interface LineSeries {
  /** Legend and read-out name. */
  name: string;
  /** Stroke colour. */
  color: string;
  /** `[x, y]` points, in increasing x. */
  points: [number, number | null][];
  /** SVG `stroke-dasharray`, for telling apart runs beyond the palette. */
  dash?: string;
}

/** A labelled vertical rule (epoch boundary, freeze event). */
export interface Rule {
  /** Position on the x axis (data units). */
  x: number;
  /** Short label drawn at the top. */
  label: string;
  /** Longer text shown on hover. */
  title?: string;
  /** `"freeze"` draws it in the freeze colour. */
  kind?: "epoch" | "freeze";
}

/** Options of {@link lineChart}. */
export interface LineChartOptions {
  /** Caption. */
  title: string;
  /** X axis label (without unit). */
  xLabel: string;
  /** Unit of x values (default `"none"`). */
  xUnit?: Unit;
  /** Y axis label (without unit). */
  yLabel: string;
  /** Unit of y values (default `"none"`). */
  yUnit?: Unit;
  /** The lines. */
  series: LineSeries[];
  /** Start the y axis at 0 (for amounts such as memory and throughput). */
  yFromZero?: boolean;
  /** Start the x axis at 0 (steps, time). */
  xFromZero?: boolean;
  /** X values are counts (epochs): ticks only at whole numbers. */
  xInteger?: boolean;
  /** Vertical rules. */
  rules?: Rule[];
  /** Small print under the caption. */
  note?: string;
  /** Span the whole grid row. */
  wide?: boolean;
}

/** Ticks of a "nice" axis: multiples of 1, 2 or 5 × 10^k covering `[lo, hi]`. */
export interface Ticks {
  /** Axis start (a tick, ≤ the data minimum unless `exact`). */
  lo: number;
  /** Axis end. */
  hi: number;
  /** Tick values. */
  ticks: number[];
  /** Decimals that print every tick exactly. */
  decimals: number;
}

/**
 * Nice ticks for data in `[lo, hi]` (about `target` of them). With `exact`,
 * the axis spans exactly `[lo, hi]` and the ticks fall inside it. Ticks are
 * at least `minStep` apart (1 for counts such as epochs).
 *
 * @example
 * ```ts
 * import { niceTicks } from "./charts.ts";
 * console.log(niceTicks(0.43, 2.31).ticks); // [ 0, 0.5, 1, 1.5, 2, 2.5 ]
 * ```
 */
export function niceTicks(
  lo: number,
  hi: number,
  target = 5,
  exact = false,
  minStep = 0,
): Ticks {
  if (!(hi > lo)) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const n = raw / mag;
  const step = Math.max((n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag, minStep);
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const round = (v: number) => Number(v.toFixed(decimals));
  const a = exact ? Math.ceil(lo / step - 1e-9) * step : Math.floor(lo / step + 1e-9) * step;
  const b = exact ? Math.floor(hi / step + 1e-9) * step : Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0; a + i * step <= b + step * 1e-6; i++) ticks.push(round(a + i * step));
  return exact ? { lo, hi, ticks, decimals } : { lo: round(a), hi: round(b), ticks, decimals };
}

const tickText = (v: number, decimals: number) =>
  Math.abs(v) >= 1e4 ? formatNumber(v, 3) : v.toFixed(decimals);

const f1 = (v: number) => Number(v.toFixed(1));

function axisLabel(label: string, suffix: string): string {
  return suffix ? `${label} (${suffix})` : label;
}

function legend(items: { name: string; color: string; dash?: string }[]): string {
  return `<div class="legend">${
    items.map((s) =>
      `<span><span class="swatch${s.dash ? " dashed" : ""}" style="--c:${esc(s.color)}"></span>${
        esc(s.name)
      }</span>`
    ).join("")
  }</div>`;
}

function figure(
  o: { title: string; note?: string; wide?: boolean; kind: string },
  inner: string,
): string {
  return `<figure class="chart${o.wide ? " wide" : ""}" data-kind="${o.kind}">
<figcaption>${esc(o.title)}</figcaption>
${o.note ? `<div class="chart-note">${esc(o.note)}</div>` : ""}${inner}
</figure>`;
}

/** A chart's placeholder when there is nothing to draw. */
export function emptyChart(title: string, message: string, wide = false): string {
  return figure({ title, wide, kind: "empty" }, `<p class="empty">${esc(message)}</p>`);
}

interface Frame {
  l: number;
  t: number;
  w: number;
  h: number;
}

/** Grid lines, tick labels and axis labels of a two-numeric-axis plot. */
function axes(
  f: Frame,
  x: Ticks,
  y: Ticks,
  xLabel: string,
  yLabel: string,
  px: (v: number) => number,
  py: (v: number) => number,
): string {
  const out: string[] = [];
  for (const t of y.ticks) {
    const yy = f1(py(t));
    out.push(
      `<line class="gridline" x1="${f.l}" x2="${f.l + f.w}" y1="${yy}" y2="${yy}"/>`,
      `<text x="${f.l - 6}" y="${yy + 3.5}" text-anchor="end">${tickText(t, y.decimals)}</text>`,
    );
  }
  for (const t of x.ticks) {
    const xx = f1(px(t));
    out.push(
      `<line class="axis" x1="${xx}" x2="${xx}" y1="${f.t + f.h}" y2="${f.t + f.h + 4}"/>`,
      `<text x="${xx}" y="${f.t + f.h + 16}" text-anchor="middle">${
        tickText(t, x.decimals)
      }</text>`,
    );
  }
  out.push(
    `<line class="axis" x1="${f.l}" x2="${f.l + f.w}" y1="${f.t + f.h}" y2="${f.t + f.h}"/>`,
    `<line class="axis" x1="${f.l}" x2="${f.l}" y1="${f.t}" y2="${f.t + f.h}"/>`,
    `<text class="axis-label" x="${f.l + f.w / 2}" y="${H - 6}" text-anchor="middle">${
      esc(xLabel)
    }</text>`,
    `<text class="axis-label" transform="translate(13 ${
      f.t + f.h / 2
    }) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
  );
  return out.join("\n");
}

/**
 * A line chart: one or more series over a numeric x axis, with optional
 * vertical rules, a legend, and a hover read-out of the nearest points.
 * Series with no finite point give an "(no data)" placeholder instead.
 *
 * @example
 * ```ts
 * import { lineChart } from "./charts.ts";
 * const svg = lineChart({
 *   title: "Training loss", xLabel: "step", yLabel: "loss",
 *   series: [{ name: "run A", color: "#0072B2", points: [[50, 1.2], [100, 0.8], [150, 0.6]] }],
 * });
 * console.log(svg.includes('class="mark line"')); // true
 * ```
 */
export function lineChart(o: LineChartOptions): string {
  const finite = o.series.flatMap((s) =>
    s.points.filter((p): p is [number, number] => Number.isFinite(p[0]) && Number.isFinite(p[1]))
  );
  if (finite.length === 0) return emptyChart(o.title, "No data logged for this plot.", o.wide);
  // Loops, not Math.min(...xs): long runs log more points than a call may take arguments.
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const [x, y] of finite) {
    x0 = Math.min(x0, x);
    x1 = Math.max(x1, x);
    y0 = Math.min(y0, y);
    y1 = Math.max(y1, y);
  }
  if (o.xFromZero) x0 = Math.min(0, x0);
  if (o.yFromZero) y0 = Math.min(0, y0);
  const xs_ = unitScale(o.xUnit ?? "none", Math.max(Math.abs(x0), Math.abs(x1)));
  const ys_ = unitScale(o.yUnit ?? "none", Math.max(Math.abs(y0), Math.abs(y1)));
  x0 /= xs_.factor;
  x1 /= xs_.factor;
  y0 /= ys_.factor;
  y1 /= ys_.factor;
  if (x1 === x0) {
    x0 -= 1;
    x1 += 1;
  }
  const xt = niceTicks(x0, x1, 6, true, o.xInteger ? 1 : 0);
  const yt = niceTicks(y0, y1, 5);
  const f: Frame = { l: 62, t: 16, w: W - 62 - 16, h: H - 16 - 44 };
  const px = (v: number) => f.l + ((v - xt.lo) / (xt.hi - xt.lo)) * f.w;
  const py = (v: number) => f.t + f.h - ((v - yt.lo) / (yt.hi - yt.lo)) * f.h;
  const parts: string[] = [
    axes(
      f,
      xt,
      yt,
      axisLabel(o.xLabel, xs_.suffix),
      axisLabel(o.yLabel, ys_.suffix),
      px,
      py,
    ),
  ];
  for (const r of o.rules ?? []) {
    const v = r.x / xs_.factor;
    if (!(v >= xt.lo && v <= xt.hi)) continue;
    const xx = f1(px(v));
    parts.push(
      `<g><title>${esc(r.title ?? r.label)}</title><line class="rule${
        r.kind === "freeze" ? " freeze" : ""
      }" x1="${xx}" x2="${xx}" y1="${f.t}" y2="${f.t + f.h}"/><text class="rule-label" x="${
        xx + 3
      }" y="${f.t + 9}">${esc(r.label)}</text></g>`,
    );
  }
  const data: { n: string; c: string; p: [number, number][] }[] = [];
  for (const s of o.series) {
    const dash = s.dash ? ` stroke-dasharray="${esc(s.dash)}"` : "";
    const scaled = s.points.map(([x, y]): [number, number | null] => [
      x / xs_.factor,
      y !== null && Number.isFinite(y) ? y / ys_.factor : null,
    ]).filter((p) => Number.isFinite(p[0]));
    const segments: [number, number][][] = [[]];
    for (const [x, y] of scaled) {
      if (y === null) {
        if (segments[segments.length - 1].length > 0) segments.push([]);
      } else segments[segments.length - 1].push([x, y]);
    }
    const pts = segments.flat();
    const dots = pts.length <= 30;
    for (const seg of segments) {
      if (seg.length >= 2) {
        const d = seg.map(([x, y], i) => `${i ? "L" : "M"}${f1(px(x))} ${f1(py(y))}`).join("");
        parts.push(
          `<path class="mark line" d="${d}" fill="none" stroke="${
            esc(s.color)
          }" stroke-width="1.8" stroke-linejoin="round"${dash}><title>${
            esc(s.name)
          }</title></path>`,
        );
      } else if (seg.length === 1 && !dots) {
        const [x, y] = seg[0];
        parts.push(
          `<circle class="mark dot" cx="${f1(px(x))}" cy="${f1(py(y))}" r="2.5" fill="${
            esc(s.color)
          }"/>`,
        );
      }
    }
    if (dots) {
      for (const [x, y] of pts) {
        parts.push(
          `<circle class="mark dot" cx="${f1(px(x))}" cy="${f1(py(y))}" r="3" fill="${
            esc(s.color)
          }"><title>${esc(s.name)}: ${esc(formatNumber(y))}${
            ys_.suffix ? " " + esc(ys_.suffix) : ""
          } at ${esc(o.xLabel)} ${esc(formatNumber(x))}</title></circle>`,
        );
      }
    }
    data.push({ n: s.name, c: s.color, p: pts.map(([x, y]) => [x, Number(y.toPrecision(6))]) });
  }
  parts.push(
    `<line class="guide" x1="0" x2="0" y1="${f.t}" y2="${f.t + f.h}" visibility="hidden"/>`,
  );
  const json = jsonForScript({
    l: f.l,
    w: f.w,
    x0: xt.lo,
    x1: xt.hi,
    xl: o.xLabel,
    xs: xs_.suffix,
    ys: ys_.suffix,
    s: data,
  });
  return figure(
    { title: o.title, note: o.note, wide: o.wide, kind: "line" },
    `${legend(o.series)}
<div class="wrap"><svg class="plot" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(o.title)}">
${parts.join("\n")}
</svg><div class="tip" hidden></div></div>
<script type="application/json" class="chart-data">${json}</script>`,
  );
}

/** Options of {@link barChart}. */
export interface BarChartOptions {
  /** Caption. */
  title: string;
  /** Label under the categories. */
  xLabel: string;
  /** Y axis label (without unit). */
  yLabel: string;
  /** Unit of the values. */
  yUnit?: Unit;
  /** Category names along x (e.g. epochs). */
  categories: string[];
  /** One bar per category per series; `null` leaves the slot empty. */
  series: { name: string; color: string; values: (number | null)[] }[];
  /** Small print under the caption. */
  note?: string;
  /** Span the whole grid row. */
  wide?: boolean;
}

/**
 * Grouped vertical bars: for each category, one bar per series, from 0.
 *
 * @example
 * ```ts
 * import { barChart } from "./charts.ts";
 * const svg = barChart({ title: "Time per epoch", xLabel: "epoch", yLabel: "time", yUnit: "seconds",
 *   categories: ["1", "2"], series: [{ name: "A", color: "#0072B2", values: [11.5, 10.9] }] });
 * console.log(svg.split('class="mark bar"').length - 1); // 2
 * ```
 */
export function barChart(o: BarChartOptions): string {
  const vals = o.series.flatMap((s) => s.values).filter((v): v is number => v !== null);
  if (vals.length === 0) return emptyChart(o.title, "No data logged for this plot.", o.wide);
  const sc = unitScale(o.yUnit ?? "none", Math.max(...vals.map(Math.abs)));
  const yt = niceTicks(Math.min(0, ...vals) / sc.factor, Math.max(0, ...vals) / sc.factor, 5);
  const f: Frame = { l: 62, t: 16, w: W - 62 - 16, h: H - 16 - 44 };
  const py = (v: number) => f.t + f.h - ((v - yt.lo) / (yt.hi - yt.lo)) * f.h;
  const parts: string[] = [];
  for (const t of yt.ticks) {
    const yy = f1(py(t));
    parts.push(
      `<line class="gridline" x1="${f.l}" x2="${f.l + f.w}" y1="${yy}" y2="${yy}"/>`,
      `<text x="${f.l - 6}" y="${yy + 3.5}" text-anchor="end">${tickText(t, yt.decimals)}</text>`,
    );
  }
  const n = Math.max(o.categories.length, 1);
  const slot = f.w / n;
  const groupW = slot * 0.8;
  const barW = groupW / Math.max(o.series.length, 1);
  const labelEvery = Math.ceil(n / 24);
  const showValues = n * o.series.length <= 16;
  const zero = py(Math.max(yt.lo, 0));
  o.categories.forEach((c, i) => {
    const gx = f.l + i * slot + (slot - groupW) / 2;
    o.series.forEach((s, j) => {
      const v = s.values[i];
      if (v === null || v === undefined) return;
      const sv = v / sc.factor;
      const top = py(sv);
      // A zero value keeps a hairline so that the bar is visible and measurable.
      const h = Math.max(Math.abs(zero - top), 1);
      const y = Math.min(top, zero - (sv >= 0 ? h : 0));
      const bx = f1(gx + j * barW);
      parts.push(
        `<rect class="mark bar" x="${bx}" y="${f1(y)}" width="${
          f1(Math.max(barW - 1, 1))
        }" height="${f1(h)}" fill="${esc(s.color)}"><title>${esc(s.name)}, ${esc(o.xLabel)} ${
          esc(c)
        }: ${esc(formatNumber(sv))}${sc.suffix ? " " + esc(sc.suffix) : ""}</title></rect>`,
      );
      if (showValues) {
        parts.push(
          `<text class="bar-label" x="${f1(gx + (j + 0.5) * barW)}" y="${
            f1(y - 3)
          }" text-anchor="middle">${esc(formatNumber(sv, 3))}</text>`,
        );
      }
    });
    if (i % labelEvery === 0) {
      parts.push(
        `<text x="${f1(f.l + (i + 0.5) * slot)}" y="${f.t + f.h + 16}" text-anchor="middle">${
          esc(c)
        }</text>`,
      );
    }
  });
  parts.push(
    `<line class="axis" x1="${f.l}" x2="${f.l + f.w}" y1="${f1(zero)}" y2="${f1(zero)}"/>`,
    `<line class="axis" x1="${f.l}" x2="${f.l}" y1="${f.t}" y2="${f.t + f.h}"/>`,
    `<text class="axis-label" x="${f.l + f.w / 2}" y="${H - 6}" text-anchor="middle">${
      esc(o.xLabel)
    }</text>`,
    `<text class="axis-label" transform="translate(13 ${
      f.t + f.h / 2
    }) rotate(-90)" text-anchor="middle">${esc(axisLabel(o.yLabel, sc.suffix))}</text>`,
  );
  return figure(
    { title: o.title, note: o.note, wide: o.wide, kind: "bar" },
    `${o.series.length > 1 ? legend(o.series) : ""}
<div class="wrap"><svg class="plot" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(o.title)}">
${parts.join("\n")}
</svg></div>`,
  );
}

/** One row of {@link hbarChart}. */
export interface HBarRow {
  /** Row label (a run name). */
  label: string;
  /** Bar length; `null` shows "not logged". */
  value: number | null;
  /** Bar colour. */
  color: string;
  /** Text after the value, e.g. `"1.8× faster"`. */
  note?: string;
}

/**
 * Horizontal bars, one labelled row each: a per-run total (time, memory).
 *
 * @example
 * ```ts
 * import { hbarChart } from "./charts.ts";
 * const svg = hbarChart({ title: "Peak memory", unit: "bytes",
 *   rows: [{ label: "baseline", value: 7e6, color: "#0072B2" }, { label: "smartfrz", value: 5e6, color: "#D55E00" }] });
 * console.log(svg.includes("6.68 MiB")); // true
 * ```
 */
export function hbarChart(
  o: { title: string; unit?: Unit; rows: HBarRow[]; note?: string; wide?: boolean },
): string {
  const vals = o.rows.map((r) => r.value).filter((v): v is number => v !== null);
  if (vals.length === 0) return emptyChart(o.title, "No data logged for this plot.", o.wide);
  const sc = unitScale(o.unit ?? "none", Math.max(...vals.map(Math.abs)));
  const rowH = 30;
  const labelW = Math.min(190, Math.max(70, 7 * Math.max(...o.rows.map((r) => r.label.length))));
  const f: Frame = { l: labelW + 10, t: 8, w: W - labelW - 10 - 150, h: rowH * o.rows.length };
  const height = f.t + f.h + 10;
  const max = Math.max(...vals) / sc.factor;
  const parts: string[] = [];
  o.rows.forEach((r, i) => {
    const y = f.t + i * rowH;
    const label = r.label.length > 28 ? r.label.slice(0, 27) + "…" : r.label;
    parts.push(
      `<text class="axis-label" x="${labelW}" y="${y + rowH / 2 + 4}" text-anchor="end">${
        esc(label)
      }<title>${esc(r.label)}</title></text>`,
    );
    if (r.value === null) {
      parts.push(`<text x="${f.l + 4}" y="${y + rowH / 2 + 4}">not logged</text>`);
      return;
    }
    const v = r.value / sc.factor;
    const w = Math.max(1, (Math.max(v, 0) / (max || 1)) * f.w);
    const text = `${formatNumber(v, 3)}${sc.suffix ? " " + sc.suffix : ""}`;
    parts.push(
      `<rect class="mark bar" x="${f.l}" y="${y + 5}" width="${f1(w)}" height="${
        rowH - 10
      }" fill="${esc(r.color)}"><title>${esc(r.label)}: ${esc(text)}</title></rect>`,
      `<text class="bar-label" x="${f1(f.l + w + 6)}" y="${y + rowH / 2 + 4}">${esc(text)}${
        r.note ? ` · ${esc(r.note)}` : ""
      }</text>`,
    );
  });
  parts.push(`<line class="axis" x1="${f.l}" x2="${f.l}" y1="${f.t}" y2="${f.t + f.h}"/>`);
  return figure(
    { title: o.title, note: o.note, wide: o.wide, kind: "hbar" },
    `<div class="wrap"><svg class="plot" viewBox="0 0 ${W} ${height}" role="img" aria-label="${
      esc(o.title)
    }">
${parts.join("\n")}
</svg></div>`,
  );
}

/** A layer's freeze, as the timeline needs it. */
export interface FreezeEvent {
  /** Layer name. */
  layer: string;
  /** Position in the model (orders rows; `null` orders by freeze step). */
  index: number | null;
  /** Global step of the freeze. */
  step: number;
  /** Epoch of the freeze. */
  epoch: number | null;
  /** Freezing method. */
  method: string | null;
}

/** Options of {@link freezeTimeline}. */
export interface FreezeTimelineOptions {
  /** Caption. */
  title: string;
  /** Freeze events. */
  events: FreezeEvent[];
  /** Last step of the run: frozen spans end here. */
  endStep: number;
  /** Right end of the step axis (share it across runs to compare them); default `endStep`. */
  xMax?: number;
  /** Colour of the frozen spans. */
  color: string;
  /** Epoch boundaries to mark. */
  epochEnds?: { epoch: number; step: number }[];
  /** Small print under the caption. */
  note?: string;
  /** Span the whole grid row. */
  wide?: boolean;
}

/**
 * Which layer froze when: one row per layer (in model order), a bar from
 * the step it froze to the end of the run.
 *
 * @example
 * ```ts
 * import { freezeTimeline } from "./charts.ts";
 * const svg = freezeTimeline({ title: "Frozen layers", endStep: 1400, color: "#7a4fbf", events: [
 *   { layer: "layer1", index: 1, step: 900, epoch: 2, method: "smartfrz" },
 *   { layer: "layer2", index: 2, step: 1200, epoch: 3, method: "smartfrz" }] });
 * console.log(svg.split('class="mark span"').length - 1); // 2
 * ```
 */
export function freezeTimeline(o: FreezeTimelineOptions): string {
  if (o.events.length === 0) {
    return emptyChart(o.title, "No layer was frozen in this run.", o.wide);
  }
  const first = new Map<string, FreezeEvent>();
  for (const e of o.events) {
    const prev = first.get(e.layer);
    if (!prev || e.step < prev.step) first.set(e.layer, e);
  }
  const rows = [...first.values()].sort((a, b) =>
    (a.index ?? Infinity) - (b.index ?? Infinity) || a.step - b.step ||
    a.layer.localeCompare(b.layer)
  );
  const rowH = 22;
  // A full-row timeline gets a wider view box, so that its text keeps the size of its neighbours'.
  const vw = o.wide ? 2 * W : W;
  const labelW = Math.min(170, Math.max(56, 6.6 * Math.max(...rows.map((r) => r.layer.length))));
  const xMax = Math.max(o.xMax ?? 0, o.endStep, ...rows.map((r) => r.step), 1);
  const f: Frame = { l: labelW + 10, t: 22, w: vw - labelW - 10 - 16, h: rowH * rows.length };
  const height = f.t + f.h + 44;
  const xt = niceTicks(0, xMax, o.wide ? 12 : 6, true);
  const px = (v: number) => f.l + (v / xMax) * f.w;
  const parts: string[] = [];
  for (const t of xt.ticks) {
    const xx = f1(px(t));
    parts.push(
      `<line class="gridline" x1="${xx}" x2="${xx}" y1="${f.t}" y2="${f.t + f.h}"/>`,
      `<text x="${xx}" y="${f.t + f.h + 16}" text-anchor="middle">${
        tickText(t, xt.decimals)
      }</text>`,
    );
  }
  for (const e of o.epochEnds ?? []) {
    if (e.step <= 0 || e.step > xMax) continue;
    const xx = f1(px(e.step));
    parts.push(
      `<g><title>end of epoch ${e.epoch} (step ${e.step})</title><line class="rule" x1="${xx}" x2="${xx}" y1="${
        f.t - 12
      }" y2="${f.t + f.h}"/><text class="rule-label" x="${xx - 3}" y="${
        f.t - 4
      }" text-anchor="end">e${e.epoch}</text></g>`,
    );
  }
  rows.forEach((r, i) => {
    const y = f.t + i * rowH;
    const label = r.layer.length > 24 ? r.layer.slice(0, 23) + "…" : r.layer;
    const x = px(r.step);
    const what = `${r.layer} frozen at step ${r.step}${
      r.epoch !== null ? ` (epoch ${r.epoch})` : ""
    }${r.method ? ` by ${r.method}` : ""}`;
    parts.push(
      `<text class="axis-label" x="${labelW}" y="${y + rowH / 2 + 4}" text-anchor="end">${
        esc(label)
      }<title>${esc(r.layer)}</title></text>`,
      `<rect class="mark span" x="${f1(x)}" y="${y + 4}" width="${
        f1(Math.max(px(Math.max(o.endStep, r.step)) - x, 2))
      }" height="${rowH - 8}" fill="${esc(o.color)}" fill-opacity="0.35"><title>${
        esc(what)
      }</title></rect>`,
      `<path class="mark" d="M${f1(x)} ${y + 3}l5 ${rowH / 2 - 3}l-5 ${rowH / 2 - 3}l-5 -${
        rowH / 2 - 3
      }z" fill="${esc(o.color)}"><title>${esc(what)}</title></path>`,
    );
  });
  parts.push(
    `<line class="axis" x1="${f.l}" x2="${f.l + f.w}" y1="${f.t + f.h}" y2="${f.t + f.h}"/>`,
    `<text class="axis-label" x="${f.l + f.w / 2}" y="${
      height - 8
    }" text-anchor="middle">step</text>`,
  );
  return figure(
    { title: o.title, note: o.note, wide: o.wide, kind: "timeline" },
    `<div class="wrap"><svg class="plot" viewBox="0 0 ${vw} ${height}" role="img" aria-label="${
      esc(o.title)
    }">
${parts.join("\n")}
</svg></div>`,
  );
}
