/**
 * Matrix multiplication: batched, either operand transposed, with an optional
 * fused bias and activation epilogue.
 *
 * @module
 */

import { fmtShape, type Shape, sizeOf, Tensor, tracks } from "../tensor.ts";
import { record, type VjpRule } from "../autograd.ts";
import { run } from "../dispatch.ts";
import { matmulProgram, TM, TN, WG_X, WG_Y } from "../../kernels/matmul.ts";
import { broadcastShapes } from "./elementwise.ts";
import { cast, gelu, gt, mul } from "./elementwise.ts";
import { sumTo } from "./reduce.ts";
import { expand, reshape } from "./shape.ts";

/** Options of {@link matmul}. */
export interface MatmulOptions {
  /** Use Aᵀ: `a` holds `[..., K, M]`. */
  transA?: boolean;
  /** Use Bᵀ: `b` holds `[..., N, K]`. */
  transB?: boolean;
  /** Added to every row of the result (`[N]`). */
  bias?: Tensor;
  /** Applied after the bias. */
  act?: "none" | "relu" | "gelu";
}

/**
 * `op(a) · op(b)`, batched over leading axes (which broadcast). Vectors are not
 * promoted: both operands need at least 2 axes.
 *
 * @example
 * ```ts
 * import { matmul, randn } from "../../mod.ts";
 * const c = matmul(randn([2, 8, 3]), randn([3, 5]));
 * console.log(c.shape); // [2, 8, 5]
 * ```
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const { transA = false, transB = false, bias } = opts;
  const act = opts.act ?? "none";
  const desc = () =>
    `matmul: ${fmtShape(a.shape)}${transA ? "ᵀ" : ""} @ ${fmtShape(b.shape)}${transB ? "ᵀ" : ""}`;
  if (a.dtype !== "f32" || b.dtype !== "f32") {
    throw new TypeError(`${desc()}: expected f32 operands, got ${a.dtype} and ${b.dtype}`);
  }
  if (a.ndim < 2 || b.ndim < 2) {
    throw new RangeError(`${desc()}: both operands need at least 2 axes`);
  }
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const M = transA ? ac : ar;
  const K = transA ? ar : ac;
  const K2 = transB ? bc : br;
  const N = transB ? br : bc;
  if (K !== K2) throw new RangeError(`${desc()}: inner sizes differ (${K} and ${K2})`);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== N || bias.dtype !== "f32")) {
    throw new RangeError(
      `${desc()}: bias must be f32 [${N}], got ${fmtShape(bias.shape)} ${bias.dtype}`,
    );
  }
  const batchShape = broadcastShapes(
    "matmul (batch axes)",
    a.shape.slice(0, -2),
    b.shape.slice(0, -2),
  );
  const batch = sizeOf(batchShape);
  // Broadcast batch axes: either an operand has the full batch, or is shared (stride 0).
  const ea = sizeOf(a.shape.slice(0, -2)) === batch
    ? a
    : batch === 1
    ? a
    : expandBatch(a, batchShape);
  const eb = sizeOf(b.shape.slice(0, -2)) === batch
    ? b
    : batch === 1
    ? b
    : expandBatch(b, batchShape);
  const sA = sizeOf(ea.shape.slice(0, -2)) === 1 ? 0 : M * K;
  const sB = sizeOf(eb.shape.slice(0, -2)) === 1 ? 0 : K * N;
  // A gelu epilogue loses the pre-activation its gradient needs: unfuse it when recording.
  const tracked = tracks(a, b, ...(bias ? [bias] : []));
  const fusedAct = act === "gelu" && tracked ? "none" : act;
  const out = Tensor.empty([...batchShape, M, N], "f32");
  if (batch * M * N > 0) {
    const tilesN = Math.ceil(N / TN);
    run(matmulProgram(transA, transB, !!bias, fusedAct), {
      inputs: bias ? [ea.storage, eb.storage, bias.storage] : [ea.storage, eb.storage],
      outputs: [out.storage],
      uniforms: new Uint32Array([M, N, K, batch, sA, sB, tilesN, 0]),
      workgroups: [Math.ceil(tilesN / WG_X), Math.ceil(Math.ceil(M / TM) / WG_Y), batch],
      flops: 2 * batch * M * N * K,
      bytes: 4 * (batch * (M * K + K * N + M * N)),
    });
  }
  if (ea !== a) ea.dispose();
  if (eb !== b) eb.dispose();
  const inputs = bias ? [a, b, bias] : [a, b];
  record(
    "matmul",
    { transA, transB, act: fusedAct, bias: !!bias },
    inputs,
    out,
    (needs) => [needs[1] ? a : b, needs[0] ? b : a, ...(fusedAct === "relu" ? [out] : [])],
  );
  return fusedAct === act ? out : gelu(out);
}

function expandBatch(x: Tensor, batchShape: Shape): Tensor {
  return expand(x, [...batchShape, ...x.shape.slice(-2)]);
}

/** Backward of matmul (see the derivation in the comment of each case). */
export const matmulVjp: VjpRule<"matmul"> = (node, g0) => {
  const { transA, transB, act, bias } = node.attrs;
  const [sa, sb] = node.inputShapes;
  const saved = node.saved;
  const a = saved[0];
  const b = saved[1];
  const g = act === "relu" ? mul(g0, cast(gt(saved[2], 0), "f32")) : g0;
  const [na, nb, nbias] = node.needs;
  // C = op(A)op(B): d op(A) = g op(B)ᵀ, d op(B) = op(A)ᵀ g; transposed storage flips the product.
  let ga: Tensor | null = null;
  let gb: Tensor | null = null;
  if (na) {
    ga = transA
      ? matmul(b, g, { transA: transB, transB: true })
      : matmul(g, b, { transB: !transB });
    ga = sumTo(ga, sa);
  }
  if (nb) {
    gb = transB
      ? matmul(g, a, { transA: true, transB: transA })
      : matmul(a, g, { transA: !transA });
    gb = sumTo(gb, sb);
  }
  const gbias = bias && nbias ? reshape(sumTo(g, [1, g.shape.at(-1)!]), [g.shape.at(-1)!]) : null;
  return bias ? [ga, gb, gbias] : [ga, gb];
};
