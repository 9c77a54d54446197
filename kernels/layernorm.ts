/**
 * Layer-normalisation kernels over the last axis of a `[rows, C]` view.
 *
 * Forward ({@link lnForwardProgram}): a 64-lane workgroup handles `64 / T`
 * rows with `T` lanes per row (`T` a power of two chosen by the op from C,
 * so that short rows do not leave most lanes idle). Each lane runs Welford
 * over its columns `t, t + T, ...` and the lanes of a row merge their
 * `(count, mean, M2)` with Chan's pairwise formula in workgroup memory: no
 * `E[x²] − E[x]²` cancellation for rows with a large mean. The same lanes
 * then write `y = (x − mean)·rstd·w + b` and lane 0 saves the row's mean and
 * `rstd = 1/√(var + eps)` for backward.
 *
 * Backward, dx ({@link lnDxProgram}), on the same row schedule: one pass
 * reduces `Σ w·g` and `Σ w·g·x̂` per row (x̂ from the saved mean and rstd,
 * no statistics are recomputed) and a second writes
 * `dx = rstd·(w·g − mean(w·g) − x̂·mean(w·g·x̂))`.
 *
 * Backward, dweight = `Σ_rows g·x̂` and dbias = `Σ_rows g` (column sums): rows
 * split into `P` parts ({@link lnParamPartsProgram}: workgroup `(b, p)` sums
 * rows `[p·chunk, (p+1)·chunk)` of 256 columns, 4 per lane, so the saved
 * mean/rstd loads are shared by 4 elements), then {@link lnColumnSumProgram}
 * adds the parts (in further levels while more than `chunk` remain). With
 * `P = 1` the first kernel writes the gradients directly. The order of every
 * sum is fixed, so results are reproducible run to run.
 *
 * Every loop is bounded by the op (at most 1024 iterations per invocation:
 * `C ≤ 64·1024`, `chunk ≤ 1024`) and there are no early returns before a
 * barrier: lanes past the last row run with empty loops.
 *
 * @module
 */

import type { KernelProgram } from "./program.ts";

/** Invocations per workgroup of every layer-norm kernel. */
export const LN_WG = 64;
/** Columns each lane of {@link lnParamPartsProgram} accumulates. */
export const LN_COLS_PER_LANE = 4;
/** Columns one workgroup of {@link lnParamPartsProgram} covers. */
export const LN_PARAM_TILE = LN_WG * LN_COLS_PER_LANE;

/**
 * Uniform block of the layer-norm kernels (32 bytes): `rows`, `C`, lanes
 * per row `T` and `log2 T`, `eps` (f32), rows (or parts) per part `chunk`,
 * the number of parts `P` being summed, and the width `W` of a partial-sum
 * row (`K·C` for K sums).
 */
export function lnUniforms(
  o: { rows: number; C: number; T?: number; eps?: number; chunk?: number; P?: number; W?: number },
): Uint8Array {
  const b = new ArrayBuffer(32);
  const u = new Uint32Array(b);
  const T = o.T ?? 1;
  u.set([o.rows, o.C, T, Math.log2(T), 0, o.chunk ?? 0, o.P ?? 0, o.W ?? 0]);
  new Float32Array(b)[4] = o.eps ?? 0;
  return new Uint8Array(b);
}

const U = /* wgsl */ `
struct U { rows: u32, C: u32, T: u32, logT: u32, eps: f32, chunk: u32, P: u32, W: u32 }
`;

/** Binding declarations: inputs read-only, outputs read-write, then the uniforms. */
function bindings(inputs: string[], outputs: string[]): string {
  return [
    ...inputs.map((n, i) => `@group(0) @binding(${i}) var<storage, read> ${n}: array<f32>;`),
    ...outputs.map((n, i) =>
      `@group(0) @binding(${inputs.length + i}) var<storage, read_write> ${n}: array<f32>;`
    ),
    `@group(0) @binding(${inputs.length + outputs.length}) var<uniform> u: U;`,
  ].join("\n");
}

/**
 * Row schedule shared by forward and dx: `row`, lane `t` within the row,
 * `lead` (the row's first lane), `base` (offset of the row) and `end`
 * (C, or 0 past the last row so that the column loops are empty).
 */
const ROW_SCHEDULE = /* wgsl */ `
@compute @workgroup_size(${LN_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let grp = wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y;
  let row = grp * (${LN_WG}u >> u.logT) + (lid >> u.logT);
  let t = lid & (u.T - 1u);
  let lead = lid - t;
  let valid = row < u.rows;
  let base = select(0u, row * u.C, valid);
  let end = select(0u, u.C, valid);`;

/** Variant flags of {@link lnForwardProgram}. */
export interface LnForwardVariant {
  /** A `[C]` weight is bound. */
  weight: boolean;
  /** A `[C]` bias is bound. */
  bias: boolean;
}

/**
 * Forward: `y`, and the per-row `mean` and `rstd` saved for backward.
 * Inputs `x, [w], [b]`; outputs `y, mean, rstd`.
 */
export function lnForwardProgram(v: LnForwardVariant): KernelProgram {
  const inputs = ["x", ...(v.weight ? ["w"] : []), ...(v.bias ? ["b"] : [])];
  const scale = v.weight ? " * w[j]" : "";
  const shift = v.bias ? " + b[j]" : "";
  return {
    name: "layer_norm",
    key: `layer_norm_${v.weight}_${v.bias}`,
    inputs: inputs.length,
    outputs: 3,
    uniforms: true,
    wgsl: () =>
      `${U}
${bindings(inputs, ["y", "meanOut", "rstdOut"])}
var<workgroup> sc: array<f32, ${LN_WG}>;
var<workgroup> sm: array<f32, ${LN_WG}>;
var<workgroup> sq: array<f32, ${LN_WG}>;
${ROW_SCHEDULE}
  var n = 0.0;
  var mean = 0.0;
  var m2 = 0.0;
  for (var j = t; j < end; j += u.T) {
    let v = x[base + j];
    n += 1.0;
    let d = v - mean;
    mean += d / n;
    m2 += d * (v - mean);
  }
  sc[lid] = n;
  sm[lid] = mean;
  sq[lid] = m2;
  workgroupBarrier();
  for (var s = u.T >> 1u; s > 0u; s = s >> 1u) {
    if (t < s && sc[lid + s] > 0.0) {
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
  let mu = sm[lead];
  let r = 1.0 / sqrt(max(sq[lead], 0.0) / f32(u.C) + u.eps);
  if (valid && t == 0u) {
    meanOut[row] = mu;
    rstdOut[row] = r;
  }
  for (var j = t; j < end; j += u.T) {
    y[base + j] = (x[base + j] - mu) * r${scale}${shift};
  }
}`,
  };
}

/**
 * dx from `g, x, mean, rstd, [w]`:
 * `dx = rstd·(w·g − mean(w·g) − x̂·mean(w·g·x̂))` per row.
 */
export function lnDxProgram(v: { weight: boolean }): KernelProgram {
  const inputs = ["g", "x", "mean", "rstd", ...(v.weight ? ["w"] : [])];
  const gw = v.weight ? "g[base + j] * w[j]" : "g[base + j]";
  return {
    name: "layer_norm_backward",
    key: `layer_norm_dx_${v.weight}`,
    inputs: inputs.length,
    outputs: 1,
    uniforms: true,
    wgsl: () =>
      `${U}
${bindings(inputs, ["dx"])}
var<workgroup> s1: array<f32, ${LN_WG}>;
var<workgroup> s2: array<f32, ${LN_WG}>;
${ROW_SCHEDULE}
  let rr = select(0u, row, valid);
  let mu = mean[rr];
  let r = rstd[rr];
  var a = 0.0;
  var b = 0.0;
  for (var j = t; j < end; j += u.T) {
    let gv = ${gw};
    a += gv;
    b += gv * ((x[base + j] - mu) * r);
  }
  s1[lid] = a;
  s2[lid] = b;
  workgroupBarrier();
  for (var s = u.T >> 1u; s > 0u; s = s >> 1u) {
    if (t < s) {
      s1[lid] += s1[lid + s];
      s2[lid] += s2[lid + s];
    }
    workgroupBarrier();
  }
  let inv = 1.0 / f32(u.C);
  let c1 = s1[lead] * inv;
  let c2 = s2[lead] * inv;
  for (var j = t; j < end; j += u.T) {
    let xh = (x[base + j] - mu) * r;
    dx[base + j] = r * (${gw} - c1 - xh * c2);
  }
}`,
  };
}

/** Variant flags of {@link lnParamPartsProgram} and {@link lnColumnSumProgram}. */
export interface LnParamVariant {
  /** Compute `Σ g·x̂` (dweight). */
  dw: boolean;
  /** Compute `Σ g` (dbias). */
  db: boolean;
  /**
   * Write the sums to one `[C]` output per gradient (dweight, then dbias)
   * instead of a `[parts, K·C]` partial-sum tensor.
   */
  final: boolean;
}

/** Output bindings and the WGSL that stores sum `k` of column `c` (value `val`). */
function sumOutputs(v: LnParamVariant): { outputs: string[]; store: (k: number) => string } {
  const names = [...(v.dw ? ["dw"] : []), ...(v.db ? ["db"] : [])];
  if (v.final) {
    return { outputs: names, store: (k) => `${names[k]}[c] = val;` };
  }
  return {
    outputs: ["part"],
    store: (k) => `part[(p * ${names.length}u + ${k}u) * u.C + c] = val;`,
  };
}

/**
 * Column sums of `g·x̂` and/or `g` over rows `[p·chunk, (p+1)·chunk)` for 256
 * columns per workgroup `(b, p)`. Inputs `g, [x, mean, rstd]` (the latter
 * only for dweight); output the parts `[P, K, C]` or, if final, `dw`/`db`.
 */
export function lnParamPartsProgram(v: LnParamVariant): KernelProgram {
  const inputs = ["g", ...(v.dw ? ["x", "mean", "rstd"] : [])];
  const { outputs, store } = sumOutputs(v);
  const K = LN_COLS_PER_LANE;
  const lanes = [...Array(K).keys()];
  const acc = lanes.map((k) =>
    `${v.dw ? `var a${k} = 0.0;` : ""} ${v.db ? `var b${k} = 0.0;` : ""}`
  ).join("\n  ");
  const body = lanes.map((k) =>
    `if (c${k} < u.C) {
      let gv = g[o + c${k}];
      ${v.dw ? `a${k} += gv * ((x[o + c${k}] - mu) * r);` : ""}
      ${v.db ? `b${k} += gv;` : ""}
    }`
  ).join("\n    ");
  const writes = lanes.map((k) => {
    const parts = [];
    if (v.dw) parts.push(`{ let val = a${k}; ${store(0)} }`);
    if (v.db) parts.push(`{ let val = b${k}; ${store(v.dw ? 1 : 0)} }`);
    return `if (c${k} < u.C) { let c = c${k}; ${parts.join(" ")} }`;
  }).join("\n  ");
  return {
    name: "layer_norm_param_grad",
    key: `layer_norm_param_parts_${v.dw}_${v.db}_${v.final}`,
    inputs: inputs.length,
    outputs: outputs.length,
    uniforms: true,
    wgsl: () =>
      `${U}
${bindings(inputs, outputs)}
@compute @workgroup_size(${LN_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let p = wid.y;
  let r0 = p * u.chunk;
  let r1 = min(r0 + u.chunk, u.rows);
  ${lanes.map((k) => `let c${k} = wid.x * ${LN_PARAM_TILE}u + lid + ${k * LN_WG}u;`).join("\n  ")}
  ${acc}
  for (var row = r0; row < r1; row++) {
    let o = row * u.C;
    ${v.dw ? "let mu = mean[row];\n    let r = rstd[row];" : ""}
    ${body}
  }
  ${writes}
}`,
  };
}

/**
 * Sums a `[P, W]` partial-sum tensor (`W = K·C`) over parts
 * `[p·chunk, (p+1)·chunk)`: to `[ceil(P / chunk), W]`, or, if final (one
 * group of parts), to one `[C]` output per gradient.
 */
export function lnColumnSumProgram(v: LnParamVariant): KernelProgram {
  const names = [...(v.dw ? ["dw"] : []), ...(v.db ? ["db"] : [])];
  const outputs = v.final ? names : ["out"];
  const write = !v.final
    ? "out[p * u.W + i] = acc;"
    : names.length === 1
    ? `${names[0]}[i] = acc;`
    : `if (i < u.C) { ${names[0]}[i] = acc; } else { ${names[1]}[i - u.C] = acc; }`;
  return {
    name: "layer_norm_param_grad",
    key: `layer_norm_colsum_${names.length}_${v.final}`,
    inputs: 1,
    outputs: outputs.length,
    uniforms: true,
    wgsl: () =>
      `${U}
${bindings(["part"], outputs)}
@compute @workgroup_size(${LN_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = wid.x * ${LN_WG}u + lid;
  let p = wid.y;
  if (i >= u.W) { return; }
  let q0 = p * u.chunk;
  let q1 = min(q0 + u.chunk, u.P);
  var acc = 0.0;
  for (var q = q0; q < q1; q++) { acc += part[q * u.W + i]; }
  ${write}
}`,
  };
}
