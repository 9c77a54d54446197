/**
 * The shape of a kernel program: one object per kernel that names itself,
 * keys the pipeline cache and produces its WGSL.
 *
 * Binding convention (every program follows it, so the dispatcher can build
 * the bind-group layout without parsing WGSL):
 * - `@binding(0 .. inputs-1)`: `var<storage, read>` inputs;
 * - `@binding(inputs .. inputs+outputs-1)`: `var<storage, read_write>` outputs;
 * - `@binding(inputs+outputs)`: `var<uniform> u`, when `uniforms` is true.
 * Shapes and strides travel as uniforms so one pipeline serves every size.
 *
 * @module
 */

/** A WGSL compute kernel. */
export interface KernelProgram {
  /** Human-readable kernel name, used in errors and the profiler table. */
  readonly name: string;
  /** Pipeline cache key: must change whenever `wgsl()` would (dtype, rank, variant). */
  readonly key: string;
  /** Number of read-only storage bindings. */
  readonly inputs: number;
  /** Number of read-write storage bindings. */
  readonly outputs: number;
  /** Whether the kernel takes a uniform block (bound last). */
  readonly uniforms: boolean;
  /**
   * Kind of each input/output binding, in binding order; storage buffers when
   * absent. Textures are bound as `GPUTextureView`s (see {@link BindingKind}).
   */
  readonly bindings?: readonly BindingKind[];
  /** The WGSL source. Called once per cache key. */
  wgsl(): string;
}

/**
 * A binding's kind: a storage buffer (read-only for inputs, read-write for
 * outputs), a `texture_2d_array<f32>` read with `textureLoad`, or a write-only
 * `texture_storage_2d_array<rgba32float, write>`. Textures exist for matmul:
 * on llvmpipe a texel fetch costs about 7× less per float than a storage
 * buffer load (see kernels/matmul.ts).
 */
export type BindingKind = "storage" | "texture" | "storage-texture";

/**
 * llvmpipe's loop budget: every loop a shader runs counts against one budget
 * of 65,535 passes, and when it is spent each loop stops at its next pass and
 * every later loop runs its body once; nothing reports it, the results are
 * just wrong. Measured here (Mesa 22.3.6, llvmpipe LLVM 15, OpenGL and Vulkan
 * alike, in a tiny WGSL experiment counting passes):
 *
 * - one loop of 65,534, 65,535, 65,536, 70,000 or 270,000 iterations counts
 *   65,534, 65,535, 65,535, 65,535, 65,535 (for, `loop` with break, while,
 *   and constant bounds alike);
 * - the budget is per invocation (strictly, per SIMD group of 8 invocations:
 *   lanes of one group share it), not per loop: two loops of 40,000 count
 *   40,000 then 25,534, since a loop that ends costs one pass more than its
 *   iterations; after the budget is spent a following loop of 10 counts 1;
 * - nested loops count every pass of every level: 300×300 counts 65,101 inner
 *   passes, 16×4,095 65,505, 2×40,000 65,533; a function called twice shares it;
 * - it restarts for every group of 8 invocations: 256 invocations of 60,000
 *   iterations each are all right.
 *
 * (Gallium's `LP_MAX_TGSI_LOOP_ITERATIONS`: one counter per shader invocation,
 * decremented at the end of every loop pass.) So a kernel must keep the
 * passes of all its loops, nested ones included, plus one per loop run, below
 * this number for every invocation, whatever the tensor shapes: the ops split
 * long axes across invocations or dispatches (kernels/matmul.ts,
 * kernels/softmax.ts, kernels/conv.ts, engine/ops/reduce.ts and others cite
 * this constant where they do).
 */
export const LOOP_BUDGET = 65535;

/**
 * The loop passes a kernel plans for per invocation: {@link LOOP_BUDGET} less
 * a margin for the short loops around the long one (index arithmetic over up
 * to 8 axes, epilogues of up to 16 rows, tree merges).
 */
export const LOOP_LIMIT = 60000;

/** WGSL scalar types for the engine's dtypes. */
export type WgslScalar = "f32" | "i32" | "u32";

/**
 * WGSL that turns a folded 2-D/3-D workgroup grid back into a linear index.
 * Use in a kernel whose entry point declares `@builtin(workgroup_id) wid` and
 * `@builtin(num_workgroups) nwg`; `WG` is the workgroup size.
 */
export const LINEAR_INDEX = "(wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y) * WG + lid.x";

/** Builtins to declare in a kernel entry that uses {@link LINEAR_INDEX}. */
export const LINEAR_BUILTINS =
  "@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid_i: u32, @builtin(local_invocation_id) lid: vec3<u32>";

/**
 * Folds a 1-D count of workgroups into a grid within the 65,535-per-dimension
 * limit of WebGPU. The kernel must guard against the few extra workgroups.
 *
 * @example
 * ```ts
 * import { foldGrid } from "./program.ts";
 * console.log(foldGrid(100000)); // [50000, 2, 1]
 * ```
 */
export function foldGrid(count: number, max = 65535): [number, number, number] {
  if (count <= max) return [Math.max(1, count), 1, 1];
  const y = Math.ceil(count / max);
  if (y <= max) return [Math.ceil(count / y), y, 1];
  const z = Math.ceil(y / max);
  const y2 = Math.ceil(y / z);
  return [Math.ceil(count / (y2 * z)), y2, z];
}

/** Formats a number as a WGSL f32 literal without losing precision. */
export function f32Literal(x: number): string {
  if (Number.isNaN(x)) throw new Error("f32Literal(): NaN cannot be a WGSL constant");
  if (!Number.isFinite(x)) return x > 0 ? "bitcast<f32>(0x7f800000u)" : "bitcast<f32>(0xff800000u)";
  const s = Math.fround(x).toPrecision(9);
  return /[.eE]/.test(s) ? s + "f" : s + ".0f";
}

/**
 * WGSL `isNan_(v: T) -> bool` for a kernel whose element type alias is `T`
 * (`vec4<bool>` per component when `vec`, `T` then being `vec4<dtype>`).
 * WGSL lets compilers assume floats are never NaN (Mesa folds `v != v` to
 * false and picks either operand in `max`), so NaN is detected from the bits.
 */
export function isNanWgsl(dtype: WgslScalar, vec = false): string {
  const u = (x: string) => (vec ? `vec4<u32>(${x})` : x);
  const body = dtype === "f32"
    ? `(bitcast<${vec ? "vec4<u32>" : "u32"}>(v) & ${u("0x7fffffffu")}) > ${u("0x7f800000u")}`
    : vec
    ? "vec4<bool>(false)"
    : "false";
  return `fn isNan_(v: T) -> ${vec ? "vec4<bool>" : "bool"} { return ${body}; }`;
}
