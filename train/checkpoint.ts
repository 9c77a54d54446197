/**
 * Training checkpoints that survive crashes.
 *
 * A checkpoint is a directory `ckpt-<step>/` inside the run directory with
 * `model.safetensors`, `optimizer.safetensors` and `state.json` (epoch, step,
 * data order, RNG, optimizer counters, freezing state, log length). It is
 * written under a temporary name, every file fsynced, then renamed into place;
 * only then does `LATEST` (itself replaced by an atomic rename) point at it,
 * and older checkpoints are removed. A kill at any moment leaves either the
 * previous checkpoint or the new one as `LATEST`, never a partial one.
 *
 * @module
 */

import { loadSafetensors, saveSafetensors, type Tensor } from "../mod.ts";
import type { OptimizerStateDict } from "../engine/optim/optimizer.ts";

/** Everything besides tensors that a resumed run needs. */
export interface TrainState {
  /** Epochs fully done. */
  epoch: number;
  /** Optimisation steps done (global). */
  step: number;
  /** Data loader position (see BatchLoader.state()). */
  loader: { epoch: number; position: number; seed: number };
  /** GPU generator state. */
  rng: { seed: number; offset: number };
  /** Optimizer counters and learning rates (its buffers live in optimizer.safetensors). */
  optimizer: { step: number; paramSteps: Record<string, number>; lr: number[] };
  /** Freezing controller state (names of frozen modules, in order). */
  frozen: string[];
  /** Lines of log.jsonl that belong to the run up to this checkpoint. */
  logLines: number;
  /** Per-epoch results so far. */
  history: unknown[];
}

/** A loaded checkpoint. */
export interface Checkpoint {
  /** Its directory. */
  dir: string;
  /** Model parameters and buffers. */
  model: Record<string, Tensor>;
  /** Optimizer state. */
  optimizer: OptimizerStateDict;
  /** The rest. */
  state: TrainState;
}

/**
 * Crash tests set FROST_CHECKPOINT_PAUSE_MS to hold a checkpoint write open
 * half-way, so that a SIGKILL lands inside it deterministically.
 */
async function crashTestPause(): Promise<void> {
  let ms = 0;
  try {
    ms = Number(Deno.env.get("FROST_CHECKPOINT_PAUSE_MS") ?? 0);
  } catch { /* no env permission: no pause */ }
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

async function syncFile(path: string): Promise<void> {
  const f = await Deno.open(path, { read: true });
  try {
    await f.sync();
  } finally {
    f.close();
  }
}

/** Makes renames inside `dir` durable (best effort: not every platform can sync a directory). */
async function syncDir(dir: string): Promise<void> {
  await syncFile(dir).catch(() => {});
}

async function writeTextAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(tmp, text);
  await syncFile(tmp);
  await Deno.rename(tmp, path);
}

/**
 * Writes a checkpoint for `state.step` into `runDir` and points `LATEST` at it.
 *
 * @example
 * ```ts ignore
 * await saveCheckpoint("runs/a", model.stateDict(), opt.stateDict(), state);
 * ```
 */
export async function saveCheckpoint(
  runDir: string,
  model: Record<string, Tensor>,
  optimizer: OptimizerStateDict,
  state: TrainState,
): Promise<string> {
  const name = `ckpt-${String(state.step).padStart(8, "0")}`;
  const tmp = `${runDir}/${name}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.mkdir(tmp, { recursive: true });
  try {
    await saveSafetensors(`${tmp}/model.safetensors`, model);
    await crashTestPause();
    await saveSafetensors(`${tmp}/optimizer.safetensors`, optimizer.buffers);
    await writeTextAtomic(`${tmp}/state.json`, JSON.stringify(state));
    await syncDir(tmp);
    // A checkpoint of the same step (a re-run after resume) is set aside, not deleted, until
    // LATEST names the new one: a kill in between still leaves a complete checkpoint.
    const old = `${runDir}/${name}.old-${crypto.randomUUID().slice(0, 8)}`;
    const hadOld = await Deno.rename(`${runDir}/${name}`, old).then(() => true, () => false);
    await Deno.rename(tmp, `${runDir}/${name}`);
    await syncDir(runDir);
    await writeTextAtomic(`${runDir}/LATEST`, name + "\n");
    await syncDir(runDir);
    if (hadOld) await Deno.remove(old, { recursive: true }).catch(() => {});
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
  // Older checkpoints and leftovers of interrupted writes go once LATEST is safe.
  for await (const e of Deno.readDir(runDir)) {
    if (e.isDirectory && e.name.startsWith("ckpt-") && e.name !== name) {
      await Deno.remove(`${runDir}/${e.name}`, { recursive: true }).catch(() => {});
    }
  }
  return `${runDir}/${name}`;
}

/**
 * Loads the checkpoint `LATEST` points at, or returns null when there is none.
 * A `LATEST` naming a missing or malformed checkpoint is an error that says so.
 *
 * @example
 * ```ts ignore
 * const ckpt = await loadCheckpoint("runs/a");
 * ```
 */
export async function loadCheckpoint(runDir: string): Promise<Checkpoint | null> {
  let name: string;
  try {
    name = (await Deno.readTextFile(`${runDir}/LATEST`)).trim();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  if (!/^ckpt-\d+$/.test(name)) throw new Error(`${runDir}/LATEST: unexpected content "${name}"`);
  let dir = `${runDir}/${name}`;
  if (!(await Deno.stat(dir).then(() => true, () => false))) {
    // Killed while a same-step checkpoint replaced it: the previous one was set aside.
    for await (const e of Deno.readDir(runDir)) {
      if (e.isDirectory && e.name.startsWith(`${name}.old-`)) dir = `${runDir}/${e.name}`;
    }
  }
  let state: TrainState;
  try {
    state = JSON.parse(await Deno.readTextFile(`${dir}/state.json`));
  } catch (e) {
    throw new Error(`checkpoint ${dir}: cannot read state.json (${(e as Error).message})`);
  }
  for (const k of ["epoch", "step", "logLines"] as const) {
    if (!Number.isInteger(state[k]) || state[k] < 0) {
      throw new Error(`checkpoint ${dir}/state.json: "${k}" is not a non-negative integer`);
    }
  }
  const model = await loadSafetensors(`${dir}/model.safetensors`);
  const buffers = await loadSafetensors(`${dir}/optimizer.safetensors`);
  return { dir, model, optimizer: { ...state.optimizer, buffers }, state };
}

/** Keeps the first `n` lines of a JSON-lines log (atomically), dropping what a crash left after them. */
export async function truncateLog(path: string, n: number): Promise<void> {
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  const lines = text.split("\n").filter((l) => l.length > 0).slice(0, n);
  await writeTextAtomic(path, lines.map((l) => l + "\n").join(""));
}
