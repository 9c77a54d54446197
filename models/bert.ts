/**
 * BERT (Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers
 * for Language Understanding", 2019), laid out exactly as Hugging Face
 * transformers' `BertModel` and `BertForSequenceClassification`
 * (`modeling_bert.py`): the same modules under the same names, so
 * `stateDict()` keys, order and shapes are transformers'
 * (`"bert.embeddings.word_embeddings.weight"`,
 * `"bert.encoder.layer.0.attention.self.query.weight"`,
 * `"bert.embeddings.LayerNorm.weight"`, ..., `"classifier.weight"`) and its
 * checkpoints load with `loadStateDict`, old ones included (see
 * {@link BertModel.loadStateDict}).
 *
 * Configurations use `BertConfig`'s field names (`hidden_size`,
 * `num_attention_heads`, ...), so a checkpoint's `config.json` can be passed
 * as it is. {@link BERT_CONFIGS} holds the sizes of Google's BERT checkpoints
 * (Turc et al., "Well-Read Students Learn Better", 2019, for the small ones):
 *
 * | preset        | layers × hidden | heads | intermediate | parameters (no head) |
 * | ------------- | --------------- | ----- | ------------ | -------------------- |
 * | `bert-tiny`   | 2 × 128         | 2     | 512          | 4,385,920            |
 * | `bert-mini`   | 4 × 256         | 4     | 1024         | 11,170,560           |
 * | `bert-small`  | 4 × 512         | 8     | 2048         | 28,763,648           |
 * | `bert-medium` | 8 × 512         | 8     | 2048         | 41,373,184           |
 * | `bert-base`   | 12 × 768        | 12    | 3072         | 109,482,240          |
 *
 * Each encoder layer is a freezable unit: `model.bert.embeddings` and
 * `model.bert.encoder.layer.at(i)`. Freezing a prefix of them
 * (`Module.freeze()`) cuts the tape there: token ids need no gradient, so
 * nothing before the first trainable layer is recorded or kept for backward.
 *
 * @example
 * ```ts
 * import { crossEntropy, tensor } from "../mod.ts";
 * import { BERT_CONFIGS, bertForSequenceClassification } from "./bert.ts";
 * const model = bertForSequenceClassification({
 *   ...BERT_CONFIGS["bert-tiny"],
 *   vocab_size: 100,
 *   num_labels: 3,
 * });
 * const ids = tensor([1, 7, 8, 2, 1, 9, 2, 0], { shape: [2, 4], dtype: "i32" });
 * const mask = tensor([1, 1, 1, 1, 1, 1, 1, 0], { shape: [2, 4], dtype: "i32" });
 * const logits = model.forward(ids, { attentionMask: mask });
 * crossEntropy(logits, tensor([0, 2], { dtype: "i32" })).backward();
 * console.log(logits.shape); // [2, 3]
 * ```
 *
 * @module
 */

import { fmtShape, scope, Tensor, tensor } from "../engine/tensor.ts";
import * as nn from "../engine/nn/mod.ts";
import type { LoadStateDictOptions, LoadStateDictResult } from "../engine/nn/module.ts";
import { cast, mul, sub } from "../engine/ops/elementwise.ts";
import { matmul } from "../engine/ops/matmul.ts";
import { permute, reshape, slice } from "../engine/ops/shape.ts";
import { scaledDotProductAttention } from "../engine/ops/attention.ts";
import { constant, normal, zeroRow } from "./init.ts";

/**
 * The fields of Hugging Face's `BertConfig` that shape the encoder, with its
 * names. Defaults (see {@link bertConfig}) are `bert-base-uncased`'s.
 */
export interface BertConfig {
  /** Token vocabulary (30522). */
  vocab_size: number;
  /** Width of every token's vector (768). */
  hidden_size: number;
  /** Encoder layers (12). */
  num_hidden_layers: number;
  /** Attention heads per layer; must divide `hidden_size` (12). */
  num_attention_heads: number;
  /** Width of the feed-forward layer (3072). */
  intermediate_size: number;
  /** Feed-forward activation: only `"gelu"` (the erf form, transformers' `ACT2FN["gelu"]`). */
  hidden_act: "gelu";
  /** Dropout after the embeddings and after each sublayer (0.1). */
  hidden_dropout_prob: number;
  /** Dropout on the attention weights (0.1). */
  attention_probs_dropout_prob: number;
  /** Longest sequence: rows of the position table (512). */
  max_position_embeddings: number;
  /** Token types (segments) (2). */
  type_vocab_size: number;
  /** Standard deviation of the normal initialisation of Linear and Embedding weights (0.02). */
  initializer_range: number;
  /** LayerNorm epsilon (1e-12). */
  layer_norm_eps: number;
  /** Id of the padding token: its embedding row starts at zero and gets no gradient (0). */
  pad_token_id: number | null;
  /** Outputs of the sequence classifier (2). */
  num_labels: number;
  /** Dropout before the classifier; null uses `hidden_dropout_prob` (null). */
  classifier_dropout: number | null;
}

const BERT_BASE: Readonly<BertConfig> = Object.freeze({
  vocab_size: 30522,
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  hidden_act: "gelu",
  hidden_dropout_prob: 0.1,
  attention_probs_dropout_prob: 0.1,
  max_position_embeddings: 512,
  type_vocab_size: 2,
  initializer_range: 0.02,
  layer_norm_eps: 1e-12,
  pad_token_id: 0,
  num_labels: 2,
  classifier_dropout: null,
});

const preset = (layers: number, hidden: number, heads: number): Readonly<BertConfig> =>
  Object.freeze({
    ...BERT_BASE,
    num_hidden_layers: layers,
    hidden_size: hidden,
    num_attention_heads: heads,
    intermediate_size: 4 * hidden,
  });

/**
 * Complete configurations of Google's uncased English BERTs
 * (`google/bert_uncased_L-2_H-128_A-2` for `bert-tiny`, `L-4_H-256_A-4`,
 * `L-4_H-512_A-8`, `L-8_H-512_A-8`, and `bert-base-uncased`). Spread one and
 * override fields: `{ ...BERT_CONFIGS["bert-mini"], num_labels: 5 }`.
 *
 * @example
 * ```ts
 * import { BERT_CONFIGS } from "./bert.ts";
 * console.log(BERT_CONFIGS["bert-mini"].intermediate_size); // 1024
 * ```
 */
export const BERT_CONFIGS: Readonly<
  Record<"bert-tiny" | "bert-mini" | "bert-small" | "bert-medium" | "bert-base", BertConfig>
> = Object.freeze({
  "bert-tiny": preset(2, 128, 2),
  "bert-mini": preset(4, 256, 4),
  "bert-small": preset(4, 512, 8),
  "bert-medium": preset(8, 512, 8),
  "bert-base": BERT_BASE,
});

/**
 * A complete, checked configuration: `bert-base-uncased`'s defaults with
 * `overrides` on top. Unknown fields (a `config.json`'s `architectures`,
 * `model_type`, ...) are ignored.
 *
 * @param overrides Fields to change.
 * @returns A new configuration object.
 * @throws RangeError naming the field for a value out of range, TypeError for
 *   an activation other than `"gelu"` or a position embedding other than
 *   `"absolute"`.
 *
 * @example
 * ```ts
 * import { bertConfig } from "./bert.ts";
 * console.log(bertConfig({ hidden_size: 256, num_attention_heads: 4 }).num_hidden_layers); // 12
 * ```
 */
export function bertConfig(overrides: Partial<BertConfig> = {}): BertConfig {
  const c: BertConfig = { ...BERT_BASE };
  for (const k of Object.keys(BERT_BASE) as (keyof BertConfig)[]) {
    if (overrides[k] !== undefined) (c as unknown as Record<string, unknown>)[k] = overrides[k];
  }
  if (c.hidden_act !== "gelu") {
    throw new TypeError(
      `BertConfig: hidden_act ${JSON.stringify(c.hidden_act)} is not supported (only "gelu")`,
    );
  }
  const pos = (overrides as Record<string, unknown>).position_embedding_type;
  if (pos !== undefined && pos !== "absolute") {
    throw new TypeError(
      `BertConfig: position_embedding_type ${
        JSON.stringify(pos)
      } is not supported (only "absolute")`,
    );
  }
  const ints = [
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
    "num_labels",
  ] as const;
  for (const k of ints) {
    if (!Number.isInteger(c[k]) || c[k] < 1) {
      throw new RangeError(`BertConfig: ${k} must be an integer ≥ 1, got ${c[k]}`);
    }
  }
  if (c.hidden_size % c.num_attention_heads !== 0) {
    throw new RangeError(
      `BertConfig: hidden_size ${c.hidden_size} is not a multiple of num_attention_heads ${c.num_attention_heads}`,
    );
  }
  const probs = ["hidden_dropout_prob", "attention_probs_dropout_prob"] as const;
  for (const k of probs) {
    if (!(c[k] >= 0 && c[k] < 1)) {
      throw new RangeError(`BertConfig: ${k} must be in [0, 1), got ${c[k]}`);
    }
  }
  if (c.classifier_dropout !== null && !(c.classifier_dropout >= 0 && c.classifier_dropout < 1)) {
    throw new RangeError(
      `BertConfig: classifier_dropout must be null or in [0, 1), got ${c.classifier_dropout}`,
    );
  }
  if (!(c.layer_norm_eps >= 0) || !Number.isFinite(c.layer_norm_eps)) {
    throw new RangeError(
      `BertConfig: layer_norm_eps must be finite and ≥ 0, got ${c.layer_norm_eps}`,
    );
  }
  if (!(c.initializer_range >= 0) || !Number.isFinite(c.initializer_range)) {
    throw new RangeError(
      `BertConfig: initializer_range must be finite and ≥ 0, got ${c.initializer_range}`,
    );
  }
  if (
    c.pad_token_id !== null &&
    (!Number.isInteger(c.pad_token_id) || c.pad_token_id < 0 || c.pad_token_id >= c.vocab_size)
  ) {
    throw new RangeError(
      `BertConfig: pad_token_id must be null or an id in [0, ${c.vocab_size}), got ${c.pad_token_id}`,
    );
  }
  return c;
}

/** Optional inputs of {@link BertModel} and {@link BertForSequenceClassification}. */
export interface BertInputs {
  /** Segment of each token, i32 `[batch, seq]` (default all 0). */
  tokenTypeIds?: Tensor;
  /**
   * 1 for tokens to attend to, 0 for padding, `[batch, seq]`, i32 (or u32 /
   * f32 holding 0 and 1); default: every token attended.
   */
  attentionMask?: Tensor;
}

/** What {@link BertModel.encode} returns. */
export interface BertModelOutput {
  /** Hidden states of the last layer, `[batch, seq, hidden_size]`. */
  lastHiddenState: Tensor;
  /** `tanh(dense(h[:, 0]))`, `[batch, hidden_size]`; null without a pooler. */
  pooledOutput: Tensor | null;
}

/** What {@link BertModel.loadStateDict} did, beyond the base class's report. */
export interface BertLoadStateDictResult extends LoadStateDictResult {
  /** One line per legacy key dropped or renamed, and per prefix added or removed. */
  notes: string[];
}

/** `d.forward(x)` when it changes anything (training with p > 0), else `x` itself (no copy). */
function dropoutIf(d: nn.Dropout, x: Tensor): Tensor {
  return d.training && d.p > 0 ? d.forward(x) : x;
}

/** `torch.finfo(torch.float32).min`: what transformers adds to the scores of padding keys. */
const F32_MIN = -3.4028234663852886e38;

/**
 * Word + token-type + position embeddings, then LayerNorm and dropout
 * (transformers' `BertEmbeddings`, absolute positions). `position_ids` and
 * `token_type_ids` are non-persistent buffers (`[1, max_position_embeddings]`
 * i32, `0, 1, 2, ...` and zeros), as in transformers ≥ 4.31: not state-dict
 * keys.
 *
 * @example
 * ```ts
 * import { tensor } from "../mod.ts";
 * import { BertEmbeddings, bertConfig } from "./bert.ts";
 * const emb = new BertEmbeddings(bertConfig({ vocab_size: 50, hidden_size: 8, num_attention_heads: 2 }));
 * console.log(emb.forward(tensor([3, 4, 5], { shape: [1, 3], dtype: "i32" })).shape); // [1, 3, 8]
 * ```
 */
export class BertEmbeddings extends nn.Module {
  /** `[vocab_size, hidden_size]`, padding row `pad_token_id`. */
  word_embeddings: nn.Embedding;
  /** `[max_position_embeddings, hidden_size]`. */
  position_embeddings: nn.Embedding;
  /** `[type_vocab_size, hidden_size]`. */
  token_type_embeddings: nn.Embedding;
  /** Normalises the sum. */
  LayerNorm: nn.LayerNorm;
  /** `hidden_dropout_prob`. */
  dropout: nn.Dropout;
  /** Non-persistent buffer `[1, max_position_embeddings]` i32: `0, 1, 2, ...`. */
  position_ids: Tensor;
  /** Non-persistent buffer `[1, max_position_embeddings]` i32 of zeros (the default token types). */
  token_type_ids: Tensor;

  /** @param config A complete configuration ({@link bertConfig}). */
  constructor(config: BertConfig) {
    super();
    const H = config.hidden_size;
    const P = config.max_position_embeddings;
    this.word_embeddings = new nn.Embedding(config.vocab_size, H, {
      paddingIdx: config.pad_token_id,
    });
    this.position_embeddings = new nn.Embedding(P, H);
    this.token_type_embeddings = new nn.Embedding(config.type_vocab_size, H);
    this.LayerNorm = new nn.LayerNorm(H, { eps: config.layer_norm_eps });
    this.dropout = new nn.Dropout(config.hidden_dropout_prob);
    const ids = new Int32Array(P).map((_, i) => i);
    this.position_ids = nn.buffer(tensor(ids, { shape: [1, P], dtype: "i32" }), {
      persistent: false,
    });
    this.token_type_ids = nn.buffer(
      tensor(new Int32Array(P), { shape: [1, P], dtype: "i32" }),
      { persistent: false },
    );
  }

  /**
   * Token ids `[B, T]` (and token types `[B, T]`, default 0) → `[B, T, hidden]`.
   * Shapes are checked by {@link BertModel}; ids are not range-checked (an id
   * outside the vocabulary gives a zero row, see `embedding`).
   */
  forward(inputIds: Tensor, tokenTypeIds?: Tensor): Tensor {
    return scope(() => {
      const T = inputIds.shape[1];
      const types = tokenTypeIds ?? slice(this.token_type_ids, [0, 0], [1, T]);
      const positions = slice(this.position_ids, [0, 0], [1, T]);
      // transformers' order: (word + token type) + position, then LayerNorm.
      const e = this.word_embeddings.forward(inputIds)
        .add(this.token_type_embeddings.forward(types))
        .add(this.position_embeddings.forward(positions));
      return dropoutIf(this.dropout, this.LayerNorm.forward(e));
    });
  }
}

/**
 * Multi-head self-attention with separate `query`, `key` and `value`
 * projections (transformers' `BertSelfAttention`, eager path): each
 * projection is split into `[B, heads, T, head_dim]`, then
 * `softmax(q·kᵀ/√head_dim + mask)` (dropout on it) times `v`, heads merged back.
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { BertSelfAttention, bertConfig } from "./bert.ts";
 * const att = new BertSelfAttention(bertConfig({ hidden_size: 8, num_attention_heads: 2 }));
 * console.log(att.forward(randn([2, 5, 8])).shape); // [2, 5, 8]
 * ```
 */
export class BertSelfAttention extends nn.Module {
  /** Heads. */
  readonly numAttentionHeads: number;
  /** Width of each head. */
  readonly attentionHeadSize: number;
  /** `Linear(hidden, hidden)`. */
  query: nn.Linear;
  /** `Linear(hidden, hidden)`. */
  key: nn.Linear;
  /** `Linear(hidden, hidden)`. */
  value: nn.Linear;
  /** `attention_probs_dropout_prob`, on the attention weights. */
  dropout: nn.Dropout;

  /** @param config A complete configuration ({@link bertConfig}). */
  constructor(config: BertConfig) {
    super();
    const H = config.hidden_size;
    this.numAttentionHeads = config.num_attention_heads;
    this.attentionHeadSize = H / config.num_attention_heads;
    this.query = new nn.Linear(H, H);
    this.key = new nn.Linear(H, H);
    this.value = new nn.Linear(H, H);
    this.dropout = new nn.Dropout(config.attention_probs_dropout_prob);
  }

  /**
   * `[B, T, hidden]` → `[B, T, hidden]`. `mask` is the additive mask
   * `[B, 1, 1, T]` (0 to attend, a large negative value for padding).
   */
  forward(hiddenStates: Tensor, mask?: Tensor): Tensor {
    return scope(() => {
      const [B, T] = hiddenStates.shape;
      const nh = this.numAttentionHeads;
      const hd = this.attentionHeadSize;
      const heads = (proj: nn.Linear) =>
        permute(reshape(proj.forward(hiddenStates), [B, T, nh, hd]), [0, 2, 1, 3]);
      const context = scaledDotProductAttention(
        heads(this.query),
        heads(this.key),
        heads(this.value),
        { mask, dropoutP: this.dropout.training ? this.dropout.p : 0 },
      );
      return reshape(permute(context, [0, 2, 1, 3]), [B, T, nh * hd]);
    });
  }
}

/**
 * `LayerNorm(dropout(dense(h)) + input)`: the output projection and residual
 * of the attention sublayer (transformers' `BertSelfOutput`).
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { BertSelfOutput, bertConfig } from "./bert.ts";
 * const out = new BertSelfOutput(bertConfig({ hidden_size: 8, num_attention_heads: 2 }));
 * const x = randn([2, 5, 8]);
 * console.log(out.forward(randn([2, 5, 8]), x).shape); // [2, 5, 8]
 * ```
 */
export class BertSelfOutput extends nn.Module {
  /** `Linear(hidden, hidden)`. */
  dense: nn.Linear;
  /** Post-norm of the residual sum. */
  LayerNorm: nn.LayerNorm;
  /** `hidden_dropout_prob`. */
  dropout: nn.Dropout;

  /** @param config A complete configuration ({@link bertConfig}). */
  constructor(config: BertConfig) {
    super();
    this.dense = new nn.Linear(config.hidden_size, config.hidden_size);
    this.LayerNorm = new nn.LayerNorm(config.hidden_size, { eps: config.layer_norm_eps });
    this.dropout = new nn.Dropout(config.hidden_dropout_prob);
  }

  /** `hiddenStates [B, T, hidden]` and the residual `inputTensor` (same shape) → `[B, T, hidden]`. */
  forward(hiddenStates: Tensor, inputTensor?: Tensor): Tensor {
    return residualNorm(this, hiddenStates, inputTensor);
  }
}

/** `LayerNorm(dropout(dense(h)) + input)`, shared by BertSelfOutput and BertOutput. */
function residualNorm(
  m: { dense: nn.Linear; LayerNorm: nn.LayerNorm; dropout: nn.Dropout },
  hiddenStates: Tensor,
  inputTensor: Tensor | undefined,
): Tensor {
  if (!inputTensor) {
    throw new TypeError(`${m.constructor.name}.forward(): the residual input is required`);
  }
  return scope(() => {
    const h = dropoutIf(m.dropout, m.dense.forward(hiddenStates));
    return m.LayerNorm.forward(h.add(inputTensor));
  });
}

/**
 * The attention sublayer: {@link BertSelfAttention} (`self`) then
 * {@link BertSelfOutput} (`output`) (transformers' `BertAttention`).
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { BertAttention, bertConfig } from "./bert.ts";
 * const att = new BertAttention(bertConfig({ hidden_size: 8, num_attention_heads: 2 }));
 * console.log(att.forward(randn([1, 3, 8])).shape); // [1, 3, 8]
 * ```
 */
export class BertAttention extends nn.Module {
  /** Multi-head self-attention (transformers' field name `self`). */
  self: BertSelfAttention;
  /** Projection, residual and LayerNorm. */
  output: BertSelfOutput;

  /** @param config A complete configuration ({@link bertConfig}). */
  constructor(config: BertConfig) {
    super();
    this.self = new BertSelfAttention(config);
    this.output = new BertSelfOutput(config);
  }

  /** `[B, T, hidden]` (and the additive mask `[B, 1, 1, T]`) → `[B, T, hidden]`. */
  forward(hiddenStates: Tensor, mask?: Tensor): Tensor {
    const a = this.self.forward(hiddenStates, mask);
    const out = this.output.forward(a, hiddenStates);
    a.dispose();
    return out;
  }
}

/**
 * `gelu(dense(h))` to `intermediate_size` (transformers' `BertIntermediate`);
 * the GELU is fused into the matmul in eval mode.
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { BertIntermediate, bertConfig } from "./bert.ts";
 * const m = new BertIntermediate(bertConfig({ hidden_size: 8, num_attention_heads: 2, intermediate_size: 32 }));
 * console.log(m.forward(randn([1, 3, 8])).shape); // [1, 3, 32]
 * ```
 */
export class BertIntermediate extends nn.Module {
  /** `Linear(hidden, intermediate)`. */
  dense: nn.Linear;
  /** The activation (GELU, erf form), as transformers' `intermediate_act_fn`. */
  intermediate_act_fn: nn.GELU;

  /** @param config A complete configuration ({@link bertConfig}). */
  constructor(config: BertConfig) {
    super();
    this.dense = new nn.Linear(config.hidden_size, config.intermediate_size);
    this.intermediate_act_fn = new nn.GELU();
  }

  /** `[B, T, hidden]` → `[B, T, intermediate]`. */
  forward(hiddenStates: Tensor): Tensor {
    const { weight, bias } = this.dense;
    return matmul(hiddenStates, weight, { transB: true, bias: bias ?? undefined, act: "gelu" });
  }
}

/**
 * `LayerNorm(dropout(dense(h)) + input)` from `intermediate_size` back to
 * `hidden_size` (transformers' `BertOutput`).
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { BertOutput, bertConfig } from "./bert.ts";
 * const m = new BertOutput(bertConfig({ hidden_size: 8, num_attention_heads: 2, intermediate_size: 32 }));
 * console.log(m.forward(randn([1, 3, 32]), randn([1, 3, 8])).shape); // [1, 3, 8]
 * ```
 */
export class BertOutput extends nn.Module {
  /** `Linear(intermediate, hidden)`. */
  dense: nn.Linear;
  /** Post-norm of the residual sum. */
  LayerNorm: nn.LayerNorm;
  /** `hidden_dropout_prob`. */
  dropout: nn.Dropout;

  /** @param config A complete configuration ({@link bertConfig}). */
  constructor(config: BertConfig) {
    super();
    this.dense = new nn.Linear(config.intermediate_size, config.hidden_size);
    this.LayerNorm = new nn.LayerNorm(config.hidden_size, { eps: config.layer_norm_eps });
    this.dropout = new nn.Dropout(config.hidden_dropout_prob);
  }

  /** `hiddenStates [B, T, intermediate]` and the residual `inputTensor [B, T, hidden]` → `[B, T, hidden]`. */
  forward(hiddenStates: Tensor, inputTensor?: Tensor): Tensor {
    return residualNorm(this, hiddenStates, inputTensor);
  }
}

/**
 * One post-norm encoder layer: attention sublayer, then feed-forward sublayer
 * (transformers' `BertLayer`).
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { BertLayer, bertConfig } from "./bert.ts";
 * const layer = new BertLayer(bertConfig({ hidden_size: 8, num_attention_heads: 2, intermediate_size: 16 }));
 * console.log(layer.forward(randn([2, 3, 8])).shape); // [2, 3, 8]
 * ```
 */
export class BertLayer extends nn.Module {
  /** Self-attention, projection, residual, LayerNorm. */
  attention: BertAttention;
  /** Feed-forward up-projection and GELU. */
  intermediate: BertIntermediate;
  /** Feed-forward down-projection, residual, LayerNorm. */
  output: BertOutput;

  /** @param config A complete configuration ({@link bertConfig}). */
  constructor(config: BertConfig) {
    super();
    this.attention = new BertAttention(config);
    this.intermediate = new BertIntermediate(config);
    this.output = new BertOutput(config);
  }

  /** `[B, T, hidden]` (and the additive mask `[B, 1, 1, T]`) → `[B, T, hidden]`. */
  forward(hiddenStates: Tensor, mask?: Tensor): Tensor {
    const a = this.attention.forward(hiddenStates, mask);
    const i = this.intermediate.forward(a);
    const out = this.output.forward(i, a);
    i.dispose();
    a.dispose();
    return out;
  }
}

/**
 * The stack of {@link BertLayer}s as `layer` (a ModuleList: keys
 * `encoder.layer.0. ...`), transformers' `BertEncoder`.
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { BertEncoder, bertConfig } from "./bert.ts";
 * const enc = new BertEncoder(bertConfig({ hidden_size: 8, num_attention_heads: 2, num_hidden_layers: 2 }));
 * console.log(enc.layer.length, enc.forward(randn([1, 3, 8])).shape); // 2 [1, 3, 8]
 * ```
 */
export class BertEncoder extends nn.Module {
  /** `num_hidden_layers` layers, in order. */
  layer: nn.ModuleList;

  /** @param config A complete configuration ({@link bertConfig}). */
  constructor(config: BertConfig) {
    super();
    this.layer = new nn.ModuleList(
      Array.from({ length: config.num_hidden_layers }, () => new BertLayer(config)),
    );
  }

  /** `[B, T, hidden]` (and the additive mask `[B, 1, 1, T]`) → `[B, T, hidden]`. */
  forward(hiddenStates: Tensor, mask?: Tensor): Tensor {
    let h = hiddenStates;
    for (const layer of this.layer) {
      const next = (layer as BertLayer).forward(h, mask);
      if (h !== hiddenStates) h.dispose();
      h = next;
    }
    return h;
  }
}

/**
 * `tanh(dense(h[:, 0]))`: the first ([CLS]) token's state through a
 * `Linear(hidden, hidden)` and tanh (transformers' `BertPooler`).
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { BertPooler, bertConfig } from "./bert.ts";
 * const pooler = new BertPooler(bertConfig({ hidden_size: 8, num_attention_heads: 2 }));
 * console.log(pooler.forward(randn([2, 3, 8])).shape); // [2, 8]
 * ```
 */
export class BertPooler extends nn.Module {
  /** `Linear(hidden, hidden)`. */
  dense: nn.Linear;
  /** tanh. */
  activation: nn.Tanh;

  /** @param config A complete configuration ({@link bertConfig}). */
  constructor(config: BertConfig) {
    super();
    this.dense = new nn.Linear(config.hidden_size, config.hidden_size);
    this.activation = new nn.Tanh();
  }

  /** `[B, T, hidden]` → `[B, hidden]`. */
  forward(hiddenStates: Tensor): Tensor {
    return scope(() => {
      const [B, , H] = hiddenStates.shape;
      const first = reshape(slice(hiddenStates, [0, 0], [B, 1]), [B, H]);
      return this.activation.forward(this.dense.forward(first));
    });
  }
}

/** HF `_init_weights`: N(0, range) Linear/Embedding weights, zero biases and padding row, LayerNorm 1/0. */
function initBertWeights(root: nn.Module, range: number): void {
  for (const m of root.modules()) {
    if (m instanceof nn.Linear) {
      normal(m.weight, range);
      if (m.bias) constant(m.bias, 0);
    } else if (m instanceof nn.Embedding) {
      normal(m.weight, range);
      if (m.paddingIdx !== null) zeroRow(m.weight, m.paddingIdx);
    } else if (m instanceof nn.LayerNorm) {
      if (m.weight) constant(m.weight, 1);
      if (m.bias) constant(m.bias, 0);
    }
  }
}

/** Checks the shapes and dtypes of a BERT call; `who` names the model in messages. */
function checkInputs(who: string, c: BertConfig, ids: Tensor, inputs: BertInputs): void {
  const desc = (t: unknown) => t instanceof Tensor ? `${t.dtype} ${fmtShape(t.shape)}` : String(t);
  if (!(ids instanceof Tensor) || ids.dtype !== "i32" || ids.ndim !== 2) {
    throw new TypeError(`${who}: input_ids must be an i32 [batch, seq] tensor, got ${desc(ids)}`);
  }
  const [B, T] = ids.shape;
  if (B < 1 || T < 1) {
    throw new RangeError(`${who}: input_ids ${fmtShape(ids.shape)} is empty`);
  }
  if (T > c.max_position_embeddings) {
    throw new RangeError(
      `${who}: sequence length ${T} (input_ids ${
        fmtShape(ids.shape)
      }) is longer than max_position_embeddings ${c.max_position_embeddings}`,
    );
  }
  const { tokenTypeIds, attentionMask } = inputs;
  if (tokenTypeIds !== undefined) {
    if (
      !(tokenTypeIds instanceof Tensor) || tokenTypeIds.dtype !== "i32" ||
      tokenTypeIds.shape.join() !== ids.shape.join()
    ) {
      throw new TypeError(
        `${who}: token_type_ids must be i32 ${fmtShape(ids.shape)} like input_ids, got ${
          desc(tokenTypeIds)
        }`,
      );
    }
  }
  if (attentionMask !== undefined) {
    if (
      !(attentionMask instanceof Tensor) || attentionMask.shape.join() !== ids.shape.join()
    ) {
      throw new TypeError(
        `${who}: attention_mask must be ${fmtShape(ids.shape)} like input_ids, got ${
          desc(attentionMask)
        }`,
      );
    }
  }
}

/**
 * transformers' extended attention mask: `(1 − mask)·finfo(f32).min` as
 * `[B, 1, 1, T]`, added to every head's scores (padding keys get weight 0).
 */
function extendedAttentionMask(mask: Tensor): Tensor {
  return scope(() => {
    const [B, T] = mask.shape;
    const m = mask.dtype === "f32" ? mask : cast(mask, "f32");
    return reshape(mul(sub(1, m), F32_MIN), [B, 1, 1, T]);
  });
}

/** Old key spellings → this model's keys, and the notes saying so. */
function upgradeStateDict(
  sd: Record<string, Tensor>,
  own: Record<string, Tensor>,
): { sd: Record<string, Tensor>; notes: string[] } {
  const notes: string[] = [];
  const out: Record<string, Tensor> = {};
  let added = 0;
  let stripped = 0;
  for (const [k, v] of Object.entries(sd)) {
    // transformers < 4.31 saved these buffers; now they are non-persistent (not state-dict keys).
    if (/(^|\.)embeddings\.(position_ids|token_type_ids)$/.test(k) && !Object.hasOwn(own, k)) {
      notes.push(`dropped "${k}" (a non-persistent buffer since transformers 4.31)`);
      continue;
    }
    let key = k;
    if (!Object.hasOwn(own, k)) {
      // A base-model checkpoint into a model with a head, or the reverse (transformers does
      // both); the original Google checkpoints (converted from TensorFlow) name LayerNorm's
      // parameters gamma/beta, which transformers renames on load.
      const prefixed = [k, `bert.${k}`, ...(k.startsWith("bert.") ? [k.slice(5)] : [])];
      const match = prefixed.flatMap((
        p,
      ) => [p, p.replace(/\.gamma$/, ".weight").replace(/\.beta$/, ".bias")])
        .find((c) => Object.hasOwn(own, c));
      if (match !== undefined) {
        key = match;
        if (match.startsWith("bert.") && !k.startsWith("bert.")) added++;
        else if (!match.startsWith("bert.") && k.startsWith("bert.")) stripped++;
        if (/\.(gamma|beta)$/.test(k)) notes.push(`renamed "${k}" to "${match}"`);
      }
    }
    out[key] = v;
  }
  if (added) notes.push(`added the prefix "bert." to ${added} keys`);
  if (stripped) notes.push(`removed the prefix "bert." from ${stripped} keys`);
  return { sd: out, notes };
}

/** Options of {@link BertModel} and {@link bert}. */
export interface BertModelOptions {
  /** Whether the model has the `pooler` (default true, as transformers' `add_pooling_layer`). */
  addPoolingLayer?: boolean;
}

/**
 * The BERT encoder (transformers' `BertModel`): `embeddings`, `encoder`
 * (`encoder.layer` is the ModuleList of layers) and `pooler`, initialised as
 * transformers' `_init_weights` does: Linear and Embedding weights from
 * N(0, `initializer_range`²), zero biases and padding row, LayerNorm weight 1
 * and bias 0.
 *
 * `forward` gives the last hidden state (a tensor, as every `Module` does);
 * {@link BertModel.encode} gives it with the pooled output.
 *
 * @example
 * ```ts
 * import { tensor } from "../mod.ts";
 * import { BertModel } from "./bert.ts";
 * const model = new BertModel({ vocab_size: 50, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 32 });
 * const { lastHiddenState, pooledOutput } = model.eval().encode(
 *   tensor([5, 6, 7, 8, 9, 0], { shape: [2, 3], dtype: "i32" }),
 *   { attentionMask: tensor([1, 1, 1, 1, 1, 0], { shape: [2, 3], dtype: "i32" }) },
 * );
 * console.log(lastHiddenState.shape, pooledOutput?.shape); // [2, 3, 16] [2, 16]
 * ```
 */
export class BertModel extends nn.Module {
  /** The complete configuration. */
  readonly config: Readonly<BertConfig>;
  /** Word, position and token-type embeddings (a freezing unit). */
  embeddings: BertEmbeddings;
  /** The layers (`encoder.layer.at(i)`: freezing units). */
  encoder: BertEncoder;
  /** `tanh(dense(h[:, 0]))`, or null without `addPoolingLayer`. */
  pooler: BertPooler | null;

  /**
   * @param config Fields of `BertConfig` to change from `bert-base-uncased`'s (see {@link bertConfig}).
   * @param opts `addPoolingLayer`.
   */
  constructor(config: Partial<BertConfig> = {}, opts: BertModelOptions = {}) {
    super();
    this.config = Object.freeze(bertConfig(config));
    this.embeddings = new BertEmbeddings(this.config);
    this.encoder = new BertEncoder(this.config);
    this.pooler = (opts.addPoolingLayer ?? true) ? new BertPooler(this.config) : null;
    initBertWeights(this, this.config.initializer_range);
  }

  /**
   * Token ids `[B, T]` (i32, T ≤ `max_position_embeddings`) → the last hidden
   * state `[B, T, hidden_size]`.
   *
   * @param inputIds i32 `[B, T]`.
   * @param inputs `tokenTypeIds`, `attentionMask` (both `[B, T]`).
   * @throws TypeError / RangeError naming the model and the shapes for bad inputs.
   */
  forward(inputIds: Tensor, inputs: BertInputs = {}): Tensor {
    checkInputs(this.constructor.name, this.config, inputIds, inputs);
    return this.#run(inputIds, inputs, false).lastHiddenState;
  }

  /**
   * Like {@link BertModel.forward}, also giving the pooled output
   * (transformers' `BaseModelOutputWithPooling`).
   *
   * @param inputIds i32 `[B, T]`.
   * @param inputs `tokenTypeIds`, `attentionMask` (both `[B, T]`).
   * @returns `{ lastHiddenState [B, T, hidden], pooledOutput [B, hidden] | null }`.
   */
  encode(inputIds: Tensor, inputs: BertInputs = {}): BertModelOutput {
    checkInputs(this.constructor.name, this.config, inputIds, inputs);
    return this.#run(inputIds, inputs, true);
  }

  #run(inputIds: Tensor, inputs: BertInputs, pool: boolean): BertModelOutput {
    // With no mask every key is attended: the extended mask would be all zeros, so skip it.
    const mask = inputs.attentionMask ? extendedAttentionMask(inputs.attentionMask) : undefined;
    const emb = this.embeddings.forward(inputIds, inputs.tokenTypeIds);
    const h = this.encoder.forward(emb, mask);
    if (h !== emb) emb.dispose();
    mask?.dispose();
    const pooled = pool && this.pooler ? this.pooler.forward(h) : null;
    return { lastHiddenState: h, pooledOutput: pooled };
  }

  /**
   * Loads a state dict as {@link nn.Module.loadStateDict} does, after
   * transformers' fixes for old checkpoints: `embeddings.position_ids` (and
   * `token_type_ids`), saved by transformers < 4.31, are dropped; LayerNorm
   * `gamma`/`beta` (the original TensorFlow-converted checkpoints) become
   * `weight`/`bias`; a `"bert."` prefix is removed (a
   * `BertForSequenceClassification` or pre-training checkpoint; its head keys
   * stay unexpected, so pass `strict: false`). Each fix is listed in `notes`.
   *
   * @example
   * ```ts
   * import { zeros } from "../mod.ts";
   * import { BertModel } from "./bert.ts";
   * const a = new BertModel({ vocab_size: 20, hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 16 });
   * const old = { ...a.stateDict(), "embeddings.position_ids": zeros([1, 512], "i32") };
   * console.log(a.loadStateDict(old).notes); // ['dropped "embeddings.position_ids" (...)']
   * ```
   */
  override loadStateDict(
    sd: Record<string, Tensor>,
    opts: LoadStateDictOptions = {},
  ): BertLoadStateDictResult {
    const up = upgradeStateDict(sd, this.stateDict());
    return { ...super.loadStateDict(up.sd, opts), notes: up.notes };
  }
}

/**
 * BERT with a sequence-classification head (transformers'
 * `BertForSequenceClassification`): `bert` ({@link BertModel} with pooler),
 * `dropout` (`classifier_dropout`, else `hidden_dropout_prob`) and
 * `classifier` (`Linear(hidden, num_labels)`), giving logits `[B, num_labels]`
 * for `crossEntropy`.
 *
 * @example
 * ```ts
 * import { tensor } from "../mod.ts";
 * import { BertForSequenceClassification } from "./bert.ts";
 * const model = new BertForSequenceClassification({ vocab_size: 50, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, num_labels: 4 });
 * console.log(model.forward(tensor([5, 6, 7], { shape: [1, 3], dtype: "i32" })).shape); // [1, 4]
 * ```
 */
export class BertForSequenceClassification extends nn.Module {
  /** The encoder with pooler. */
  bert: BertModel;
  /** Dropout on the pooled output. */
  dropout: nn.Dropout;
  /** `Linear(hidden_size, num_labels)`. */
  classifier: nn.Linear;

  /** @param config Fields of `BertConfig` to change from `bert-base-uncased`'s (see {@link bertConfig}). */
  constructor(config: Partial<BertConfig> = {}) {
    super();
    this.bert = new BertModel(config);
    const c = this.bert.config;
    this.dropout = new nn.Dropout(c.classifier_dropout ?? c.hidden_dropout_prob);
    this.classifier = new nn.Linear(c.hidden_size, c.num_labels);
    initBertWeights(this.classifier, c.initializer_range);
  }

  /** The complete configuration. */
  get config(): Readonly<BertConfig> {
    return this.bert.config;
  }

  /**
   * Token ids `[B, T]` (i32, T ≤ `max_position_embeddings`) → logits `[B, num_labels]`.
   *
   * @param inputIds i32 `[B, T]`.
   * @param inputs `tokenTypeIds`, `attentionMask` (both `[B, T]`).
   * @throws TypeError / RangeError naming the model and the shapes for bad inputs.
   */
  forward(inputIds: Tensor, inputs: BertInputs = {}): Tensor {
    checkInputs(this.constructor.name, this.config, inputIds, inputs);
    const { lastHiddenState, pooledOutput } = this.bert.encode(inputIds, inputs);
    lastHiddenState.dispose();
    const d = dropoutIf(this.dropout, pooledOutput!);
    const logits = this.classifier.forward(d);
    if (d !== pooledOutput) d.dispose();
    pooledOutput!.dispose();
    return logits;
  }

  /** {@link BertModel.loadStateDict}'s fixes for old checkpoints, then the usual load. */
  override loadStateDict(
    sd: Record<string, Tensor>,
    opts: LoadStateDictOptions = {},
  ): BertLoadStateDictResult {
    const up = upgradeStateDict(sd, this.stateDict());
    return { ...super.loadStateDict(up.sd, opts), notes: up.notes };
  }
}

/** Options of {@link bertStateDictShapes}. */
export interface BertShapesOptions {
  /** Keys of {@link BertForSequenceClassification} (`bert.` prefix, `classifier`) (default false). */
  sequenceClassification?: boolean;
  /** Whether the encoder has a pooler (default true; always with `sequenceClassification`). */
  addPoolingLayer?: boolean;
}

/**
 * The `[key, shape]` list of a BERT's state dict, in order, computed without
 * building the model (the same layout the classes above register).
 *
 * @param config Fields of `BertConfig` to change from `bert-base-uncased`'s.
 * @param opts `sequenceClassification`, `addPoolingLayer`.
 * @returns `[key, shape]` pairs; {@link bertNumParameters} sums them.
 *
 * @example
 * ```ts
 * import { bertStateDictShapes } from "./bert.ts";
 * console.log(bertStateDictShapes().length); // 199
 * ```
 */
export function bertStateDictShapes(
  config: Partial<BertConfig> = {},
  opts: BertShapesOptions = {},
): [string, number[]][] {
  const c = bertConfig(config);
  const H = c.hidden_size;
  const I = c.intermediate_size;
  const cls = opts.sequenceClassification ?? false;
  const p = cls ? "bert." : "";
  const out: [string, number[]][] = [];
  const linear = (name: string, inF: number, outF: number) =>
    out.push([`${name}.weight`, [outF, inF]], [`${name}.bias`, [outF]]);
  const norm = (name: string) => out.push([`${name}.weight`, [H]], [`${name}.bias`, [H]]);
  out.push(
    [`${p}embeddings.word_embeddings.weight`, [c.vocab_size, H]],
    [`${p}embeddings.position_embeddings.weight`, [c.max_position_embeddings, H]],
    [`${p}embeddings.token_type_embeddings.weight`, [c.type_vocab_size, H]],
  );
  norm(`${p}embeddings.LayerNorm`);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const L = `${p}encoder.layer.${l}`;
    for (const k of ["query", "key", "value"]) linear(`${L}.attention.self.${k}`, H, H);
    linear(`${L}.attention.output.dense`, H, H);
    norm(`${L}.attention.output.LayerNorm`);
    linear(`${L}.intermediate.dense`, H, I);
    linear(`${L}.output.dense`, I, H);
    norm(`${L}.output.LayerNorm`);
  }
  if (cls || (opts.addPoolingLayer ?? true)) linear(`${p}pooler.dense`, H, H);
  if (cls) linear("classifier", H, c.num_labels);
  return out;
}

/**
 * Number of parameter elements of a BERT (every state-dict entry is a
 * parameter): 109,482,240 for `bert-base-uncased` without a head.
 *
 * @param config Fields of `BertConfig` to change from `bert-base-uncased`'s.
 * @param opts As {@link bertStateDictShapes}.
 *
 * @example
 * ```ts
 * import { BERT_CONFIGS, bertNumParameters } from "./bert.ts";
 * console.log(bertNumParameters(BERT_CONFIGS["bert-mini"])); // 11170560
 * ```
 */
export function bertNumParameters(
  config: Partial<BertConfig> = {},
  opts: BertShapesOptions = {},
): number {
  let n = 0;
  for (const [, s] of bertStateDictShapes(config, opts)) n += s.reduce((a, d) => a * d, 1);
  return n;
}

/**
 * A BERT encoder ({@link BertModel}), freshly initialised, in training mode.
 *
 * @param config Fields of `BertConfig` to change from `bert-base-uncased`'s,
 *   e.g. a {@link BERT_CONFIGS} preset.
 * @param opts `addPoolingLayer` (default true).
 * @returns The model.
 *
 * @example
 * ```ts
 * import { tensor } from "../mod.ts";
 * import { BERT_CONFIGS, bert } from "./bert.ts";
 * const model = bert({ ...BERT_CONFIGS["bert-tiny"], vocab_size: 64 });
 * const h = model.forward(tensor([1, 2, 3], { shape: [1, 3], dtype: "i32" }));
 * console.log(h.shape); // [1, 3, 128]
 * ```
 */
export function bert(config: Partial<BertConfig> = {}, opts: BertModelOptions = {}): BertModel {
  return new BertModel(config, opts);
}

/**
 * A BERT with a sequence-classification head
 * ({@link BertForSequenceClassification}), freshly initialised, in training
 * mode.
 *
 * @param config Fields of `BertConfig` to change from `bert-base-uncased`'s,
 *   e.g. a {@link BERT_CONFIGS} preset and `num_labels`.
 * @returns The model.
 *
 * @example
 * ```ts
 * import { tensor } from "../mod.ts";
 * import { BERT_CONFIGS, bertForSequenceClassification } from "./bert.ts";
 * const model = bertForSequenceClassification({ ...BERT_CONFIGS["bert-tiny"], vocab_size: 64, num_labels: 2 });
 * const logits = model.forward(tensor([1, 2, 3], { shape: [1, 3], dtype: "i32" }));
 * console.log(logits.shape); // [1, 2]
 * ```
 */
export function bertForSequenceClassification(
  config: Partial<BertConfig> = {},
): BertForSequenceClassification {
  return new BertForSequenceClassification(config);
}
