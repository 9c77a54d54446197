/**
 * Vision Transformer (Dosovitskiy et al., "An Image is Worth 16x16 Words",
 * 2021) and DeiT (Touvron et al., "Training data-efficient image transformers
 * & distillation through attention", 2021), laid out exactly as timm's
 * `VisionTransformer` (`timm/models/vision_transformer.py`, `deit.py`): the
 * same modules under the same names, so `stateDict()` keys, order and shapes
 * are timm's (`"cls_token"`, `"pos_embed"`, `"patch_embed.proj.weight"`,
 * `"blocks.0.attn.qkv.weight"`, ..., `"head.bias"`) and its checkpoints load
 * with `loadStateDict`.
 *
 * | builder      | timm                     | parameters (224 px, 1000 classes) |
 * | ------------ | ------------------------ | --------------------------------- |
 * | `deit_tiny`  | `deit_tiny_patch16_224`  | 5,717,416                         |
 * | `deit_small` | `deit_small_patch16_224` | 22,050,664                        |
 * | `deit_base`  | `deit_base_patch16_224`  | 86,567,656                        |
 *
 * The freezing units are `tokenEmbedding()` (`patch_embed` with the model's
 * own parameters `cls_token` and `pos_embed`) and `blocks.at(i)`.
 *
 * @example
 * ```ts
 * import { crossEntropy, randn, tensor } from "../mod.ts";
 * import { deit_tiny } from "./vit.ts";
 * const model = deit_tiny({ imgSize: 28, patchSize: 7, inChans: 1, numClasses: 10 });
 * const logits = model.forward(randn([2, 1, 28, 28]));
 * crossEntropy(logits, tensor([3, 7], { dtype: "i32" })).backward();
 * console.log(logits.shape, model.pos_embed.shape); // [2, 10] [1, 17, 192]
 * ```
 *
 * @module
 */

import { fmtShape, scope, Tensor } from "../engine/tensor.ts";
import * as nn from "../engine/nn/mod.ts";
import { zeros } from "../engine/ops/elementwise.ts";
import { matmul } from "../engine/ops/matmul.ts";
import { concat, expand, permute, reshape, slice, split } from "../engine/ops/shape.ts";
import { scaledDotProductAttention } from "../engine/ops/attention.ts";
import { constant, normal } from "./init.ts";

/** Options of {@link VisionTransformer} (timm's `VisionTransformer` arguments, camelCase). */
export interface VisionTransformerOptions {
  /** Side of the (square) input images (default 224). */
  imgSize?: number;
  /** Side of the square patches; must divide `imgSize` (default 16). */
  patchSize?: number;
  /** Channels of the input images (default 3). */
  inChans?: number;
  /** Outputs of the head; 0 for no head (the pooled features) (default 1000). */
  numClasses?: number;
  /** Width of every token (default 768). */
  embedDim?: number;
  /** Number of blocks (default 12). */
  depth?: number;
  /** Attention heads; must divide `embedDim` (default 12). */
  numHeads?: number;
  /** MLP hidden width as a multiple of `embedDim` (default 4). */
  mlpRatio?: number;
  /** Whether `qkv` has a bias (default true). */
  qkvBias?: boolean;
  /** Dropout before the head (timm's `drop_rate`; default 0). */
  dropRate?: number;
  /** Dropout after adding the position embedding (timm's `pos_drop_rate`; default 0). */
  posDropRate?: number;
  /** Dropout after the attention projection and in the MLP (timm's `proj_drop_rate`; default 0). */
  projDropRate?: number;
  /** Dropout on the attention weights (timm's `attn_drop_rate`; default 0). */
  attnDropRate?: number;
  /**
   * Stochastic depth (timm's `drop_path_rate`; default 0; DeiT trains with 0.1): block i drops
   * its residual branches with probability `dropPathRate · i / (depth − 1)`, as timm spaces it.
   */
  dropPathRate?: number;
}

/** timm's LayerNorm epsilon for ViTs (`partial(nn.LayerNorm, eps=1e-6)`). */
const LN_EPS = 1e-6;

/** `d.forward(x)` when it changes anything (training with p > 0), else `x` itself (no copy). */
function dropoutIf(d: nn.Dropout, x: Tensor): Tensor {
  return d.training && d.p > 0 ? d.forward(x) : x;
}

/**
 * timm's `trunc_normal_(t, std=.02)`: its default cut is at ±2 (absolute),
 * which at std 0.02 is ±100σ, so a plain normal draw has the same
 * distribution to float32 precision.
 */
function truncNormal02(t: Tensor): void {
  normal(t, 0.02);
}

/**
 * Images to patch tokens (timm's `PatchEmbed`): `proj`, a `Conv2d` with
 * kernel = stride = `patchSize`, then `[B, E, H/p, W/p]` → `[B, N, E]`
 * (row-major patch order).
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { PatchEmbed } from "./vit.ts";
 * const pe = new PatchEmbed(16, 4, 3, 8);
 * console.log(pe.numPatches, pe.forward(randn([2, 3, 16, 16])).shape); // 16 [2, 16, 8]
 * ```
 */
export class PatchEmbed extends nn.Module {
  /** Side of the input images. */
  readonly imgSize: number;
  /** Side of the patches. */
  readonly patchSize: number;
  /** `(imgSize / patchSize)²`. */
  readonly numPatches: number;
  /** The patch projection. */
  proj: nn.Conv2d;
  /** timm's optional norm (an identity here, as in ViT/DeiT). */
  norm: nn.Identity;

  /**
   * @param imgSize Side of the input images.
   * @param patchSize Side of the patches (divides `imgSize`).
   * @param inChans Input channels.
   * @param embedDim Token width.
   */
  constructor(imgSize: number, patchSize: number, inChans: number, embedDim: number) {
    super();
    this.imgSize = imgSize;
    this.patchSize = patchSize;
    this.numPatches = (imgSize / patchSize) ** 2;
    this.proj = new nn.Conv2d(inChans, embedDim, patchSize, { stride: patchSize });
    this.norm = new nn.Identity();
  }

  /** `[B, C, H, W]` → `[B, numPatches, embedDim]`. */
  forward(x: Tensor): Tensor {
    return scope(() => {
      const y = this.proj.forward(x);
      const [B, E, gh, gw] = y.shape;
      return permute(reshape(y, [B, E, gh * gw]), [0, 2, 1]);
    });
  }
}

/**
 * Multi-head self-attention with one `qkv` projection (timm's `Attention`):
 * `qkv(x)` viewed `[B, N, 3, heads, head_dim]` (rows of `qkv.weight` are
 * q, k, v, each a contiguous block of heads), `softmax(q·kᵀ/√head_dim)·v`,
 * heads merged, then `proj`.
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { Attention } from "./vit.ts";
 * const att = new Attention(12, 3);
 * console.log(att.forward(randn([2, 5, 12])).shape); // [2, 5, 12]
 * ```
 */
export class Attention extends nn.Module {
  /** Heads. */
  readonly numHeads: number;
  /** Width of each head. */
  readonly headDim: number;
  /** `Linear(dim, 3·dim)`. */
  qkv: nn.Linear;
  /** timm's optional query norm (identity). */
  q_norm: nn.Identity;
  /** timm's optional key norm (identity). */
  k_norm: nn.Identity;
  /** Dropout on the attention weights. */
  attn_drop: nn.Dropout;
  /** `Linear(dim, dim)`. */
  proj: nn.Linear;
  /** Dropout after `proj`. */
  proj_drop: nn.Dropout;

  /**
   * @param dim Token width.
   * @param numHeads Heads (divides `dim`).
   * @param opts `qkvBias` (default true), `attnDrop`, `projDrop` (default 0).
   */
  constructor(
    dim: number,
    numHeads: number,
    opts: { qkvBias?: boolean; attnDrop?: number; projDrop?: number } = {},
  ) {
    super();
    if (!Number.isInteger(numHeads) || numHeads < 1 || dim % numHeads !== 0) {
      throw new RangeError(`Attention: dim ${dim} is not a multiple of numHeads ${numHeads}`);
    }
    this.numHeads = numHeads;
    this.headDim = dim / numHeads;
    this.qkv = new nn.Linear(dim, 3 * dim, { bias: opts.qkvBias ?? true });
    this.q_norm = new nn.Identity();
    this.k_norm = new nn.Identity();
    this.attn_drop = new nn.Dropout(opts.attnDrop ?? 0);
    this.proj = new nn.Linear(dim, dim);
    this.proj_drop = new nn.Dropout(opts.projDrop ?? 0);
  }

  /** `[B, N, dim]` → `[B, N, dim]`. */
  forward(x: Tensor): Tensor {
    return scope(() => {
      const [B, N, C] = x.shape;
      const H = this.numHeads;
      const qkv = permute(reshape(this.qkv.forward(x), [B, N, 3, H, this.headDim]), [
        2,
        0,
        3,
        1,
        4,
      ]);
      const [q, k, v] = split(qkv, [1, 1, 1], 0).map((t) => reshape(t, [B, H, N, this.headDim]));
      const o = scaledDotProductAttention(q, k, v, {
        dropoutP: this.attn_drop.training ? this.attn_drop.p : 0,
      });
      const merged = reshape(permute(o, [0, 2, 1, 3]), [B, N, C]);
      return dropoutIf(this.proj_drop, this.proj.forward(merged));
    });
  }
}

/**
 * timm's `Mlp`: `fc2(gelu(fc1(x)))` with dropouts (the GELU, erf form, is fused
 * into `fc1`'s matmul in eval mode).
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { Mlp } from "./vit.ts";
 * const mlp = new Mlp(8, 32);
 * console.log(mlp.forward(randn([2, 5, 8])).shape); // [2, 5, 8]
 * ```
 */
export class Mlp extends nn.Module {
  /** `Linear(in, hidden)`. */
  fc1: nn.Linear;
  /** GELU (erf form). */
  act: nn.GELU;
  /** Dropout after the activation. */
  drop1: nn.Dropout;
  /** timm's optional norm (identity). */
  norm: nn.Identity;
  /** `Linear(hidden, in)`. */
  fc2: nn.Linear;
  /** Dropout after `fc2`. */
  drop2: nn.Dropout;

  /**
   * @param inFeatures Token width.
   * @param hiddenFeatures Hidden width.
   * @param drop Dropout probability of both dropouts (default 0).
   */
  constructor(inFeatures: number, hiddenFeatures: number, drop = 0) {
    super();
    this.fc1 = new nn.Linear(inFeatures, hiddenFeatures);
    this.act = new nn.GELU();
    this.drop1 = new nn.Dropout(drop);
    this.norm = new nn.Identity();
    this.fc2 = new nn.Linear(hiddenFeatures, inFeatures);
    this.drop2 = new nn.Dropout(drop);
  }

  /** `[..., in]` → `[..., in]`. */
  forward(x: Tensor): Tensor {
    return scope(() => {
      const { weight, bias } = this.fc1;
      const h = matmul(x, weight, { transB: true, bias: bias ?? undefined, act: "gelu" });
      return dropoutIf(this.drop2, this.fc2.forward(dropoutIf(this.drop1, h)));
    });
  }
}

/**
 * A pre-norm transformer block (timm's `Block`, without LayerScale or drop
 * path): `x + attn(norm1(x))`, then `x + mlp(norm2(x))`.
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { Block } from "./vit.ts";
 * const block = new Block(12, 3);
 * console.log(block.forward(randn([2, 5, 12])).shape); // [2, 5, 12]
 * ```
 */
export class Block extends nn.Module {
  /** LayerNorm before attention (eps 1e-6). */
  norm1: nn.LayerNorm;
  /** Self-attention. */
  attn: Attention;
  /** LayerScale slot (identity). */
  ls1: nn.Identity;
  /** Stochastic depth on the attention branch (identity when the rate is 0, as in timm). */
  drop_path1: nn.Identity | nn.DropPath;
  /** LayerNorm before the MLP (eps 1e-6). */
  norm2: nn.LayerNorm;
  /** The MLP. */
  mlp: Mlp;
  /** LayerScale slot (identity). */
  ls2: nn.Identity;
  /** Stochastic depth on the MLP branch (identity when the rate is 0, as in timm). */
  drop_path2: nn.Identity | nn.DropPath;

  /**
   * @param dim Token width.
   * @param numHeads Heads.
   * @param opts `mlpRatio` (default 4), `qkvBias` (default true), `projDrop`, `attnDrop`,
   *   `dropPath` (stochastic depth of both residual branches; default 0).
   */
  constructor(
    dim: number,
    numHeads: number,
    opts: {
      mlpRatio?: number;
      qkvBias?: boolean;
      projDrop?: number;
      attnDrop?: number;
      dropPath?: number;
    } = {},
  ) {
    super();
    this.norm1 = new nn.LayerNorm(dim, { eps: LN_EPS });
    this.attn = new Attention(dim, numHeads, {
      qkvBias: opts.qkvBias,
      attnDrop: opts.attnDrop,
      projDrop: opts.projDrop,
    });
    this.ls1 = new nn.Identity();
    const dp = opts.dropPath ?? 0;
    this.drop_path1 = dp > 0 ? new nn.DropPath(dp) : new nn.Identity();
    this.norm2 = new nn.LayerNorm(dim, { eps: LN_EPS });
    this.mlp = new Mlp(dim, Math.floor(dim * (opts.mlpRatio ?? 4)), opts.projDrop ?? 0);
    this.ls2 = new nn.Identity();
    this.drop_path2 = dp > 0 ? new nn.DropPath(dp) : new nn.Identity();
  }

  /** `[B, N, dim]` → `[B, N, dim]`. */
  forward(x: Tensor): Tensor {
    return scope(() => {
      const h = x.add(this.drop_path1.forward(this.attn.forward(this.norm1.forward(x))));
      return h.add(this.drop_path2.forward(this.mlp.forward(this.norm2.forward(h))));
    });
  }
}

/** Options with timm's defaults filled in, checked. */
function resolve(opts: VisionTransformerOptions): Required<VisionTransformerOptions> {
  const o: Required<VisionTransformerOptions> = {
    imgSize: opts.imgSize ?? 224,
    patchSize: opts.patchSize ?? 16,
    inChans: opts.inChans ?? 3,
    numClasses: opts.numClasses ?? 1000,
    embedDim: opts.embedDim ?? 768,
    depth: opts.depth ?? 12,
    numHeads: opts.numHeads ?? 12,
    mlpRatio: opts.mlpRatio ?? 4,
    qkvBias: opts.qkvBias ?? true,
    dropRate: opts.dropRate ?? 0,
    posDropRate: opts.posDropRate ?? 0,
    projDropRate: opts.projDropRate ?? 0,
    attnDropRate: opts.attnDropRate ?? 0,
    dropPathRate: opts.dropPathRate ?? 0,
  };
  for (const k of ["imgSize", "patchSize", "inChans", "embedDim", "depth", "numHeads"] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) {
      throw new RangeError(`VisionTransformer: ${k} must be an integer ≥ 1, got ${o[k]}`);
    }
  }
  if (!Number.isInteger(o.numClasses) || o.numClasses < 0) {
    throw new RangeError(
      `VisionTransformer: numClasses must be an integer ≥ 0, got ${o.numClasses}`,
    );
  }
  if (o.imgSize % o.patchSize !== 0) {
    throw new RangeError(
      `VisionTransformer: imgSize ${o.imgSize} is not a multiple of patchSize ${o.patchSize}`,
    );
  }
  if (o.embedDim % o.numHeads !== 0) {
    throw new RangeError(
      `VisionTransformer: embedDim ${o.embedDim} is not a multiple of numHeads ${o.numHeads}`,
    );
  }
  if (!(o.mlpRatio > 0) || Math.floor(o.embedDim * o.mlpRatio) < 1) {
    throw new RangeError(`VisionTransformer: mlpRatio must be > 0, got ${o.mlpRatio}`);
  }
  for (
    const k of ["dropRate", "posDropRate", "projDropRate", "attnDropRate", "dropPathRate"] as const
  ) {
    if (!(o[k] >= 0 && o[k] < 1)) {
      throw new RangeError(`VisionTransformer: ${k} must be in [0, 1), got ${o[k]}`);
    }
  }
  return o;
}

/**
 * The three parameter holders that make a ViT's input tokens, `cls_token`,
 * `pos_embed` and `patch_embed`, as one module: what
 * {@link VisionTransformer.tokenEmbedding} returns. It is a handle on the
 * model's own tensors and modules, not a child of the model (its keys would
 * repeat), made to freeze the token embedding as one unit: freezing only
 * `patch_embed` would leave `pos_embed` trainable, and every block would
 * then stay on the tape to carry its gradient.
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { deit_tiny } from "./vit.ts";
 * const model = deit_tiny({ imgSize: 32, patchSize: 8, numClasses: 10, depth: 2 });
 * const tokens = model.tokenEmbedding();
 * console.log(tokens.namedParameters().map(([k]) => k)[1], tokens.forward(randn([2, 3, 32, 32])).shape);
 * // "pos_embed" [2, 17, 192]
 * tokens.freeze();
 * console.log(model.pos_embed.requiresGrad, model.numParameters({ trainable: true }) < model.numParameters()); // false true
 * ```
 */
export class TokenEmbedding extends nn.Module {
  /** The model's class token. */
  cls_token: Tensor;
  /** The model's position embedding. */
  pos_embed: Tensor;
  /** The model's patch embedding. */
  patch_embed: PatchEmbed;
  /** The model's dropout after the position embedding. */
  pos_drop: nn.Dropout;

  /**
   * @param clsToken `[1, 1, E]`.
   * @param posEmbed `[1, 1 + N, E]`.
   * @param patchEmbed Images to `[B, N, E]`.
   * @param posDrop Dropout after adding `posEmbed`.
   */
  constructor(clsToken: Tensor, posEmbed: Tensor, patchEmbed: PatchEmbed, posDrop: nn.Dropout) {
    super();
    this.cls_token = clsToken;
    this.pos_embed = posEmbed;
    this.patch_embed = patchEmbed;
    this.pos_drop = posDrop;
  }

  /** Images `[B, C, H, W]` → tokens `[B, 1 + N, E]`: class token in front, position embedding added. */
  forward(x: Tensor): Tensor {
    return scope(() => {
      const t = this.patch_embed.forward(x);
      const [B, , E] = t.shape;
      const withCls = concat([expand(this.cls_token, [B, 1, E]), t], 1);
      return dropoutIf(this.pos_drop, withCls.add(this.pos_embed));
    });
  }
}

/**
 * timm's `VisionTransformer` with its ViT/DeiT defaults: class token,
 * learned position embedding over 1 + patches, pre-norm {@link Block}s,
 * final `norm`, the class token's state through `head`. LayerNorm eps 1e-6.
 *
 * Initialisation as DeiT's (timm ≤ 0.4, which DeiT was trained with):
 * `pos_embed`, `cls_token` and every Linear weight from a normal truncated at
 * ±2 with std 0.02 (`trunc_normal_`), Linear biases 0, LayerNorm 1/0, the
 * patch conv PyTorch's default. (Current timm draws `cls_token` with std 1e-6.)
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { VisionTransformer } from "./vit.ts";
 * const vit = new VisionTransformer({ imgSize: 16, patchSize: 4, embedDim: 24, depth: 2, numHeads: 3, numClasses: 5 });
 * console.log(Object.keys(vit.stateDict()).slice(0, 3), vit.forward(randn([2, 3, 16, 16])).shape);
 * // ["cls_token", "pos_embed", "patch_embed.proj.weight"] [2, 5]
 * ```
 */
export class VisionTransformer extends nn.Module {
  /** The resolved options. */
  readonly options: Readonly<Required<VisionTransformerOptions>>;
  /** `[1, 1, embedDim]`: the class token. */
  cls_token: Tensor;
  /** `[1, 1 + numPatches, embedDim]`: position embedding (class token included). */
  pos_embed: Tensor;
  /** Images to patch tokens. */
  patch_embed: PatchEmbed;
  /** Dropout after the position embedding. */
  pos_drop: nn.Dropout;
  /** Patch-dropout slot (identity). */
  patch_drop: nn.Identity;
  /** Pre-norm slot (identity). */
  norm_pre: nn.Identity;
  /** The blocks (`blocks.at(i)`: freezing units). */
  blocks: nn.Sequential;
  /** Final LayerNorm. */
  norm: nn.LayerNorm;
  /** Norm after pooling (identity for class-token pooling). */
  fc_norm: nn.Identity;
  /** Dropout before the head. */
  head_drop: nn.Dropout;
  /** `Linear(embedDim, numClasses)`, or an identity with `numClasses: 0`. */
  head: nn.Linear | nn.Identity;

  /** @param opts See {@link VisionTransformerOptions} (timm's defaults: ViT-Base/16 at 224 px). */
  constructor(opts: VisionTransformerOptions = {}) {
    super();
    const o = resolve(opts);
    this.options = Object.freeze(o);
    const E = o.embedDim;
    const numPatches = (o.imgSize / o.patchSize) ** 2;
    // Parameters first, as PyTorch lists a module's own parameters before its children's.
    this.cls_token = nn.parameter(zeros([1, 1, E]));
    this.pos_embed = nn.parameter(zeros([1, numPatches + 1, E]));
    this.patch_embed = new PatchEmbed(o.imgSize, o.patchSize, o.inChans, E);
    this.pos_drop = new nn.Dropout(o.posDropRate);
    this.patch_drop = new nn.Identity();
    this.norm_pre = new nn.Identity();
    this.blocks = new nn.Sequential(
      ...Array.from({ length: o.depth }, (_, i) =>
        new Block(E, o.numHeads, {
          mlpRatio: o.mlpRatio,
          qkvBias: o.qkvBias,
          projDrop: o.projDropRate,
          attnDrop: o.attnDropRate,
          // timm: torch.linspace(0, drop_path_rate, depth)[i].
          dropPath: o.depth > 1 ? (o.dropPathRate * i) / (o.depth - 1) : 0,
        })),
    );
    this.norm = new nn.LayerNorm(E, { eps: LN_EPS });
    this.fc_norm = new nn.Identity();
    this.head_drop = new nn.Dropout(o.dropRate);
    this.head = o.numClasses > 0 ? new nn.Linear(E, o.numClasses) : new nn.Identity();

    truncNormal02(this.pos_embed);
    truncNormal02(this.cls_token);
    for (const m of this.modules()) {
      if (m instanceof nn.Linear) {
        truncNormal02(m.weight);
        if (m.bias) constant(m.bias, 0);
      }
    }
  }

  #check(x: Tensor): void {
    const { inChans, imgSize } = this.options;
    if (
      !(x instanceof Tensor) || x.dtype !== "f32" || x.ndim !== 4 || x.shape[1] !== inChans ||
      x.shape[2] !== imgSize || x.shape[3] !== imgSize || x.shape[0] < 1
    ) {
      throw new RangeError(
        `VisionTransformer(imgSize ${imgSize}, patchSize ${this.options.patchSize}): ` +
          `expected f32 images [batch, ${inChans}, ${imgSize}, ${imgSize}], got ${
            x instanceof Tensor ? `${x.dtype} ${fmtShape(x.shape)}` : String(x)
          }`,
      );
    }
  }

  /**
   * `cls_token`, `pos_embed` and `patch_embed` as one module (see
   * {@link TokenEmbedding}): the first freezing unit of SmartFRZ-style
   * front-to-back freezing, before `blocks.at(0)`.
   */
  tokenEmbedding(): TokenEmbedding {
    return new TokenEmbedding(this.cls_token, this.pos_embed, this.patch_embed, this.pos_drop);
  }

  #tokens(x: Tensor): Tensor {
    return this.tokenEmbedding().forward(x);
  }

  #blocks(h0: Tensor): Tensor {
    let h = h0;
    for (const b of this.blocks) {
      const next = b.forward(h);
      if (h !== h0) h.dispose();
      h = next;
    }
    return h;
  }

  /**
   * timm's `forward_features`: images `[B, inChans, imgSize, imgSize]` → every
   * token after the final norm, `[B, 1 + numPatches, embedDim]`.
   */
  forwardFeatures(x: Tensor): Tensor {
    this.#check(x);
    const t = this.#tokens(x);
    const h = this.#blocks(t);
    if (h !== t) t.dispose();
    const out = this.norm.forward(h);
    h.dispose();
    return out;
  }

  /**
   * Images `[B, inChans, imgSize, imgSize]` → logits `[B, numClasses]` (the
   * class token's features `[B, embedDim]` with `numClasses: 0`).
   */
  forward(x: Tensor): Tensor {
    this.#check(x);
    const t = this.#tokens(x);
    const h = this.#blocks(t);
    if (h !== t) t.dispose();
    return scope(() => {
      const [B, , E] = h.shape;
      // LayerNorm is per token, so normalising only the class token gives timm's
      // norm(x)[:, 0] without normalising the patch tokens nobody reads.
      const cls = reshape(slice(h, [0, 0], [B, 1]), [B, E]);
      h.dispose();
      const pooled = this.fc_norm.forward(this.norm.forward(cls));
      return this.head.forward(dropoutIf(this.head_drop, pooled));
    });
  }
}

/**
 * The `[key, shape]` list of a VisionTransformer's state dict, in order,
 * computed without building the model (the layout the classes above register).
 *
 * @param opts See {@link VisionTransformerOptions}.
 * @returns `[key, shape]` pairs; {@link vitNumParameters} sums them.
 *
 * @example
 * ```ts
 * import { vitStateDictShapes } from "./vit.ts";
 * console.log(vitStateDictShapes({ embedDim: 192, numHeads: 3 }).slice(0, 2));
 * // [["cls_token", [1, 1, 192]], ["pos_embed", [1, 197, 192]]]
 * ```
 */
export function vitStateDictShapes(opts: VisionTransformerOptions = {}): [string, number[]][] {
  const o = resolve(opts);
  const E = o.embedDim;
  const M = Math.floor(E * o.mlpRatio);
  const p = o.patchSize;
  const out: [string, number[]][] = [
    ["cls_token", [1, 1, E]],
    ["pos_embed", [1, (o.imgSize / p) ** 2 + 1, E]],
    ["patch_embed.proj.weight", [E, o.inChans, p, p]],
    ["patch_embed.proj.bias", [E]],
  ];
  const linear = (name: string, inF: number, outF: number, bias = true) => {
    out.push([`${name}.weight`, [outF, inF]]);
    if (bias) out.push([`${name}.bias`, [outF]]);
  };
  const norm = (name: string) => out.push([`${name}.weight`, [E]], [`${name}.bias`, [E]]);
  for (let i = 0; i < o.depth; i++) {
    const b = `blocks.${i}`;
    norm(`${b}.norm1`);
    linear(`${b}.attn.qkv`, E, 3 * E, o.qkvBias);
    linear(`${b}.attn.proj`, E, E);
    norm(`${b}.norm2`);
    linear(`${b}.mlp.fc1`, E, M);
    linear(`${b}.mlp.fc2`, M, E);
  }
  norm("norm");
  if (o.numClasses > 0) linear("head", E, o.numClasses);
  return out;
}

/**
 * Number of parameter elements of a VisionTransformer (every state-dict
 * entry is a parameter): 5,717,416 for `deit_tiny()`.
 *
 * @param opts See {@link VisionTransformerOptions}.
 *
 * @example
 * ```ts
 * import { vitNumParameters } from "./vit.ts";
 * console.log(vitNumParameters({ embedDim: 192, numHeads: 3 })); // 5717416
 * ```
 */
export function vitNumParameters(opts: VisionTransformerOptions = {}): number {
  let n = 0;
  for (const [, s] of vitStateDictShapes(opts)) n += s.reduce((a, d) => a * d, 1);
  return n;
}

/**
 * A Vision Transformer ({@link VisionTransformer}), freshly initialised, in
 * training mode; timm's defaults are ViT-Base/16 at 224 px.
 *
 * @param opts See {@link VisionTransformerOptions}.
 * @returns The model.
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { visionTransformer } from "./vit.ts";
 * const vit = visionTransformer({ imgSize: 16, patchSize: 4, embedDim: 24, depth: 1, numHeads: 3, numClasses: 5 });
 * console.log(vit.forward(randn([1, 3, 16, 16])).shape); // [1, 5]
 * ```
 */
export function visionTransformer(opts: VisionTransformerOptions = {}): VisionTransformer {
  return new VisionTransformer(opts);
}

/**
 * DeiT-Tiny (timm's `deit_tiny_patch16_224`: embed 192, 12 blocks, 3 heads,
 * patch 16, 224 px, 1000 classes; 5,717,416 parameters). Any option may be
 * overridden, e.g. `{ imgSize: 32, patchSize: 4, numClasses: 10 }` for CIFAR.
 *
 * @param opts Overrides of {@link VisionTransformerOptions}.
 * @returns The model.
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { deit_tiny } from "./vit.ts";
 * const model = deit_tiny({ imgSize: 28, patchSize: 7, inChans: 1, numClasses: 10 });
 * console.log(model.forward(randn([1, 1, 28, 28])).shape); // [1, 10]
 * ```
 */
export function deit_tiny(opts: VisionTransformerOptions = {}): VisionTransformer {
  return new VisionTransformer({ patchSize: 16, embedDim: 192, depth: 12, numHeads: 3, ...opts });
}

/**
 * DeiT-Small (timm's `deit_small_patch16_224`: embed 384, 12 blocks, 6 heads,
 * patch 16, 224 px, 1000 classes; 22,050,664 parameters).
 *
 * @param opts Overrides of {@link VisionTransformerOptions}.
 * @returns The model.
 *
 * @example
 * ```ts
 * import "../mod.ts";
 * import { deit_small } from "./vit.ts";
 * const model = deit_small({ imgSize: 32, patchSize: 8, numClasses: 10, depth: 2 });
 * console.log(model.numParameters()); // 3634570
 * ```
 */
export function deit_small(opts: VisionTransformerOptions = {}): VisionTransformer {
  return new VisionTransformer({ patchSize: 16, embedDim: 384, depth: 12, numHeads: 6, ...opts });
}

/**
 * DeiT-Base (timm's `deit_base_patch16_224`: embed 768, 12 blocks, 12 heads,
 * patch 16, 224 px, 1000 classes; 86,567,656 parameters).
 *
 * @param opts Overrides of {@link VisionTransformerOptions}.
 * @returns The model.
 *
 * @example
 * ```ts
 * import { vitNumParameters } from "./vit.ts";
 * // deit_base() itself allocates 346 MB of parameters; its count, without building it:
 * console.log(vitNumParameters({ embedDim: 768, depth: 12, numHeads: 12 })); // 86567656
 * ```
 */
export function deit_base(opts: VisionTransformerOptions = {}): VisionTransformer {
  return new VisionTransformer({ patchSize: 16, embedDim: 768, depth: 12, numHeads: 12, ...opts });
}

/** camelCase alias of {@link deit_tiny}. */
export const deitTiny: typeof deit_tiny = deit_tiny;
/** camelCase alias of {@link deit_small}. */
export const deitSmall: typeof deit_small = deit_small;
/** camelCase alias of {@link deit_base}. */
export const deitBase: typeof deit_base = deit_base;
