/**
 * The peer side of bench/bert_compare.ts: one training step of BERT-mini
 * sequence classification (`bertProblem` in bench/bert_ref.ts) in
 * TensorFlow.js (tfjs-core ops on the WebGPU backend, gradients by
 * `tf.variableGrads`) and in jax-js (0.1.25, `jit` of `valueAndGrad`), both
 * loaded as in bench/peers.ts and timed by its {@link timeTraining} under
 * {@link BERT_PROTOCOL}.
 *
 * Every engine computes the Hugging Face `BertForSequenceClassification`
 * forward from the same weights (Linear weights kept `[out, in]`, multiplied
 * transposed): masked self-attention with an additive −10⁴ on padded keys
 * (Hugging Face now adds float32's minimum instead; either weight is exp(…) = 0
 * in float32, so the losses are the same), LayerNorm with ε 1e-12 and the
 * biased variance, the exact GELU `0.5·x·(1 + erf(x/√2))`, the tanh pooler
 * over `[CLS]`, and mean cross-entropy. The update is plain SGD,
 * `p ← p − lr·g` on every parameter, as `optim.SGD` with no momentum.
 *
 * jax-js's step does not run under Deno (see {@link shortShaderError}); it is
 * kept so that its table cell says why, and runs once either side is fixed.
 *
 * @module
 */

import type { BertProblem } from "./bert_ref.ts";
import { paramCount } from "./peers_ref.ts";
import {
  loadJax,
  loadTfjs,
  type LossCheck,
  RESNET_PROTOCOL,
  stepTiming,
  timeTraining,
  type TrainingProtocol,
  type VisionStepTiming,
} from "./peers.ts";

/**
 * How every engine's BERT step is run: as ResNet-18's ({@link RESNET_PROTOCOL}),
 * because a peer's step takes minutes on llvmpipe: step 1 compiles, step 2
 * warms up, both are checked, then up to `reps` steps are timed within a
 * 4-minute budget.
 */
export const BERT_PROTOCOL: TrainingProtocol = { ...RESNET_PROTOCOL };

/** The additive attention mask `[batch, seqLen]`: 0 on tokens, −10⁴ on padding. */
export function additiveMask(p: BertProblem): Float32Array<ArrayBuffer> {
  return Float32Array.from(p.attentionMask, (m) => (m ? 0 : -10000));
}

/**
 * The BERT step in tfjs-core ops: `tf.gather` for the word and token-type
 * embeddings (`tf.slice` of the position table), LayerNorm from `tf.moments`, `tf.matMul(x, W, false, true)` for every
 * Linear, rank-4 `matMul` and `tf.softmax` for attention, `tf.erf` for the
 * GELU, `tf.losses.softmaxCrossEntropy` on one-hot labels. A step is
 * `tf.variableGrads` of the loss, then `tf.train.sgd(lr).applyGradients`,
 * then the loss read back.
 */
export async function tfjsBertStep(
  reps: number,
  p: BertProblem,
  check?: LossCheck,
  protocol: TrainingProtocol = BERT_PROTOCOL,
): Promise<VisionStepTiming> {
  const tf = await loadTfjs();
  const c = p.config;
  const B = p.batch, T = p.seqLen, H = c.hidden_size;
  const nh = c.num_attention_heads, dh = H / nh, eps = c.layer_norm_eps;
  type TfT = import("npm:@tensorflow/tfjs-core@4.22.0").Tensor;
  type TfV = import("npm:@tensorflow/tfjs-core@4.22.0").Variable;
  const vars: Record<string, TfV> = {};
  for (const [name, { shape, data }] of Object.entries(p.params)) {
    vars[name] = tf.variable(tf.tensor(data, shape));
  }
  const ids = tf.tensor1d(p.inputIds, "int32");
  const types = tf.tensor1d(p.tokenTypeIds, "int32");
  const mask = tf.tensor4d(additiveMask(p), [B, 1, 1, T]);
  const y = tf.tidy(() =>
    tf.cast(tf.oneHot(tf.tensor1d(p.labels, "int32"), c.num_labels), "float32")
  );
  const dense = (x: TfT, name: string): TfT =>
    tf.add(tf.matMul(x, vars[`${name}.weight`], false, true), vars[`${name}.bias`]);
  const layerNorm = (x: TfT, name: string): TfT => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(
      tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), vars[`${name}.weight`]),
      vars[`${name}.bias`],
    );
  };
  const heads = (x: TfT): TfT => tf.transpose(tf.reshape(x, [B, T, nh, dh]), [0, 2, 1, 3]);
  const lossFn = () => {
    const word = tf.gather(vars["bert.embeddings.word_embeddings.weight"], ids);
    const pos = tf.slice(vars["bert.embeddings.position_embeddings.weight"], [0, 0], [T, H]);
    const type = tf.gather(vars["bert.embeddings.token_type_embeddings.weight"], types);
    const emb = tf.add(tf.reshape(tf.add(word, type), [B, T, H]), pos);
    let x = layerNorm(tf.reshape(emb, [B * T, H]), "bert.embeddings.LayerNorm");
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const pre = `bert.encoder.layer.${l}`;
      const q = heads(dense(x, `${pre}.attention.self.query`));
      const k = heads(dense(x, `${pre}.attention.self.key`));
      const v = heads(dense(x, `${pre}.attention.self.value`));
      const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)), mask);
      const ctx = tf.reshape(tf.transpose(tf.matMul(tf.softmax(scores), v), [0, 2, 1, 3]), [
        B * T,
        H,
      ]);
      const a = layerNorm(
        tf.add(dense(ctx, `${pre}.attention.output.dense`), x),
        `${pre}.attention.output.LayerNorm`,
      );
      const u = dense(a, `${pre}.intermediate.dense`);
      const g = tf.mul(tf.mul(u, 0.5), tf.add(tf.erf(tf.mul(u, Math.SQRT1_2)), 1));
      x = layerNorm(tf.add(dense(g, `${pre}.output.dense`), a), `${pre}.output.LayerNorm`);
    }
    const cls = tf.reshape(tf.slice(tf.reshape(x, [B, T, H]), [0, 0, 0], [B, 1, H]), [B, H]);
    const logits = dense(tf.tanh(dense(cls, "bert.pooler.dense")), "classifier");
    return tf.losses.softmaxCrossEntropy(
      y,
      logits,
    ) as import("npm:@tensorflow/tfjs-core@4.22.0").Scalar;
  };
  const opt = tf.train.sgd(p.lr);
  const varList = Object.values(vars);
  const step = async (): Promise<number> => {
    const { value, grads } = tf.variableGrads(lossFn, varList);
    opt.applyGradients(grads);
    tf.dispose(grads);
    const v = (await value.data())[0];
    value.dispose();
    return v;
  };
  try {
    return stepTiming(await timeTraining(step, reps, { ...protocol, check }), protocol.checkSteps, {
      device: tf.getBackend(),
      params: varList.reduce((n, v) => n + v.size, 0),
      build: "tfjs-core ops (gather, moments, matMul transposeB, softmax, erf), " +
        "variableGrads + train.sgd",
    });
  } finally {
    opt.dispose();
    tf.dispose([...varList, ids, types, mask, y]);
  }
}

/**
 * The BERT step in jax-js, a pure function of the parameter tree (Hugging
 * Face names, Linear weights `[out, in]` multiplied by their transpose):
 * `np.take` for the embeddings, `nn.standardize` (ε 1e-12) for LayerNorm,
 * `nn.dotProductAttention` with the additive mask as its `bias` (inputs in
 * its `[B, T, heads, head_dim]` layout), `nn.gelu(x, {approximate: false})`,
 * `nn.logSoftmax` cross-entropy; `jit` of `valueAndGrad` and the SGD update.
 */
export async function jaxBertStep(
  reps: number,
  p: BertProblem,
  check?: LossCheck,
  protocol: TrainingProtocol = BERT_PROTOCOL,
): Promise<VisionStepTiming> {
  const { jax } = await loadJax();
  const { numpy: np, nn, tree } = jax;
  type A = InstanceType<typeof jax.Array>;
  type Params = Record<string, A>;
  const c = p.config;
  const B = p.batch, T = p.seqLen, H = c.hidden_size;
  const nh = c.num_attention_heads, dh = H / nh, eps = c.layer_norm_eps;
  const loss = (q: Params, ids: A, types: A, mask: A, y: A): A => {
    const dense = (x: A, name: string): A =>
      np.matmul(x, q[`${name}.weight`].transpose()).add(q[`${name}.bias`]);
    const layerNorm = (x: A, name: string): A =>
      nn.standardize(x, -1, { epsilon: eps }).mul(q[`${name}.weight`]).add(q[`${name}.bias`]);
    const emb = np.take(q["bert.embeddings.word_embeddings.weight"], ids, 0)
      .add(q["bert.embeddings.position_embeddings.weight"].slice([0, T]))
      .add(np.take(q["bert.embeddings.token_type_embeddings.weight"], types, 0));
    let x = layerNorm(emb, "bert.embeddings.LayerNorm");
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const pre = `bert.encoder.layer.${l}`;
      const split = (name: string) =>
        dense(x.ref, `${pre}.attention.self.${name}`).reshape([B, T, nh, dh]);
      const ctx = nn.dotProductAttention(split("query"), split("key"), split("value"), {
        bias: mask.ref,
      }).reshape([B, T, H]);
      const a = layerNorm(
        dense(ctx, `${pre}.attention.output.dense`).add(x),
        `${pre}.attention.output.LayerNorm`,
      );
      const g = nn.gelu(dense(a.ref, `${pre}.intermediate.dense`), { approximate: false });
      x = layerNorm(dense(g, `${pre}.output.dense`).add(a), `${pre}.output.LayerNorm`);
    }
    mask.dispose();
    const cls = x.slice([], 0);
    const logits = dense(np.tanh(dense(cls, "bert.pooler.dense")), "classifier");
    return nn.logSoftmax(logits).mul(nn.oneHot(y, c.num_labels)).sum().mul(-1 / B);
  };
  const step = jax.jit((q: Params, ids: A, types: A, mask: A, y: A): [Params, A] => {
    const [l, g] = jax.valueAndGrad(loss)(tree.ref(q), ids, types, mask, y);
    const q2 = tree.map((qi: A, gi: A) => qi.sub(gi.mul(p.lr)), q, g) as Params;
    return [q2, l];
  });
  let params: Params = {};
  for (const [name, t] of Object.entries(p.params)) {
    params[name] = np.array(t.data).reshape(t.shape);
  }
  const ids = np.array(p.inputIds, { dtype: np.int32 }).reshape([B, T]);
  const types = np.array(p.tokenTypeIds, { dtype: np.int32 }).reshape([B, T]);
  const mask = np.array(additiveMask(p)).reshape([B, 1, 1, T]);
  const y = np.array(p.labels, { dtype: np.int32 });
  const device = ids.device;
  const run = async (): Promise<number> => {
    const [q2, l] = step(params, ids.ref, types.ref, mask.ref, y.ref);
    params = q2;
    await jax.blockUntilReady(params);
    return (await l.data())[0]; // data() consumes l
  };
  try {
    return stepTiming(
      await timeTraining(run, reps, { ...protocol, check })
        .catch((e) => Promise.reject(shortShaderError(e))),
      protocol.checkSteps,
      {
        device,
        params: paramCount(p.params),
        build: "jit(valueAndGrad) of np.take, nn.standardize, nn.dotProductAttention, " +
          "nn.gelu(approximate: false)",
      },
    );
  } finally {
    tree.dispose(params);
    for (const a of [ids, types, mask, y]) a.dispose();
    step.dispose();
  }
}

/**
 * A WGSL compilation error without the shader source it quotes: its first
 * line and the validator's diagnosis (jax-js 0.1.25's scatter-add, the
 * gradient of `np.take`, passes a storage pointer to a WGSL function, which
 * Deno's WebGPU rejects). Other errors pass through.
 */
export function shortShaderError(e: unknown): unknown {
  if (!(e instanceof Error) || !e.message.includes("Shader validation error")) return e;
  const lines = e.message.split("\n");
  const why = lines.filter((l) => /Shader validation error|^\s*= /.test(l))
    .map((l) => l.trim().replace(/^= /, ""));
  return new Error(`WGSL rejected: ${why.join(": ")} (${lines[0]})`);
}
