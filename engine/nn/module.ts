/**
 * `Module`: the base class of layers, with PyTorch's naming of parameters,
 * buffers and sub-modules, state dicts, train/eval mode and freezing.
 *
 * Parameters, buffers and children are discovered from a module's own
 * enumerable fields, in the order the fields were defined (TypeScript class
 * fields are defined in declaration order, base class first, so declare them
 * in the order PyTorch's `__init__` assigns them). A field counts when it holds
 * a {@link Module}, a tensor made by {@link parameter}, or a tensor made by
 * {@link buffer}; any other field (a number, a cached tensor) is ignored, and
 * `null` stands for an absent parameter (`bias=False`). Like every JavaScript
 * object, integer-like field names ("0", "1", ...) enumerate first, in
 * ascending order: that is exactly the order `Sequential` needs. Arrays are not
 * searched: use {@link ModuleList} for a list of layers, as PyTorch does.
 *
 * @example
 * ```ts
 * import { randn, type Tensor } from "../../mod.ts";
 * import { Module, parameter } from "./module.ts";
 *
 * class Scale extends Module {
 *   weight = parameter(randn([4]));
 *   forward(x: Tensor): Tensor {
 *     return x.mul(this.weight);
 *   }
 * }
 * console.log(new Scale().namedParameters().map(([k]) => k)); // ["weight"]
 * ```
 *
 * @module
 */

import { fmtShape, keep, Tensor } from "../tensor.ts";
import { copyBuffer } from "../dispatch.ts";
import { noGrad } from "../autograd.ts";
import { cast } from "../ops/elementwise.ts";

/** A function called after a module's forward pass (see {@link Module.registerForwardHook}). */
export type ForwardHook = (module: Module, inputs: unknown[], output: Tensor) => void;

const parameters = new WeakSet<Tensor>();
const buffers = new WeakMap<Tensor, { persistent: boolean }>();

/**
 * Makes `t` a parameter: kept across scopes, its memory counted as
 * "parameter", and `requiresGrad` set. Assign the result to a module field to
 * register it under the field's name.
 *
 * @param t A leaf f32 tensor (it is marked in place and returned).
 * @param requiresGrad Whether gradients flow to it (default true).
 * @returns `t`.
 *
 * @example
 * ```ts
 * import { zeros } from "../../mod.ts";
 * import { parameter } from "./module.ts";
 * const b = parameter(zeros([10]));
 * console.log(b.requiresGrad, b.storage.category); // true "parameter"
 * ```
 */
export function parameter(t: Tensor, requiresGrad = true): Tensor {
  if (!t.isLeaf) {
    throw new TypeError(`parameter(): ${t} is the result of a recorded op; pass t.detach()`);
  }
  if (t.dtype !== "f32") {
    throw new TypeError(`parameter(): parameters must be f32, got ${t.dtype}`);
  }
  keep(t);
  t.storage.category = "parameter";
  t.requiresGrad = requiresGrad;
  parameters.add(t);
  return t;
}

/**
 * Makes `t` a buffer: module state that is not trained (running statistics,
 * counters). Kept across scopes and counted as "parameter" memory. Persistent
 * buffers (the default) are part of the state dict, as in PyTorch.
 *
 * @param t The tensor (marked in place and returned).
 * @param opts `persistent: false` leaves it out of {@link Module.stateDict}.
 * @returns `t`.
 *
 * @example
 * ```ts
 * import { zeros } from "../../mod.ts";
 * import { buffer } from "./module.ts";
 * const runningMean = buffer(zeros([16]));
 * console.log(runningMean.kept); // true
 * ```
 */
export function buffer(t: Tensor, opts: { persistent?: boolean } = {}): Tensor {
  keep(t);
  t.storage.category = "parameter";
  buffers.set(t, { persistent: opts.persistent ?? true });
  return t;
}

/** Whether `t` was made by {@link parameter}. */
export function isParameter(t: unknown): t is Tensor {
  return t instanceof Tensor && parameters.has(t);
}

/** Whether `t` was made by {@link buffer}. */
export function isBuffer(t: unknown): t is Tensor {
  return t instanceof Tensor && buffers.has(t);
}

/** Options of {@link Module.loadStateDict}. */
export interface LoadStateDictOptions {
  /**
   * When true (the default), keys missing from the state dict or unknown to
   * the module are an error. Shape mismatches are an error either way.
   */
  strict?: boolean;
}

/** What {@link Module.loadStateDict} did not match (only non-empty with `strict: false`). */
export interface LoadStateDictResult {
  /** Module keys the state dict lacks (left unchanged). */
  missingKeys: string[];
  /** State dict keys the module does not have (ignored). */
  unexpectedKeys: string[];
}

/** Raised by {@link Module.loadStateDict}; the message lists every offending key. */
export class StateDictError extends Error {
  /** Module keys the state dict lacks. */
  readonly missingKeys: string[];
  /** State dict keys the module does not have. */
  readonly unexpectedKeys: string[];
  /** `key: expected [..], got [..]` for each shape mismatch. */
  readonly shapeMismatches: string[];

  /**
   * @param module Name of the module's class, for the message.
   * @param missing Missing keys (reported only when strict).
   * @param unexpected Unexpected keys (reported only when strict).
   * @param shapes Shape mismatch descriptions.
   *
   * @example
   * ```ts
   * import { StateDictError } from "./module.ts";
   * console.log(new StateDictError("Linear", ["bias"], [], []).message);
   * ```
   */
  constructor(module: string, missing: string[], unexpected: string[], shapes: string[]) {
    const parts: string[] = [];
    const list = (ks: string[]) => ks.map((k) => JSON.stringify(k)).join(", ");
    if (missing.length) parts.push(`missing keys: ${list(missing)}`);
    if (unexpected.length) parts.push(`unexpected keys: ${list(unexpected)}`);
    if (shapes.length) parts.push(`shape mismatches: ${shapes.join("; ")}`);
    super(`loadStateDict(): error(s) loading the state dict into ${module}: ${parts.join(". ")}`);
    this.name = "StateDictError";
    this.missingKeys = missing;
    this.unexpectedKeys = unexpected;
    this.shapeMismatches = shapes;
  }
}

const join = (prefix: string, name: string) => prefix ? `${prefix}.${name}` : name;

/**
 * Base class of layers and models, after `torch.nn.Module`. Subclasses declare
 * their parameters ({@link parameter}), buffers ({@link buffer}) and
 * sub-modules as fields and implement {@link Module.forward}.
 *
 * @example
 * ```ts
 * import { randn, type Tensor } from "../../mod.ts";
 * import { Module } from "./module.ts";
 * import { Linear } from "./linear.ts";
 * import { ReLU } from "./activation.ts";
 *
 * class Mlp extends Module {
 *   fc1 = new Linear(8, 16);
 *   act = new ReLU();
 *   fc2 = new Linear(16, 2);
 *   forward(x: Tensor): Tensor {
 *     return this.fc2.forward(this.act.forward(this.fc1.forward(x)));
 *   }
 * }
 * const m = new Mlp();
 * console.log(Object.keys(m.stateDict())); // ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
 * console.log(m.forward(randn([3, 8])).shape); // [3, 2]
 * ```
 */
export abstract class Module {
  /** Training mode (dropout active, ...); set by {@link Module.train} / {@link Module.eval}. */
  training = true;

  /** Computes the module's output. */
  abstract forward(x: Tensor): Tensor;

  // ------------------------------------------------------------ registration

  /**
   * Adds a sub-module under `name` (PyTorch's `add_module`), for names that
   * are computed at run time. Returns the module.
   */
  addModule<M extends Module>(name: string, module: M): M {
    this.#define(name, module);
    return module;
  }

  /** Registers `t` as a parameter under `name` (see {@link parameter}). Returns it. */
  registerParameter(name: string, t: Tensor | null): Tensor | null {
    this.#define(name, t === null ? null : parameter(t));
    return t;
  }

  /** Registers `t` as a buffer under `name` (see {@link buffer}). Returns it. */
  registerBuffer(name: string, t: Tensor, opts: { persistent?: boolean } = {}): Tensor {
    this.#define(name, buffer(t, opts));
    return t;
  }

  #define(name: string, value: unknown): void {
    if (name === "" || name.includes(".")) {
      throw new RangeError(`${this.constructor.name}: invalid member name ${JSON.stringify(name)}`);
    }
    Object.defineProperty(this, name, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }

  #fields(): [string, unknown][] {
    const out: [string, unknown][] = [];
    for (const key of Object.keys(this)) {
      const v = (this as Record<string, unknown>)[key];
      if (Array.isArray(v) && v.some((e) => e instanceof Module || isParameter(e))) {
        throw new TypeError(
          `${this.constructor.name}.${key}: an array of modules or parameters is not registered; ` +
            `use ModuleList (or Sequential) so that they get PyTorch's names "${key}.0", ...`,
        );
      }
      out.push([key, v]);
    }
    return out;
  }

  // ------------------------------------------------------------ traversal

  /** Direct sub-modules with their field names, in definition order. */
  namedChildren(): [string, Module][] {
    const seen = new Set<Module>();
    const out: [string, Module][] = [];
    for (const [k, v] of this.#fields()) {
      if (v instanceof Module && !seen.has(v)) {
        seen.add(v);
        out.push([k, v]);
      }
    }
    return out;
  }

  /** Direct sub-modules. */
  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /**
   * This module and all below it, pre-order, with dotted names (this one is
   * `""`). A module reachable twice is listed once, as in PyTorch.
   */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    const visit = (m: Module, name: string) => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([name, m]);
      for (const [k, c] of m.namedChildren()) visit(c, join(name, k));
    };
    visit(this, prefix);
    return out;
  }

  /** This module and all below it, pre-order. */
  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /** The parameters held directly by this module (not its children). */
  #ownParameters(): [string, Tensor][] {
    return this.#fields().filter((e): e is [string, Tensor] => isParameter(e[1]));
  }

  #ownBuffers(persistentOnly: boolean): [string, Tensor][] {
    return this.#fields().filter((e): e is [string, Tensor] =>
      isBuffer(e[1]) && (!persistentOnly || buffers.get(e[1])!.persistent)
    );
  }

  /**
   * Every parameter with its dotted name (`"0.weight"`,
   * `"layer1.0.conv1.weight"`), in PyTorch's order. A shared parameter is
   * listed once, under its first name.
   */
  namedParameters(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [name, m] of this.namedModules(prefix)) {
      for (const [k, t] of m.#ownParameters()) {
        if (seen.has(t)) continue;
        seen.add(t);
        out.push([join(name, k), t]);
      }
    }
    return out;
  }

  /** Every parameter, in PyTorch's order (what an optimizer takes). */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Every buffer (persistent or not) with its dotted name, in PyTorch's order. */
  namedBuffers(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [name, m] of this.namedModules(prefix)) {
      for (const [k, t] of m.#ownBuffers(false)) {
        if (seen.has(t)) continue;
        seen.add(t);
        out.push([join(name, k), t]);
      }
    }
    return out;
  }

  /** Every buffer, in PyTorch's order. */
  buffers(): Tensor[] {
    return this.namedBuffers().map(([, t]) => t);
  }

  /**
   * Number of parameter elements (101,770 for the 784-128-10 MLP).
   *
   * @param opts `trainable: true` counts only parameters that require grad.
   */
  numParameters(opts: { trainable?: boolean } = {}): number {
    let n = 0;
    for (const t of this.parameters()) if (!opts.trainable || t.requiresGrad) n += t.size;
    return n;
  }

  // ------------------------------------------------------------ modes

  /**
   * Keeps this module in evaluation mode whatever {@link Module.train} says
   * (set on every module of a frozen unit by SmartFRZ's controllers): batch
   * norm then normalises with its running statistics and stops updating
   * them, dropout passes its input through, so the module's output is a fixed
   * function of its input. Set it on each sub-module that must stay in eval
   * mode (`for (const m of unit.modules()) m.alwaysEval = true`).
   */
  alwaysEval = false;

  /**
   * Sets training mode on this module and every sub-module (modules with
   * {@link Module.alwaysEval} stay in evaluation mode). Returns this.
   */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode && !m.alwaysEval;
    return this;
  }

  /** Sets evaluation mode (`train(false)`). Returns this. */
  eval(): this {
    return this.train(false);
  }

  /** Sets `requiresGrad` on every parameter of this module and below. Returns this. */
  requiresGrad(flag: boolean): this {
    for (const t of this.parameters()) t.requiresGrad = flag;
    return this;
  }

  /**
   * Stops gradients to every parameter of this module and below: the tape
   * then records nothing for them (and keeps no activations) when their input
   * needs no grad either. Gradients already accumulated are left alone.
   */
  freeze(): this {
    return this.requiresGrad(false);
  }

  /** Undoes {@link Module.freeze}. */
  unfreeze(): this {
    return this.requiresGrad(true);
  }

  // ------------------------------------------------------------ hooks

  #hooks: ForwardHook[] = [];

  /**
   * Calls `hook(module, inputs, output)` after every later `forward` of this
   * module (PyTorch's `register_forward_hook`), whoever calls it, without
   * changing the model's code: SmartFRZ uses it to read a unit's output for
   * CKA. The output belongs to the forward pass: a hook that needs it after
   * the pass must take its own reference (`noGrad(() => keep(reshape(out, out.shape)))`
   * shares the memory without copying). Returns a function that removes the hook.
   *
   * @example
   * ```ts
   * import { nn, noGrad, randn, type Tensor } from "../../mod.ts";
   * const model = new nn.Sequential(new nn.Linear(4, 3), new nn.ReLU(), new nn.Linear(3, 2));
   * const shapes: number[][] = [];
   * const remove = model.at(1).registerForwardHook((_m, _inputs, out) => shapes.push([...out.shape]));
   * noGrad(() => model.forward(randn([5, 4])));
   * remove();
   * noGrad(() => model.forward(randn([5, 4])));
   * console.log(shapes); // [[5, 3]]
   * ```
   */
  registerForwardHook(hook: ForwardHook): () => void {
    this.#hooks.push(hook);
    this.#wrapForward();
    return () => {
      const i = this.#hooks.indexOf(hook);
      if (i < 0) return;
      this.#hooks.splice(i, 1);
      this.#wrapForward();
    };
  }

  #override: ((inputs: unknown[]) => Tensor) | null = null;

  /**
   * Makes later `forward` calls return `fn(inputs)` instead of running the
   * module (hooks still see the result); `null` restores the module's own
   * forward. SmartFRZ's forward cache uses it to feed a frozen prefix's
   * cached output to the first trainable unit and to skip the prefix.
   */
  setForwardOverride(fn: ((inputs: unknown[]) => Tensor) | null): void {
    this.#override = fn;
    this.#wrapForward();
  }

  /**
   * Whether forward hooks or a forward override are installed. Containers
   * that fuse a module with its neighbour (batch norm with the ReLU after it)
   * call a hooked module's own `forward` instead, so hooks see what they expect.
   */
  get hooked(): boolean {
    return this.#wrapped;
  }

  /** Installs (or removes) the instance-level forward that runs hooks and overrides. */
  #wrapped = false;

  #wrapForward(): void {
    const wanted = this.#hooks.length > 0 || this.#override !== null;
    if (wanted === this.#wrapped) return;
    this.#wrapped = wanted;
    if (!wanted) {
      delete (this as { forward?: unknown }).forward;
      return;
    }
    const plain = Object.getPrototypeOf(this).forward as (...a: unknown[]) => Tensor;
    Object.defineProperty(this, "forward", {
      configurable: true,
      writable: true,
      enumerable: false,
      value: (...inputs: unknown[]) => {
        const out = this.#override ? this.#override(inputs) : plain.apply(this, inputs);
        for (const h of [...this.#hooks]) h(this, inputs, out);
        return out;
      },
    });
  }

  // ------------------------------------------------------------ state

  /**
   * Parameters and persistent buffers by dotted name, in PyTorch's
   * `state_dict()` key order (per module in pre-order: its parameters, then
   * its buffers). The values are the module's own tensors, not copies: do not
   * dispose them.
   */
  stateDict(prefix = ""): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    const visit = (m: Module, name: string, seen: Set<Module>) => {
      if (seen.has(m)) return;
      seen.add(m);
      for (const [k, t] of m.#ownParameters()) out[join(name, k)] = t;
      for (const [k, t] of m.#ownBuffers(true)) out[join(name, k)] = t;
      for (const [k, c] of m.namedChildren()) visit(c, join(name, k), seen);
    };
    visit(this, prefix, new Set());
    return out;
  }

  /**
   * Copies values from `sd` into this module's parameters and buffers, in
   * place (tensors keep their identity, so optimizers holding them stay
   * valid, and `requiresGrad` is unchanged). Everything is checked before
   * anything is copied: with `strict` (the default), missing and unexpected
   * keys throw a {@link StateDictError} listing them; shape mismatches always
   * throw. A value of another dtype is converted.
   *
   * @returns The keys that did not match (empty when strict).
   *
   * @example
   * ```ts
   * import "../../mod.ts";
   * import { Linear } from "./linear.ts";
   * const a = new Linear(4, 2);
   * const b = new Linear(4, 2);
   * b.loadStateDict(a.stateDict());
   * ```
   */
  loadStateDict(
    sd: Record<string, Tensor>,
    opts: LoadStateDictOptions = {},
  ): LoadStateDictResult {
    const strict = opts.strict ?? true;
    const own = this.stateDict();
    const missing = Object.keys(own).filter((k) => !Object.hasOwn(sd, k));
    const unexpected = Object.keys(sd).filter((k) => !Object.hasOwn(own, k));
    const shapes: string[] = [];
    for (const [k, dst] of Object.entries(own)) {
      if (!Object.hasOwn(sd, k)) continue;
      const src = sd[k];
      if (!(src instanceof Tensor)) {
        shapes.push(`${JSON.stringify(k)}: not a Tensor`);
      } else if (src.shape.join() !== dst.shape.join()) {
        shapes.push(
          `${JSON.stringify(k)}: expected ${fmtShape(dst.shape)}, got ${fmtShape(src.shape)}`,
        );
      }
    }
    if (shapes.length || (strict && (missing.length || unexpected.length))) {
      throw new StateDictError(
        this.constructor.name,
        strict ? missing : [],
        strict ? unexpected : [],
        shapes,
      );
    }
    for (const [k, dst] of Object.entries(own)) {
      if (Object.hasOwn(sd, k)) copyInto(dst, sd[k]);
    }
    return { missingKeys: missing, unexpectedKeys: unexpected };
  }

  /** Releases the memory of every parameter (and its gradient) and buffer. The module is unusable after. */
  dispose(): void {
    for (const t of [...this.parameters(), ...this.buffers()]) {
      t.grad?.dispose();
      t.grad = null;
      t.dispose();
    }
  }

  // ------------------------------------------------------------ printing

  /** Extra text shown in {@link Module.toString} between the parentheses. */
  extraRepr(): string {
    return "";
  }

  /** PyTorch-style description: `Sequential(\n  (0): Linear(in_features=784, ...)\n ...)`. */
  toString(): string {
    const kids = this.namedChildren();
    const name = this.constructor.name;
    if (!kids.length) return `${name}(${this.extraRepr()})`;
    const lines = this.extraRepr() ? [this.extraRepr()] : [];
    for (const [k, m] of kids) lines.push(`(${k}): ${m.toString().replaceAll("\n", "\n  ")}`);
    return `${name}(\n  ${lines.join("\n  ")}\n)`;
  }
}

/** Copies `src`'s values into `dst`'s storage (same shape), converting the dtype. */
function copyInto(dst: Tensor, src: Tensor): void {
  if (src === dst || src.storage === dst.storage || dst.size === 0) return;
  const conv = src.dtype === dst.dtype ? src : noGrad(() => cast(src, dst.dtype));
  copyBuffer(conv.storage, 0, dst.storage, 0, dst.size * 4);
  if (conv !== src) conv.dispose();
}

/**
 * A list of sub-modules named `"0"`, `"1"`, ... (PyTorch's `nn.ModuleList`).
 * It has no `forward`: the owner decides how to call its items.
 *
 * @example
 * ```ts
 * import "../../mod.ts";
 * import { ModuleList } from "./module.ts";
 * import { Linear } from "./linear.ts";
 * const blocks = new ModuleList([new Linear(4, 4), new Linear(4, 4)]);
 * console.log(blocks.namedParameters().map(([k]) => k)); // ["0.weight", "0.bias", "1.weight", "1.bias"]
 * ```
 */
export class ModuleList extends Module {
  #length = 0;

  /** @param modules The initial items. */
  constructor(modules: Iterable<Module> = []) {
    super();
    for (const m of modules) this.append(m);
  }

  /** Number of items. */
  get length(): number {
    return this.#length;
  }

  /** Adds a module at the end, named by its index. Returns this. */
  append(module: Module): this {
    if (!(module instanceof Module)) {
      throw new TypeError(`${this.constructor.name}.append(): expected a Module, got ${module}`);
    }
    this.addModule(String(this.#length++), module);
    return this;
  }

  /** The item at `i` (negative counts from the end). */
  at(i: number): Module {
    const k = i < 0 ? i + this.#length : i;
    if (!Number.isInteger(k) || k < 0 || k >= this.#length) {
      throw new RangeError(
        `${this.constructor.name}.at(${i}): index out of range (${this.#length} items)`,
      );
    }
    return (this as unknown as Record<string, Module>)[String(k)];
  }

  /** The items, in order. */
  *[Symbol.iterator](): Iterator<Module> {
    for (let i = 0; i < this.#length; i++) yield this.at(i);
  }

  /** ModuleList is a container, not a layer. */
  forward(_x: Tensor): Tensor {
    throw new Error(`${this.constructor.name} has no forward(); call its items`);
  }
}
