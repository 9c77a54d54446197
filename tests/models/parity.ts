/**
 * Shared checks of the models against PyTorch fixtures: state-dict keys and
 * shapes (models_keys.json from tests/fixtures/make_model_fixtures.py for the
 * torchvision models, transformer_keys.json from
 * make_transformer_model_fixtures.py for models/bert.ts and models/vit.ts),
 * and parity of small models with a float64 reference (eval logits, train-mode
 * logits, loss and gradients) next to the fixture scripts' torch float32
 * errors.
 *
 * @module
 */

import assert from "node:assert/strict";
import { crossEntropy, loadSafetensors, type nn, type Tensor } from "../../mod.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url);

/** A fixture tensor. */
export interface JsonTensor {
  shape: number[];
  data: number[];
}

/** One architecture of models_keys.json. */
export interface KeysArch {
  config: Record<string, unknown>;
  torchvision: string;
  num_params: number;
  state_dict: [string, number[]][];
}

/** One architecture of transformer_keys.json. */
export interface TransformerArch {
  config: Record<string, unknown>;
  reference: string;
  num_params: number;
  state_dict: [string, number[]][];
  non_persistent_buffers: string[];
}

const archsCache = new Map<string, Promise<Record<string, unknown>>>();

/** The `archs` of a keys fixture by name, read once. */
function archsOf<A>(file: string): Promise<Record<string, A>> {
  let archs = archsCache.get(file);
  if (archs === undefined) {
    archs = Deno.readTextFile(new URL(file, FIXTURES)).then((text) => JSON.parse(text).archs);
    archsCache.set(file, archs);
  }
  return archs as Promise<Record<string, A>>;
}

/** The architectures of models_keys.json by name. */
export function keysFixture(): Promise<Record<string, KeysArch>> {
  return archsOf("models_keys.json");
}

/** The architectures of transformer_keys.json by name. */
export function transformerKeys(): Promise<Record<string, TransformerArch>> {
  return archsOf("transformer_keys.json");
}

/** A transformer fixture config without its `fn` entry (the frost options). */
export function options(config: Record<string, unknown>): Record<string, unknown> {
  const { fn: _, ...rest } = config;
  return rest;
}

/** `[key, shape]` of a module's state dict, in order. */
export function stateShapes(model: nn.Module): [string, number[]][] {
  return Object.entries(model.stateDict()).map(([k, t]) => [k, [...t.shape]]);
}

/**
 * Builds the model, compares its state-dict keys and shapes (in order) and
 * its parameter count with torchvision's, then disposes it.
 */
export async function checkKeys(arch: string, build: () => nn.Module): Promise<void> {
  const want = (await keysFixture())[arch];
  assert.ok(want, `no architecture ${arch} in models_keys.json`);
  const model = build();
  try {
    assert.deepEqual(stateShapes(model), want.state_dict, `${arch}: state-dict keys and shapes`);
    assert.equal(model.numParameters(), want.num_params, `${arch}: parameter count`);
  } finally {
    model.dispose();
  }
}

/** Max |a − b| ≤ tol · max |b| over the whole tensor (b is the reference). */
export function assertScaledClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  what: string,
): number {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const scale = maxAbs(expected);
  let worst = 0;
  let at = 0;
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  assert.ok(
    worst <= tol * scale,
    `${what}: error ${worst} at [${at}] (${actual[at]} vs ${expected[at]}) above ${tol} × ${scale}`,
  );
  return scale > 0 ? worst / scale : worst;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/**
 * A gradient's (or gradient norm's) error is taken relative to max(its own
 * size, this × the model's largest), as the fixture scripts measure torch's:
 * some exact gradients vanish, so float32 can only give rounding noise there
 * (a BatchNorm bias whose shift later train-mode BatchNorms remove: ~1e-19;
 * attention's key biases: 0, softmax ignores a constant added to a row of
 * scores).
 */
export const GRAD_FLOOR = 1e-2;

/** Worst scaled errors, named as the fixtures' `torch_f32_errors`. */
export interface ParityErrors {
  eval: number;
  trainLogits: number;
  loss: number;
  grads: number;
  gradNorms: number;
}

/** What both fixture formats hold. */
interface LogitsFixture {
  torch_f32_errors: ParityErrors;
  eval_logits: JsonTensor;
  train: {
    logits: JsonTensor;
    loss: number;
    grads: Record<string, JsonTensor>;
    grad_norms: Record<string, number>;
  };
}

/** model_<name>.json of make_model_fixtures.py. */
interface VisionFixture extends LogitsFixture {
  model: { config: Record<string, unknown>; torchvision: string };
  x_shape: number[];
  train: LogitsFixture["train"] & { running: Record<string, JsonTensor> };
}

/** model_<name>.json of make_transformer_model_fixtures.py. */
interface TransformerFixture extends LogitsFixture {
  model: { config: Record<string, unknown>; reference: string };
  inputs: Record<string, number[]>;
  eval_logits_defaults?: JsonTensor;
}

/** Loads model_<name>.json. */
export async function parityFixture<F = TransformerFixture>(name: string): Promise<F> {
  return JSON.parse(await Deno.readTextFile(new URL(`model_${name}.json`, FIXTURES))) as F;
}

/** Loads model_<name><suffix>.safetensors. */
export function fixtureTensors(name: string, suffix = ""): Promise<Record<string, Tensor>> {
  return loadSafetensors(new URL(`model_${name}${suffix}.safetensors`, FIXTURES).pathname);
}

/**
 * Checks the eval-mode logits (`evalTol`), runs `extraEval`, then in train
 * mode the logits and the cross-entropy loss (`trainTol`), and backpropagates
 * the loss. Records the errors in `errors`.
 */
async function checkLogitsAndLoss(
  name: string,
  model: nn.Module,
  fx: LogitsFixture,
  run: () => Tensor,
  labels: Tensor,
  tol: { evalTol: number; trainTol: number },
  errors: ParityErrors,
  extraEval?: () => Promise<void>,
): Promise<void> {
  model.eval();
  const evalLogits = run();
  assert.deepEqual(evalLogits.shape, fx.eval_logits.shape);
  errors.eval = assertScaledClose(
    await evalLogits.toArray(),
    fx.eval_logits.data,
    tol.evalTol,
    `${name}: eval logits`,
  );
  evalLogits.dispose();
  await extraEval?.();

  model.train();
  const logits = run();
  errors.trainLogits = assertScaledClose(
    await logits.toArray(),
    fx.train.logits.data,
    tol.trainTol,
    `${name}: train logits`,
  );
  const loss = crossEntropy(logits, labels);
  errors.loss = assertScaledClose(
    [await loss.item()],
    [fx.train.loss],
    tol.trainTol,
    `${name}: loss`,
  );
  loss.backward();
  logits.dispose();
  loss.dispose();
}

/** Each parameter's gradient norm against the fixture's, with the {@link GRAD_FLOOR} metric. */
function checkGradNorms(
  name: string,
  keys: string[],
  grads: ArrayLike<number>[],
  want: Record<string, number>,
  trainTol: number,
): number {
  const floor = GRAD_FLOOR * Math.max(...Object.values(want));
  let worst = 0;
  keys.forEach((k, i) => {
    let s = 0;
    for (let j = 0; j < grads[i].length; j++) s += grads[i][j] * grads[i][j];
    const norm = Math.sqrt(s);
    const err = Math.abs(norm - want[k]) / Math.max(want[k], floor);
    assert.ok(err <= trainTol, `${name}: |grad ${k}| ${norm} vs ${want[k]} (${err})`);
    worst = Math.max(worst, err);
  });
  return worst;
}

/** Prints the errors when FROST_PARITY_LOG is set; returns them with torch's. */
function report(
  name: string,
  ours: ParityErrors,
  fx: LogitsFixture,
): { ours: ParityErrors; torchF32: ParityErrors } {
  if (Deno.env.get("FROST_PARITY_LOG")) console.log(name, { ours, torchF32: fx.torch_f32_errors });
  return { ours, torchF32: fx.torch_f32_errors };
}

const noErrors = (): ParityErrors => ({ eval: 0, trainLogits: 0, loss: 0, grads: 0, gradNorms: 0 });

/**
 * Loads torchvision's weights (model_<name>.safetensors, strict) into the
 * model `build(config)` makes, runs the input of model_<name>_input.safetensors
 * and checks, against the fixture's float64 reference, the eval-mode logits
 * (tolerance `evalTol` relative to the largest logit), and in train mode the
 * logits, the cross-entropy loss, a few full gradients, every parameter's
 * gradient norm and the first BatchNorm's updated running statistics
 * (tolerance `trainTol`). Returns the errors seen, and torch's own float32
 * errors from the fixture for comparison (both printed when the environment
 * variable FROST_PARITY_LOG is set).
 */
export async function checkParity(
  name: string,
  build: (config: Record<string, unknown>) => nn.Module,
  evalTol = 1e-4,
  trainTol = 1e-3,
): Promise<{ ours: ParityErrors; torchF32: ParityErrors }> {
  const fx = await parityFixture<VisionFixture>(name);
  const sd = await fixtureTensors(name);
  const io = await fixtureTensors(name, "_input");
  const model = build(fx.model.config);
  const errors = noErrors();
  try {
    // Strict: every key of torchvision's file, and only those, with the same shapes.
    model.loadStateDict(sd);
    const { x, y } = io;
    assert.deepEqual(x.shape, fx.x_shape);
    assert.equal(y.dtype, "i32", "I64 labels arrive as i32");
    await checkLogitsAndLoss(
      name,
      model,
      fx,
      () => model.forward(x),
      y,
      { evalTol, trainTol },
      errors,
    );

    const params = Object.fromEntries(model.namedParameters()) as Record<string, Tensor>;
    for (const [k, g] of Object.entries(fx.train.grads)) {
      const grad = params[k]?.grad;
      assert.ok(grad, `${name}: ${k} has no gradient`);
      errors.grads = Math.max(
        errors.grads,
        assertScaledClose(await grad.toArray(), g.data, trainTol, `${name}: grad ${k}`),
      );
    }
    const named = model.namedParameters();
    const keys = named.map(([k]) => k);
    assert.deepEqual([...keys].sort(), Object.keys(fx.train.grad_norms).sort());
    const grads = await Promise.all(named.map(([, p]) => p.grad!.toArray()));
    errors.gradNorms = checkGradNorms(name, keys, grads, fx.train.grad_norms, trainTol);
    const state = model.stateDict();
    for (const [k, v] of Object.entries(fx.train.running)) {
      assertScaledClose(await state[k].toArray(), v.data, trainTol, `${name}: ${k} after train`);
    }
  } finally {
    for (const t of [...Object.values(sd), ...Object.values(io)]) t.dispose();
    model.dispose();
  }
  return report(name, errors, fx);
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
    fx: TransformerFixture,
  ) => Promise<void>;
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
): Promise<{ ours: ParityErrors; torchF32: ParityErrors }> {
  const { name } = spec;
  const fx = await parityFixture(name);
  const sd = await fixtureTensors(name);
  const io = await fixtureTensors(name, "_input");
  const want = await fixtureTensors(name, "_grads");
  const model = spec.build(options(fx.model.config));
  const errors = noErrors();
  try {
    model.loadStateDict(sd);
    for (const [k, shape] of Object.entries(fx.inputs)) assert.deepEqual(io[k].shape, shape, k);
    await checkLogitsAndLoss(
      name,
      model,
      fx,
      () => spec.run(model, io),
      io[spec.labels],
      { evalTol, trainTol },
      errors,
      spec.extraEval && (() => spec.extraEval!(model, io, fx)),
    );

    const named = model.namedParameters();
    const keys = named.map(([k]) => k);
    assert.deepEqual([...keys].sort(), Object.keys(want).sort(), "gradient keys");
    const ours = await Promise.all(named.map(([k, p]) => {
      assert.ok(p.grad, `${name}: ${k} has no gradient`);
      return p.grad.toArray();
    }));
    const refs = await Promise.all(keys.map((k) => want[k].toArray()));
    const floor = GRAD_FLOOR * Math.max(...refs.map(maxAbs));
    keys.forEach((k, i) => {
      const g = ours[i];
      const r = refs[i];
      assert.equal(g.length, r.length, `${name}: grad ${k} size`);
      let worst = 0;
      for (let j = 0; j < r.length; j++) worst = Math.max(worst, Math.abs(g[j] - r[j]));
      const err = worst / Math.max(maxAbs(r), floor);
      assert.ok(err <= trainTol, `${name}: grad ${k} error ${err} (max |Δ| ${worst})`);
      errors.grads = Math.max(errors.grads, err);
    });
    errors.gradNorms = checkGradNorms(name, keys, ours, fx.train.grad_norms, trainTol);
    // The JSON's few gradients are the same float64 values as the grads file's (rounded once).
    for (const [k, g] of Object.entries(fx.train.grads)) {
      assert.deepEqual(
        [...refs[keys.indexOf(k)]],
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
  return report(name, errors, fx);
}
