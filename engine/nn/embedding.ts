/**
 * The embedding table as a layer, after `torch.nn.Embedding`.
 *
 * @module
 */

import { Module, parameter } from "./module.ts";
import { fmtShape, Tensor, tensor } from "../tensor.ts";
import { noGrad } from "../autograd.ts";
import { full, where } from "../ops/elementwise.ts";
import { randn } from "../ops/random.ts";
import { embedding } from "../ops/embedding.ts";

/** Options of {@link Embedding}. */
export interface EmbeddingLayerOptions {
  /**
   * Row initialised to zeros that gets no gradient (PyTorch's `padding_idx`);
   * negative values count from the end, and the stored value is the row.
   */
  paddingIdx?: number | null;
}

/**
 * A lookup table of `numEmbeddings` vectors of size `embeddingDim` (PyTorch's
 * `nn.Embedding`): `forward(ids)` with i32 ids of any shape gives
 * `[...ids.shape, embeddingDim]`. `weight [num, dim]` is initialised from
 * N(0, 1) with the seeded GPU generator, as PyTorch does, and the padding row,
 * if any, to zeros; that row then gets no gradient, so it stays zero under
 * optimizers without weight decay.
 *
 * Out-of-range ids give zero rows and no gradient (see {@link embedding}).
 *
 * @example
 * ```ts
 * import { tensor } from "../../mod.ts";
 * import { Embedding } from "./embedding.ts";
 * const emb = new Embedding(10, 4, { paddingIdx: 0 });
 * const out = emb.forward(tensor([0, 3, 9, 0], { shape: [2, 2], dtype: "i32" }));
 * console.log(out.shape, String(emb)); // [2, 2, 4] "Embedding(10, 4, padding_idx=0)"
 * ```
 */
export class Embedding extends Module {
  /** Rows of the table. */
  readonly numEmbeddings: number;
  /** Size of each row. */
  readonly embeddingDim: number;
  /** The row that gets no gradient (in `[0, num)`), or null. */
  readonly paddingIdx: number | null;
  /** `[numEmbeddings, embeddingDim]`. */
  weight: Tensor;

  /**
   * @param numEmbeddings Rows of the table.
   * @param embeddingDim Size of each row.
   * @param opts `paddingIdx`.
   */
  constructor(numEmbeddings: number, embeddingDim: number, opts: EmbeddingLayerOptions = {}) {
    super();
    for (const [k, v] of [["numEmbeddings", numEmbeddings], ["embeddingDim", embeddingDim]]) {
      if (!Number.isInteger(v) || (v as number) < 1) {
        throw new RangeError(`Embedding: ${k} must be an integer ≥ 1, got ${v}`);
      }
    }
    this.numEmbeddings = numEmbeddings;
    this.embeddingDim = embeddingDim;
    const p = opts.paddingIdx ?? null;
    if (p !== null && (!Number.isInteger(p) || p < -numEmbeddings || p >= numEmbeddings)) {
      throw new RangeError(
        `Embedding: paddingIdx ${p} is out of range for ${numEmbeddings} embeddings`,
      );
    }
    this.paddingIdx = p === null ? null : p < 0 ? p + numEmbeddings : p;
    const w = randn([numEmbeddings, embeddingDim]);
    if (this.paddingIdx === null) {
      this.weight = parameter(w);
    } else {
      // where(), not a multiply by 0: the row must be +0, as PyTorch's fill_(0), not −0.
      const rowMask = new Uint32Array(numEmbeddings).fill(1);
      rowMask[this.paddingIdx] = 0;
      const mask = tensor(rowMask, { shape: [numEmbeddings, 1], dtype: "u32" });
      const zero = full([], 0);
      this.weight = parameter(noGrad(() => where(mask, w, zero)));
      for (const t of [w, mask, zero]) t.dispose();
    }
  }

  /** `ids` (i32, any shape) → `[...ids.shape, embeddingDim]`. */
  forward(ids: Tensor): Tensor {
    if (!(ids instanceof Tensor) || ids.dtype !== "i32") {
      throw new TypeError(
        `Embedding(${this.numEmbeddings}, ${this.embeddingDim}): expected i32 ids, got ${
          ids instanceof Tensor ? `${ids.dtype} ${fmtShape(ids.shape)}` : String(ids)
        }`,
      );
    }
    return embedding(ids, this.weight, { paddingIdx: this.paddingIdx });
  }

  /** `30522, 768, padding_idx=0`, as PyTorch prints it. */
  override extraRepr(): string {
    const pad = this.paddingIdx === null ? "" : `, padding_idx=${this.paddingIdx}`;
    return `${this.numEmbeddings}, ${this.embeddingDim}${pad}`;
  }
}
