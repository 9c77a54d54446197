/**
 * A terminal progress bar: steps, loss, throughput and ETA on one line that
 * redraws in place on a terminal, and plain periodic lines elsewhere (CI logs).
 *
 * @module
 */

/** What the bar shows after each update. */
export interface ProgressFields {
  /** Latest loss (shown when known). */
  loss?: number;
  /** Extra `key=value` text. */
  extra?: string;
}

/** Formats seconds as `1h02m`, `3m05s` or `12.3s`. */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s >= 3600) {
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  }
  if (s >= 60) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${s.toFixed(1)}s`;
}

/**
 * Progress over a known number of steps.
 *
 * @example
 * ```ts
 * import { ProgressBar } from "./progress.ts";
 * const bar = new ProgressBar("epoch 1", 100, 64);
 * bar.update(50, { loss: 0.5 });
 * bar.done();
 * ```
 */
export class ProgressBar {
  #label: string;
  #total: number;
  #samplesPerStep: number;
  #start = performance.now();
  #lastDraw = 0;
  #tty: boolean;
  #lastPlain = -1;
  #out: (s: string) => void;

  constructor(label: string, total: number, samplesPerStep: number, out?: (s: string) => void) {
    this.#label = label;
    this.#total = total;
    this.#samplesPerStep = samplesPerStep;
    let tty = false;
    try {
      tty = Deno.stderr.isTerminal();
    } catch { /* no permission to ask: assume a log */ }
    this.#tty = tty && !out;
    const enc = new TextEncoder();
    this.#out = out ?? ((s) => Deno.stderr.writeSync(enc.encode(s)));
  }

  /** Shows progress at `step` (1-based count of completed steps). */
  update(step: number, f: ProgressFields = {}): void {
    const now = performance.now();
    const elapsed = (now - this.#start) / 1000;
    const rate = step / Math.max(elapsed, 1e-9);
    const eta = (this.#total - step) / Math.max(rate, 1e-9);
    const width = 24;
    const filled = Math.round((width * step) / Math.max(this.#total, 1));
    const bar = "█".repeat(filled) + "░".repeat(width - filled);
    const loss = f.loss === undefined ? "" : ` loss ${f.loss.toFixed(4)}`;
    const line = `${this.#label} ${bar} ${step}/${this.#total}${loss} ${
      (rate * this.#samplesPerStep).toFixed(0)
    } samples/s ETA ${formatDuration(eta)}${f.extra ? " " + f.extra : ""}`;
    if (this.#tty) {
      if (now - this.#lastDraw < 100 && step < this.#total) return;
      this.#lastDraw = now;
      this.#out(`\r\x1b[2K${line}`);
    } else {
      // In logs, one line per 10% keeps them readable.
      const decile = Math.floor((10 * step) / Math.max(this.#total, 1));
      if (decile === this.#lastPlain) return;
      this.#lastPlain = decile;
      this.#out(line + "\n");
    }
  }

  /** Ends the bar (moves to a fresh line on a terminal). */
  done(): void {
    if (this.#tty) this.#out("\n");
  }
}
