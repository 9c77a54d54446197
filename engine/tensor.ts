/**
 * The Tensor: a shape, a dtype and a reference-counted GPU storage, with the
 * autograd fields (`requiresGrad`, `grad`, the node that produced it).
 *
 * Tensors are always contiguous and row-major. `reshape` is a view that shares
 * the storage; `permute`, `transpose`, `slice`, `expand`, `concat`, `split` and
 * `pad` copy. A tensor's memory is released by `dispose()`, by `using`, or by
 * the {@link scope} it was created in; a FinalizationRegistry is only a net.
 *
 * @module
 */

import { type MemoryCategory, Storage } from "./memory.ts";
import { readBuffer } from "./dispatch.ts";
import { freeNode, isGradEnabled, type Node } from "./autograd.ts";
import { gpu } from "./device.ts";
import * as ew from "./ops/elementwise.ts";
import * as rd from "./ops/reduce.ts";
import * as sh from "./ops/shape.ts";
import * as mm from "./ops/matmul.ts";
import * as sm from "./ops/softmax.ts";
import * as ix from "./ops/index.ts";
import { backward } from "./backward.ts";

/** Element types. Booleans (comparison results, masks) are u32 0/1. */
export type DType = "f32" | "i32" | "u32";

/** Typed array for each dtype. */
export type TypedArrayFor<D extends DType> = D extends "f32" ? Float32Array
  : D extends "i32" ? Int32Array
  : Uint32Array;

/** Any typed array a tensor reads back as. */
export type TensorData = Float32Array | Int32Array | Uint32Array;

/** A shape: non-negative integer sizes, outermost first. */
export type Shape = readonly number[];

/** Number of elements of a shape. */
export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Formats a shape the way errors show it: `[64, 784]`. */
export function fmtShape(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}

/** Validates a shape, naming the op that received it. */
export function checkShape(shape: Shape, op: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new RangeError(`${op}: invalid shape ${fmtShape(shape)} (sizes must be integers ≥ 0)`);
    }
  }
}

// ---------------------------------------------------------------- scopes

interface ScopeFrame {
  tensors: Tensor[];
}
const scopes: ScopeFrame[] = [];

/**
 * Runs `fn` and disposes every tensor it created, except those it returns
 * (a tensor, or arrays / plain objects of tensors) and those marked with
 * {@link keep}. Tape nodes that only disposed tensors could reach are freed
 * with their saved activations.
 *
 * @example
 * ```ts
 * import { randn, scope } from "../mod.ts";
 * const y = scope(() => randn([4]).mul(2).add(1)); // the intermediates are freed
 * console.log(y.shape);
 * ```
 */
export function scope<T>(fn: () => T): T {
  const frame: ScopeFrame = { tensors: [] };
  scopes.push(frame);
  let result: T;
  try {
    result = fn();
    if (result instanceof Promise) {
      throw new Error("scope(fn): fn must be synchronous; await outside the scope");
    }
  } catch (e) {
    scopes.pop();
    // Nothing escapes a failed scope: release what it made before rethrowing.
    for (const t of frame.tensors) {
      if (t.kept) continue;
      if (t.node) freeNode(t.node);
      t.dispose();
    }
    throw e;
  }
  scopes.pop();
  const survivors = new Set<Tensor>();
  collect(result, survivors, 0);
  for (const t of frame.tensors) if (t.kept) survivors.add(t);
  // Nodes reachable from survivors must keep their saved tensors for backward.
  const live = new Set<Node>();
  const stack = [...survivors];
  while (stack.length) {
    const t = stack.pop()!;
    const n = t.node;
    if (!n || live.has(n)) continue;
    live.add(n);
    for (const i of n.inputs) stack.push(i);
  }
  for (const t of frame.tensors) {
    if (survivors.has(t)) {
      // Hand the survivor to the enclosing scope, if any.
      if (!t.kept) scopes.at(-1)?.tensors.push(t);
      continue;
    }
    if (t.node && !live.has(t.node)) freeNode(t.node);
    t.dispose();
  }
  return result;
}

function collect(v: unknown, out: Set<Tensor>, depth: number): void {
  if (depth > 4 || v === null || typeof v !== "object") return;
  if (v instanceof Tensor) {
    out.add(v);
    return;
  }
  if (Array.isArray(v)) { for (const x of v) collect(x, out, depth + 1); }
  else if (Object.getPrototypeOf(v) === Object.prototype) {
    for (const x of Object.values(v)) collect(x, out, depth + 1);
  }
}

/**
 * Marks a tensor to outlive the scopes around it (parameters, optimizer state,
 * results accumulated across steps). Returns it.
 *
 * @example
 * ```ts
 * import { keep, scope, zeros } from "../mod.ts";
 * let total = keep(zeros([1]));
 * scope(() => { const next = keep(total.add(1)); total.dispose(); total = next; });
 * ```
 */
export function keep<T extends Tensor>(t: T): T {
  t.kept = true;
  return t;
}

// ---------------------------------------------------------------- tensor

const BYTES = 4;

/** A multi-dimensional array on the GPU. */
export class Tensor {
  /** Sizes, outermost first. */
  readonly shape: Shape;
  /** Element type. */
  readonly dtype: DType;
  /** Gradient accumulated by `backward()` (leaf tensors that require grad). */
  grad: Tensor | null = null;
  /** Set by {@link keep}: scopes do not dispose this tensor. */
  kept = false;
  #storage: Storage | null;
  #requiresGrad = false;
  #node: Node | null = null;
  #token = {};

  /** Wraps a storage (takes over one reference). Use the creation functions instead. */
  constructor(storage: Storage, shape: Shape, dtype: DType) {
    this.#storage = storage;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    storage.watch(this, this.#token);
    scopes.at(-1)?.tensors.push(this);
  }

  /** Allocates an uninitialised tensor (kernels write every element). */
  static empty(shape: Shape, dtype: DType = "f32", category: MemoryCategory = "temporary"): Tensor {
    checkShape(shape, "empty");
    const bytes = sizeOf(shape) * BYTES;
    return new Tensor(new Storage(bytes, category), shape, dtype);
  }

  /** Number of elements. */
  get size(): number {
    return sizeOf(this.shape);
  }

  /** Number of dimensions. */
  get ndim(): number {
    return this.shape.length;
  }

  /** The storage; throws if the tensor was disposed. */
  get storage(): Storage {
    if (!this.#storage) {
      throw new Error(
        `use of a disposed tensor (shape ${
          fmtShape(this.shape)
        }, ${this.dtype}): it was released by dispose() or by the scope() it was created in; keep() it to use it later`,
      );
    }
    return this.#storage;
  }

  /** Whether the memory has been released. */
  get disposed(): boolean {
    return this.#storage === null;
  }

  /** Whether gradients flow to this tensor. Only float leaves can be set. */
  get requiresGrad(): boolean {
    return this.#requiresGrad;
  }

  set requiresGrad(v: boolean) {
    if (v && this.dtype !== "f32") {
      throw new TypeError(
        `requiresGrad: only f32 tensors can require grad (this one is ${this.dtype})`,
      );
    }
    if (this.#node) {
      throw new Error("requiresGrad can only be set on leaf tensors (use detach() for a new leaf)");
    }
    this.#requiresGrad = v;
  }

  /** The tape node that produced this tensor, or null for leaves and untracked results. */
  get node(): Node | null {
    return this.#node;
  }

  /** @internal Used by the tape when recording. */
  setNode(n: Node): void {
    this.#node = n;
    this.#requiresGrad = true;
  }

  /** Whether this tensor is a leaf of the graph (no producing node). */
  get isLeaf(): boolean {
    return this.#node === null;
  }

  /** Releases this tensor's reference to its memory. Later use throws. */
  dispose(): void {
    const s = this.#storage;
    if (!s) return;
    this.#storage = null;
    s.unwatch(this.#token);
    s.release();
  }

  /** `using t = ...` support. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** @internal A view sharing this storage, held by the tape (relabelled as a saved activation). */
  saveForBackward(): Tensor {
    const s = this.storage.retain();
    s.savedBy++;
    if (s.category === "temporary") s.category = "activation";
    // The tape owns saved views: no scope may dispose them.
    const frames = scopes.splice(0);
    try {
      return new Tensor(s, this.shape, this.dtype);
    } finally {
      scopes.push(...frames);
    }
  }

  /** A view of the same memory with another shape (no copy). */
  view(shape: Shape): Tensor {
    return sh.reshape(this, shape);
  }

  /** Copies the data back to the CPU. */
  async toArray(): Promise<TensorData> {
    const s = this.storage;
    const buf = await readBuffer(s, 0, this.size * BYTES);
    if (this.dtype === "f32") return new Float32Array(buf);
    if (this.dtype === "i32") return new Int32Array(buf);
    return new Uint32Array(buf);
  }

  /** The value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) {
      throw new RangeError(
        `item(): tensor has ${this.size} elements (shape ${fmtShape(this.shape)}), expected 1`,
      );
    }
    return (await this.toArray())[0];
  }

  /** A nested-array copy of the data, for printing. */
  async toNested(): Promise<unknown> {
    const data = Array.from(await this.toArray());
    const build = (d: number, off: number): unknown => {
      if (d === this.ndim) return data[off];
      const stride = sizeOf(this.shape.slice(d + 1));
      return Array.from({ length: this.shape[d] }, (_, i) => build(d + 1, off + i * stride));
    };
    return build(0, 0);
  }

  /** A new leaf sharing this data, outside the graph. */
  detach(): Tensor {
    return new Tensor(this.storage.retain(), this.shape, this.dtype);
  }

  /** A copy of the data in new memory (recorded on the tape). */
  clone(): Tensor {
    return ew.mul(this, 1);
  }

  /** Computes gradients of this (scalar) tensor w.r.t. every leaf that requires grad. */
  backward(grad?: Tensor): void {
    backward(this, grad);
  }

  /** A short description, e.g. `Tensor([64, 10], f32, requiresGrad)`. */
  toString(): string {
    return `Tensor(${fmtShape(this.shape)}, ${this.dtype}${
      this.requiresGrad ? ", requiresGrad" : ""
    }${this.disposed ? ", disposed" : ""})`;
  }

  // ------------------------------------------------------------ op methods
  /** `-x` */ neg(): Tensor {
    return ew.neg(this);
  }
  /** `|x|` */ abs(): Tensor {
    return ew.abs(this);
  }
  /** `e^x` */ exp(): Tensor {
    return ew.exp(this);
  }
  /** `ln x` */ log(): Tensor {
    return ew.log(this);
  }
  /** `√x` */ sqrt(): Tensor {
    return ew.sqrt(this);
  }
  /** `1/√x` */ rsqrt(): Tensor {
    return ew.rsqrt(this);
  }
  /** `tanh x` */ tanh(): Tensor {
    return ew.tanh(this);
  }
  /** `1/(1+e^-x)` */ sigmoid(): Tensor {
    return ew.sigmoid(this);
  }
  /** `max(x, 0)` */ relu(): Tensor {
    return ew.relu(this);
  }
  /** `min(max(x, 0), 6)` */ relu6(): Tensor {
    return ew.relu6(this);
  }
  /** GELU, erf form or tanh approximation. */
  gelu(approximate: "none" | "tanh" = "none"): Tensor {
    return ew.gelu(this, approximate);
  }
  /** `sin x` */ sin(): Tensor {
    return ew.sin(this);
  }
  /** `cos x` */ cos(): Tensor {
    return ew.cos(this);
  }
  /** `x + y` */ add(y: Tensor | number): Tensor {
    return ew.add(this, y);
  }
  /** `x - y` */ sub(y: Tensor | number): Tensor {
    return ew.sub(this, y);
  }
  /** `x * y` */ mul(y: Tensor | number): Tensor {
    return ew.mul(this, y);
  }
  /** `x / y` */ div(y: Tensor | number): Tensor {
    return ew.div(this, y);
  }
  /** `x ** y` */ pow(y: Tensor | number): Tensor {
    return ew.pow(this, y);
  }
  /** Elementwise maximum. */ maximum(y: Tensor | number): Tensor {
    return ew.maximum(this, y);
  }
  /** Elementwise minimum. */ minimum(y: Tensor | number): Tensor {
    return ew.minimum(this, y);
  }
  /** `x == y` as a u32 mask. */ eq(y: Tensor | number): Tensor {
    return ew.eq(this, y);
  }
  /** `x != y` as a u32 mask. */ ne(y: Tensor | number): Tensor {
    return ew.ne(this, y);
  }
  /** `x < y` as a u32 mask. */ lt(y: Tensor | number): Tensor {
    return ew.lt(this, y);
  }
  /** `x <= y` as a u32 mask. */ le(y: Tensor | number): Tensor {
    return ew.le(this, y);
  }
  /** `x > y` as a u32 mask. */ gt(y: Tensor | number): Tensor {
    return ew.gt(this, y);
  }
  /** `x >= y` as a u32 mask. */ ge(y: Tensor | number): Tensor {
    return ew.ge(this, y);
  }
  /** Converts to another dtype. */ cast(dtype: DType): Tensor {
    return ew.cast(this, dtype);
  }
  /** Sum over `axes` (all by default). */
  sum(axes?: number | number[], keepdim = false): Tensor {
    return rd.sum(this, axes, keepdim);
  }
  /** Mean over `axes` (all by default). */
  mean(axes?: number | number[], keepdim = false): Tensor {
    return rd.mean(this, axes, keepdim);
  }
  /** Maximum over `axes` (all by default). */
  max(axes?: number | number[], keepdim = false): Tensor {
    return rd.max(this, axes, keepdim);
  }
  /** Minimum over `axes` (all by default). */
  min(axes?: number | number[], keepdim = false): Tensor {
    return rd.min(this, axes, keepdim);
  }
  /** Index of the maximum along `axis` (i32). */
  argmax(axis: number, keepdim = false): Tensor {
    return rd.argmax(this, axis, keepdim);
  }
  /** Variance over `axes`, with Bessel's correction by default as PyTorch does. */
  variance(axes?: number | number[], opts?: { correction?: number; keepdim?: boolean }): Tensor {
    return rd.variance(this, axes, opts);
  }
  /** Matrix product (batched, broadcasting batch dimensions). */
  matmul(y: Tensor, opts?: mm.MatmulOptions): Tensor {
    return mm.matmul(this, y, opts);
  }
  /** Softmax along `axis` (last by default). */
  softmax(axis = -1): Tensor {
    return sm.softmax(this, axis);
  }
  /** Log-softmax along `axis` (last by default). */
  logSoftmax(axis = -1): Tensor {
    return sm.logSoftmax(this, axis);
  }
  /** Same data, another shape (a view; one size may be -1). */
  reshape(shape: Shape): Tensor {
    return sh.reshape(this, shape);
  }
  /** Collapses dimensions `start..end` into one (a view). */
  flatten(start = 0, end = -1): Tensor {
    return sh.flatten(this, start, end);
  }
  /** Reorders dimensions (a copy). */
  permute(perm: number[]): Tensor {
    return sh.permute(this, perm);
  }
  /** Swaps two dimensions (a copy). */
  transpose(d0 = -2, d1 = -1): Tensor {
    return sh.transpose(this, d0, d1);
  }
  /** Sub-tensor `[start, end)` on each axis listed (a copy). */
  slice(starts: number[], ends: number[]): Tensor {
    return sh.slice(this, starts, ends);
  }
  /** Broadcasts to a larger shape (a copy). */
  expand(shape: Shape): Tensor {
    return sh.expand(this, shape);
  }
  /** Splits along `axis` into pieces of the given sizes (copies). */
  split(sizes: number[], axis = 0): Tensor[] {
    return sh.split(this, sizes, axis);
  }
  /** Pads with `value`: `pads[i] = [before, after]` for each leading axis. */
  pad(pads: [number, number][], value = 0): Tensor {
    return sh.pad(this, pads, value);
  }
  /** Removes size-1 dimensions (a view). */
  squeeze(axis?: number): Tensor {
    return sh.squeeze(this, axis);
  }
  /** Inserts a size-1 dimension (a view). */
  unsqueeze(axis: number): Tensor {
    return sh.unsqueeze(this, axis);
  }
  /** Picks `index` entries along `axis`. */
  indexSelect(axis: number, index: Tensor): Tensor {
    return ix.indexSelect(this, axis, index);
  }
  /** Gathers along `axis` with an index tensor of the output's shape. */
  gather(axis: number, index: Tensor): Tensor {
    return ix.gather(this, axis, index);
  }
}

// ---------------------------------------------------------------- creation

/** Options for creating a tensor. */
export interface TensorOptions {
  /** Shape; defaults to the data's length as a vector. */
  shape?: Shape;
  /** Element type; defaults to f32. */
  dtype?: DType;
  /** Whether gradients should flow to it. */
  requiresGrad?: boolean;
}

/**
 * Uploads data to a new tensor.
 *
 * @example
 * ```ts
 * import { tensor } from "../mod.ts";
 * const t = tensor([1, 2, 3, 4], { shape: [2, 2] });
 * console.log(await t.toArray());
 * ```
 */
export function tensor(
  data: ArrayLike<number> | TensorData,
  opts: TensorOptions = {},
): Tensor {
  const dtype = opts.dtype ??
    (data instanceof Int32Array ? "i32" : data instanceof Uint32Array ? "u32" : "f32");
  const shape = opts.shape ?? [data.length];
  checkShape(shape, "tensor");
  if (sizeOf(shape) !== data.length) {
    throw new RangeError(
      `tensor(): ${data.length} values do not fill shape ${fmtShape(shape)} (${
        sizeOf(shape)
      } elements)`,
    );
  }
  const typed = dtype === "f32"
    ? (data instanceof Float32Array ? data : Float32Array.from(data))
    : dtype === "i32"
    ? (data instanceof Int32Array ? data : Int32Array.from(data))
    : (data instanceof Uint32Array ? data : Uint32Array.from(data));
  const storage = new Storage(Math.max(typed.byteLength, 4), "temporary", true);
  if (typed.byteLength > 0) {
    gpu().device.queue.writeBuffer(storage.buffer, 0, typed as Float32Array<ArrayBuffer>);
  }
  const t = new Tensor(storage, shape, dtype);
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}

/** Whether the tape would record an op on these inputs now. */
export function tracks(...inputs: Tensor[]): boolean {
  return isGradEnabled() && inputs.some((t) => t.requiresGrad);
}
