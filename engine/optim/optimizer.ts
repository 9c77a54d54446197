/**
 * The optimizer base class: parameter groups, lazily allocated per-parameter
 * state, `step()` that skips frozen parameters, `zeroGrad()`, and checkpoints.
 *
 * ## State dict format
 *
 * {@link Optimizer.stateDict} returns an {@link OptimizerStateDict}:
 * - `step`: how many times `step()` has run;
 * - `paramSteps`: for each parameter that has been updated at least once, keyed by
 *   its index as a decimal string, the number of updates it received (AdamW's
 *   bias correction uses it; a parameter frozen for a while has fewer);
 * - `buffers`: the state tensors, keyed `"<index>.<name>"`, e.g. `"0.momentum_buffer"`
 *   (SGD) or `"3.exp_avg"`, `"3.exp_avg_sq"` (AdamW), named as in PyTorch. Each has
 *   its parameter's shape and is f32. Parameters that never had a gradient have none;
 * - `lr`: the learning rate of each parameter group, in order.
 *
 * The index of a parameter is its position in the optimizer's parameter list:
 * the groups' `params` concatenated in order. The buffers are a flat
 * `Record<string, Tensor>`, so a checkpoint can write them as safetensors and
 * the rest as JSON metadata.
 *
 * @module
 */

import { fmtShape, keep, Tensor } from "../tensor.ts";
import { copyBuffer } from "../dispatch.ts";

/** Hyperparameters every optimizer has. */
export interface BaseOptions {
  /** Learning rate. */
  lr: number;
}

/** A parameter group as given to a constructor: its parameters and any options to override. */
export type ParamGroupInput<O extends BaseOptions> = Partial<O> & {
  /** The parameters of this group. */
  params: Tensor[];
};

/** A parameter group with every option resolved. Options may be changed between steps. */
export type ParamGroup<O extends BaseOptions> = O & {
  /** The parameters of this group. */
  params: Tensor[];
};

/** Per-parameter optimizer state. */
export interface ParamState {
  /** Updates this parameter has received (1 during its first update). */
  step: number;
  /** State tensors by name (kept, storage category "optimizer"). */
  buffers: Map<string, Tensor>;
}

/** A checkpoint of an optimizer's state; see the module documentation for the format. */
export interface OptimizerStateDict {
  /** Number of `step()` calls. */
  step: number;
  /** Updates received by each parameter that has state, keyed by parameter index. */
  paramSteps: Record<string, number>;
  /** State tensors keyed `"<parameter index>.<buffer name>"`. */
  buffers: Record<string, Tensor>;
  /** Learning rate of each group. */
  lr: number[];
}

/**
 * Base class of the optimizers. Subclasses validate their options and record
 * one fused kernel per parameter in {@link Optimizer.update}.
 *
 * @example
 * ```ts ignore
 * const opt: Optimizer<{ lr: number }> = new SGD(params, { lr: 0.1 });
 * opt.lr = 0.05;
 * ```
 */
export abstract class Optimizer<O extends BaseOptions = BaseOptions> {
  /** The options given to the constructor, with defaults filled in. */
  readonly defaults: Readonly<O>;
  /** The parameter groups. Their options (e.g. `lr`) may be changed between steps. */
  readonly paramGroups: ParamGroup<O>[];
  /** Each group's learning rate at construction (schedules scale from these). */
  readonly baseLrs: readonly number[];
  /** Number of `step()` calls so far. */
  stepCount = 0;
  readonly #params: Tensor[] = [];
  readonly #groupOf: number[] = [];
  readonly #state = new Map<number, ParamState>();
  readonly #name: string;

  /**
   * @param name Shown in errors, e.g. "SGD".
   * @param params Parameters, or parameter groups with their own options.
   * @param defaults Options for every group that does not override them.
   * @param given The options object the user passed (checked for unknown keys).
   */
  protected constructor(
    name: string,
    params: Tensor[] | ParamGroupInput<O>[],
    defaults: O,
    given: object,
  ) {
    this.#name = name;
    for (const k of Object.keys(given)) {
      if (!(k in defaults)) {
        throw new TypeError(
          `${name}: unknown option "${k}" (options: ${Object.keys(defaults).join(", ")})`,
        );
      }
    }
    this.defaults = Object.freeze({ ...defaults });
    if (!Array.isArray(params)) {
      throw new TypeError(`${name}: params must be an array of tensors or of parameter groups`);
    }
    const inputs: ParamGroupInput<O>[] = params.length > 0 && params[0] instanceof Tensor
      ? [{ params: params as Tensor[] } as ParamGroupInput<O>]
      : params as ParamGroupInput<O>[];
    const seen = new Set<Tensor>();
    this.paramGroups = inputs.map((g, gi) => {
      if (!g || !Array.isArray(g.params)) {
        throw new TypeError(
          `${name}: parameter group ${gi} must be {params: Tensor[], ...options}` +
            " (do not mix tensors and groups)",
        );
      }
      const group = { ...defaults } as ParamGroup<O>;
      for (const [k, v] of Object.entries(g)) {
        if (k === "params" || v === undefined) continue;
        if (!(k in defaults)) {
          throw new TypeError(
            `${name}: unknown option "${k}" in parameter group ${gi} (options: ${
              Object.keys(defaults).join(", ")
            })`,
          );
        }
        (group as unknown as Record<string, unknown>)[k] = v;
      }
      group.params = [...g.params];
      this.validate(group, `${name} group ${gi}`);
      for (const p of group.params) {
        if (!(p instanceof Tensor)) {
          throw new TypeError(`${name}: group ${gi} has a parameter that is not a Tensor`);
        }
        if (p.dtype !== "f32") {
          throw new TypeError(`${name}: parameters must be f32, got ${p}`);
        }
        if (seen.has(p)) {
          throw new Error(`${name}: ${p} appears more than once in the parameter list`);
        }
        seen.add(p);
        this.#groupOf.push(gi);
        this.#params.push(p);
      }
      return group;
    });
    this.baseLrs = Object.freeze(this.paramGroups.map((g) => g.lr));
  }

  /** Checks a resolved group's options; throws a RangeError naming `where`. */
  protected abstract validate(group: O, where: string): void;

  /**
   * Records the update of one parameter. `state.step` has already been
   * incremented. Buffers come from {@link Optimizer.buffer}.
   */
  protected abstract update(
    param: Tensor,
    grad: Tensor,
    group: ParamGroup<O>,
    state: ParamState,
  ): void;

  /** Buffer names a parameter with `step > 0` must have, for checkpoint validation. */
  protected abstract requiredBuffers(group: ParamGroup<O>): string[];

  /** Every buffer name this optimizer may create. */
  protected abstract bufferNames(): readonly string[];

  /**
   * The state buffer `name` of a parameter, allocated (uninitialised, kept,
   * category "optimizer") if it does not exist yet; `fresh` tells which.
   */
  protected buffer(
    param: Tensor,
    state: ParamState,
    name: string,
  ): { tensor: Tensor; fresh: boolean } {
    const have = state.buffers.get(name);
    if (have) return { tensor: have, fresh: false };
    const t = keep(Tensor.empty(param.shape, "f32", "optimizer"));
    state.buffers.set(name, t);
    return { tensor: t, fresh: true };
  }

  /** All parameters, in index order (the groups' parameters concatenated). */
  get parameters(): readonly Tensor[] {
    return this.#params;
  }

  /** The first group's learning rate. */
  get lr(): number {
    return this.paramGroups[0]?.lr ?? this.defaults.lr;
  }

  /** Sets the learning rate of every group. */
  set lr(v: number) {
    if (!(v >= 0)) throw new RangeError(`${this.#name}: invalid learning rate ${v}`);
    for (const g of this.paramGroups) g.lr = v;
  }

  /**
   * Updates every parameter that requires grad and has a gradient, with one
   * kernel each. Frozen parameters (requiresGrad false, or no grad) cost
   * nothing: no kernel, and no state until their first gradient arrives.
   */
  step(): void {
    this.stepCount++;
    for (let i = 0; i < this.#params.length; i++) {
      const p = this.#params[i];
      const g = p.grad;
      if (!p.requiresGrad || !g) continue;
      if (g.disposed) {
        throw new Error(
          `${this.#name}.step(): the grad of parameter ${i} (${p}) was disposed; ` +
            "set it to null instead (zeroGrad() does)",
        );
      }
      if (g.dtype !== "f32" || g.shape.join() !== p.shape.join()) {
        throw new RangeError(
          `${this.#name}.step(): parameter ${i} has shape ${fmtShape(p.shape)} but its grad is ` +
            `${g.dtype} ${fmtShape(g.shape)}`,
        );
      }
      let state = this.#state.get(i);
      if (!state) this.#state.set(i, state = { step: 0, buffers: new Map() });
      state.step++;
      if (p.size === 0) continue;
      this.update(p, g, this.paramGroups[this.#groupOf[i]], state);
    }
  }

  /** Drops every parameter's gradient (disposes it and sets `grad` to null). */
  zeroGrad(): void {
    for (const p of this.#params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /**
   * Stops updating `params` and frees what the optimizer holds for them: their
   * gradients are disposed (and set to null) and their state (momentum,
   * Adam's moments) is released, so a frozen layer costs no memory here. They
   * keep their place (indices in {@link Optimizer.stateDict} do not shift);
   * `step()` skips them while `requiresGrad` is false, and state starts afresh
   * if they are ever trained again. Parameters this optimizer does not hold
   * are ignored.
   *
   * @example
   * ```ts
   * import { nn, optim, randn } from "../../mod.ts";
   * const fc = new nn.Linear(4, 2);
   * const opt = new optim.SGD(fc.parameters(), { lr: 0.1, momentum: 0.9 });
   * fc.forward(randn([3, 4])).sum().backward();
   * opt.step();
   * fc.freeze();
   * opt.release(fc.parameters());
   * console.log(opt.stateBytes, fc.weight.grad); // 0 null
   * ```
   */
  release(params: Iterable<Tensor>): void {
    const set = new Set(params);
    for (let i = 0; i < this.#params.length; i++) {
      const p = this.#params[i];
      if (!set.has(p)) continue;
      p.grad?.dispose();
      p.grad = null;
      const s = this.#state.get(i);
      if (!s) continue;
      for (const t of s.buffers.values()) t.dispose();
      this.#state.delete(i);
    }
  }

  /** The state of parameter `index`, if it has any (for tests and inspection). */
  stateOf(index: number): Readonly<ParamState> | undefined {
    return this.#state.get(index);
  }

  /** Bytes of GPU memory held by the optimizer state. */
  get stateBytes(): number {
    let b = 0;
    for (const s of this.#state.values()) for (const t of s.buffers.values()) b += t.size * 4;
    return b;
  }

  /**
   * A checkpoint of the state (format in the module documentation). The
   * tensors are views of the live state, not copies: read or save them before
   * the next `step()`, and dispose them (or let a scope) when done.
   *
   * @example
   * ```ts ignore
   * const sd = opt.stateDict();
   * const arrays = await Promise.all(Object.values(sd.buffers).map((t) => t.toArray()));
   * ```
   */
  stateDict(): OptimizerStateDict {
    const paramSteps: Record<string, number> = {};
    const buffers: Record<string, Tensor> = {};
    const indices = [...this.#state.keys()].sort((a, b) => a - b);
    for (const i of indices) {
      const s = this.#state.get(i)!;
      paramSteps[String(i)] = s.step;
      for (const [name, t] of s.buffers) buffers[`${i}.${name}`] = t.detach();
    }
    return { step: this.stepCount, paramSteps, buffers, lr: this.paramGroups.map((g) => g.lr) };
  }

  /**
   * Replaces the state with a checkpoint's, copying the buffers on the GPU
   * (the given tensors may be disposed afterwards). Validates every key,
   * shape and count first, so a mismatched checkpoint leaves the state as it was.
   *
   * @example
   * ```ts ignore
   * opt2.loadStateDict(opt.stateDict());
   * ```
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const name = `${this.#name}.loadStateDict()`;
    if (!Number.isInteger(sd.step) || sd.step < 0) {
      throw new RangeError(`${name}: invalid step ${sd.step}`);
    }
    if (sd.lr !== undefined && sd.lr.length !== this.paramGroups.length) {
      throw new RangeError(
        `${name}: checkpoint has ${sd.lr.length} parameter groups, this optimizer ${this.paramGroups.length}`,
      );
    }
    const steps = new Map<number, number>();
    for (const [k, v] of Object.entries(sd.paramSteps ?? {})) {
      const i = this.#index(k, name);
      if (!Number.isInteger(v) || v < 0) {
        throw new RangeError(`${name}: invalid step count ${v} for parameter ${k}`);
      }
      steps.set(i, v);
    }
    const known = new Set(this.bufferNames());
    const loaded = new Map<number, Map<string, Tensor>>();
    for (const [key, t] of Object.entries(sd.buffers ?? {})) {
      const m = /^(\d+)\.([A-Za-z_]+)$/.exec(key);
      if (!m || !known.has(m[2])) {
        throw new RangeError(
          `${name}: unexpected buffer "${key}" (expected "<index>.<name>" with name one of ${
            [...known].join(", ")
          })`,
        );
      }
      const i = this.#index(m[1], name);
      const p = this.#params[i];
      if (t.dtype !== "f32" || t.shape.join() !== p.shape.join()) {
        throw new RangeError(
          `${name}: buffer "${key}" is ${t.dtype} ${fmtShape(t.shape)}, ` +
            `parameter ${i} is f32 ${fmtShape(p.shape)}`,
        );
      }
      if (!steps.has(i)) {
        throw new RangeError(`${name}: buffer "${key}" has no entry in paramSteps`);
      }
      let bufs = loaded.get(i);
      if (!bufs) loaded.set(i, bufs = new Map());
      bufs.set(m[2], t);
    }
    for (const [i, step] of steps) {
      if (step === 0) continue;
      for (const b of this.requiredBuffers(this.paramGroups[this.#groupOf[i]])) {
        if (!loaded.get(i)?.has(b)) {
          throw new RangeError(`${name}: parameter ${i} has step ${step} but no buffer "${b}"`);
        }
      }
    }
    // Validated: replace the state.
    const old = this.#state;
    const next = new Map<number, ParamState>();
    for (const [i, step] of steps) {
      const prev = old.get(i);
      const state: ParamState = { step, buffers: new Map() };
      for (const [b, src] of loaded.get(i) ?? []) {
        const reuse = prev?.buffers.get(b);
        if (reuse) prev!.buffers.delete(b);
        const dst = reuse ?? keep(Tensor.empty(src.shape, "f32", "optimizer"));
        // Loading a dict taken from this optimizer: the source is the buffer itself.
        if (src.size > 0 && src.storage !== dst.storage) {
          copyBuffer(src.storage, 0, dst.storage, 0, src.size * 4);
        }
        state.buffers.set(b, dst);
      }
      next.set(i, state);
    }
    for (const s of old.values()) for (const t of s.buffers.values()) t.dispose();
    old.clear();
    for (const [i, s] of next) old.set(i, s);
    this.stepCount = sd.step;
    if (sd.lr !== undefined) sd.lr.forEach((lr, gi) => this.paramGroups[gi].lr = lr);
  }

  /** Frees all optimizer state (the optimizer can still step; state is re-created lazily). */
  dispose(): void {
    for (const s of this.#state.values()) for (const t of s.buffers.values()) t.dispose();
    this.#state.clear();
  }

  /** `using opt = new SGD(...)` support. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  #index(key: string, where: string): number {
    const i = Number(key);
    if (!/^\d+$/.test(key) || i >= this.#params.length) {
      throw new RangeError(
        `${where}: parameter index "${key}" is out of range (this optimizer has ${this.#params.length} parameters)`,
      );
    }
    return i;
  }
}

/** Throws a RangeError unless `v` is a finite number ≥ 0. */
export function checkNonNegative(v: unknown, what: string, where: string): void {
  if (typeof v !== "number" || !(v >= 0) || !Number.isFinite(v)) {
    throw new RangeError(`${where}: invalid ${what} ${v} (expected a finite number ≥ 0)`);
  }
}
