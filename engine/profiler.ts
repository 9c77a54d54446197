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
  #names: string[] = [];
  #querySet: GPUQuerySet | null = null;
  #pending: Promise<void>[] = [];
  #lastDone = 0;

  constructor(readonly timestamps: boolean) {
    this.syncEach = !timestamps;
  }

  #entry(name: string): KernelStats {
    let e = this.stats.get(name);
    if (!e) this.stats.set(name, e = { name, calls: 0, totalMs: 0, flops: 0, bytes: 0 });
    return e;
  }

  onDispatch(
    name: string,
    flops: number,
    bytes: number,
  ): GPUComputePassTimestampWrites | undefined {
    const e = this.#entry(name);
    e.calls++;
    e.flops += flops;
    e.bytes += bytes;
    this.#names.push(name);
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
    this.#toRead = { read, resolve, names: this.#names.slice(0, n) };
    // A new query set per batch: the previous one may still be resolving.
    this.#querySet = null;
  }

  #toRead: { read: GPUBuffer; resolve: GPUBuffer; names: string[] } | null = null;

  #readTimestamps(): void {
    if (!this.#toRead) return;
    const { read, resolve, names } = this.#toRead;
    this.#toRead = null;
    this.#pending.push(
      read.mapAsync(GPUMapMode.READ).then(() => {
        const t = new BigUint64Array(read.getMappedRange());
        for (let i = 0; i < names.length; i++) {
          const ns = Number(t[2 * i + 1] - t[2 * i]);
          // Some drivers report 0 or wrapped values for passes they merged; skip those.
          if (ns > 0 && ns < 1e11) this.#entry(names[i]).totalMs += ns / 1e6;
        }
        read.unmap();
        read.destroy();
        resolve.destroy();
      }),
    );
  }

  afterSubmit(): void {
    this.#readTimestamps();
    const names = this.#names;
    this.#names = [];
    if (this.timestamps || names.length === 0) return;
    const start = performance.now();
    this.#pending.push(
      gpu().device.queue.onSubmittedWorkDone().then(() => {
        const now = performance.now();
        // The queue runs in order: this batch ran between the previous batch's
        // completion and now (or its own submission, if the queue was idle).
        const ms = now - Math.max(start, this.#lastDone);
        this.#lastDone = now;
        for (const n of names) this.#entry(n).totalMs += ms / names.length;
      }),
    );
  }

  async finish(): Promise<void> {
    await Promise.all(this.#pending);
  }
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
  const t0 = performance.now();
  let result: T;
  try {
    result = await fn();
    await flushErrors();
  } finally {
    setDispatchObserver(null);
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
    const s = k.totalMs / 1000;
    rows.push([
      k.name,
      String(k.calls),
      k.totalMs.toFixed(3),
      (k.totalMs / k.calls).toFixed(3),
      k.flops && s > 0 ? (k.flops / s / 1e9).toFixed(2) : "-",
      k.bytes && s > 0 ? (k.bytes / s / 1e9).toFixed(2) : "-",
    ]);
  }
  const w = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const line = (row: string[]) =>
    row.map((v, c) => (c === 0 ? v.padEnd(w[c]) : v.padStart(w[c]))).join("  ");
  return [
    line(rows[0]),
    w.map((x) => "-".repeat(x)).join("  "),
    ...rows.slice(1).map(line),
    `(${r.timing}; wall ${r.wallMs.toFixed(1)} ms)`,
  ].join("\n");
}
