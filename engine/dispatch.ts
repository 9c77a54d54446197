/**
 * Dispatch: one pipeline cache, command batching, a uniform arena, read-back.
 *
 * Ops record dispatches into one open command encoder; the batch is submitted
 * when a read-back needs it, when {@link sync} is called, or when it grows past
 * {@link MAX_BATCH} dispatches. Every dispatch's uniforms go to one CPU-side
 * arena that is written with a single `writeBuffer` just before the submit, so
 * recording a dispatch costs no queue operation.
 *
 * @module
 */

import { gpu, GpuError, onNewDevice, readEnv, takeUncapturedErrors } from "./device.ts";
import { currentBatch, onBatchSubmitted, type Storage } from "./memory.ts";
import { foldGrid, type KernelProgram } from "../kernels/program.ts";

/** Dispatches recorded before a batch is submitted without being asked. */
export const MAX_BATCH = 256;
/** Bytes of uniforms each dispatch may use (and the arena's slot size). */
export const UNIFORM_SLOT = 256;

interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

const pipelines = new Map<string, CachedPipeline>();
let encoder: GPUCommandEncoder | null = null;
let pass: GPUComputePassEncoder | null = null;
let arena: GPUBuffer | null = null;
let arenaCpu = new Uint8Array(UNIFORM_SLOT * MAX_BATCH);
let arenaUsed = 0;
let batchNames: string[] = [];
const pendingErrors: string[] = [];
const debugSync = readEnv("FROST_DEBUG_SYNC") === "1";
const debugShaders = readEnv("FROST_DEBUG_SHADERS") === "1";

/**
 * Bind groups by pipeline and bound resources. Creating one costs ~10-20 µs
 * of CPU in Deno (measured on the 2-core machine: 19.7 of the 41 µs a small
 * ReLU took to record), while a training step binds the same pooled buffers
 * in the same order every step, so most are found here. Keys name resources
 * by an id per buffer or texture-view object; a destroyed buffer's entries are
 * never looked up again (a new buffer gets a new id) and leave with the next
 * clear, when the cache grows past {@link MAX_BIND_GROUPS}.
 */
const bindGroups = new Map<string, GPUBindGroup>();
const MAX_BIND_GROUPS = 8192;
const resourceIds = new WeakMap<object, number>();
let nextResourceId = 1;
function resourceId(o: object): number {
  let id = resourceIds.get(o);
  if (id === undefined) resourceIds.set(o, id = nextResourceId++);
  return id;
}

// A new device (after a loss) needs its own pipelines, arena and encoder.
onNewDevice(() => {
  bindGroups.clear();
  pipelines.clear();
  encoder = null;
  pass = null;
  arena = null;
  arenaUsed = 0;
  batchNames = [];
  pendingErrors.length = 0;
});

/** Something that wants to hear about every dispatch (the profiler). */
export interface DispatchObserver {
  /** Called as each dispatch is recorded; returns timestamp writes to attach, if any. */
  onDispatch(
    name: string,
    flops: number,
    bytes: number,
  ): GPUComputePassTimestampWrites | undefined;
  /** Called with the encoder just before the batch is finished (to resolve queries). */
  beforeSubmit(encoder: GPUCommandEncoder): void;
  /** Called after submit. */
  afterSubmit(): void;
  /** Submit each dispatch alone (for CPU-side timing when timestamps are unavailable). */
  readonly syncEach: boolean;
}

let observer: DispatchObserver | null = null;
let flopTotal = 0;

/**
 * Floating-point operations of every kernel dispatched so far in this
 * process, as the ops declare them (a multiply-add counts 2). Freezing
 * reports and `frz:compare` read differences of it.
 *
 * @example
 * ```ts
 * import { flopCount, matmul, randn } from "../mod.ts";
 * const before = flopCount();
 * matmul(randn([8, 16]), randn([16, 4])).dispose();
 * console.log(flopCount() - before); // 1024
 * ```
 */
export function flopCount(): number {
  return flopTotal;
}

/** Installs (or with `null`, removes) the dispatch observer. */
export function setDispatchObserver(o: DispatchObserver | null): void {
  sync();
  observer = o;
}

function pipelineFor(program: KernelProgram): CachedPipeline {
  const hit = pipelines.get(program.key);
  if (hit) return hit;
  const { device } = gpu();
  const code = program.wgsl();
  if (debugShaders) console.error(`// ---- ${program.name} (${program.key})\n${code}`);
  const entries: GPUBindGroupLayoutEntry[] = [];
  for (let i = 0; i < program.inputs + program.outputs; i++) {
    const kind = program.bindings?.[i] ?? "storage";
    entries.push(
      kind === "texture"
        ? {
          binding: i,
          visibility: GPUShaderStage.COMPUTE,
          texture: { sampleType: "unfilterable-float", viewDimension: "2d-array" },
        }
        : kind === "storage-texture"
        ? {
          binding: i,
          visibility: GPUShaderStage.COMPUTE,
          storageTexture: {
            access: "write-only",
            format: "rgba32float",
            viewDimension: "2d-array",
          },
        }
        : {
          binding: i,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: i < program.inputs ? "read-only-storage" : "storage" },
        },
    );
  }
  if (program.uniforms) {
    entries.push({
      binding: program.inputs + program.outputs,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: "uniform", hasDynamicOffset: true, minBindingSize: 0 },
    });
  }
  device.pushErrorScope("validation");
  const module = device.createShaderModule({ code, label: program.name });
  const layout = device.createBindGroupLayout({ entries, label: program.name });
  const pipeline = device.createComputePipeline({
    layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module, entryPoint: "main" },
    label: program.name,
  });
  device.popErrorScope().then(async (err) => {
    if (!err) return;
    let where = "";
    try {
      const info = await module.getCompilationInfo();
      where = info.messages.map((m) => `  line ${m.lineNum}:${m.linePos} ${m.type}: ${m.message}`)
        .join("\n");
    } catch { /* compilation info is optional */ }
    const numbered = code.split("\n").map((l, i) => `${String(i + 1).padStart(4)} | ${l}`).join(
      "\n",
    );
    pendingErrors.push(
      `kernel "${program.name}" failed to compile: ${err.message}\n${where}\n${numbered}`,
    );
  });
  const cached = { pipeline, layout };
  pipelines.set(program.key, cached);
  return cached;
}

/** Number of bind groups held for reuse (for tests of the cache). */
export function bindGroupCount(): number {
  return bindGroups.size;
}

/** Number of distinct pipelines built so far (for tests of the cache). */
export function pipelineCount(): number {
  return pipelines.size;
}

/**
 * A byte range of a storage, bound instead of the whole buffer: how a kernel
 * works on a piece of a tensor larger than `maxStorageBufferBindingSize`.
 * `offset` must be a multiple of `minStorageBufferOffsetAlignment`.
 */
export interface BufferRange {
  /** The storage (or raw buffer). */
  storage: Storage | GPUBuffer;
  /** First byte bound. */
  offset: number;
  /** Bytes bound. */
  size: number;
}

/** What a dispatch may bind. */
export type Bindable = Storage | GPUBuffer | BufferRange | GPUTextureView;

/** One dispatch of a kernel. */
export interface Dispatch {
  /** Read-only storages (or ranges, or texture views: see `KernelProgram.bindings`), in order. */
  inputs: Bindable[];
  /** Read-write storages (or ranges, or storage-texture views), in order after the inputs. */
  outputs: Bindable[];
  /** Uniform block contents (at most {@link UNIFORM_SLOT} bytes). */
  uniforms?: ArrayBufferView;
  /** Workgroups to launch: a 1-D count (folded into a grid when large) or a 3-D grid. */
  workgroups: number | [number, number, number];
  /** Floating-point operations done, for the profiler. */
  flops?: number;
  /** Bytes moved to and from memory, for the profiler. */
  bytes?: number;
}

function bufferOf(s: Storage | GPUBuffer): GPUBuffer {
  return "buffer" in s ? s.buffer : s;
}

function ensureEncoder(): GPUCommandEncoder {
  if (!encoder) encoder = gpu().device.createCommandEncoder();
  return encoder;
}

function ensureArena(): GPUBuffer {
  if (!arena) {
    arena = gpu().device.createBuffer({
      size: UNIFORM_SLOT * MAX_BATCH,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      label: "uniform arena",
    });
  }
  return arena;
}

/**
 * Records one dispatch of `program` into the current batch.
 *
 * @example
 * ```ts ignore
 * run(program, { inputs: [a], outputs: [out], uniforms: new Uint32Array([n]), workgroups: n / 64 });
 * ```
 */
export function run(program: KernelProgram, d: Dispatch): void {
  const { device, limits } = gpu();
  if (batchNames.length >= MAX_BATCH) sync();
  const all = [...d.inputs, ...d.outputs];
  if (d.inputs.length !== program.inputs || d.outputs.length !== program.outputs) {
    throw new Error(
      `kernel "${program.name}": expected ${program.inputs} inputs and ${program.outputs} outputs, got ${d.inputs.length} and ${d.outputs.length}`,
    );
  }
  const { pipeline, layout } = pipelineFor(program);
  const entries: GPUBindGroupEntry[] = [];
  let key = program.key;
  for (let i = 0; i < all.length; i++) {
    const r = all[i];
    if (r instanceof GPUTextureView) {
      entries.push({ binding: i, resource: r });
      key += `|t${resourceId(r)}`;
      continue;
    }
    const range = "offset" in r ? r : null;
    const owner = range ? range.storage : r as Storage | GPUBuffer;
    if ("device" in owner && owner.device !== device) {
      throw new GpuError(
        `kernel "${program.name}": binding ${i} is a tensor of a WebGPU device that was lost; ` +
          "tensors do not survive their device: recreate them (e.g. load a checkpoint)",
      );
    }
    const buffer = bufferOf(owner);
    const offset = range ? range.offset : 0;
    const size = range
      ? Math.max(4, Math.ceil(range.size / 4) * 4)
      : "bytes" in r
      ? Math.max(4, Math.ceil(r.bytes / 4) * 4)
      : buffer.size;
    if (offset % limits.minStorageBufferOffsetAlignment !== 0) {
      throw new RangeError(
        `kernel "${program.name}": binding ${i} starts at byte ${offset}, not a multiple of ` +
          `minStorageBufferOffsetAlignment (${limits.minStorageBufferOffsetAlignment})`,
      );
    }
    if (size > limits.maxStorageBufferBindingSize) {
      throw new RangeError(
        `kernel "${program.name}": binding ${i} is ${size} bytes, above this adapter's ` +
          `maxStorageBufferBindingSize (${limits.maxStorageBufferBindingSize})`,
      );
    }
    entries.push({ binding: i, resource: { buffer, offset, size } });
    key += `|${resourceId(buffer)}:${offset}:${size}`;
  }
  let offsets: number[] = [];
  if (program.uniforms) {
    const u = d.uniforms;
    if (!u || u.byteLength > UNIFORM_SLOT) {
      throw new Error(`kernel "${program.name}": uniforms missing or above ${UNIFORM_SLOT} bytes`);
    }
    const off = arenaUsed;
    arenaCpu.set(new Uint8Array(u.buffer, u.byteOffset, u.byteLength), off);
    arenaUsed += UNIFORM_SLOT;
    entries.push({
      binding: all.length,
      resource: { buffer: ensureArena(), offset: 0, size: UNIFORM_SLOT },
    });
    offsets = [off];
  }
  let bindGroup = bindGroups.get(key);
  if (!bindGroup) {
    if (bindGroups.size >= MAX_BIND_GROUPS) bindGroups.clear();
    bindGroup = device.createBindGroup({ layout, entries });
    bindGroups.set(key, bindGroup);
  }
  const grid = typeof d.workgroups === "number" ? foldGrid(d.workgroups) : d.workgroups;
  const enc = ensureEncoder();
  flopTotal += d.flops ?? 0;
  const stamps = observer?.onDispatch(program.name, d.flops ?? 0, d.bytes ?? 0);
  if (stamps && pass) {
    pass.end();
    pass = null;
  }
  const p = pass ?? enc.beginComputePass(stamps ? { timestampWrites: stamps } : undefined);
  p.setPipeline(pipeline);
  p.setBindGroup(0, bindGroup, offsets);
  p.dispatchWorkgroups(grid[0], grid[1], grid[2]);
  if (stamps) p.end();
  else pass = p;
  batchNames.push(program.name);
  if (debugSync || observer?.syncEach) sync();
}

/** Closes the open compute pass so that copies can be recorded. */
function endPass(): GPUCommandEncoder {
  if (pass) {
    pass.end();
    pass = null;
  }
  return ensureEncoder();
}

/** Records a buffer-to-buffer copy into the current batch. */
export function copyBuffer(
  src: Storage | GPUBuffer,
  srcOffset: number,
  dst: Storage | GPUBuffer,
  dstOffset: number,
  bytes: number,
): void {
  endPass().copyBufferToBuffer(bufferOf(src), srcOffset, bufferOf(dst), dstOffset, bytes);
  batchNames.push("copy");
}

/**
 * Records zeroing `bytes` bytes (a multiple of 4) of a buffer from byte `offset`
 * into the current batch: a memset for the driver, where a fill kernel on
 * llvmpipe writes lane by lane (7.8 M floats: ~25 ms as a kernel).
 */
export function clearBuffer(dst: Storage | GPUBuffer, offset: number, bytes: number): void {
  if (bytes === 0) return;
  endPass().clearBuffer(bufferOf(dst), offset, bytes);
  batchNames.push("clear");
}

/**
 * Records a copy of `size` texels from a buffer laid out from byte `offset`
 * with `bytesPerRow` and `rowsPerImage` into a texture (WebGPU wants
 * `bytesPerRow % 256 == 0` and `offset` a multiple of the texel size).
 */
export function copyBufferToTexture(
  src: Storage | GPUBuffer,
  offset: number,
  bytesPerRow: number,
  rowsPerImage: number,
  dst: GPUTexture,
  size: [number, number, number],
): void {
  endPass().copyBufferToTexture(
    { buffer: bufferOf(src), offset, bytesPerRow, rowsPerImage },
    { texture: dst },
    size,
  );
  batchNames.push("copy-to-texture");
}

/**
 * Submits the recorded batch. Errors from it are reported by the next
 * {@link flushErrors} or read-back.
 *
 * @example
 * ```ts ignore
 * sync(); // everything recorded so far is now on the GPU queue
 * ```
 */
export function sync(): void {
  if (!encoder) return;
  const { device } = gpu();
  const enc = endPass();
  observer?.beforeSubmit(enc);
  if (arenaUsed > 0) device.queue.writeBuffer(ensureArena(), 0, arenaCpu, 0, arenaUsed);
  const names = batchNames;
  device.pushErrorScope("out-of-memory");
  device.pushErrorScope("validation");
  device.queue.submit([enc.finish()]);
  const report = (err: GPUError | null) => {
    if (err) pendingErrors.push(describeBatchError(err, names));
  };
  device.popErrorScope().then(report);
  device.popErrorScope().then(report);
  encoder = null;
  arenaUsed = 0;
  arenaCpu = arenaCpu.byteLength === UNIFORM_SLOT * MAX_BATCH
    ? arenaCpu
    : new Uint8Array(UNIFORM_SLOT * MAX_BATCH);
  batchNames = [];
  onBatchSubmitted();
  observer?.afterSubmit();
}

function describeBatchError(err: GPUError, names: string[]): string {
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
  const list = [...counts].map(([n, c]) => (c > 1 ? `${n}×${c}` : n)).join(", ");
  const kind = err.constructor?.name === "GPUOutOfMemoryError" ? "out of GPU memory" : "error";
  return `WebGPU ${kind} in a batch of kernels [${list}]: ${err.message}` +
    (debugSync ? "" : " (set FROST_DEBUG_SYNC=1 to submit each kernel alone and name the culprit)");
}

/**
 * Waits for the GPU to finish all submitted work and throws any error it reported.
 *
 * @example
 * ```ts ignore
 * await flushErrors();
 * ```
 */
export async function flushErrors(): Promise<void> {
  sync();
  const g = gpu();
  await Promise.race([g.device.queue.onSubmittedWorkDone(), lostPromise()]);
  throwPending();
}

const lostPromises = new WeakMap<GPUDevice, Promise<never>>();

/** A promise that rejects when the device is lost (shared, so no rejection goes unhandled). */
function lostPromise(): Promise<never> {
  const { device } = gpu();
  let p = lostPromises.get(device);
  if (!p) {
    p = device.lost.then((info) => {
      throw new GpuError(`WebGPU device lost (${info.reason}): ${info.message}`);
    });
    p.catch(() => {});
    lostPromises.set(device, p);
  }
  return p;
}

function throwPending(): void {
  const g = gpu();
  if (g.lost) throw g.lost;
  // Compile errors first: they explain the batch errors that follow from them.
  const errs = [...pendingErrors.splice(0), ...takeUncapturedErrors()]
    .sort((a, b) =>
      Number(b.includes("failed to compile")) - Number(a.includes("failed to compile"))
    );
  if (errs.length) throw new GpuError(errs.join("\n\n"));
}

/**
 * Copies `bytes` bytes of a storage back to the CPU, submitting pending work
 * first. Rejects with the kernel's error if the batch failed, or if the device
 * is lost, rather than hanging.
 */
export async function readBuffer(
  src: Storage | GPUBuffer,
  offset: number,
  bytes: number,
): Promise<ArrayBuffer> {
  const { device } = gpu();
  const size = Math.max(4, Math.ceil(bytes / 4) * 4);
  const staging = device.createBuffer({
    size,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  try {
    endPass().copyBufferToBuffer(bufferOf(src), offset, staging, 0, size);
    batchNames.push("read-back");
    sync();
    await Promise.race([staging.mapAsync(GPUMapMode.READ), lostPromise()]);
    throwPending();
    return staging.getMappedRange().slice(0, bytes);
  } finally {
    staging.destroy();
  }
}

/** Id of the batch being recorded (see memory.ts). */
export { currentBatch };

/**
 * Splits `n` 4-byte elements into pieces whose byte ranges each fit one
 * storage binding (and start on the binding alignment), for kernels whose
 * element i depends only on element i of each operand. One piece when the
 * whole tensor fits, which is the common case.
 *
 * @example
 * ```ts ignore
 * for (const [start, count] of bindingChunks(x.size)) run(p, { inputs: [rangeOf(x.storage, start, count)], ... });
 * ```
 */
export function bindingChunks(n: number): [number, number][] {
  const { limits } = gpu();
  const align = limits.minStorageBufferOffsetAlignment / 4;
  const max = Math.floor(limits.maxStorageBufferBindingSize / 4 / align) * align;
  if (n <= max) return [[0, n]];
  const out: [number, number][] = [];
  for (let s = 0; s < n; s += max) out.push([s, Math.min(max, n - s)]);
  return out;
}

/**
 * Elements per load of a streaming kernel: 4 (vec4 bindings) when every
 * size, stride and offset given is a multiple of 4, else 1. On llvmpipe a
 * vec4 storage access costs about what a scalar one does (a 32 MB ReLU
 * measured 1.6-2.8 GB/s scalar, 5-6 GB/s vec4, 2-core machine, both
 * backends), and storage traffic is what these passes spend their time on.
 * Binding ranges start at multiples of 256 bytes ({@link bindingChunks}), so
 * a vec4 never straddles one.
 *
 * @example
 * ```ts
 * import { vecLanes } from "./dispatch.ts";
 * console.log(vecLanes(1024, 64), vecLanes(1024, 6)); // 4 1
 * ```
 */
export function vecLanes(...sizes: number[]): 1 | 4 {
  return sizes.every((n) => n % 4 === 0) ? 4 : 1;
}

/** The range of elements `[start, start + count)` of a storage of 4-byte elements (the storage itself when whole). */
export function rangeOf(s: Storage, start: number, count: number): Storage | BufferRange {
  if (start === 0 && count * 4 >= s.bytes) return s;
  return { storage: s, offset: 4 * start, size: 4 * count };
}
