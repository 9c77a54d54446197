/**
 * 2-D convolution (NCHW, PyTorch's `conv2d`): stride, padding, dilation,
 * groups (depthwise included) and an optional bias, with its backward rule.
 * The kernels and the measurements behind their design are in
 * kernels/conv.ts.
 *
 * @module
 */

import { fmtShape, type Shape, Tensor } from "../tensor.ts";
import { isGradEnabled, noGrad, type OpAttrs, record, type VjpRule } from "../autograd.ts";
import { type BufferRange, run } from "../dispatch.ts";
import { gpu } from "../device.ts";
import { holdExternal, type Storage } from "../memory.ts";
import { type ScratchTexture, ScratchTextures } from "../scratch.ts";
import {
  convDepthwiseProgram,
  convDepthwiseWgradProgram,
  convGemmBlocks,
  convGemmProgram,
  convPackImageProgram,
  convPackWeightProgram,
  type ConvPass,
  convWgradProgram,
  DW_TP,
  GEMM_TP,
  GEMM_WGX,
  GEMM_WGY,
  gemmPixels,
  type GemmWidth,
  PACK_WG,
  type WgradDepth,
  wgradMaxPixels,
  type WgradWidth,
} from "../../kernels/conv.ts";
import { add, zeros } from "./elementwise.ts";
import { sum } from "./reduce.ts";
import { reshape } from "./shape.ts";

/** Options of {@link conv2d}, as in PyTorch's `F.conv2d`. */
export interface Conv2dOptions {
  /** Added to every output channel: `[out]`. */
  bias?: Tensor;
  /** Step of the kernel, one value or `[sy, sx]` (default 1). */
  stride?: number | [number, number];
  /**
   * Zeros added on both sides, one value or `[py, px]` (default 0); `"valid"`
   * is 0 and `"same"` (stride 1 only) pads so that the output has the input's
   * size, putting the odd pixel at the bottom/right as PyTorch does.
   */
  padding?: number | [number, number] | "same" | "valid";
  /** Spacing between kernel taps, one value or `[dy, dx]` (default 1). */
  dilation?: number | [number, number];
  /** Channel groups: input and output channels must both divide by it (default 1). */
  groups?: number;
}

type Conv2dAttrs = OpAttrs["conv2d"];

/**
 * 2-D convolution of `x [N, C, H, W]` with `weight [O, C/groups, kh, kw]`
 * (cross-correlation, as in PyTorch), giving `[N, O, OH, OW]` with
 * `OH = ⌊(H + padTop + padBottom − dy·(kh−1) − 1)/sy⌋ + 1` (likewise OW).
 * `groups = C = O` is a depthwise convolution.
 *
 * @example
 * ```ts
 * import { conv2d, randn } from "../../mod.ts";
 * const y = conv2d(randn([2, 3, 8, 8]), randn([16, 3, 3, 3]), { padding: 1, stride: 2 });
 * console.log(y.shape); // [2, 16, 4, 4]
 * ```
 */
export function conv2d(x: Tensor, weight: Tensor, opts: Conv2dOptions = {}): Tensor {
  const attrs = conv2dAttrs(x, weight, opts);
  const { bias } = opts;
  const [N, , H, W] = x.shape;
  const [O, Cg, kh, kw] = weight.shape;
  const G = attrs.groups;
  const [pt, pb, pl, pr] = attrs.padding;
  const [sy, sx] = attrs.stride;
  const [dy, dx] = attrs.dilation;
  const OH = Math.floor((H + pt + pb - dy * (kh - 1) - 1) / sy) + 1;
  const OW = Math.floor((W + pl + pr - dx * (kw - 1) - 1) / sx) + 1;
  let out: Tensor;
  let kept: KeptImage | null = null;
  if (N * O === 0 || Cg === 0) {
    // No input channel (or nothing to compute): the output is the bias, or zeros.
    out = noGrad(() => {
      const z = zeros([N, O, OH, OW]);
      if (!bias || z.size === 0) return z;
      const y = add(z, reshape(bias, [O, 1, 1]));
      z.dispose();
      return y;
    });
  } else {
    out = Tensor.empty([N, O, OH, OW], "f32");
    // Keep the packed input for the weight gradient when one will be taken and the weight
    // gradient, too, would pack all images in one chunk.
    const keepImage = isGradEnabled() && weight.requiresGrad &&
      wgradPlan(x.shape, weight.shape, [OH, OW], attrs).nbMax >= N;
    try {
      kept = convPass(
        {
          N,
          G,
          Ig: Cg,
          Jg: O / G,
          H,
          W,
          OH,
          OW,
          kh,
          kw,
          sy,
          sx,
          dy,
          dx,
          ty: { J: kh, A: 0, B: 1 },
          tx: { J: kw, A: 0, B: 1 },
          loY: pt,
          loX: pl,
          swap: false,
          Og: O / G,
          Cg,
          out: { CS: OH * OW, Wf: OW, sN: O * OH * OW, o0: 0, osy: 1, osx: 1 },
        },
        x.storage,
        weight.storage,
        bias?.storage ?? null,
        out.storage,
        keepImage,
      );
    } catch (e) {
      out.dispose();
      throw e;
    }
  }
  const recorded = record(
    "conv2d",
    attrs,
    bias ? [x, weight, bias] : [x, weight],
    out,
    (needs) => [...(needs[1] && !kept ? [x] : []), ...(needs[0] ? [weight] : [])],
    kept ? [kept] : undefined,
  );
  if (!recorded) kept?.dispose();
  return out;
}

/** Validates the operands and options; returns the attributes the tape records. */
function conv2dAttrs(x: Tensor, w: Tensor, opts: Conv2dOptions): Conv2dAttrs {
  const desc = () => `conv2d: input ${fmtShape(x.shape)}, weight ${fmtShape(w.shape)}`;
  if (x.dtype !== "f32" || w.dtype !== "f32") {
    throw new TypeError(`${desc()}: expected f32 operands, got ${x.dtype} and ${w.dtype}`);
  }
  if (x.ndim !== 4) throw new RangeError(`${desc()}: the input must be 4-D [N, C, H, W]`);
  if (w.ndim !== 4) {
    throw new RangeError(`${desc()}: the weight must be 4-D [out, in/groups, kh, kw]`);
  }
  const pair = (name: string, v: number | [number, number] | undefined, d: number, min: number) => {
    const p = v === undefined ? [d, d] : typeof v === "number" ? [v, v] : v;
    if (
      !Array.isArray(p) || p.length !== 2 || !p.every((e) => Number.isInteger(e) && e >= min)
    ) {
      throw new RangeError(
        `${desc()}: ${name} must be an integer ≥ ${min} or a pair of them, got ${
          JSON.stringify(v)
        }`,
      );
    }
    return p as [number, number];
  };
  const groups = opts.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) {
    throw new RangeError(`${desc()}: groups must be an integer ≥ 1, got ${groups}`);
  }
  const stride = pair("stride", opts.stride, 1, 1);
  const dilation = pair("dilation", opts.dilation, 1, 1);
  const [, C, H, W] = x.shape;
  const [O, Cg, kh, kw] = w.shape;
  if (C % groups !== 0 || O % groups !== 0) {
    throw new RangeError(
      `${desc()}: groups=${groups} must divide the input channels (${C}) and the output channels (${O})`,
    );
  }
  if (Cg * groups !== C) {
    throw new RangeError(
      `${desc()}: the input has ${C} channels but the weight expects ${Cg * groups} ` +
        `(${Cg} per group × groups=${groups})`,
    );
  }
  if (kh < 1 || kw < 1) throw new RangeError(`${desc()}: empty kernel ${kh}×${kw}`);
  let padding: [number, number, number, number];
  if (opts.padding === "same") {
    if (stride[0] !== 1 || stride[1] !== 1) {
      throw new RangeError(`${desc()}: padding="same" is not supported for strided convolutions`);
    }
    const ty = dilation[0] * (kh - 1);
    const tx = dilation[1] * (kw - 1);
    padding = [ty >> 1, ty - (ty >> 1), tx >> 1, tx - (tx >> 1)];
  } else {
    const [py, px] = pair("padding", opts.padding === "valid" ? 0 : opts.padding, 0, 0);
    padding = [py, py, px, px];
  }
  const ey = dilation[0] * (kh - 1) + 1;
  const ex = dilation[1] * (kw - 1) + 1;
  const hp = H + padding[0] + padding[1];
  const wp = W + padding[2] + padding[3];
  if (ey > hp || ex > wp) {
    throw new RangeError(
      `${desc()}: the kernel ${kh}×${kw} (dilation ${dilation.join("×")}, spanning ${ey}×${ex}) ` +
        `is larger than the padded input ${hp}×${wp}`,
    );
  }
  const bias = opts.bias;
  if (bias && (bias.dtype !== "f32" || bias.ndim !== 1 || bias.shape[0] !== O)) {
    throw new RangeError(
      `${desc()}: bias must be f32 [${O}], got ${bias.dtype} ${fmtShape(bias.shape)}`,
    );
  }
  return { stride, padding, dilation, groups, bias: !!bias };
}

/** The kernel taps of a pass along one axis: tap t is the weight's tap `A + B·t`. */
interface TapMap {
  J: number;
  A: number;
  B: number;
}

/**
 * One convolution pass over a source image batch: the forward (source x), or
 * one sub-pixel phase of the data gradient (source = output gradient, weights
 * swapped, some taps in reverse order). The weight is always the conv's
 * `[G·Og, Cg, kh, kw]`.
 */
interface Pass {
  N: number;
  G: number;
  /** Input channels per group of this pass. */
  Ig: number;
  /** Output channels per group of this pass. */
  Jg: number;
  /** Source spatial size. */
  H: number;
  W: number;
  /** Output grid of the pass. */
  OH: number;
  OW: number;
  ty: TapMap;
  tx: TapMap;
  /** The weight's kernel size. */
  kh: number;
  kw: number;
  sy: number;
  sx: number;
  dy: number;
  dx: number;
  /** Where source pixel 0 lands in the padded image (negative: cropped). */
  loY: number;
  loX: number;
  swap: boolean;
  /** The weight's output channels per group and input channels per group. */
  Og: number;
  Cg: number;
  /**
   * Where output grid pixel (m, m') goes: `o0 + m·osy·Wf + m'·osx` within a
   * channel, channels `CS` apart, images `sN` apart.
   */
  out: { CS: number; Wf: number; sN: number; o0: number; osy: number; osx: number };
}

/** Bytes of one image chunk's texture: bounds the packed copy whatever the batch. */
let chunkBytes = 32 << 20;

/**
 * Sets the texture budget of one chunk of images (default 32 MiB) and returns
 * the previous one. For tests of the chunked paths; a chunk holds at least one
 * image whatever the budget.
 */
export function setConvChunkBytes(bytes: number): number {
  const prev = chunkBytes;
  chunkBytes = bytes;
  return prev;
}

/** The texture layout of an image of `CT4` channel texels in `Wt × Ht` tiles. */
interface ImageLayout {
  Wt: number;
  Ht: number;
  CT4: number;
  cx: number;
  texW: number;
  texH: number;
}

function imageLayout(Wt: number, Ht: number, CT4: number): ImageLayout {
  const dim = gpu().limits.maxTextureDimension2D;
  const cx = Math.max(1, Math.min(CT4, Math.floor(dim / Wt)));
  const cy = Math.ceil(CT4 / cx);
  if (Wt > dim || Ht * cy > dim) {
    throw new RangeError(
      `conv2d: a ${Ht}×${Wt} image of ${4 * CT4} channels does not fit this adapter's ` +
        `${dim}×${dim} texture limit`,
    );
  }
  return { Wt, Ht, CT4, cx, texW: Wt * cx, texH: Ht * cy };
}

/**
 * Images per chunk: within the texture budget, the layer limit, the grid
 * limit, and one storage binding for the chunk's images of each tensor
 * (`imageElems` elements per image).
 */
function chunkImages(
  N: number,
  layouts: ImageLayout[],
  pixels: number,
  imageElems: number[],
): number {
  const limits = gpu().limits;
  const per = Math.max(...layouts.map((l) => 16 * l.texW * l.texH));
  const tp = Math.min(GEMM_TP, DW_TP);
  const grid = Math.floor(limits.maxComputeWorkgroupsPerDimension * GEMM_WGX * tp / pixels);
  const image = 4 * Math.max(...imageElems);
  const room = limits.maxStorageBufferBindingSize - limits.minStorageBufferOffsetAlignment;
  if (image > room) {
    throw new RangeError(
      `conv2d: one image of ${image} bytes exceeds this adapter's storage binding limit ` +
        `(${limits.maxStorageBufferBindingSize} bytes)`,
    );
  }
  const bind = Math.floor(room / image);
  return Math.max(
    1,
    Math.min(N, limits.maxTextureArrayLayers, Math.floor(chunkBytes / per), grid, bind),
  );
}

/**
 * The binding for images `n0 .. n0+nb` of a tensor of `per` elements per image
 * (the whole storage when it fits one binding, else an aligned range) and the
 * element offset of image n0 within it.
 */
function imagesOf(
  s: Storage,
  n0: number,
  nb: number,
  per: number,
): [Storage | BufferRange, number] {
  const { maxStorageBufferBindingSize, minStorageBufferOffsetAlignment } = gpu().limits;
  if (s.bytes <= maxStorageBufferBindingSize) return [s, n0 * per];
  const start = 4 * n0 * per;
  const at = start - (start % minStorageBufferOffsetAlignment);
  return [{ storage: s, offset: at, size: 4 * (n0 + nb) * per - at }, (start - at) / 4];
}

/** Records the packing of images `n0 .. n0+nb` of `src [N, G·Cg, H, W]` into `dst`. */
function packImage(
  src: Storage,
  dst: GPUTextureView,
  l: ImageLayout,
  n0: number,
  nb: number,
  p: {
    G: number;
    Cg: number;
    H: number;
    W: number;
    loY: number;
    loX: number;
    pass: ConvPass;
  },
): void {
  const C = p.G * p.Cg;
  const u = new Uint32Array(16);
  u.set([C, p.H, p.W, p.Cg, Math.ceil(p.Cg / 4), l.CT4, l.Wt, l.Ht, l.cx]);
  new Int32Array(u.buffer).set([p.loY, p.loX], 9);
  const [bind, off] = imagesOf(src, n0, nb, C * p.H * p.W);
  u.set([0, 0, off, l.texW, l.texH], 11);
  run(convPackImageProgram(p.pass), {
    inputs: [bind],
    outputs: [dst],
    uniforms: u,
    workgroups: [Math.ceil(l.Wt / PACK_WG), Math.ceil(l.Ht / PACK_WG), nb],
    bytes: 4 * nb * C * p.H * p.W + 16 * nb * l.texW * l.texH,
  });
}

/** Records the packing of the weight for a pass (see convPackWeightProgram). */
function packWeight(w: Storage, p: Pass, depthwise: boolean): Scratch {
  const taps = p.ty.J * p.tx.J;
  // Depthwise: one group of G channels, 4 channels per texel along the columns.
  const G = depthwise ? 1 : p.G;
  const Ig = depthwise ? 1 : p.Ig;
  const Jg = depthwise ? p.G : p.Jg;
  const Jg4 = Math.ceil(Jg / 4);
  const rows = 4 * Math.ceil(Ig / 4);
  const cols = G * Jg4;
  const { maxTextureDimension2D: dim, maxTextureArrayLayers } = gpu().limits;
  if (cols > dim || rows > dim || taps > maxTextureArrayLayers) {
    throw new RangeError(
      `conv2d: a ${p.kh}×${p.kw} kernel of ${G * Jg} × ${Ig} channels exceeds this adapter's ` +
        `texture limits (${dim} texels a side, ${maxTextureArrayLayers} layers)`,
    );
  }
  const t = scratchTexture("w", cols, rows, taps);
  const u = new Uint32Array(16);
  u.set([Ig, Jg, Jg4, rows, taps, +(p.swap && !depthwise)]);
  u.set([depthwise ? 1 : p.Og, depthwise ? 1 : p.Cg, cols, p.kw, p.kh * p.kw, p.tx.J], 6);
  new Int32Array(u.buffer).set([p.ty.A, p.ty.B, p.tx.A, p.tx.B], 12);
  run(convPackWeightProgram(), {
    inputs: [w],
    outputs: [t.view],
    uniforms: u,
    workgroups: [Math.ceil(cols / PACK_WG), Math.ceil(rows / PACK_WG), taps],
    bytes: 4 * G * Ig * Jg * taps + 16 * cols * rows * taps,
  });
  return t;
}

let dummy: { device: GPUDevice; buffer: GPUBuffer } | null = null;

/** A 16-byte buffer bound in place of an absent bias. */
function noBias(): GPUBuffer {
  const { device } = gpu();
  if (dummy?.device !== device) {
    dummy = {
      device,
      buffer: device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE, label: "no bias" }),
    };
  }
  return dummy.buffer;
}

/**
 * A packed image texture taken out of the scratch cache for the weight
 * gradient to read: a conv's input as its forward pass packed it (kept by the
 * tape node: the forward and weight-gradient passes lay the input out alike,
 * and the input tensor itself is then not saved), or the output gradient as a
 * stride-1 data gradient packed it (padded: pixel (0, 0) at `lo`). Measured:
 * the input packing was 20 of the 88 packing passes of a ResNet-18 backward.
 * Its bytes count as live activation memory until it is disposed.
 */
class KeptImage {
  #unhold: () => void;
  /**
   * @param tex The packed texture.
   * @param layout Its layout.
   * @param lo Where pixel (0, 0) of the source lies in each tile (`[loY, loX]`).
   */
  constructor(
    readonly tex: ScratchTexture,
    readonly layout: ImageLayout,
    readonly lo: [number, number] = [0, 0],
  ) {
    this.#unhold = holdExternal(tex.bytes, "activation");
  }
  dispose(): void {
    this.#unhold();
    scratch.give(this.tex);
  }
}

/**
 * Records a convolution pass into `out`. With `keepImage` (the forward pass of
 * a conv whose weight gradient will be wanted), the packed input is made in a
 * texture taken out of the scratch cache and returned, when all images fit one
 * chunk, so that the weight gradient reads it instead of packing the input
 * again (see {@link KeptImage}).
 */
function convPass(
  p: Pass,
  src: Storage,
  w: Storage,
  bias: Storage | null,
  out: Storage,
  keepImage = false,
): KeptImage | null {
  const depthwise = p.Ig === 1 && p.Jg === 1;
  const pass: ConvPass = p.swap ? "bwd_data" : "fwd";
  const taps = p.ty.J * p.tx.J;
  const OHW = p.OH * p.OW;
  const O = p.G * p.Jg;
  // The padded image as far as the kernel reads it (a phase without taps reads nothing).
  const Ht = Math.max(1, (p.OH - 1) * p.sy + (p.ty.J - 1) * p.dy + 1);
  const Wt = Math.max(1, (p.OW - 1) * p.sx + (p.tx.J - 1) * p.dx + 1);
  const Cg4 = Math.ceil(p.Ig / 4);
  const layout = depthwise
    ? imageLayout(Wt, Ht, Math.ceil(p.G / 4))
    : imageLayout(Wt, Ht, p.G * Cg4);
  const nbMax = chunkImages(p.N, [layout], OHW, [p.G * p.Ig * p.H * p.W, p.out.sN]);
  const wt = taps > 0 ? packWeight(w, p, depthwise) : scratchTexture("w", 1, 1, 1);
  const kept = keepImage && taps > 0 && nbMax >= p.N;
  const xt = kept
    ? scratch.take("kept", layout.texW, layout.texH, nbMax)
    : scratchTexture("x", layout.texW, layout.texH, nbMax);
  const packParams = {
    G: depthwise ? 1 : p.G,
    Cg: depthwise ? p.G : p.Ig,
    H: p.H,
    W: p.W,
    loY: p.loY,
    loX: p.loX,
    pass,
  };
  for (let n0 = 0; n0 < p.N; n0 += nbMax) {
    const nb = Math.min(nbMax, p.N - n0);
    if (taps > 0) packImage(src, xt.view, layout, n0, nb, packParams);
    const P = nb * OHW;
    const Og = depthwise ? O : p.Jg;
    const { CS, Wf, sN, o0, osy, osx } = p.out;
    const [outBind, outOff] = imagesOf(out, n0, nb, sN);
    const u = new Uint32Array([
      P,
      OHW,
      p.OW,
      p.sy,
      p.sx,
      p.dy,
      p.dx,
      p.tx.J,
      taps,
      depthwise ? 1 : Cg4,
      Og,
      Math.ceil(Og / 4),
      O,
      Wt,
      Ht,
      layout.cx,
      outOff,
      sN,
      +!!bias,
      CS,
      Wf,
      o0,
      osy,
      osx,
      0,
      taps,
      0,
      Cg4,
    ]);
    const flops = 2 * P * O * p.Ig * taps;
    const bytes = 16 * nb * layout.texW * layout.texH + 4 * P * O;
    if (depthwise) {
      run(convDepthwiseProgram(pass), {
        inputs: [xt.view, wt.view, bias ?? noBias()],
        outputs: [outBind],
        uniforms: u,
        workgroups: [Math.ceil(P / (GEMM_WGX * DW_TP)), Math.ceil(O / 4), 1],
        flops,
        bytes,
      });
    } else {
      // 32 outputs per invocation where a group has that many (measured: 64 outputs 70 against
      // 91 ms; 16 outputs 45 against 38 ms for the narrow tile); 8 where it has at most 8.
      const nt: GemmWidth = p.Jg >= 32 ? 8 : p.Jg > 8 ? 4 : 2;
      const tp = gemmPixels(nt);
      // Blocks of taps and input texels within llvmpipe's loop budget: one for usual shapes.
      const blocks = convGemmBlocks(taps, Cg4);
      for (const [t0, t1, q0, q1] of blocks) {
        u.set([t0, t1, q0, q1], 24);
        run(convGemmProgram(pass, nt), {
          inputs: [xt.view, wt.view, bias ?? noBias()],
          outputs: [outBind],
          uniforms: u.slice(),
          workgroups: [
            Math.ceil(P / (GEMM_WGX * tp)),
            Math.ceil(Math.ceil(p.Jg / 4) / (nt * GEMM_WGY)),
            p.G,
          ],
          // (A phase of a strided backward pass may have no taps: no FLOPs, not 0/0.)
          flops: taps * Cg4 > 0 ? (flops * (t1 - t0) * (q1 - q0)) / (taps * Cg4) : 0,
          bytes,
        });
      }
    }
  }
  return kept ? new KeptImage(xt, layout, [p.loY, p.loX]) : null;
}

/**
 * The sub-pixel phase `r` (output rows `r, r + s, ...`) of a transposed
 * convolution along one axis: input row `i = r + m·s` receives
 * `Σ_k G[(i + pad − k·d)/s] · W[k]` over the taps k for which the division is
 * exact, i.e. a stride-1 convolution of G (not zero-inserted) with those taps,
 * reversed, `de` apart, the image shifted by `lo`. Zero insertion would do
 * `s²` times the work (stride 2: 4×).
 */
function phaseOf(r: number, s: number, d: number, pad: number, k: number, size: number) {
  const M = Math.ceil((size - r) / s);
  const cls: number[] = [];
  for (let t = 0; t < k; t++) if ((((r + pad - t * d) % s) + s) % s === 0) cls.push(t);
  if (!cls.length) return { M, map: { J: 0, A: 0, B: 1 }, de: 1, lo: 0 };
  const e = (t: number) => (r + pad - t * d) / s;
  const last = cls[cls.length - 1];
  const step = cls.length > 1 ? cls[1] - cls[0] : 1;
  return {
    M,
    map: { J: cls.length, A: last, B: -step },
    de: cls.length > 1 ? e(cls[0]) - e(cls[1]) : 1,
    lo: -e(last),
  };
}

/** Workgroups below which the weight gradient splits the pixels further (2 cores × slack). */
const WGRAD_MIN_GROUPS = 32;
/** Pixels each split of the weight gradient gets at least. */
const WGRAD_MIN_PIXELS = 256;

/**
 * `d loss / d input` of a recorded conv2d: a transposed convolution of the
 * gradient, one pass per sub-pixel phase of the stride.
 */
export function conv2dBackwardData(
  g: Tensor,
  w: Tensor,
  xShape: Shape,
  a: Conv2dAttrs,
  sink?: { image: KeptImage | null },
): Tensor {
  const [N, C, H, W] = xShape;
  const [O, Cg, kh, kw] = w.shape;
  const G = a.groups;
  const [OH, OW] = g.shape.slice(2);
  const [sy, sx] = a.stride;
  const out = Tensor.empty(xShape, "f32");
  if (out.size === 0) return out;
  if (O === 0) {
    out.dispose();
    return noGrad(() => zeros(xShape));
  }
  for (let ry = 0; ry < Math.min(sy, H); ry++) {
    const py = phaseOf(ry, sy, a.dilation[0], a.padding[0], kh, H);
    for (let rx = 0; rx < Math.min(sx, W); rx++) {
      const px = phaseOf(rx, sx, a.dilation[1], a.padding[2], kw, W);
      // A stride-1 pass packs G once, padded: the weight gradient can read that packing
      // (see conv2dVjp) when `sink` asks for it and the padding puts G's pixels in the window.
      const keep = sink !== undefined && sy === 1 && sx === 1 && py.lo >= 0 && px.lo >= 0 &&
        !(Cg === 1 && O / G === 1);
      const image = convPass(
        {
          N,
          G,
          Ig: O / G,
          Jg: Cg,
          H: OH,
          W: OW,
          OH: py.M,
          OW: px.M,
          ty: py.map,
          tx: px.map,
          kh,
          kw,
          sy: 1,
          sx: 1,
          dy: py.de,
          dx: px.de,
          loY: py.lo,
          loX: px.lo,
          swap: true,
          Og: O / G,
          Cg,
          out: { CS: H * W, Wf: W, sN: C * H * W, o0: ry * W + rx, osy: sy, osx: sx },
        },
        g.storage,
        w.storage,
        null,
        out.storage,
        keep,
      );
      if (image) sink!.image = image;
    }
  }
  return out;
}

/** The input and gradient layouts of a weight gradient, and how many images one chunk takes. */
function wgradPlan(xShape: Shape, wShape: Shape, [OH, OW]: number[], a: Conv2dAttrs) {
  const [N, , H, W] = xShape;
  const [O, Cg, kh, kw] = wShape;
  const G = a.groups;
  const Og = O / G;
  const [sy, sx] = a.stride;
  const [dy, dx] = a.dilation;
  const depthwise = Cg === 1 && Og === 1;
  const Ht = (OH - 1) * sy + (kh - 1) * dy + 1;
  const Wt = (OW - 1) * sx + (kw - 1) * dx + 1;
  const Cg4 = Math.ceil(Cg / 4);
  const Og4 = Math.ceil(Og / 4);
  const xl = depthwise ? imageLayout(Wt, Ht, Math.ceil(G / 4)) : imageLayout(Wt, Ht, G * Cg4);
  const gl = depthwise ? imageLayout(OW, OH, Math.ceil(G / 4)) : imageLayout(OW, OH, G * Og4);
  const nbMax = chunkImages(N, [xl, gl], OH * OW, [Cg * G * H * W, O * OH * OW]);
  return { depthwise, Ht, Wt, Cg4, Og4, xl, gl, nbMax };
}

/**
 * `d loss / d weight` of a recorded conv2d, from the input `x` or, when the
 * forward pass kept it, its packed texture (then `x` may be null).
 */
export function conv2dBackwardWeight(
  x: Tensor | null,
  g: Tensor,
  wShape: Shape,
  a: Conv2dAttrs,
  xShape: Shape = x!.shape,
  kept: KeptImage | null = null,
  packedG: KeptImage | null = null,
): Tensor {
  const [N, , H, W] = xShape;
  const [O, Cg, kh, kw] = wShape;
  const G = a.groups;
  const Og = O / G;
  const [OH, OW] = g.shape.slice(2);
  const [sy, sx] = a.stride;
  const [dy, dx] = a.dilation;
  const taps = kh * kw;
  const dWsize = O * Cg * taps;
  if (dWsize === 0) return Tensor.empty(wShape, "f32");
  if (N * OH * OW === 0) return noGrad(() => zeros(wShape));
  const OHW = OH * OW;
  const { depthwise, Ht, Wt, Cg4, Og4, xl, gl, nbMax } = wgradPlan(xShape, wShape, [OH, OW], a);
  const useKept = kept !== null && nbMax >= N && kept.layout.texW === xl.texW &&
    kept.layout.texH === xl.texH && kept.layout.cx === xl.cx;
  if (!useKept && !x) throw new Error("internal: conv2d weight gradient without its input");
  const xt = useKept ? kept.tex : scratchTexture("x", xl.texW, xl.texH, nbMax);
  // The data gradient's packing of G (padded: pixel (0, 0) at `lo` in each tile) when it holds
  // every image and the same channel texels in the same tile columns.
  const useG = packedG !== null && !depthwise && nbMax >= N && packedG.layout.CT4 === gl.CT4 &&
    packedG.layout.cx === gl.cx;
  const gt = useG ? packedG.tex : scratchTexture("g", gl.texW, gl.texH, nbMax);
  const gLayout = useG ? packedG.layout : gl;
  // 32 input channels per invocation where a group has more than 16 (measured at 64: 51 against
  // 73 ms for 16); 8 input or output channels where a group has at most 8.
  const ct: WgradDepth = Cg4 > 4 ? 8 : Cg4 > 2 ? 4 : 2;
  const ot: WgradWidth = Og4 > 2 ? 4 : 2;
  const tilesO = Math.ceil(Og4 / ot);
  const tiles = depthwise ? Math.ceil(G / 4) : Math.ceil(Cg4 / ct) * tilesO * taps * G;
  // Enough splits to occupy the cores, and to keep each split's pixel loop within llvmpipe's
  // loop budget (kernels/conv.ts: wgradMaxPixels).
  const splitsOf = (P: number) =>
    Math.max(
      1,
      Math.min(Math.ceil(WGRAD_MIN_GROUPS / tiles), Math.ceil(P / WGRAD_MIN_PIXELS)),
      Math.ceil(P / wgradMaxPixels(OH, OW)),
    );
  // One chunk, one split: the kernel writes dW. Otherwise each chunk's splits are summed and
  // the chunks accumulated, so the partial sums never outgrow one chunk.
  let total: Tensor | null = null;
  const pass: ConvPass = "bwd_weight";
  const xp = { G: depthwise ? 1 : G, Cg: depthwise ? G : Cg, H, W, pass };
  const gp = { G: depthwise ? 1 : G, Cg: depthwise ? G : Og, H: OH, W: OW, pass };
  for (let n0 = 0; n0 < N; n0 += nbMax) {
    const nb = Math.min(nbMax, N - n0);
    const S = splitsOf(nb * OHW);
    const partial = Tensor.empty(S === 1 && nb === N ? wShape : [S, dWsize], "f32");
    if (!useKept) {
      packImage(x!.storage, xt.view, xl, n0, nb, { ...xp, loY: a.padding[0], loX: a.padding[2] });
    }
    if (!useG) packImage(g.storage, gt.view, gl, n0, nb, { ...gp, loY: 0, loX: 0 });
    const P = nb * OHW;
    const pps = Math.ceil(P / S);
    const u = new Uint32Array([
      P,
      OHW,
      OW,
      OH,
      sy,
      sx,
      dy,
      dx,
      kw,
      taps,
      depthwise ? G : Cg,
      Cg4,
      Og,
      Og4,
      Wt,
      Ht,
      xl.cx,
      useG ? gLayout.Wt : OW,
      useG ? gLayout.Ht : OH,
      gLayout.cx,
      tilesO,
      S,
      pps,
      0,
      dWsize,
      useG ? packedG.lo[1] : 0,
      useG ? packedG.lo[0] : 0,
      0,
    ]);
    const common = {
      inputs: [xt.view, gt.view],
      outputs: [partial.storage],
      uniforms: u,
      flops: 2 * P * O * Cg * taps,
      bytes: 16 * nb * (xl.texW * xl.texH + gLayout.texW * gLayout.texH) + 4 * S * dWsize,
    };
    if (depthwise) {
      run(convDepthwiseWgradProgram(kh, kw), {
        ...common,
        workgroups: [Math.ceil(G / 4), S, 1],
      });
    } else {
      run(convWgradProgram(ct, ot), {
        ...common,
        workgroups: [Math.ceil(Cg4 / ct) * tilesO, taps, G * S],
      });
    }
    if (S === 1 && nb === N) return partial;
    const chunkSum = S === 1 ? partial : sum(partial, 0);
    if (chunkSum !== partial) partial.dispose();
    if (total) {
      const t = add(total, chunkSum);
      total.dispose();
      chunkSum.dispose();
      total = t;
    } else {
      total = chunkSum;
    }
  }
  const dw = reshape(total!, wShape);
  total!.dispose();
  return dw;
}

/**
 * Σ over images and pixels of `g [N, O, OH, OW]`: the pixels (contiguous) first,
 * then the images, so that no reduction needs a permuted copy of g.
 */
function biasGrad(g: Tensor): Tensor {
  const [N, O, OH, OW] = g.shape;
  const flat = reshape(g, [N, O, OH * OW]);
  const perImage = sum(flat, 2);
  flat.dispose();
  const total = sum(perImage, 0);
  perImage.dispose();
  return total;
}

/** Backward of conv2d: data, weight and bias gradients, each only when needed. */
export const conv2dVjp: VjpRule<"conv2d"> = (node, g) => {
  const [nx, nw, nb] = node.needs;
  const a = node.attrs;
  const kept = (node.keep?.[0] as KeptImage | undefined) ?? null;
  let i = 0;
  const x = nw && !kept ? node.saved[i++] : null;
  const w = nx ? node.saved[i++] : null;
  // When both gradients are wanted, the weight gradient reads G as the data gradient packed it.
  const sink = { image: null as KeptImage | null };
  const gx = nx ? conv2dBackwardData(g, w!, node.inputShapes[0], a, nw ? sink : undefined) : null;
  const gw = nw
    ? conv2dBackwardWeight(x, g, node.inputShapes[1], a, node.inputShapes[0], kept, sink.image)
    : null;
  sink.image?.dispose();
  const gb = a.bias && nb ? biasGrad(g) : null;
  return a.bias ? [gx, gw, gb] : [gx, gw];
};

// ---------------------------------------------------------------- scratch textures

type Scratch = ScratchTexture;

/** Packed images and weights (engine/scratch.ts), sides kept non-powers of two. */
const scratch = new ScratchTextures("conv2d", 96 << 20, { npot: true });
const scratchTexture = (role: string, w: number, h: number, layers: number): Scratch =>
  scratch.get(role, w, h, layers);
