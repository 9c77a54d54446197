/**
 * Gradient checking: the engine's analytic gradient (GPU, float32, through
 * `backward()`) against central differences of the op's float64 reference.
 *
 * Why the numerical side uses the float64 CPU reference rather than the GPU:
 * central differences of an f32 function need a large step (h ≈ 1e-2) to beat
 * rounding, which leaves an error of about ε₃₂·|f|/h + h²·|f'''| ≈ 1e-4 to 1e-3
 * relative, so the tolerance would have to be ~1e-2 and would let through real
 * bugs (a wrong small term, a factor 1.001); it would also cost two GPU
 * evaluations and read-backs per input element. In float64 with h ≈ 1e-6 the
 * numerical derivative is good to about 1e-9, so the only error left is the
 * f32 rounding of the analytic gradient and a 1e-3 relative tolerance is
 * robust. The forward outputs of engine and reference are compared first, so
 * a reference that does not model the op fails loudly instead of validating a
 * wrong gradient.
 *
 * The loss differentiated is `sum(f(x) · w)` with a random `w` (not all
 * ones), so that a backward rule that ignores or mis-broadcasts the upstream
 * gradient cannot pass.
 *
 * @module
 */

import { mul, sum, type Tensor } from "../../mod.ts";
import { assertClose, maxAbs, type Ref, ref, Rng, roundF32 } from "./reference.ts";
import { download, poison, upload } from "./gpu.ts";

/** One gradient check. */
export interface GradcheckCase {
  /** Input values (rounded to f32 before use). */
  inputs: Ref[];
  /** The op on the engine. */
  gpu: (...xs: Tensor[]) => Tensor;
  /** The same function in float64. */
  ref: (...xs: Ref[]) => Ref;
  /** Which inputs get a gradient (default: all). The others must end with `grad === null`. */
  wrt?: boolean[];
  /** Relative tolerance on the gradients (default 1e-3). */
  rtol?: number;
  /** Absolute tolerance, as a fraction of the largest |gradient| (default 1e-3). */
  atol?: number;
  /** Forward tolerance, relative (default 1e-4). */
  fwdRtol?: number;
  /** Forward tolerance, absolute (default 1e-5). */
  fwdAtol?: number;
  /** Seed of the random upstream weights. */
  seed?: number;
  /** Relative finite-difference step (default 1e-6). */
  h?: number;
}

/**
 * Checks `backward()` of `c.gpu` against central differences of `c.ref`.
 * Throws an error naming the input, the worst element and both gradients.
 */
export async function gradcheck(name: string, c: GradcheckCase): Promise<void> {
  const xs = c.inputs.map((x) => roundF32(ref(x.shape, x.data)));
  const wrt = c.wrt ?? xs.map(() => true);
  const rng = new Rng(c.seed ?? 12345);

  // Analytic: the engine.
  const ts = xs.map((x, i) => upload(x, { requiresGrad: wrt[i] }));
  const w = rng.uniformRef(c.ref(...xs).shape, 0.5, 1.5);
  for (let i = 0; i < w.data.length; i++) if (rng.next() < 0.5) w.data[i] = -w.data[i];
  const wt = upload(w);
  // Unwritten elements of the output or of any gradient read back as NaN (see poison()).
  poison([w.data.length]);
  const y = c.gpu(...ts);
  if (!y.requiresGrad || y.node === null) {
    throw new Error(`${name}: the output records no node although an input requires grad`);
  }
  if (y.shape.join() !== w.shape.join()) {
    throw new Error(`${name}: output shape [${y.shape}], reference [${w.shape}]`);
  }
  const yRef = c.ref(...xs);
  assertClose(await y.toArray(), yRef, {
    rtol: c.fwdRtol ?? 1e-4,
    atol: c.fwdAtol ?? 1e-5,
    msg: `${name}: forward`,
  });
  const loss = sum(mul(y, wt));
  poison([...new Set([w.data.length, ...xs.map((x) => x.data.length)])]);
  loss.backward();
  const analytic: (Ref | null)[] = [];
  for (let i = 0; i < ts.length; i++) {
    const g = ts[i].grad;
    if (!wrt[i]) {
      if (g !== null) throw new Error(`${name}: input ${i} does not require grad but got one`);
      analytic.push(null);
      continue;
    }
    if (g === null) throw new Error(`${name}: input ${i} got no gradient`);
    if (g.shape.join() !== xs[i].shape.join()) {
      throw new Error(`${name}: grad of input ${i} has shape [${g.shape}], not [${xs[i].shape}]`);
    }
    analytic.push(await download(g));
  }
  for (const t of [...ts, y, wt, loss]) {
    t.grad?.dispose();
    t.dispose();
  }

  // Numerical: central differences of the float64 reference.
  const lossOf = () => {
    const out = c.ref(...xs).data;
    let s = 0;
    for (let k = 0; k < out.length; k++) s += out[k] * w.data[k];
    return s;
  };
  const hRel = c.h ?? 1e-6;
  for (let i = 0; i < xs.length; i++) {
    const a = analytic[i];
    if (!a) continue;
    const x = xs[i].data;
    const num = new Float64Array(x.length);
    for (let j = 0; j < x.length; j++) {
      const v = x[j];
      const h = hRel * Math.max(1, Math.abs(v));
      x[j] = v + h;
      const up = lossOf();
      x[j] = v - h;
      const down = lossOf();
      x[j] = v;
      num[j] = (up - down) / (2 * h);
    }
    assertClose(a.data, num, {
      rtol: c.rtol ?? 1e-3,
      atol: (c.atol ?? 1e-3) * Math.max(maxAbs(num), 1e-3),
      shape: xs[i].shape,
      msg: `${name}: gradient of input ${i} (analytic GPU vs float64 central differences)`,
    });
  }
}
