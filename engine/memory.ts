/**
 * GPU memory: a pool of reusable buffers, reference-counted storages, scopes
 * for deterministic release, and live/peak accounting by category.
 *
 * A buffer released while the current command batch is still being recorded
 * may be handed out again for kernel output (the GPU runs the batch in order),
 * but not as the target of `queue.writeBuffer`, which would land before the
 * batch's earlier commands run. The pool tracks which batch freed each buffer.
 *
 * @module
 */

import { gpu, onNewDevice } from "./device.ts";

/** What a block of GPU memory holds, for {@link memoryStats}. */
export type MemoryCategory =
  | "parameter"
  | "gradient"
  | "optimizer"
  | "activation"
  | "temporary";

const CATEGORIES: MemoryCategory[] = [
  "parameter",
  "gradient",
  "optimizer",
  "activation",
  "temporary",
];

/** A snapshot of the engine's GPU memory use, in bytes. */
export interface MemoryStats {
  /** Bytes held by live tensors (rounded up to the pool's size classes). */
  liveBytes: number;
  /** The most `liveBytes` reached since start or the last {@link resetPeakMemory}. */
  peakBytes: number;
  /** Bytes held by freed buffers kept for reuse. */
  pooledBytes: number;
  /** Bytes held by kernels' scratch caches (matmul's packed-operand textures). */
  scratchBytes: number;
  /** Live bytes by what they hold. */
  byCategory: Record<MemoryCategory, number>;
  /** Number of live storages. */
  liveBuffers: number;
}

/**
 * The pool's size class of a request of `bytes`: the bytes its buffer has.
 * Multiples of 256 bytes up to 64 KiB, then quarter powers of two.
 *
 * @example
 * ```ts
 * import { sizeClass } from "./memory.ts";
 * console.log(sizeClass(4 * 1000), sizeClass(70000)); // 4096 81920
 * ```
 */
export function sizeClass(bytes: number): number {
  const b = Math.max(16, bytes);
  if (b <= 65536) return Math.ceil(b / 256) * 256;
  const p = 2 ** Math.floor(Math.log2(b));
  const step = p / 4;
  return Math.ceil(b / step) * step;
}

interface PooledBuffer {
  buffer: GPUBuffer;
  freedInBatch: number;
}

const free = new Map<number, PooledBuffer[]>();
let pooledBytes = 0;
let liveBytes = 0;
let peakBytes = 0;
let liveBuffers = 0;
const byCategory: Record<MemoryCategory, number> = {
  parameter: 0,
  gradient: 0,
  optimizer: 0,
  activation: 0,
  temporary: 0,
};
let batchId = 0;

const doomed: { destroy(): void }[] = [];

/**
 * Destroys a GPU resource once the batch being recorded has been submitted.
 * Destroying a buffer or texture that an unsubmitted command still uses makes
 * the submit fail; after the submit, WebGPU keeps it alive until the GPU is
 * done with it. So every eviction goes through here.
 */
export function destroyAfterSubmit(r: { destroy(): void }): void {
  doomed.push(r);
}

/** Called by the dispatcher when a command batch is submitted. */
export function onBatchSubmitted(): void {
  batchId++;
  for (const r of doomed.splice(0)) r.destroy();
}

/** Id of the command batch now being recorded. */
export function currentBatch(): number {
  return batchId;
}

// A safety net only: storages a user forgot to dispose are returned to the pool
// when their tensor is collected. Deterministic release is dispose()/scopes.
const registry = new FinalizationRegistry<Storage>((s) => {
  if (!s.released) s.release();
});

/**
 * A reference-counted GPU buffer. Tensors that are views of each other share
 * one storage; the buffer returns to the pool when the last reference goes.
 */
export class Storage {
  /** The GPU buffer (its size is the pool's size class, at least `bytes`). */
  readonly buffer: GPUBuffer;
  /** The device that made it: a storage does not outlive a lost device. */
  readonly device: GPUDevice;
  /** Bytes requested. */
  readonly bytes: number;
  /** Bytes actually held (the size class). */
  readonly capacity: number;
  /** References held by tensors and the autograd tape. */
  refs = 1;
  /** Whether the buffer has gone back to the pool. */
  released = false;
  /** How many tape nodes hold this storage as a saved tensor. */
  savedBy = 0;
  #category: MemoryCategory;

  /**
   * Takes a buffer of at least `bytes` from the pool (or the driver).
   * `forWrite`: the buffer will be filled with `queue.writeBuffer`, so it must
   * not be one freed by the batch being recorded (see the module comment).
   */
  constructor(bytes: number, category: MemoryCategory, forWrite = false) {
    this.bytes = bytes;
    this.capacity = sizeClass(bytes);
    this.#category = category;
    this.device = gpu().device;
    this.buffer = acquire(this.capacity, forWrite);
    liveBytes += this.capacity;
    liveBuffers++;
    byCategory[category] += this.capacity;
    if (liveBytes > peakBytes) peakBytes = liveBytes;
  }

  /** What this storage holds. */
  get category(): MemoryCategory {
    return this.#category;
  }

  /** Re-labels the storage (e.g. a tensor becomes a parameter or a saved activation). */
  set category(c: MemoryCategory) {
    if (this.released) return;
    byCategory[this.#category] -= this.capacity;
    this.#category = c;
    byCategory[c] += this.capacity;
  }

  /** Adds a reference. */
  retain(): this {
    if (this.released) throw new Error("Storage.retain(): storage already released");
    this.refs++;
    return this;
  }

  /** Drops a reference; the buffer returns to the pool at zero. */
  release(): void {
    if (this.released) return;
    if (--this.refs > 0) return;
    this.released = true;
    liveBytes -= this.capacity;
    liveBuffers--;
    byCategory[this.#category] -= this.capacity;
    if (this.device !== currentDevice()) return; // its lost device took the memory with it
    let list = free.get(this.capacity);
    if (!list) free.set(this.capacity, list = []);
    list.push({ buffer: this.buffer, freedInBatch: batchId });
    pooledBytes += this.capacity;
  }

  /** Registers `owner` so that the storage is released if it is collected undisposed. */
  watch(owner: object, token: object): void {
    registry.register(owner, this, token);
  }

  /** Undoes {@link watch}. */
  unwatch(token: object): void {
    registry.unregister(token);
  }
}

/** The device now in use, or null when none is (lost and not yet replaced). */
function currentDevice(): GPUDevice | null {
  try {
    return gpu().device;
  } catch {
    return null;
  }
}

// The pool and pending destructions belong to a lost device: start afresh with the new one.
onNewDevice(() => {
  free.clear();
  pooledBytes = 0;
  doomed.length = 0;
  for (const c of scratchCaches) c.release();
});

function acquire(capacity: number, forWrite: boolean): GPUBuffer {
  const list = free.get(capacity);
  if (list && list.length > 0) {
    for (let i = list.length - 1; i >= 0; i--) {
      const e = list[i];
      if (forWrite && e.freedInBatch === batchId) continue;
      list.splice(i, 1);
      pooledBytes -= capacity;
      return e.buffer;
    }
  }
  const { device, limits } = gpu();
  if (capacity > limits.maxBufferSize) {
    throw new RangeError(
      `cannot allocate ${capacity} bytes: the adapter's maxBufferSize is ${limits.maxBufferSize}`,
    );
  }
  // (Flags read here, not at module load: touching WebGPU globals starts the driver.)
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  return device.createBuffer({ size: capacity, usage });
}

/**
 * Counts `bytes` of GPU memory held outside storages (a packed texture a tape
 * node keeps for backward) as live bytes of `category`, so that
 * {@link memoryStats}' live and peak bytes include it. Returns the function
 * that stops counting them (call it once).
 *
 * @example
 * ```ts
 * import { holdExternal, memoryStats } from "./memory.ts";
 * const before = memoryStats().liveBytes;
 * const done = holdExternal(4096, "activation");
 * console.log(memoryStats().liveBytes - before); // 4096
 * done();
 * ```
 */
export function holdExternal(bytes: number, category: MemoryCategory): () => void {
  liveBytes += bytes;
  byCategory[category] += bytes;
  if (liveBytes > peakBytes) peakBytes = liveBytes;
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    liveBytes -= bytes;
    byCategory[category] -= bytes;
  };
}

/** GPU memory a kernel family keeps for reuse outside the tensor pool (e.g. packed textures). */
export interface ScratchCache {
  /** Bytes held now. */
  bytes(): number;
  /** Frees what no command being recorded still needs. */
  release(): void;
}

const scratchCaches: ScratchCache[] = [];

/** Registers a scratch cache so that memoryStats() counts it and emptyCache() frees it. */
export function registerScratch(c: ScratchCache): void {
  scratchCaches.push(c);
}

/**
 * Destroys every pooled (free) buffer and scratch cache, returning the memory
 * to the driver.
 *
 * @example
 * ```ts
 * import { emptyCache, memoryStats } from "./memory.ts";
 * emptyCache();
 * console.log(memoryStats().pooledBytes); // 0
 * ```
 */
export function emptyCache(): void {
  for (const list of free.values()) {
    for (const e of list) {
      if (e.freedInBatch === batchId) destroyAfterSubmit(e.buffer);
      else e.buffer.destroy();
    }
  }
  free.clear();
  pooledBytes = 0;
  for (const c of scratchCaches) c.release();
}

/**
 * The engine's GPU memory use right now.
 *
 * @example
 * ```ts
 * import { memoryStats } from "./memory.ts";
 * console.log(memoryStats().liveBytes);
 * ```
 */
export function memoryStats(): MemoryStats {
  const cat = {} as Record<MemoryCategory, number>;
  for (const c of CATEGORIES) cat[c] = byCategory[c];
  const scratchBytes = scratchCaches.reduce((n, c) => n + c.bytes(), 0);
  return { liveBytes, peakBytes, pooledBytes, scratchBytes, byCategory: cat, liveBuffers };
}

/**
 * Restarts peak tracking from the current live bytes.
 *
 * @example
 * ```ts
 * import { memoryStats, resetPeakMemory } from "./memory.ts";
 * resetPeakMemory();
 * console.log(memoryStats().peakBytes === memoryStats().liveBytes);
 * ```
 */
export function resetPeakMemory(): void {
  peakBytes = liveBytes;
}
