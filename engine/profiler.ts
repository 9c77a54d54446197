/**
 * Kernel profiler: per-kernel calls, time, GFLOP/s and GB/s for any block of
 * code. GPU timestamp queries are used where the adapter offers
 * `timestamp-query` (one compute pass per dispatch, timed at its start and
 * end); otherwise each dispatch is submitted alone and timed on the CPU by the
 * completion of the queue. That fallback is coarse: completions are noticed
 * when the runtime polls the device, so several may land in one poll and the
 * time is then split unevenly between kernels; trust its totals over its split.
 *
 * @module
 */

import { gpu } from "./device.ts";
import { type DispatchObserver, flushErrors, setDispatchObserver } from "./dispatch.ts";

/** One kernel's totals. */
export interface KernelStats {
  /** Kernel name. */
  name: string;
  /** The phase it was dispatched in (see {@link profilePhase}); "" when none was set. */
  phase: string;
  /** Dispatches. */
  calls: number;
  /** Total time, milliseconds. */
  totalMs: number;
  /** Floating-point operations (as the op declared them). */
  flops: number;
  /** Bytes moved (as the op declared them). */
  bytes: number;
}

/** The result of {@link profile}. */
export interface ProfileReport {
  /** How times were measured. */
  timing: "gpu-timestamps" | "cpu-queue";
  /** Wall time of the whole block, milliseconds. */
  wallMs: number;
  /** Per-kernel totals, most time first. */
  kernels: KernelStats[];
}

const MAX_QUERIES = 512;

class Recorder implements DispatchObserver {
  readonly syncEach: boolean;
  stats = new Map<string, KernelStats>();
  phase = "";
  #names: string[] = [];
  #phases: string[] = [];
  #querySet: GPUQuerySet | null = null;
  #pending: Promise<void>[] = [];
  #lastDone = 0;

  constructor(readonly timestamps: boolean) {
    this.syncEach = !timestamps;
  }

  #entry(name: string, phase: string): KernelStats {
    const key = `${phase}\u0000${name}`;
    let e = this.stats.get(key);
    if (!e) this.stats.set(key, e = { name, phase, calls: 0, totalMs: 0, flops: 0, bytes: 0 });
    return e;
  }

  onDispatch(
    name: string,
    flops: number,
    bytes: number,
  ): GPUComputePassTimestampWrites | undefined {
    const e = this.#entry(name, this.phase);
    e.calls++;
    e.flops += flops;
    e.bytes += bytes;
    this.#names.push(name);
    this.#phases.push(this.phase);
    if (!this.timestamps) return undefined;
    this.#querySet ??= gpu().device.createQuerySet({ type: "timestamp", count: MAX_QUERIES });
    const i = this.#names.length - 1;
    if (2 * i + 1 >= MAX_QUERIES) return undefined;
    return {
      querySet: this.#querySet,
      beginningOfPassWriteIndex: 2 * i,
      endOfPassWriteIndex: 2 * i + 1,
    };
  }

  beforeSubmit(encoder: GPUCommandEncoder): void {
    if (!this.timestamps || !this.#querySet || this.#names.length === 0) return;
    const n = Math.min(this.#names.length, MAX_QUERIES / 2);
    const { device } = gpu();
    const resolve = device.createBuffer({
      size: 16 * n,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const read = device.createBuffer({
      size: 16 * n,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    encoder.resolveQuerySet(this.#querySet, 0, 2 * n, resolve, 0);
    encoder.copyBufferToBuffer(resolve, 0, read, 0, 16 * n);
    this.#toRead = {
      read,
      resolve,
      names: this.#names.slice(0, n),
      phases: this.#phases.slice(0, n),
    };
    // A new query set per batch: the previous one may still be resolving.
    this.#querySet = null;
  }

  #toRead: { read: GPUBuffer; resolve: GPUBuffer; names: string[]; phases: string[] } | null = null;

  #readTimestamps(): void {
    if (!this.#toRead) return;
    const { read, resolve, names, phases } = this.#toRead;
    this.#toRead = null;
    this.#pending.push(
      read.mapAsync(GPUMapMode.READ).then(() => {
        const t = new BigUint64Array(read.getMappedRange());
        for (let i = 0; i < names.length; i++) {
          const ns = Number(t[2 * i + 1] - t[2 * i]);
          // Some drivers report 0 or wrapped values for passes they merged; skip those.
          if (ns > 0 && ns < 1e11) this.#entry(names[i], phases[i]).totalMs += ns / 1e6;
        }
        read.unmap();
        read.destroy();
        resolve.destroy();
      }),
    );
  }

  afterSubmit(): void {
    this.#readTimestamps();
    const names = this.#names, phases = this.#phases;
    this.#names = [];
    this.#phases = [];
    if (this.timestamps || names.length === 0) return;
    const start = performance.now();
    this.#pending.push(
      gpu().device.queue.onSubmittedWorkDone().then(() => {
        const now = performance.now();
        // The queue runs in order: this batch ran between the previous batch's
        // completion and now (or its own submission, if the queue was idle).
        const ms = now - Math.max(start, this.#lastDone);
        this.#lastDone = now;
        names.forEach((n, i) => this.#entry(n, phases[i]).totalMs += ms / names.length);
      }),
    );
  }

  async finish(): Promise<void> {
    await Promise.all(this.#pending);
  }
}

let recording: Recorder | null = null;

/**
 * Labels the kernels dispatched from now on, inside {@link profile}, as
 * belonging to `phase` (e.g. "forward", "backward", "optimizer"); a no-op
 * outside a profile. Dispatches are labelled when they are recorded, so the
 * label follows the code that issued them, not the time the GPU ran them.
 *
 * @example
 * ```ts
 * import { matmul, randn } from "../mod.ts";
 * import { profile, profilePhase } from "./profiler.ts";
 * const a = randn([32, 32]);
 * const { report } = await profile(() => {
 *   profilePhase("first");
 *   matmul(a, a).dispose();
 * });
 * console.log(report.kernels[0].phase); // "first"
 * ```
 */
export function profilePhase(phase: string): void {
  if (recording) recording.phase = phase;
}

/**
 * Runs `fn` and reports the time of every kernel it dispatched.
 *
 * @example
 * ```ts
 * import { matmul, randn } from "../mod.ts";
 * import { formatProfile, profile } from "./profiler.ts";
 * const a = randn([64, 64]);
 * const { report } = await profile(() => matmul(a, a).dispose());
 * console.log(formatProfile(report));
 * ```
 */
export async function profile<T>(
  fn: () => T | Promise<T>,
  opts: { timestamps?: boolean } = {},
): Promise<{ result: T; report: ProfileReport }> {
  const timestamps = (opts.timestamps ?? true) && gpu().timestamps;
  await flushErrors();
  const rec = new Recorder(timestamps);
  setDispatchObserver(rec);
  recording = rec;
  const t0 = performance.now();
  let result: T;
  try {
    result = await fn();
    await flushErrors();
  } finally {
    setDispatchObserver(null);
    recording = null;
  }
  const wallMs = performance.now() - t0;
  await rec.finish();
  const kernels = [...rec.stats.values()].sort((a, b) => b.totalMs - a.totalMs);
  return {
    result,
    report: { timing: timestamps ? "gpu-timestamps" : "cpu-queue", wallMs, kernels },
  };
}

/**
 * Formats a report as a table: name, calls, total and mean time, GFLOP/s, GB/s.
 *
 * @example
 * ```ts ignore
 * console.log(formatProfile(report));
 * ```
 */
export function formatProfile(r: ProfileReport): string {
  const rows = [["kernel", "calls", "total ms", "mean ms", "GFLOP/s", "GB/s"]];
  for (const k of r.kernels) {
    rows.push([
      k.name,
      String(k.calls),
      k.totalMs.toFixed(3),
      (k.totalMs / k.calls).toFixed(3),
      rate(k.flops, k.totalMs),
      rate(k.bytes, k.totalMs),
    ]);
  }
  return [...table(rows, 1), `(${r.timing}; wall ${r.wallMs.toFixed(1)} ms)`].join("\n");
}

/** Billions of `x` per second over `ms`, or "-" where there is nothing to divide. */
const rate = (x: number, ms: number) => (x && ms > 0 ? (x / (ms / 1000) / 1e9).toFixed(2) : "-");

/** Aligned text rows: the first `left` columns left-aligned, a rule under the header. */
function table(rows: string[][], left: number): string[] {
  const w = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const line = (row: string[]) =>
    row.map((v, c) => (c < left ? v.padEnd(w[c]) : v.padStart(w[c]))).join("  ");
  return [line(rows[0]), w.map((x) => "-".repeat(x)).join("  "), ...rows.slice(1).map(line)];
}

/**
 * Formats a report whose kernels carry phases (see {@link profilePhase}) as
 * one table grouped by phase: per kernel its calls, milliseconds and share of
 * the kernels' total, GFLOP/s and GB/s, then each phase's subtotal. `per`
 * divides counts and times (e.g. the number of steps profiled).
 *
 * @example
 * ```ts ignore
 * console.log(formatPhases(report, 3));
 * ```
 */
export function formatPhases(r: ProfileReport, per = 1): string {
  const total = r.kernels.reduce((a, k) => a + k.totalMs, 0);
  const phases = [...new Set(r.kernels.map((k) => k.phase))];
  const rows = [["phase", "kernel", "calls", "ms", "share", "GFLOP/s", "GB/s"]];
  const row = (phase: string, name: string, ks: KernelStats[]) => {
    const ms = ks.reduce((a, k) => a + k.totalMs, 0);
    rows.push([
      phase,
      name,
      String(ks.reduce((a, k) => a + k.calls, 0) / per),
      (ms / per).toFixed(2),
      total > 0 ? `${(100 * ms / total).toFixed(1)}%` : "-",
      rate(ks.reduce((a, k) => a + k.flops, 0), ms),
      rate(ks.reduce((a, k) => a + k.bytes, 0), ms),
    ]);
  };
  for (const phase of phases) {
    const ks = r.kernels.filter((k) => k.phase === phase);
    for (const k of ks) row(phase || "-", k.name, [k]);
    row(phase || "-", "(all)", ks);
  }
  row("all", "(all)", r.kernels);
  // A blank line after each phase's subtotal.
  return table(rows, 2).flatMap((l, i) => (rows[i - 1]?.[1] === "(all)" ? [l, ""] : [l]))
    .join("\n");
}
