/**
 * Optimizer kernels: one fused, in-place update per optimizer and parameter,
 * and the in-place gradient scaling of `clipGradNorm`.
 *
 * Every hyperparameter (learning rate, momentum, betas, weight decay, bias
 * corrections, the step count) travels in the uniform block, so an LR schedule
 * or a change of hyperparameters never builds a new pipeline. Each update reads
 * the gradient once and reads and writes the parameter and its state once: the
 * whole step is memory-bound at `4·(2 + 2·states)` bytes per element.
 *
 * @module
 */

import type { KernelProgram } from "./program.ts";
import { WG } from "./elementwise.ts";

const LOOP_HEAD = /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let stride = nwg.x * nwg.y * nwg.z * ${WG}u;
  for (var i = (wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y) * ${WG}u + lid; i < u.n; i += stride) {`;

/** Bytes of the SGD uniform block: see {@link sgdUniforms}. */
const SGD_UNIFORM_BYTES = 32;

/**
 * The uniform block of {@link sgdProgram}.
 *
 * @example
 * ```ts
 * import { sgdUniforms } from "./optimizer.ts";
 * const u = sgdUniforms({ n: 10, first: true, nesterov: false, lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0 });
 * console.log(u.byteLength); // 32
 * ```
 */
export function sgdUniforms(o: {
  n: number;
  first: boolean;
  nesterov: boolean;
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
}): Uint8Array {
  const buf = new ArrayBuffer(SGD_UNIFORM_BYTES);
  const u32 = new Uint32Array(buf);
  const f32 = new Float32Array(buf);
  u32[0] = o.n;
  u32[1] = o.first ? 1 : 0;
  u32[2] = o.nesterov ? 1 : 0;
  f32[3] = o.lr;
  f32[4] = o.momentum;
  // 1 - dampening is formed in f64 here, as PyTorch forms its `alpha` in Python.
  f32[5] = 1 - o.dampening;
  f32[6] = o.weightDecay;
  return new Uint8Array(buf);
}

/**
 * SGD with PyTorch's semantics (`torch.optim.SGD`), in place:
 * `d = g + wd·p`; with momentum, `buf = d` on the first step and
 * `buf = μ·buf + (1 − dampening)·d` after, then `d = d + μ·buf` (Nesterov) or
 * `d = buf`; finally `p -= lr·d`.
 *
 * Bindings: `grad` (read); `param`, and `buf` when `momentum`, (read_write).
 * `momentum` selects the variant with a momentum buffer; whether this is the
 * buffer's first step and whether Nesterov is on are uniforms. `vec`: every
 * binding is read as vec4s (`n`, a multiple of 4, is passed divided by 4), a
 * quarter of the storage accesses for the same bytes.
 */
export function sgdProgram(momentum: boolean, vec = false): KernelProgram {
  const a = vec ? "array<vec4<f32>>" : "array<f32>";
  const state = momentum
    ? `var b = d;
    if (u.first == 0u) { b = u.momentum * buf[i] + u.damp * d; }
    buf[i] = b;
    if (u.nesterov != 0u) { d = d + u.momentum * b; } else { d = b; }`
    : "";
  return {
    name: momentum ? "sgd_momentum" : "sgd",
    key: `optim_sgd_${momentum}_${vec}`,
    inputs: 1,
    outputs: momentum ? 2 : 1,
    uniforms: true,
    wgsl: () =>
      `struct U { n: u32, first: u32, nesterov: u32, lr: f32, momentum: f32, damp: f32, wd: f32 }
@group(0) @binding(0) var<storage, read> grad: ${a};
@group(0) @binding(1) var<storage, read_write> param: ${a};
${momentum ? `@group(0) @binding(2) var<storage, read_write> buf: ${a};` : ""}
@group(0) @binding(${momentum ? 3 : 2}) var<uniform> u: U;
${LOOP_HEAD}
    let p = param[i];
    var d = grad[i] + u.wd * p;
    ${state}
    param[i] = p - u.lr * d;
  }
}`,
  };
}

/** Bytes of the AdamW uniform block: see {@link adamwUniforms}. */
const ADAMW_UNIFORM_BYTES = 48;

/**
 * The uniform block of {@link adamwProgram} for step `step` (1-based, counted
 * per parameter as PyTorch does).
 *
 * The derived scalars are formed in f64 here, as PyTorch forms them in Python:
 * in f32, `1 − 0.999` is off by 1.3e-5 relative and `1 − 0.999^t` by more, which
 * would show directly in the update.
 *
 * @example
 * ```ts
 * import { adamwUniforms } from "./optimizer.ts";
 * const u = adamwUniforms({ n: 10, step: 1, lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
 * console.log(u.byteLength); // 48
 * ```
 */
export function adamwUniforms(o: {
  n: number;
  step: number;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}): Uint8Array {
  const buf = new ArrayBuffer(ADAMW_UNIFORM_BYTES);
  const u32 = new Uint32Array(buf);
  const f32 = new Float32Array(buf);
  u32[0] = o.n;
  u32[1] = o.step;
  f32[2] = 1 - o.lr * o.weightDecay;
  f32[3] = o.beta1;
  f32[4] = 1 - o.beta1;
  f32[5] = o.beta2;
  f32[6] = 1 - o.beta2;
  f32[7] = o.lr / (1 - o.beta1 ** o.step);
  f32[8] = Math.sqrt(1 - o.beta2 ** o.step);
  f32[9] = o.eps;
  return new Uint8Array(buf);
}

/**
 * AdamW with PyTorch's semantics (`torch.optim.AdamW`, decoupled weight decay),
 * in place: `p *= 1 − lr·wd`; `m = β₁m + (1−β₁)g`; `v = β₂v + (1−β₂)g²`;
 * `p -= (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)`.
 *
 * Bindings: `grad` (read); `param`, `m`, `v` (read_write). On a parameter's
 * first step (`u.step == 1`) the state is read as zeros, so freshly allocated
 * state needs no fill. `vec`: vec4 bindings, as {@link sgdProgram}.
 */
export function adamwProgram(vec = false): KernelProgram {
  const a = vec ? "array<vec4<f32>>" : "array<f32>";
  const T = vec ? "vec4<f32>" : "f32";
  return {
    name: "adamw",
    key: `optim_adamw_${vec}`,
    inputs: 1,
    outputs: 3,
    uniforms: true,
    wgsl: () =>
      `struct U { n: u32, step: u32, decay: f32, b1: f32, c1: f32, b2: f32, c2: f32, stepSize: f32, bc2Sqrt: f32, eps: f32 }
@group(0) @binding(0) var<storage, read> grad: ${a};
@group(0) @binding(1) var<storage, read_write> param: ${a};
@group(0) @binding(2) var<storage, read_write> m: ${a};
@group(0) @binding(3) var<storage, read_write> v: ${a};
@group(0) @binding(4) var<uniform> u: U;
${LOOP_HEAD}
    let g = grad[i];
    var m0 = ${T}(0.0);
    var v0 = ${T}(0.0);
    if (u.step > 1u) { m0 = m[i]; v0 = v[i]; }
    let m1 = u.b1 * m0 + u.c1 * g;
    let v1 = u.b2 * v0 + u.c2 * g * g;
    m[i] = m1;
    v[i] = v1;
    let denom = sqrt(v1) / u.bc2Sqrt + u.eps;
    param[i] = param[i] * u.decay - u.stepSize * m1 / denom;
  }
}`,
  };
}

/**
 * `grad *= min(1, maxNorm / (norm + 1e-6))` in place, reading the norm from a
 * one-element buffer so that clipping needs no read-back (as
 * `torch.nn.utils.clip_grad_norm_`).
 *
 * Bindings: `norm` (read, one f32); `grad` (read_write). Uniforms `{n, maxNorm}`.
 */
export function clipScaleProgram(): KernelProgram {
  return {
    name: "clip_grad_scale",
    key: "optim_clip_scale",
    inputs: 1,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `struct U { n: u32, maxNorm: f32 }
@group(0) @binding(0) var<storage, read> norm: array<f32>;
@group(0) @binding(1) var<storage, read_write> grad: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
${LOOP_HEAD}
    let coef = min(1.0, u.maxNorm / (norm[0] + 1e-6));
    grad[i] = grad[i] * coef;
  }
}`,
  };
}
