/**
 * Float64 reference of 2-D convolution (NCHW, PyTorch semantics): the direct
 * seven-loop definition, written for clarity (test sizes are small).
 *
 * @module
 */

import { type Ref, ref } from "./reference.ts";

/** Options of {@link conv2dRef}, as the engine's conv2d. */
export interface Conv2dRefOptions {
  /** `[out]`. */
  bias?: Ref;
  /** `[sy, sx]` or one value (default 1). */
  stride?: number | [number, number];
  /** `[py, px]`, one value, or `[top, bottom, left, right]` (default 0). */
  padding?: number | [number, number] | [number, number, number, number];
  /** `[dy, dx]` or one value (default 1). */
  dilation?: number | [number, number];
  /** Channel groups (default 1). */
  groups?: number;
}

const two = (v: number | number[] | undefined, d: number): [number, number] =>
  v === undefined ? [d, d] : typeof v === "number" ? [v, v] : [v[0], v[1]];

/** The loop bounds of a convolution, shared by the forward and the adjoint. */
function geometry(xShape: number[], wShape: number[], opts: Conv2dRefOptions) {
  const [N, C, H, W] = xShape;
  const [O, Cg, kh, kw] = wShape;
  const G = opts.groups ?? 1;
  const [sy, sx] = two(opts.stride, 1);
  const [dy, dx] = two(opts.dilation, 1);
  const p = opts.padding ?? 0;
  const [pt, pb, pl, pr] = typeof p === "number"
    ? [p, p, p, p]
    : p.length === 2
    ? [p[0], p[0], p[1], p[1]]
    : p;
  if (Cg * G !== C || O % G !== 0) throw new RangeError("conv2dRef: bad groups");
  const OH = Math.floor((H + pt + pb - dy * (kh - 1) - 1) / sy) + 1;
  const OW = Math.floor((W + pl + pr - dx * (kw - 1) - 1) / sx) + 1;
  return { N, C, H, W, O, Cg, kh, kw, Og: O / G, sy, sx, dy, dx, pt, pl, OH, OW };
}

/**
 * Calls `visit(xi, wi, yi)` for every product `x[xi] · w[wi]` that the
 * convolution adds into `y[yi]` (padding taps skipped).
 */
function eachProduct(
  g: ReturnType<typeof geometry>,
  visit: (xi: number, wi: number, yi: number) => void,
): void {
  const { N, C, H, W, O, Cg, kh, kw, Og, sy, sx, dy, dx, pt, pl, OH, OW } = g;
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const grp = Math.floor(o / Og);
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          const yi = ((n * O + o) * OH + oh) * OW + ow;
          for (let c = 0; c < Cg; c++) {
            for (let ky = 0; ky < kh; ky++) {
              const ih = oh * sy - pt + ky * dy;
              if (ih < 0 || ih >= H) continue;
              for (let kx = 0; kx < kw; kx++) {
                const iw = ow * sx - pl + kx * dx;
                if (iw < 0 || iw >= W) continue;
                visit(
                  ((n * C + grp * Cg + c) * H + ih) * W + iw,
                  ((o * Cg + c) * kh + ky) * kw + kx,
                  yi,
                );
              }
            }
          }
        }
      }
    }
  }
}

/** `y[n, o, oh, ow] = b[o] + Σ_{c, ky, kx} x[n, g·Cg + c, oh·sy − pt + ky·dy, ...] · w[o, c, ky, kx]`. */
export function conv2dRef(x: Ref, w: Ref, opts: Conv2dRefOptions = {}): Ref {
  const g = geometry(x.shape, w.shape, opts);
  const out = ref([g.N, g.O, g.OH, g.OW]);
  if (opts.bias) {
    const hw = g.OH * g.OW;
    for (let i = 0; i < out.data.length; i++) {
      out.data[i] = opts.bias.data[Math.floor(i / hw) % g.O];
    }
  }
  eachProduct(g, (xi, wi, yi) => out.data[yi] += x.data[xi] * w.data[wi]);
  return out;
}

/**
 * The exact gradients of `sum(conv2d(x, w, b) · gout)` (the adjoint of the
 * same loops): `dx`, `dw` and `db`.
 */
export function conv2dGradRef(
  x: Ref,
  w: Ref,
  gout: Ref,
  opts: Conv2dRefOptions = {},
): { dx: Ref; dw: Ref; db: Ref } {
  const g = geometry(x.shape, w.shape, opts);
  const dx = ref(x.shape);
  const dw = ref(w.shape);
  const db = ref([g.O]);
  const hw = g.OH * g.OW;
  for (let i = 0; i < gout.data.length; i++) db.data[Math.floor(i / hw) % g.O] += gout.data[i];
  eachProduct(g, (xi, wi, yi) => {
    dx.data[xi] += gout.data[yi] * w.data[wi];
    dw.data[wi] += gout.data[yi] * x.data[xi];
  });
  return { dx, dw, db };
}
