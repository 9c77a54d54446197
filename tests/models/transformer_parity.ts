/**
 * Shared checks of the transformer models (models/bert.ts, models/vit.ts)
 * against tests/fixtures/make_transformer_model_fixtures.py: state-dict keys
 * and shapes from transformer_keys.json, and float64-reference parity of
 * small models (eval logits, train-mode loss and every parameter's gradient)
 * with the fixture script's metrics.
 *
 * @module
 */

import assert from "node:assert/strict";
import { crossEntropy, loadSafetensors, type nn, type Tensor } from "../../mod.ts";
import { assertScaledClose, type JsonTensor } from "./parity.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url);

/** One architecture of transformer_keys.json. */
export interface TransformerArch {
  config: Record<string, unknown>;
  reference: string;
  num_params: number;
  state_dict: [string, number[]][];
  non_persistent_buffers: string[];
}

let archs: Record<string, TransformerArch> | undefined;

/** The architectures of transformer_keys.json by name. */
export async function transformerKeys(): Promise<Record<string, TransformerArch>> {
  archs ??= (JSON.parse(
    await Deno.readTextFile(new URL("transformer_keys.json", FIXTURES)),
  ) as { archs: Record<string, TransformerArch> }).archs;
  return archs;
}

/** A fixture config without its `fn` entry (the frost options). */
export function options(config: Record<string, unknown>): Record<string, unknown> {
  const { fn: _, ...rest } = config;
  return rest;
}

/**
 * A gradient's error is taken relative to max(its own max |g|, this × the
 * largest max |g| of the model), as the fixture script measures torch's: the
 * key biases' exact gradient is 0 (softmax ignores a constant added to a
 * row of scores), so float32 can only give rounding noise there.
 */
export const GRAD_FLOOR = 1e-2;

/** Worst scaled errors, named as the fixture's `torch_f32_errors`. */
export interface TransformerErrors {
  eval: number;
  trainLogits: number;
  loss: number;
  grads: number;
  gradNorms: number;
}

interface Fixture {
  model: { config: Record<string, unknown>; reference: string };
  torch_f32_errors: TransformerErrors;
  inputs: Record<string, number[]>;
  eval_logits: JsonTensor;
  eval_logits_defaults?: JsonTensor;
  train: {
    logits: JsonTensor;
    loss: number;
    grads: Record<string, JsonTensor>;
    grad_norms: Record<string, number>;
  };
}

/** What {@link checkTransformerParity} needs to know about a model. */
export interface ParitySpec {
  /** Fixture name: model_<name>.json / .safetensors / _input / _grads. */
  name: string;
  /** Builds the model from the fixture's options (without `fn`). */
  build: (opts: Record<string, unknown>) => nn.Module;
  /** Runs the model on the input file's tensors, giving logits. */
  run: (model: nn.Module, io: Record<string, Tensor>) => Tensor;
  /** Name of the labels tensor in the input file. */
  labels: string;
  /** Extra eval-mode checks (e.g. default arguments), given the model, inputs and fixture. */
  extraEval?: (
    model: nn.Module,
    io: Record<string, Tensor>,
    fx: Fixture,
  ) => Promise<void>;
}

/** Loads model_<name>.json. */
export async function parityFixture(name: string): Promise<Fixture> {
  return JSON.parse(await Deno.readTextFile(new URL(`model_${name}.json`, FIXTURES))) as Fixture;
}

/** Loads model_<name><suffix>.safetensors. */
export function fixtureTensors(name: string, suffix = ""): Promise<Record<string, Tensor>> {
  return loadSafetensors(new URL(`model_${name}${suffix}.safetensors`, FIXTURES).pathname);
}

/**
 * Loads the reference weights (strict), then checks against the float64
 * reference: eval logits (`evalTol`, relative to the largest logit), and in
 * train mode the logits, the cross-entropy loss, every parameter's gradient
 * (from model_<name>_grads.safetensors, with the {@link GRAD_FLOOR} metric)
 * and every gradient norm (`trainTol`). Returns our errors and torch's own
 * float32 errors (printed when FROST_PARITY_LOG is set).
 */
export async function checkTransformerParity(
  spec: ParitySpec,
  evalTol = 1e-4,
  trainTol = 1e-3,
): Promise<{ ours: TransformerErrors; torchF32: TransformerErrors }> {
  const { name } = spec;
  const fx = await parityFixture(name);
  const sd = await fixtureTensors(name);
  const io = await fixtureTensors(name, "_input");
  const want = await fixtureTensors(name, "_grads");
  const model = spec.build(options(fx.model.config));
  const errors: TransformerErrors = { eval: 0, trainLogits: 0, loss: 0, grads: 0, gradNorms: 0 };
  try {
    model.loadStateDict(sd);
    for (const [k, shape] of Object.entries(fx.inputs)) assert.deepEqual(io[k].shape, shape, k);

    model.eval();
    const evalLogits = spec.run(model, io);
    assert.deepEqual(evalLogits.shape, fx.eval_logits.shape);
    errors.eval = assertScaledClose(
      await evalLogits.toArray(),
      fx.eval_logits.data,
      evalTol,
      `${name}: eval logits`,
    );
    evalLogits.dispose();
    await spec.extraEval?.(model, io, fx);

    model.train();
    const logits = spec.run(model, io);
    errors.trainLogits = assertScaledClose(
      await logits.toArray(),
      fx.train.logits.data,
      trainTol,
      `${name}: train logits`,
    );
    const loss = crossEntropy(logits, io[spec.labels]);
    errors.loss = assertScaledClose(
      [await loss.item()],
      [fx.train.loss],
      trainTol,
      `${name}: loss`,
    );
    loss.backward();
    logits.dispose();
    loss.dispose();

    const named = model.namedParameters();
    assert.deepEqual(named.map(([k]) => k).sort(), Object.keys(want).sort(), "gradient keys");
    const ours = await Promise.all(named.map(([k, p]) => {
      assert.ok(p.grad, `${name}: ${k} has no gradient`);
      return p.grad.toArray();
    }));
    const refs = await Promise.all(named.map(([k]) => want[k].toArray()));
    const maxAbs = (a: ArrayLike<number>) => {
      let m = 0;
      for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
      return m;
    };
    const floor = GRAD_FLOOR * Math.max(...refs.map(maxAbs));
    named.forEach(([k], i) => {
      const g = ours[i];
      const r = refs[i];
      assert.equal(g.length, r.length, `${name}: grad ${k} size`);
      let worst = 0;
      for (let j = 0; j < r.length; j++) worst = Math.max(worst, Math.abs(g[j] - r[j]));
      const err = worst / Math.max(maxAbs(r), floor);
      assert.ok(err <= trainTol, `${name}: grad ${k} error ${err} (max |Δ| ${worst})`);
      errors.grads = Math.max(errors.grads, err);
      let s = 0;
      for (const v of g) s += v * v;
      const norm = Math.sqrt(s);
      const wantNorm = fx.train.grad_norms[k];
      const normFloor = GRAD_FLOOR * Math.max(...Object.values(fx.train.grad_norms));
      const nerr = Math.abs(norm - wantNorm) / Math.max(wantNorm, normFloor);
      assert.ok(nerr <= trainTol, `${name}: |grad ${k}| ${norm} vs ${wantNorm}`);
      errors.gradNorms = Math.max(errors.gradNorms, nerr);
    });
    // The JSON's few gradients are the same float64 values as the grads file's (rounded once).
    for (const [k, g] of Object.entries(fx.train.grads)) {
      const i = named.findIndex(([n]) => n === k);
      assert.deepEqual(
        [...refs[i]],
        g.data.map(Math.fround),
        `${name}: fixture grads agree (${k})`,
      );
    }
  } finally {
    for (const t of [...Object.values(sd), ...Object.values(io), ...Object.values(want)]) {
      t.dispose();
    }
    model.dispose();
  }
  if (Deno.env.get("FROST_PARITY_LOG")) {
    console.log(name, { ours: errors, torchF32: fx.torch_f32_errors });
  }
  return { ours: errors, torchF32: fx.torch_f32_errors };
}
