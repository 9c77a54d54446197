/**
 * Batch-normalisation kernels over `[N, C, S]` (NCHW with `S = H·W`).
 *
 * Forward (training): {@link bnStatsProgram} reduces each channel's `N·S`
 * values in `P` parts (Welford per invocation, Chan's pairwise merge across
 * the workgroup, so the variance does not suffer the cancellation of
 * `E[x²] − E[x]²`), then {@link bnFinalizeProgram} merges the parts, writes
 * the saved mean and `rstd = 1/√(var + eps)`, the per-channel affine
 * coefficients `scale = w·rstd`, `shift = b − mean·scale`, and updates the
 * running statistics in place; {@link bnAffineProgram} then computes
 * `y = x·scale + shift` (one load of x and two of coefficients per element,
 * instead of five with mean, rstd, w and b).
 *
 * Backward: {@link bnGradStatsProgram} reduces `Σg` and `Σg·(x − mean)` per
 * channel in parts; {@link bnGradFinalizeProgram} turns them into `dweight`,
 * `dbias` and the coefficients of `dx = A·g + B·x + K`, which is
 * `w·rstd·(g − mean(g) − x̂·mean(g·x̂))` rearranged so that
 * {@link bnDxProgram} reads only g, x and three numbers per channel.
 *
 * Fused activation and residual: the apply pass can add a residual tensor and
 * apply ReLU (`y = relu(x·scale + shift + r)`, ResNet's block ends), and the
 * gradient statistics pass then masks `g` by `y > 0` and writes the masked
 * gradient `gz` (the residual's gradient, and what the dx pass reads). A
 * ResNet block end thus takes 4 passes over memory forward and 7 backward
 * instead of 8 and 8 for batch norm, add and ReLU apart.
 *
 * Vector variants (`vec`): when a plane's size `S` is a multiple of 4, every
 * pass loads and stores `vec4<f32>` (4 neighbouring pixels of one plane), with
 * `S` and `M` in the uniforms counted in vec4s (why: `vecLanes` in
 * engine/dispatch.ts).
 *
 * @module
 */

import { isNanWgsl, type KernelProgram } from "./program.ts";

/** Invocations per workgroup of the reduction kernels. */
export const BN_WG = 64;

/**
 * Uniform block of every batch-norm kernel (32 bytes): sizes `N, C, S`, the
 * number of parts `P` per channel, `M = N·S`, elements per part `chunk`, then
 * `eps` and `momentum` as f32.
 */
export function bnUniforms(
  o: { N: number; C: number; S: number; P: number; chunk: number; eps: number; momentum: number },
): Uint8Array {
  const b = new ArrayBuffer(32);
  const u = new Uint32Array(b);
  const f = new Float32Array(b);
  u.set([o.N, o.C, o.S, o.P, o.N * o.S, o.chunk]);
  f[6] = o.eps;
  f[7] = o.momentum;
  return new Uint8Array(b);
}

const U = /* wgsl */ `
struct U { N: u32, C: u32, S: u32, P: u32, M: u32, chunk: u32, eps: f32, momentum: f32 }
`;

/** Element type of the streaming passes: 4 pixels of a plane (vec) or one. */
const elem = (vec: boolean) => (vec ? "vec4<f32>" : "f32");

/** `T(...)` constructors, NaN test and ReLU for the element type (NaN passes through ReLU). */
const helpers = (vec: boolean) =>
  `alias T = ${elem(vec)};
${isNanWgsl("f32", vec)}
fn relu_(v: T) -> T { return select(select(v, T(0.0), v < T(0.0)), v, isNan_(v)); }
fn sum_(v: T) -> f32 { return ${vec ? "dot(v, vec4<f32>(1.0))" : "v"}; }
`;

/** Options of the fused streaming passes. */
export interface BnPassVariant {
  /** Load and store vec4 (the plane size is a multiple of 4; uniforms count vec4s). */
  vec: boolean;
  /** ReLU after the affine (forward), or the ReLU mask from `y` (backward). */
  relu: boolean;
  /** A residual tensor is added before the ReLU (forward only). */
  residual: boolean;
}

/** Binding declarations: inputs read-only, outputs read-write, then the uniforms. */
function bindings(inputs: [string, string][], outputs: [string, string][]): string {
  const lines = [
    ...inputs.map(([n, t], i) => `@group(0) @binding(${i}) var<storage, read> ${n}: array<${t}>;`),
    ...outputs.map(([n, t], i) =>
      `@group(0) @binding(${inputs.length + i}) var<storage, read_write> ${n}: array<${t}>;`
    ),
    `@group(0) @binding(${inputs.length + outputs.length}) var<uniform> u: U;`,
  ];
  return lines.join("\n");
}

/**
 * Advances `(b, s)`, the batch index and plane offset of element `j` of a
 * channel, by one workgroup stride: a division only when `s` leaves the plane
 * (every `S / BN_WG` steps), not per element.
 */
const step = (b: string) =>
  `s += ${BN_WG}u; if (s >= u.S) { let q = s / u.S; ${b} += q; s -= q * u.S; }`;

/**
 * Per-channel partial statistics: workgroup `(p, c)` reduces elements
 * `[p·chunk, (p+1)·chunk)` of channel c to `(count, mean, M2)` at
 * `part[(c·P + p)·3]`.
 */
export function bnStatsProgram(vec = false): KernelProgram {
  return {
    name: "batch_norm_stats",
    key: `bn_stats_${vec}`,
    inputs: 1,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `${U}
${helpers(vec)}
${bindings([["x", elem(vec)]], [["part", "f32"]])}
var<workgroup> sc: array<f32, ${BN_WG}>;
var<workgroup> sm: array<f32, ${BN_WG}>;
var<workgroup> sq: array<f32, ${BN_WG}>;
@compute @workgroup_size(${BN_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let p = wid.x;
  let c = wid.y;
  let j0 = p * u.chunk;
  let j1 = min(j0 + u.chunk, u.M);
  var n = 0.0;
  var mean = T(0.0);
  var m2 = T(0.0);
  var j = j0 + lid;
  var b = j / u.S;
  var s = j - b * u.S;
  for (; j < j1; j += ${BN_WG}u) {
    let v = x[(b * u.C + c) * u.S + s];
    ${step("b")}
    n += 1.0;
    let d = v - mean;
    mean += d / n;
    m2 += d * (v - mean);
  }
  ${
        vec
          ? `// The 4 components are 4 groups of n values each: merge them (Chan et al.).
  let mm = dot(mean, vec4<f32>(0.25));
  let dm = mean - vec4<f32>(mm);
  sc[lid] = 4.0 * n;
  sm[lid] = mm;
  sq[lid] = dot(m2, vec4<f32>(1.0)) + n * dot(dm, dm);`
          : `sc[lid] = n;
  sm[lid] = mean;
  sq[lid] = m2;`
      }
  workgroupBarrier();
  for (var s = ${BN_WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s && sc[lid + s] > 0.0) {
      let na = sc[lid];
      let nb = sc[lid + s];
      let nn = na + nb;
      let d = sm[lid + s] - sm[lid];
      sm[lid] += d * (nb / nn);
      sq[lid] += sq[lid + s] + d * d * (na * nb / nn);
      sc[lid] = nn;
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let o = (c * u.P + p) * 3u;
    part[o] = sc[0];
    part[o + 1u] = sm[0];
    part[o + 2u] = sq[0];
  }
}`,
  };
}

/** Variant flags of {@link bnFinalizeProgram}. */
export interface BnFinalizeVariant {
  /** A weight is bound. */
  weight: boolean;
  /** A bias is bound. */
  bias: boolean;
  /** Running mean/var are bound and updated. */
  running: boolean;
  /** A num-batches-tracked i32 counter is bound and incremented. */
  counter: boolean;
  /** Momentum is `1 / count` (cumulative average) instead of `u.momentum`. */
  cumulative: boolean;
}

/**
 * Merges the parts of each channel (one workgroup loops over channels, so
 * that reading and incrementing the batch counter need no cross-workgroup
 * ordering) and writes mean, rstd, the affine coefficients and the running
 * statistics (`running = (1 − m)·running + m·batch`, with the unbiased batch
 * variance, as PyTorch).
 */
export function bnFinalizeProgram(v: BnFinalizeVariant): KernelProgram {
  const inputs: [string, string][] = [["part", "f32"]];
  if (v.weight) inputs.push(["w", "f32"]);
  if (v.bias) inputs.push(["b", "f32"]);
  const outputs: [string, string][] = [["meanOut", "f32"], ["rstdOut", "f32"], ["coef", "f32"]];
  if (v.running) outputs.push(["rm", "f32"], ["rv", "f32"]);
  if (v.counter) outputs.push(["nbt", "i32"]);
  return {
    name: "batch_norm_finalize",
    key: `bn_finalize_${v.weight}_${v.bias}_${v.running}_${v.counter}_${v.cumulative}`,
    inputs: inputs.length,
    outputs: outputs.length,
    uniforms: true,
    wgsl: () =>
      `${U}
${bindings(inputs, outputs)}
@compute @workgroup_size(${BN_WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  ${v.counter ? "let prev = nbt[0];\n  storageBarrier();" : ""}
  let m = ${v.cumulative ? "1.0 / f32(prev + 1)" : "u.momentum"};
  for (var c = lid; c < u.C; c += ${BN_WG}u) {
    var n = 0.0;
    var mean = 0.0;
    var m2 = 0.0;
    for (var p = 0u; p < u.P; p++) {
      let o = (c * u.P + p) * 3u;
      let nb = part[o];
      if (nb == 0.0) { continue; }
      let nn = n + nb;
      let d = part[o + 1u] - mean;
      mean += d * (nb / nn);
      m2 += part[o + 2u] + d * d * (n * nb / nn);
      n = nn;
    }
    let r = 1.0 / sqrt(m2 / n + u.eps);
    meanOut[c] = mean;
    rstdOut[c] = r;
    let scale = ${v.weight ? "w[c] * r" : "r"};
    coef[2u * c] = scale;
    coef[2u * c + 1u] = ${v.bias ? "b[c]" : "0.0"} - mean * scale;
    ${
        v.running
          ? `rm[c] = (1.0 - m) * rm[c] + m * mean;
    rv[c] = (1.0 - m) * rv[c] + m * (m2 / (n - 1.0));`
          : ""
      }
  }
  ${v.counter ? "storageBarrier();\n  if (lid == 0u) { nbt[0] = prev + 1; }" : ""}
}`,
  };
}

/** Eval mode: mean, rstd and affine coefficients from the running statistics. */
export function bnEvalStatsProgram(v: { weight: boolean; bias: boolean }): KernelProgram {
  const inputs: [string, string][] = [["rm", "f32"], ["rv", "f32"]];
  if (v.weight) inputs.push(["w", "f32"]);
  if (v.bias) inputs.push(["b", "f32"]);
  return {
    name: "batch_norm_eval_stats",
    key: `bn_eval_stats_${v.weight}_${v.bias}`,
    inputs: inputs.length,
    outputs: 3,
    uniforms: true,
    wgsl: () =>
      `${U}
${bindings(inputs, [["meanOut", "f32"], ["rstdOut", "f32"], ["coef", "f32"]])}
@compute @workgroup_size(${BN_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= u.C) { return; }
  let mean = rm[c];
  let r = 1.0 / sqrt(rv[c] + u.eps);
  meanOut[c] = mean;
  rstdOut[c] = r;
  let scale = ${v.weight ? "w[c] * r" : "r"};
  coef[2u * c] = scale;
  coef[2u * c + 1u] = ${v.bias ? "b[c]" : "0.0"} - mean * scale;
}`,
  };
}

const LOOP = /* wgsl */ `
@compute @workgroup_size(${BN_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let n = u.M * u.C;
  let stride = nwg.x * nwg.y * nwg.z * ${BN_WG}u;
  for (var i = (wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y) * ${BN_WG}u + lid; i < n; i += stride) {
    let c = (i / u.S) % u.C;`;

/** Elements each invocation of the per-plane schedule handles. */
export const BN_PER_THREAD = 4;

/**
 * Per-plane schedule of the elementwise passes: workgroup `(x, y + z·nwg.y)`
 * covers `BN_WG·BN_PER_THREAD` elements of plane `(n, c)`, so the channel's
 * coefficients are loaded once per invocation instead of once per element
 * and no division recovers the channel. For planes smaller than a workgroup
 * (`S < BN_WG`, e.g. 1×1 maps) most lanes would idle: the flat schedule
 * (one element per step, channel from `(i / S) % C`) serves those.
 */
const PLANE = /* wgsl */ `
@compute @workgroup_size(${BN_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let plane = wid.y + wid.z * nwg.y;
  if (plane >= u.N * u.C) { return; }
  let c = plane % u.C;
  let base = plane * u.S;
  let s0 = wid.x * ${BN_WG * BN_PER_THREAD}u + lid;`;

/**
 * `y = x·coef[2c] + coef[2c + 1]`: normalisation, and dx in eval mode
 * (`backward` only renames it, so that the profiler tells the passes apart);
 * with `residual`, `+ r`, and with `relu`, ReLU of the sum.
 */
export function bnAffineProgram(
  perPlane: boolean,
  backward = false,
  v: BnPassVariant = { vec: false, relu: false, residual: false },
): KernelProgram {
  const t = elem(v.vec);
  const inputs: [string, string][] = [["x", t], ["coef", "f32"]];
  if (v.residual) inputs.push(["r", t]);
  const value = (i: string, a: string, b: string) => {
    const z = `x[${i}] * ${a} + ${b}${v.residual ? ` + r[${i}]` : ""}`;
    return v.relu ? `relu_(${z})` : z;
  };
  return {
    name: backward ? "batch_norm_backward" : v.relu ? "batch_norm_relu" : "batch_norm_apply",
    key: `bn_affine_${perPlane}_${backward}_${v.vec}_${v.relu}_${v.residual}`,
    inputs: inputs.length,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      perPlane
        ? `${U}
${helpers(v.vec)}
${bindings(inputs, [["y", t]])}
${PLANE}
  let a = coef[2u * c];
  let b = coef[2u * c + 1u];
  for (var k = 0u; k < ${BN_PER_THREAD}u; k++) {
    let s = s0 + k * ${BN_WG}u;
    if (s < u.S) { y[base + s] = ${value("base + s", "a", "b")}; }
  }
}`
        : `${U}
${helpers(v.vec)}
${bindings(inputs, [["y", t]])}
${LOOP}
    y[i] = ${value("i", "coef[2u * c]", "coef[2u * c + 1u]")};
  }
}`,
  };
}

/**
 * Per-channel partial gradient sums `(Σg, Σg·(x − mean))` at
 * `part[(c·P + p)·2]`; without x only `Σg` is meaningful (the second is 0).
 * With `relu`, `g` is first masked by `y > 0` (y the fused forward's output)
 * and the masked gradient is written to `gz`.
 */
export function bnGradStatsProgram(
  withX: boolean,
  v: { vec: boolean; relu: boolean } = { vec: false, relu: false },
): KernelProgram {
  const t = elem(v.vec);
  const inputs: [string, string][] = [["g", t]];
  if (withX) inputs.push(["x", t], ["mean", "f32"]);
  if (v.relu) inputs.push(["y", t]);
  const outputs: [string, string][] = [["part", "f32"]];
  if (v.relu) outputs.push(["gz", t]);
  return {
    name: "batch_norm_grad_stats",
    key: `bn_grad_stats_${withX}_${v.vec}_${v.relu}`,
    inputs: inputs.length,
    outputs: outputs.length,
    uniforms: true,
    wgsl: () =>
      `${U}
${helpers(v.vec)}
${bindings(inputs, outputs)}
var<workgroup> s1: array<f32, ${BN_WG}>;
var<workgroup> s2: array<f32, ${BN_WG}>;
@compute @workgroup_size(${BN_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let p = wid.x;
  let c = wid.y;
  let j0 = p * u.chunk;
  let j1 = min(j0 + u.chunk, u.M);
  ${withX ? "let mu = T(mean[c]);" : ""}
  var a = T(0.0);
  var b = T(0.0);
  var j = j0 + lid;
  var bi = j / u.S;
  var s = j - bi * u.S;
  for (; j < j1; j += ${BN_WG}u) {
    let o = (bi * u.C + c) * u.S + s;
    ${step("bi")}
    ${
        v.relu
          ? `let yv = y[o];
    let gv = select(T(0.0), g[o], (yv > T(0.0)) & !isNan_(yv));
    gz[o] = gv;`
          : "let gv = g[o];"
      }
    a += gv;
    ${withX ? "b += gv * (x[o] - mu);" : ""}
  }
  s1[lid] = sum_(a);
  s2[lid] = sum_(b);
  workgroupBarrier();
  for (var s = ${BN_WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      s1[lid] += s1[lid + s];
      s2[lid] += s2[lid + s];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let o = (c * u.P + p) * 2u;
    part[o] = s1[0];
    part[o + 1u] = s2[0];
  }
}`,
  };
}

/** Variant flags of {@link bnGradFinalizeProgram}. */
export interface BnGradFinalizeVariant {
  /** Batch statistics were used (dx has the mean terms); else running ones. */
  training: boolean;
  /** Partial sums are bound (needed for dweight, dbias and training dx). */
  stats: boolean;
  /** A weight is bound. */
  weight: boolean;
  /** Write dx coefficients: `(A, B, K)` per channel in training, `(A, 0)` in eval. */
  dx: boolean;
  /** Write dweight. */
  dw: boolean;
  /** Write dbias. */
  db: boolean;
}

/** Per channel: sums the parts, writes dweight/dbias and the dx coefficients. */
export function bnGradFinalizeProgram(v: BnGradFinalizeVariant): KernelProgram {
  const inputs: [string, string][] = [];
  if (v.stats) inputs.push(["part", "f32"]);
  inputs.push(["mean", "f32"], ["rstd", "f32"]);
  if (v.weight) inputs.push(["w", "f32"]);
  const outputs: [string, string][] = [];
  if (v.dx) outputs.push(["coef", "f32"]);
  if (v.dw) outputs.push(["dw", "f32"]);
  if (v.db) outputs.push(["db", "f32"]);
  const k = v.training ? 3 : 2;
  return {
    name: "batch_norm_grad_finalize",
    key: `bn_grad_finalize_${v.training}_${v.stats}_${v.weight}_${v.dx}_${v.dw}_${v.db}`,
    inputs: inputs.length,
    outputs: outputs.length,
    uniforms: true,
    wgsl: () =>
      `${U}
${bindings(inputs, outputs)}
@compute @workgroup_size(${BN_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= u.C) { return; }
  var sg = 0.0;
  var sgx = 0.0;
  ${
        v.stats
          ? `for (var p = 0u; p < u.P; p++) {
    sg += part[(c * u.P + p) * 2u];
    sgx += part[(c * u.P + p) * 2u + 1u];
  }`
          : ""
      }
  let r = rstd[c];
  ${v.dw ? "dw[c] = sgx * r;" : ""}
  ${v.db ? "db[c] = sg;" : ""}
  let a = ${v.weight ? "w[c] * r" : "r"};
  ${
        !v.dx ? "" : v.training
          ? `let inv = 1.0 / f32(u.M);
  let bb = -a * r * r * sgx * inv;
  coef[${k}u * c] = a;
  coef[${k}u * c + 1u] = bb;
  coef[${k}u * c + 2u] = -bb * mean[c] - a * sg * inv;`
          : `coef[${k}u * c] = a;
  coef[${k}u * c + 1u] = 0.0;`
      }
}`,
  };
}

/** Training-mode `dx = A·g + B·x + K` with `(A, B, K)` per channel. */
export function bnDxProgram(perPlane: boolean, vec = false): KernelProgram {
  const t = elem(vec);
  const io = bindings([["g", t], ["x", t], ["coef", "f32"]], [["dx", t]]);
  return {
    name: "batch_norm_backward",
    key: `bn_dx_${perPlane}_${vec}`,
    inputs: 3,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      perPlane
        ? `${U}
${helpers(vec)}
${io}
${PLANE}
  let a = coef[3u * c];
  let b = coef[3u * c + 1u];
  let k0 = coef[3u * c + 2u];
  for (var k = 0u; k < ${BN_PER_THREAD}u; k++) {
    let s = s0 + k * ${BN_WG}u;
    if (s < u.S) { dx[base + s] = a * g[base + s] + b * x[base + s] + k0; }
  }
}`
        : `${U}
${helpers(vec)}
${io}
${LOOP}
    dx[i] = coef[3u * c] * g[i] + coef[3u * c + 1u] * x[i] + coef[3u * c + 2u];
  }
}`,
  };
}
