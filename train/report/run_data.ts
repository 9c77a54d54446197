/**
 * Reading a training run directory (`config.json` + `log.jsonl`, as written
 * by `deno task train`) into typed records, and the figures a report derives
 * from them (final accuracy, total time, peak memory).
 *
 * The log is read leniently where a killed run leaves it incomplete (a final
 * line without its newline is dropped with a warning) and strictly elsewhere:
 * a malformed line is an error naming the file and line number, because a
 * report silently drawn from half a log would mislead.
 *
 * @module
 */

import { basename, join } from "node:path";

/** `config.json` of a run. Fields the trainer did not write are `undefined`. */
export interface RunConfig {
  /** Model name, e.g. `"mlp"`. */
  model?: string;
  /** Dataset name, e.g. `"fashion-mnist"`. */
  dataset?: string;
  /** Where the dataset was loaded from. */
  source?: string;
  /** Every command-line flag of the run. */
  args: Record<string, unknown>;
  /** Adapter description. */
  device?: string;
  /** ISO date the run started. */
  started?: string;
  /** Number of trainable parameters. */
  parameters?: number;
}

/** A `{"type":"step"}` record, written every logging interval. `null`: not logged or not finite. */
export interface StepRecord {
  /** Global step (1-based across epochs). */
  step: number;
  /** 1-based epoch. */
  epoch: number | null;
  /** Mean training loss over the logging window. */
  loss: number | null;
  /** Learning rate. */
  lr: number | null;
  /** Training throughput. */
  samplesPerSecond: number | null;
  /** Seconds since training started. */
  elapsed: number | null;
  /** GPU bytes allocated at the step. */
  liveBytes: number | null;
  /** Peak GPU bytes so far in the epoch. */
  peakBytes: number | null;
  /** Layers frozen at the step. */
  frozenLayers: number | null;
}

/** A `{"type":"epoch"}` record, written after each epoch's evaluation. */
export interface EpochRecord {
  /** 1-based epoch. */
  epoch: number;
  /** Mean training loss over the epoch. */
  trainLoss: number | null;
  /** Held-out accuracy in [0, 1]. */
  testAccuracy: number | null;
  /** Wall time of the epoch's training steps. */
  seconds: number | null;
  /** Training throughput over the epoch. */
  samplesPerSecond: number | null;
  /** Peak GPU bytes during the epoch. */
  peakBytes: number | null;
  /** Layers frozen at the end of the epoch. */
  frozenLayers: number | null;
}

/** A `{"type":"freeze"}` record: a freezing controller froze a layer. */
export interface FreezeRecord {
  /** Global step at which the layer froze. */
  step: number;
  /** Epoch of that step. */
  epoch: number | null;
  /** Layer name. */
  layer: string;
  /** Position of the layer in the model (orders the timeline), if logged. */
  index: number | null;
  /** Freezing method, e.g. `"smartfrz"`. */
  method: string | null;
}

/** The final `{"type":"summary"}` record. */
export interface SummaryRecord {
  /** Held-out accuracy at the end. */
  testAccuracy: number | null;
  /** Total wall time, seconds. */
  seconds: number | null;
  /** Epochs completed. */
  epochs: number | null;
  /** Why the run ended: `"completed"`, `"nan"`, `"interrupted"`, ... */
  stopped: string | null;
}

/** The records of one `log.jsonl`, by type, in file order. */
export interface RunLog {
  /** Step records. */
  steps: StepRecord[];
  /** Epoch records. */
  epochs: EpochRecord[];
  /** Freeze events. */
  freezes: FreezeRecord[];
  /** The summary, if the run got that far. */
  summary: SummaryRecord | null;
  /** Things a reader should know (e.g. a dropped partial last line). */
  warnings: string[];
}

/** A whole run directory. */
export interface RunData extends RunLog {
  /** Display name: the directory's base name. */
  name: string;
  /** The directory as given. */
  dir: string;
  /** Its `config.json`. */
  config: RunConfig;
}

type Json = Record<string, unknown>;

function field(where: string, rec: Json, key: string, kind: "number" | "string"): unknown {
  const v = rec[key];
  if (v === undefined || v === null) return null;
  if (
    (kind === "number" && typeof v !== "number") || (kind === "string" && typeof v !== "string")
  ) {
    throw new Error(`${where}: field "${key}" should be a ${kind}, got ${JSON.stringify(v)}`);
  }
  return v;
}

const num = (where: string, rec: Json, key: string) =>
  field(where, rec, key, "number") as number | null;
const str = (where: string, rec: Json, key: string) =>
  field(where, rec, key, "string") as string | null;

function required<T>(where: string, key: string, v: T | null): T {
  if (v === null) throw new Error(`${where}: missing field "${key}"`);
  return v;
}

/**
 * Parses the text of a `log.jsonl`. `file` names it in error messages.
 * Blank lines and records of unknown types are skipped (newer trainers may
 * log more); a final line without a newline that does not parse is dropped
 * with a warning (the run was killed while writing it).
 *
 * @example
 * ```ts
 * import { parseLog } from "./run_data.ts";
 * const log = parseLog('{"type":"step","step":50,"epoch":1,"loss":0.7}\n{"type":"ste', "log.jsonl");
 * console.log(log.steps[0].loss, log.warnings.length); // 0.7 1
 * ```
 */
export function parseLog(text: string, file: string): RunLog {
  const out: RunLog = { steps: [], epochs: [], freezes: [], summary: null, warnings: [] };
  const lines = text.split("\n");
  // After the last "\n" comes either "" (a complete file) or a line the run did not finish.
  const lastComplete = lines.length - 2;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    const where = `${file}:${i + 1}`;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      if (i > lastComplete) {
        out.warnings.push(`${where}: ignored an unfinished last line (the run was interrupted)`);
        break;
      }
      throw new Error(`${where}: malformed JSON (${(e as Error).message})`);
    }
    if (typeof rec !== "object" || rec === null || Array.isArray(rec)) {
      throw new Error(`${where}: expected a JSON object, got ${line.slice(0, 40)}`);
    }
    const r = rec as Json;
    const type = r.type;
    if (typeof type !== "string") throw new Error(`${where}: record has no string "type"`);
    switch (type) {
      case "step":
        out.steps.push({
          step: required(where, "step", num(where, r, "step")),
          epoch: num(where, r, "epoch"),
          loss: finite(num(where, r, "loss")),
          lr: finite(num(where, r, "lr")),
          samplesPerSecond: finite(num(where, r, "samplesPerSecond")),
          elapsed: finite(num(where, r, "elapsed")),
          liveBytes: finite(num(where, r, "liveBytes")),
          peakBytes: finite(num(where, r, "peakBytes")),
          frozenLayers: num(where, r, "frozenLayers"),
        });
        break;
      case "epoch":
        out.epochs.push({
          epoch: required(where, "epoch", num(where, r, "epoch")),
          trainLoss: finite(num(where, r, "trainLoss")),
          testAccuracy: finite(num(where, r, "testAccuracy")),
          seconds: finite(num(where, r, "seconds")),
          samplesPerSecond: finite(num(where, r, "samplesPerSecond")),
          peakBytes: finite(num(where, r, "peakBytes")),
          frozenLayers: num(where, r, "frozenLayers"),
        });
        break;
      case "freeze":
        out.freezes.push({
          step: required(where, "step", num(where, r, "step")),
          epoch: num(where, r, "epoch"),
          layer: required(where, "layer", str(where, r, "layer")),
          index: num(where, r, "index"),
          method: str(where, r, "method"),
        });
        break;
      case "summary":
        out.summary = {
          testAccuracy: finite(num(where, r, "testAccuracy")),
          seconds: finite(num(where, r, "seconds")),
          epochs: num(where, r, "epochs"),
          stopped: str(where, r, "stopped"),
        };
        break;
    }
  }
  return out;
}

function finite(v: number | null): number | null {
  return v !== null && Number.isFinite(v) ? v : null;
}

async function readText(path: string, dir: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`${dir}: not a run directory (${path} not found)`);
    }
    throw e;
  }
}

/**
 * Reads a run directory: `config.json` and `log.jsonl`.
 *
 * @example
 * ```ts
 * import { finalAccuracy, readRun } from "./run_data.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/config.json`, '{"model":"mlp","args":{"lr":0.05}}');
 * await Deno.writeTextFile(`${dir}/log.jsonl`, '{"type":"epoch","epoch":1,"testAccuracy":0.85}\n');
 * const run = await readRun(dir);
 * console.log(run.config.model, finalAccuracy(run)); // mlp 0.85
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readRun(dir: string): Promise<RunData> {
  const configPath = join(dir, "config.json");
  const logPath = join(dir, "log.jsonl");
  const configText = await readText(configPath, dir);
  let raw: unknown;
  try {
    raw = JSON.parse(configText);
  } catch (e) {
    throw new Error(`${configPath}: malformed JSON (${(e as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new Error(`${configPath}: expected a JSON object`);
  }
  const c = raw as Json;
  const args = c.args;
  if (args !== undefined && (typeof args !== "object" || args === null || Array.isArray(args))) {
    throw new Error(`${configPath}: field "args" should be an object`);
  }
  const config: RunConfig = {
    model: str(configPath, c, "model") ?? undefined,
    dataset: str(configPath, c, "dataset") ?? undefined,
    source: str(configPath, c, "source") ?? undefined,
    args: (args ?? {}) as Record<string, unknown>,
    device: str(configPath, c, "device") ?? undefined,
    started: str(configPath, c, "started") ?? undefined,
    parameters: num(configPath, c, "parameters") ?? undefined,
  };
  const log = parseLog(await readText(logPath, dir), logPath);
  const name = basename(dir.replace(/[\\/]+$/, "")) || dir;
  return { name, dir, config, ...log };
}

/** Held-out accuracy at the end: the summary's, else the last epoch's (`null` if none). */
export function finalAccuracy(run: RunLog): number | null {
  if (run.summary?.testAccuracy != null) return run.summary.testAccuracy;
  for (let i = run.epochs.length - 1; i >= 0; i--) {
    if (run.epochs[i].testAccuracy !== null) return run.epochs[i].testAccuracy;
  }
  return null;
}

/**
 * Total wall time in seconds: the summary's, else the sum of epoch times,
 * else the last step's elapsed time (`null` if none).
 */
export function totalSeconds(run: RunLog): number | null {
  if (run.summary?.seconds != null) return run.summary.seconds;
  const timed = run.epochs.filter((e) => e.seconds !== null);
  if (timed.length > 0) return timed.reduce((s, e) => s + e.seconds!, 0);
  for (let i = run.steps.length - 1; i >= 0; i--) {
    if (run.steps[i].elapsed !== null) return run.steps[i].elapsed;
  }
  return null;
}

/** Largest peak GPU memory of any step or epoch record (`null` if none logged). */
export function peakMemory(run: RunLog): number | null {
  let peak: number | null = null;
  for (const r of [...run.steps, ...run.epochs]) {
    for (const v of [r.peakBytes, "liveBytes" in r ? r.liveBytes : null]) {
      if (v !== null && (peak === null || v > peak)) peak = v;
    }
  }
  return peak;
}

/** Last global step logged (by a step or freeze record), 0 if none. */
export function lastStep(run: RunLog): number {
  let s = 0;
  for (const r of run.steps) s = Math.max(s, r.step);
  for (const r of run.freezes) s = Math.max(s, r.step);
  return s;
}

/**
 * Global step at which each epoch ended: the last step record of that epoch
 * (the trainer always logs an epoch's final step).
 */
export function epochEnds(run: RunLog): { epoch: number; step: number }[] {
  const ends = new Map<number, number>();
  for (const r of run.steps) {
    if (r.epoch !== null) ends.set(r.epoch, Math.max(ends.get(r.epoch) ?? 0, r.step));
  }
  return [...ends].map(([epoch, step]) => ({ epoch, step })).sort((a, b) => a.epoch - b.epoch);
}

/**
 * Training seconds since the run started, at each step record (`null` where
 * not logged). A step's `elapsed` may count from the start of training or
 * from the start of its epoch (as the trainer writes it): where it drops at
 * an epoch change, the finished epochs' times are added.
 *
 * @example
 * ```ts
 * import { parseLog, stepTimes } from "./run_data.ts";
 * const log = parseLog([
 *   '{"type":"step","step":1,"epoch":1,"elapsed":4}',
 *   '{"type":"epoch","epoch":1,"seconds":5}',
 *   '{"type":"step","step":2,"epoch":2,"elapsed":3}',
 * ].join("\n"), "log.jsonl");
 * console.log(stepTimes(log)); // [ 4, 8 ]
 * ```
 */
export function stepTimes(run: RunLog): (number | null)[] {
  const epochSeconds = new Map(run.epochs.map((e) => [e.epoch, e.seconds]));
  const out: (number | null)[] = [];
  let offset = 0;
  let prev: StepRecord | null = null;
  for (const s of run.steps) {
    if (s.elapsed === null) {
      out.push(null);
      continue;
    }
    if (prev && s.epoch !== prev.epoch && s.elapsed < prev.elapsed!) {
      offset += (prev.epoch !== null ? epochSeconds.get(prev.epoch) : null) ?? prev.elapsed!;
    }
    out.push(offset + s.elapsed);
    prev = s;
  }
  return out;
}

/** How the run ended: the summary's `stopped`, else `"incomplete"` (no summary: killed or running). */
export function stoppedReason(run: RunLog): string {
  return run.summary?.stopped ?? "incomplete";
}

/** The freezing methods named by the run's freeze events, joined (`""` for a plain run). */
export function freezeMethods(run: RunLog): string {
  return [...new Set(run.freezes.map((f) => f.method ?? "?"))].join(", ");
}
