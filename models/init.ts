/**
 * In-place parameter initialisers the torchvision models use (`torch.nn.init`'s
 * `kaiming_normal_`, `normal_`, `constant_`), drawing from the seeded GPU
 * generator.
 *
 * @module
 */

import type { Tensor } from "../engine/tensor.ts";
import { noGrad } from "../engine/autograd.ts";
import { copyBuffer } from "../engine/dispatch.ts";
import { full } from "../engine/ops/elementwise.ts";
import { randn } from "../engine/ops/random.ts";

/** Overwrites `t`'s storage with `make()`'s values (same shape), keeping `t` itself. */
function overwrite(t: Tensor, make: () => Tensor): void {
  if (t.size === 0) return;
  noGrad(() => {
    const v = make();
    copyBuffer(v.storage, 0, t.storage, 0, t.size * 4);
    v.dispose();
  });
}

/**
 * `kaiming_normal_(t, mode="fan_out", nonlinearity="relu")`: N(0, 2 / fan_out)
 * with fan_out = `t.shape[0] · kh · kw`, the product of every axis but the
 * second, as PyTorch computes it (a grouped conv's weight `[out, in/groups, kh,
 * kw]` has the same fan-out as an ungrouped one).
 *
 * @param t A conv weight `[out, in/groups, kh, kw]` (or any tensor of rank ≥ 2).
 *
 * @example
 * ```ts
 * import { zeros } from "../mod.ts";
 * import { kaimingNormalFanOut } from "./init.ts";
 * const w = zeros([16, 3, 3, 3]);
 * kaimingNormalFanOut(w); // std √(2 / 144)
 * ```
 */
export function kaimingNormalFanOut(t: Tensor): void {
  const fanOut = t.shape.reduce((p, d, i) => i === 1 ? p : p * d, 1);
  const std = fanOut > 0 ? Math.sqrt(2 / fanOut) : 0;
  overwrite(t, () => randn(t.shape, 0, std));
}

/**
 * `normal_(t, 0, std)`.
 *
 * @param t Tensor overwritten in place.
 * @param std Standard deviation.
 *
 * @example
 * ```ts
 * import { zeros } from "../mod.ts";
 * import { normal } from "./init.ts";
 * normal(zeros([10, 4]), 0.01);
 * ```
 */
export function normal(t: Tensor, std: number): void {
  overwrite(t, () => randn(t.shape, 0, std));
}

/**
 * `constant_(t, value)`.
 *
 * @param t Tensor overwritten in place.
 * @param value The value of every element.
 *
 * @example
 * ```ts
 * import { ones } from "../mod.ts";
 * import { constant } from "./init.ts";
 * const b = ones([3]);
 * constant(b, 0);
 * console.log(await b.toArray()); // [0, 0, 0]
 * ```
 */
export function constant(t: Tensor, value: number): void {
  overwrite(t, () => full(t.shape, value, t.dtype));
}

/**
 * Zeroes row `row` of a `[rows, cols]` tensor in place (`t[row].zero_()`), as
 * transformers does for an embedding's padding row after `normal_`.
 *
 * @param t A 2-D tensor overwritten in place.
 * @param row The row, in `[0, rows)`.
 *
 * @example
 * ```ts
 * import { ones } from "../mod.ts";
 * import { zeroRow } from "./init.ts";
 * const w = ones([3, 2]);
 * zeroRow(w, 1);
 * console.log(await w.toArray()); // [1, 1, 0, 0, 1, 1]
 * ```
 */
export function zeroRow(t: Tensor, row: number): void {
  const [rows, cols] = t.shape;
  if (t.ndim !== 2 || !Number.isInteger(row) || row < 0 || row >= rows) {
    throw new RangeError(`zeroRow: row ${row} of a [${t.shape}] tensor`);
  }
  if (cols === 0) return;
  noGrad(() => {
    const z = full([cols], 0, t.dtype);
    copyBuffer(z.storage, 0, t.storage, row * cols * 4, cols * 4);
    z.dispose();
  });
}
