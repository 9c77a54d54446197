/**
 * Linear centered kernel alignment ({@link cka}), a similarity index between
 * two sets of representations of the same examples (Kornblith et al., 2019).
 *
 * Three stages, all without the tape:
 * 1. column centering (kernels/cka.ts), written in blocks of the axis the
 *    products reduce over, zero-padded;
 * 2. the products with {@link matmul}, batched over those blocks (a split of
 *    the reduction axis: a `[64, 64]` Gram matrix of 100,000 features is
 *    otherwise 4 workgroups of work, i.e. 4 threads on llvmpipe);
 * 3. a two-pass reduction that adds up the blocks and the three sums of
 *    squares and products, and writes the ratio.
 *
 * @module
 */

import { fmtShape, scope, Tensor } from "../tensor.ts";
import { noGrad } from "../autograd.ts";
import { run } from "../dispatch.ts";
import { gpu } from "../device.ts";
import {
  CENTER_CHUNK,
  CENTER_WG,
  centerChunkMeansProgram,
  centerColumnsProgram,
  CKA_WG,
  ckaFinalProgram,
  type CkaForm,
  ckaPartialsProgram,
} from "../../kernels/cka.ts";
import { matmul } from "./matmul.ts";

/** Options of {@link cka}. */
export interface CkaOptions {
  /**
   * Which products to form. `"feature"`: `Xcᵀ·Yc`, `Xcᵀ·Xc` and `Ycᵀ·Yc`
   * (`n·(p·q + p² + q²)` multiply-adds); `"gram"`: `Xc·Xcᵀ` and `Yc·Ycᵀ`
   * (`n²·(p + q)`). `"auto"` (the default) takes the cheaper one, or the
   * one whose products fit a storage binding.
   */
  form?: "auto" | "gram" | "feature";
}

/** Workgroups the batched products aim for (32×32 outputs each in the storage-buffer kernel). */
const TARGET_TILES = 256;
/** Fewest rows (feature form) or columns (Gram form) of the reduction axis per block. */
const MIN_BLOCK = 256;
/**
 * Most rows or columns of the reduction axis per block: llvmpipe ends a
 * shader invocation's loops after 65,535 iterations, and the storage-buffer
 * matmul kernel loops once per element of the reduction (a product over
 * 270,000 ones returned 65,535 there).
 */
const MAX_BLOCK = 16384;

/**
 * Number of blocks to split a product's reduction axis of length `k` into,
 * for `M×N` outputs per block: enough blocks to give the GPU about
 * {@link TARGET_TILES} tiles of work, each block at least {@link MIN_BLOCK}
 * and at most {@link MAX_BLOCK} long, and the batched result within a binding
 * where the latter allows.
 */
function blocksFor(k: number, M: number, N: number, maxFloats: number): number {
  const tiles = Math.ceil(M / 32) * Math.ceil(N / 32);
  const byTiles = Math.ceil(TARGET_TILES / tiles);
  const byLength = Math.floor(k / MIN_BLOCK);
  const byMemory = Math.floor(maxFloats / (M * N));
  const wanted = Math.max(1, Math.min(byTiles, byLength, byMemory));
  return Math.max(wanted, Math.ceil(k / MAX_BLOCK));
}

/**
 * Linear centered kernel alignment of two representations of the same `n`
 * examples: `x` is `[n, p]` and `y` is `[n, q]` (f32, one row per example;
 * flatten feature maps first). With `Xc`, `Yc` the column-centered matrices,
 *
 * `CKA = ‖Ycᵀ·Xc‖²_F / (‖Xcᵀ·Xc‖_F · ‖Ycᵀ·Yc‖_F) = ⟨K, L⟩_F / (‖K‖_F · ‖L‖_F)`
 *
 * with `K = Xc·Xcᵀ` and `L = Yc·Ycᵀ`. The result is a scalar (shape `[]`) f32
 * tensor on the GPU, in [0, 1]; it is invariant to orthogonal transforms and
 * isotropic scaling of either input and to adding a constant row to either.
 *
 * Not differentiable: nothing is recorded on the tape and the result never
 * requires grad, whatever the inputs. An input whose rows are all equal (a
 * constant representation, zero after centering) gives NaN (0/0). The sums of
 * squares are taken in f32: Gram entries whose squares overflow f32 (values
 * around 1e9 and above summed over the features) give NaN or 0.
 *
 * @example
 * ```ts
 * import { cka, randn } from "../../mod.ts";
 * const x = randn([16, 8]);
 * console.log(await cka(x, x).item()); // ≈ 1
 * ```
 *
 * @throws {RangeError} unless `x` and `y` are 2-D with the same number of rows
 * `n ≥ 2` and at least one column each.
 * @throws {TypeError} unless both are f32, or for an unknown `opts.form`.
 */
export function cka(x: Tensor, y: Tensor, opts: CkaOptions = {}): Tensor {
  const desc = `cka: x ${fmtShape(x.shape)} ${x.dtype}, y ${fmtShape(y.shape)} ${y.dtype}`;
  if (x.dtype !== "f32" || y.dtype !== "f32") {
    throw new TypeError(`${desc}: expected f32 tensors`);
  }
  if (x.ndim !== 2 || y.ndim !== 2) {
    throw new RangeError(`${desc}: expected 2-D tensors [n, p] and [n, q] (flatten them first)`);
  }
  const [n, p] = x.shape;
  const q = y.shape[1];
  if (y.shape[0] !== n) {
    throw new RangeError(`${desc}: the numbers of rows (examples) differ (${n} and ${y.shape[0]})`);
  }
  if (n < 2) throw new RangeError(`${desc}: needs at least 2 rows (examples), got ${n}`);
  if (p === 0 || q === 0) throw new RangeError(`${desc}: needs at least one column in each`);
  const form = opts.form ?? "auto";
  if (form !== "auto" && form !== "gram" && form !== "feature") {
    throw new TypeError(`${desc}: unknown form ${JSON.stringify(form)}`);
  }
  const maxFloats = Math.floor(gpu().limits.maxStorageBufferBindingSize / 4);
  if (n * Math.max(p, q) > maxFloats) {
    throw new RangeError(
      `${desc}: an input is above this adapter's maxStorageBufferBindingSize (${
        4 * maxFloats
      } bytes)`,
    );
  }
  const fits = {
    gram: n * n * Math.ceil(Math.max(p, q) / MAX_BLOCK) <= maxFloats,
    feature: Math.max(p, q) ** 2 * Math.ceil(n / MAX_BLOCK) <= maxFloats,
  };
  let use: CkaForm;
  if (form === "auto") {
    const featureCost = n * (p * q + p * p + q * q);
    const gramCost = n * n * (p + q);
    use = featureCost <= gramCost ? "feature" : "gram";
    if (!fits[use]) use = use === "feature" ? "gram" : "feature";
  } else use = form;
  if (!fits[use]) {
    throw new RangeError(
      `${desc}: the ${use === "gram" ? `[${n}, ${n}] Gram` : "feature"} products are above ` +
        `this adapter's maxStorageBufferBindingSize (${4 * maxFloats} bytes)`,
    );
  }
  // Intermediates are disposed as soon as they are used; the scope frees them if a step throws.
  return scope(() =>
    noGrad(() =>
      use === "gram" ? gramForm(x, y, n, p, q, maxFloats) : featureForm(x, y, n, p, q, maxFloats)
    )
  );
}

/**
 * `x` centered into `[blocks, R, pc]`: `blocks` column blocks of `pc` columns
 * (zero-padded past `p`) of `R` rows (zero-padded past `n`). With `pc = p`,
 * one column block, the result is read as `shape`: `[b, R / b, p]` row blocks.
 */
function center(
  x: Tensor,
  n: number,
  p: number,
  blocks: number,
  R: number,
  pc: number,
  shape = [blocks, R, pc],
): Tensor {
  const out = Tensor.empty(shape, "f32");
  const cols = blocks * pc;
  const bytes = 4 * (3 * n * p + blocks * R * pc);
  if (R <= CENTER_CHUNK) {
    run(centerColumnsProgram(false), {
      inputs: [x.storage],
      outputs: [out.storage],
      uniforms: new Uint32Array([n, p, pc, R, cols, 1, 0, 0]),
      workgroups: Math.ceil(cols / CENTER_WG),
      flops: 4 * n * p,
      bytes,
    });
    return out;
  }
  // Long columns: means of chunks of rows first, then one invocation per (chunk, column).
  const parts = Math.ceil(n / CENTER_CHUNK);
  const means = Tensor.empty([parts, p], "f32");
  const u = new Uint32Array([n, p, pc, R, cols, parts, 0, 0]);
  run(centerChunkMeansProgram(), {
    inputs: [x.storage],
    outputs: [means.storage],
    uniforms: u,
    workgroups: Math.ceil((parts * p) / CENTER_WG),
    flops: 3 * n * p,
    bytes: 4 * (2 * n * p + parts * p),
  });
  const chunks = Math.ceil(R / CENTER_CHUNK);
  run(centerColumnsProgram(true), {
    inputs: [x.storage, means.storage],
    outputs: [out.storage],
    uniforms: u,
    workgroups: Math.ceil((chunks * cols) / CENTER_WG),
    flops: n * p + 4 * chunks * parts * p,
    bytes: 4 * (n * p + chunks * parts * p + blocks * R * pc),
  });
  means.dispose();
  return out;
}

/** Gram form: `K = Xc·Xcᵀ`, `L = Yc·Ycᵀ`, each a sum over column blocks. */
function gramForm(x: Tensor, y: Tensor, n: number, p: number, q: number, maxFloats: number) {
  const gram = (t: Tensor, k: number) => {
    const blocks = blocksFor(k, n, n, maxFloats);
    // Blocks of a multiple of 64 columns are copied into matmul's textures rather than packed.
    const pc = k > 512 * blocks ? 64 * Math.ceil(k / blocks / 64) : Math.ceil(k / blocks);
    const c = center(t, n, k, Math.ceil(k / pc), n, pc);
    const g = matmul(c, c, { transB: true });
    c.dispose();
    return g;
  };
  const K = gram(x, p);
  const L = gram(y, q);
  return reduce("gram", [K, L], n * n);
}

/** Feature form: `Xcᵀ·Yc`, `Xcᵀ·Xc`, `Ycᵀ·Yc`, each a sum over row blocks. */
function featureForm(x: Tensor, y: Tensor, n: number, p: number, q: number, maxFloats: number) {
  const widest = Math.max(p, q);
  const blocks = blocksFor(n, widest, widest, maxFloats);
  const R = Math.ceil(n / blocks);
  const b = Math.ceil(n / R);
  const xc = center(x, n, p, 1, b * R, p, [b, R, p]);
  const yc = center(y, n, q, 1, b * R, q, [b, R, q]);
  const cross = matmul(xc, yc, { transA: true });
  const xx = matmul(xc, xc, { transA: true });
  const yy = matmul(yc, yc, { transA: true });
  xc.dispose();
  yc.dispose();
  return reduce("feature", [cross, xx, yy], 0);
}

/**
 * The three sums over the block-summed products, then the ratio. Each input is
 * `[blocks, ...]`; `len` is the length of one block (the feature form reads it
 * from the shapes).
 */
function reduce(form: CkaForm, inputs: Tensor[], len: number): Tensor {
  const lens = inputs.map((t) => (form === "gram" ? len : t.size / t.shape[0]));
  const batches = inputs.map((t) => t.shape[0]);
  while (lens.length < 3) {
    lens.push(0);
    batches.push(0);
  }
  const work = inputs.reduce((s, t) => s + t.size, 0);
  const longest = Math.max(...lens);
  // About 512 loads per invocation, at most one workgroup per 64 elements.
  const G = Math.max(
    1,
    Math.min(65535, Math.ceil(work / (CKA_WG * 512)), Math.ceil(longest / CKA_WG)),
  );
  const partials = Tensor.empty([G, 3], "f32");
  run(ckaPartialsProgram(form), {
    inputs: inputs.map((t) => t.storage),
    outputs: [partials.storage],
    uniforms: new Uint32Array([...lens, G, ...batches, 0]),
    workgroups: [G, 1, 1],
    flops: work + 6 * longest,
    bytes: 4 * work + 12 * G,
  });
  for (const t of inputs) t.dispose();
  const out = Tensor.empty([], "f32");
  run(ckaFinalProgram(), {
    inputs: [partials.storage],
    outputs: [out.storage],
    uniforms: new Uint32Array([G, 0, 0, 0]),
    workgroups: [1, 1, 1],
    flops: 3 * G + 4,
    bytes: 12 * G + 4,
  });
  partials.dispose();
  return out;
}
