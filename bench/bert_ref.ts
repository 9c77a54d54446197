/**
 * The BERT-mini training problem of bench/bert_compare.ts, engine-independent:
 * Hugging Face's `google/bert_uncased_L-4_H-256_A-4` configuration
 * ({@link BERT_MINI}, dropout set to 0 so every engine computes the same
 * function), seeded weights under `BertForSequenceClassification`'s state-dict
 * names ({@link bertProblem}), one padded batch of token ids, and a float64
 * CPU reference of the first loss ({@link cpuBertLoss}).
 *
 * The model is the post-norm BERT encoder: embeddings (word + position +
 * token type, then LayerNorm), per layer self-attention with an additive
 * padding mask, `LayerNorm(x + attn)`, `LayerNorm(x + W₂·gelu(W₁·x))` with the
 * exact (erf) GELU, then the pooler `tanh(dense(h[:, 0]))`, the classifier
 * `Linear(hidden, num_labels)` and mean cross-entropy.
 *
 * @module
 */

import { type NamedParam, normal, rng } from "./peers_ref.ts";

/** A BERT configuration, Hugging Face `BertConfig` field names. */
export interface BertConfig {
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  max_position_embeddings: number;
  type_vocab_size: number;
  layer_norm_eps: number;
  hidden_dropout_prob: number;
  attention_probs_dropout_prob: number;
  num_labels: number;
}

/**
 * BERT-mini: `google/bert_uncased_L-4_H-256_A-4`'s config.json with two labels
 * and dropout 0 (the checkpoint's is 0.1), so a step is deterministic.
 */
export const BERT_MINI: Readonly<BertConfig> = {
  vocab_size: 30522,
  hidden_size: 256,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  intermediate_size: 1024,
  max_position_embeddings: 512,
  type_vocab_size: 2,
  layer_norm_eps: 1e-12,
  hidden_dropout_prob: 0,
  attention_probs_dropout_prob: 0,
  num_labels: 2,
};

/** BERT-mini with a two-way classifier: 11,171,074 parameters. */
export const BERT_MINI_PARAMS = 11_171_074;

/**
 * One BERT sequence-classification training step: a batch of padded
 * sequences, their labels, and every parameter under its Hugging Face name.
 */
export interface BertProblem {
  config: BertConfig;
  batch: number;
  seqLen: number;
  /** Plain SGD learning rate (`p ← p − lr·g`, no momentum, no weight decay). */
  lr: number;
  /**
   * `[batch, seqLen]` token ids: `[CLS] A… [SEP] B… [SEP]` then `[PAD]` (id 0),
   * word pieces drawn uniformly from ids 1000 and up.
   */
  inputIds: Int32Array<ArrayBuffer>;
  /** `[batch, seqLen]`: 0 for `[CLS] A… [SEP]` and padding, 1 for `B… [SEP]`. */
  tokenTypeIds: Int32Array<ArrayBuffer>;
  /** `[batch, seqLen]`: 1 for tokens, 0 for padding. */
  attentionMask: Int32Array<ArrayBuffer>;
  /** Unpadded length of each sequence. */
  lengths: number[];
  /** Class labels, `[batch]`. */
  labels: Int32Array<ArrayBuffer>;
  /** Trainable parameters by state-dict name, `Linear` weights `[out, in]`. */
  params: Record<string, NamedParam>;
}

/**
 * Standard deviation of the seeded weights. Hugging Face initialises with
 * `initializer_range` 0.02, at which the loss hardly depends on the encoder:
 * dropping the padding mask moves the first loss by 4e-5 (relative), too
 * little for a float32 check. At 0.05 the attention is far from uniform and
 * the same mistake moves it by 9e-3. (The tanh GELU, 1e-4, and ε = 1e-5
 * instead of 1e-12, 7e-7, stay below a 1e-3 check at either scale.) Measured
 * with a float64 PyTorch model of the same weights, which also reproduces
 * {@link cpuBertLoss} to 1e-15.
 */
export const BERT_INIT_STD = 0.05;

/** The parameter names and shapes of `BertForSequenceClassification`, in its state-dict order. */
export function bertParamShapes(c: BertConfig = BERT_MINI): [string, number[]][] {
  const H = c.hidden_size, I = c.intermediate_size;
  const out: [string, number[]][] = [];
  const linear = (name: string, o: number, i: number) => {
    out.push([`${name}.weight`, [o, i]], [`${name}.bias`, [o]]);
  };
  const norm = (name: string) => out.push([`${name}.weight`, [H]], [`${name}.bias`, [H]]);
  out.push(
    ["bert.embeddings.word_embeddings.weight", [c.vocab_size, H]],
    ["bert.embeddings.position_embeddings.weight", [c.max_position_embeddings, H]],
    ["bert.embeddings.token_type_embeddings.weight", [c.type_vocab_size, H]],
  );
  norm("bert.embeddings.LayerNorm");
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `bert.encoder.layer.${l}`;
    linear(`${p}.attention.self.query`, H, H);
    linear(`${p}.attention.self.key`, H, H);
    linear(`${p}.attention.self.value`, H, H);
    linear(`${p}.attention.output.dense`, H, H);
    norm(`${p}.attention.output.LayerNorm`);
    linear(`${p}.intermediate.dense`, I, H);
    linear(`${p}.output.dense`, H, I);
    norm(`${p}.output.LayerNorm`);
  }
  linear("bert.pooler.dense", H, H);
  linear("classifier", c.num_labels, H);
  return out;
}

/**
 * Builds the BERT problem (default BERT-mini, batch 8, sequence length 128,
 * lr 0.01). Weights and embeddings are N(0, {@link BERT_INIT_STD}²) with the
 * `[PAD]` row (id 0) of the word embeddings zeroed as in Hugging Face's
 * `padding_idx`; biases N(0, 0.02²); LayerNorm scales 1 + N(0, 0.1²) and
 * shifts N(0, 0.02²), all seeded. The first sequence is full length, the
 * others are 17 to 127 tokens long.
 */
export function bertProblem(
  batch = 8,
  seqLen = 128,
  config: BertConfig = { ...BERT_MINI },
): BertProblem {
  const params: Record<string, NamedParam> = {};
  let seed = 300;
  for (const [name, shape] of bertParamShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array<ArrayBuffer>;
    if (name.includes("LayerNorm.weight")) {
      data = normal(n, seed, 0.1).map((v) => 1 + v);
    } else if (name.endsWith(".bias")) {
      data = normal(n, seed, 0.02);
    } else {
      data = normal(n, seed, BERT_INIT_STD);
    }
    seed++;
    if (name === "bert.embeddings.word_embeddings.weight") data.fill(0, 0, shape[1]);
    params[name] = { shape, data };
  }
  const r = rng(301);
  const ids = new Int32Array(batch * seqLen);
  const types = new Int32Array(batch * seqLen);
  const mask = new Int32Array(batch * seqLen);
  const lengths: number[] = [];
  const labels = new Int32Array(batch);
  const CLS = 101, SEP = 102;
  for (let b = 0; b < batch; b++) {
    const len = b === 0 ? seqLen : 17 + Math.floor(r() * (seqLen - 17));
    const sepA = 1 + Math.floor(r() * (len - 3)); // first [SEP], leaving room for one B token
    lengths.push(len);
    labels[b] = Math.floor(r() * config.num_labels);
    for (let t = 0; t < len; t++) {
      const at = b * seqLen + t;
      ids[at] = t === 0
        ? CLS
        : t === sepA || t === len - 1
        ? SEP
        : 1000 + Math.floor(r() * (config.vocab_size - 1000));
      types[at] = t > sepA ? 1 : 0;
      mask[at] = 1;
    }
  }
  return {
    config,
    batch,
    seqLen,
    lr: 0.01,
    inputIds: ids,
    tokenTypeIds: types,
    attentionMask: mask,
    lengths,
    labels,
    params,
  };
}

/** erf(x) to ~1e-13: its Maclaurin series below |x| = 3, erfc's continued fraction above. */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a < 3) {
    let term = a, sum = a;
    for (let n = 1; n < 100 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-a * a) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * sum * 2 / Math.sqrt(Math.PI);
  }
  // erfc(a) = exp(−a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + …)))), evaluated from the tail.
  let f = a;
  for (let k = 60; k >= 1; k--) f = a + (k / 2) / f;
  return Math.sign(x) * (1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / f);
}

/** `y[n, o] = Σ_i x[n, i]·W[o, i] + b[o]` (PyTorch's `Linear`), float64. */
function linear(x: Float64Array, n: number, p: Record<string, NamedParam>, name: string) {
  const { shape: [O, I], data: w } = p[`${name}.weight`];
  const b = p[`${name}.bias`].data;
  const y = new Float64Array(n * O);
  for (let r = 0; r < n; r++) {
    for (let o = 0; o < O; o++) {
      let s = b[o];
      for (let i = 0; i < I; i++) s += x[r * I + i] * w[o * I + i];
      y[r * O + o] = s;
    }
  }
  return y;
}

/** In-place LayerNorm over rows of `x` (`n` rows), biased variance as PyTorch's. */
function layerNorm(
  x: Float64Array,
  n: number,
  p: Record<string, NamedParam>,
  name: string,
  eps: number,
) {
  const g = p[`${name}.weight`].data, b = p[`${name}.bias`].data;
  const H = g.length;
  for (let r = 0; r < n; r++) {
    const row = x.subarray(r * H, (r + 1) * H);
    let mean = 0;
    for (const v of row) mean += v;
    mean /= H;
    let v2 = 0;
    for (const v of row) v2 += (v - mean) ** 2;
    const inv = 1 / Math.sqrt(v2 / H + eps);
    for (let i = 0; i < H; i++) row[i] = (row[i] - mean) * inv * g[i] + b[i];
  }
}

/**
 * Float64 CPU reference of the problem's mean cross-entropy at its initial
 * weights: the loss every engine's first step must report. Only the unpadded
 * tokens of each sequence are computed: a padded key's weight is
 * exp(−10⁴ or less) = 0 in float32 and float64, so padded positions cannot
 * reach the `[CLS]` output. Takes about a second.
 */
export function cpuBertLoss(p: BertProblem): number {
  const c = p.config;
  const H = c.hidden_size, nh = c.num_attention_heads, dh = H / nh;
  const P = p.params, eps = c.layer_norm_eps;
  const word = P["bert.embeddings.word_embeddings.weight"].data;
  const pos = P["bert.embeddings.position_embeddings.weight"].data;
  const type = P["bert.embeddings.token_type_embeddings.weight"].data;
  let loss = 0;
  for (let b = 0; b < p.batch; b++) {
    const L = p.lengths[b];
    let x = new Float64Array(L * H);
    for (let t = 0; t < L; t++) {
      const id = p.inputIds[b * p.seqLen + t], tt = p.tokenTypeIds[b * p.seqLen + t];
      for (let i = 0; i < H; i++) {
        x[t * H + i] = word[id * H + i] + pos[t * H + i] + type[tt * H + i];
      }
    }
    layerNorm(x, L, P, "bert.embeddings.LayerNorm", eps);
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const pre = `bert.encoder.layer.${l}`;
      const q = linear(x, L, P, `${pre}.attention.self.query`);
      const k = linear(x, L, P, `${pre}.attention.self.key`);
      const v = linear(x, L, P, `${pre}.attention.self.value`);
      const ctx = new Float64Array(L * H);
      const s = new Float64Array(L);
      for (let h = 0; h < nh; h++) {
        for (let i = 0; i < L; i++) {
          let mx = -Infinity;
          for (let j = 0; j < L; j++) {
            let d = 0;
            for (let e = 0; e < dh; e++) d += q[i * H + h * dh + e] * k[j * H + h * dh + e];
            s[j] = d / Math.sqrt(dh);
            mx = Math.max(mx, s[j]);
          }
          let se = 0;
          for (let j = 0; j < L; j++) se += s[j] = Math.exp(s[j] - mx);
          for (let j = 0; j < L; j++) {
            const w = s[j] / se;
            for (let e = 0; e < dh; e++) ctx[i * H + h * dh + e] += w * v[j * H + h * dh + e];
          }
        }
      }
      const a = linear(ctx, L, P, `${pre}.attention.output.dense`);
      for (let i = 0; i < a.length; i++) a[i] += x[i];
      layerNorm(a, L, P, `${pre}.attention.output.LayerNorm`, eps);
      const inter = linear(a, L, P, `${pre}.intermediate.dense`);
      for (let i = 0; i < inter.length; i++) {
        inter[i] = 0.5 * inter[i] * (1 + erf(inter[i] / Math.SQRT2));
      }
      x = linear(inter, L, P, `${pre}.output.dense`);
      for (let i = 0; i < x.length; i++) x[i] += a[i];
      layerNorm(x, L, P, `${pre}.output.LayerNorm`, eps);
    }
    const pooled = linear(x.subarray(0, H), 1, P, "bert.pooler.dense").map(Math.tanh);
    const z = linear(pooled, 1, P, "classifier");
    const mx = Math.max(...z);
    let se = 0;
    for (const v of z) se += Math.exp(v - mx);
    loss += mx + Math.log(se) - z[p.labels[b]];
  }
  return loss / p.batch;
}
