/**
 * Shared checks of the vision models against torchvision fixtures
 * (tests/fixtures/make_model_fixtures.py): state-dict keys and shapes, and
 * eval/train parity of small models loaded from torchvision's safetensors.
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

let keysCache: Record<string, KeysArch> | undefined;

/** The architectures of models_keys.json by name. */
export async function keysFixture(): Promise<Record<string, KeysArch>> {
  keysCache ??= (JSON.parse(
    await Deno.readTextFile(new URL("models_keys.json", FIXTURES)),
  ) as { archs: Record<string, KeysArch> }).archs;
  return keysCache;
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
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
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

interface ParityFixture {
  model: { config: Record<string, unknown>; torchvision: string };
  torch_f32_errors: ParityErrors;
  x_shape: number[];
  eval_logits: JsonTensor;
  train: {
    logits: JsonTensor;
    loss: number;
    grads: Record<string, JsonTensor>;
    grad_norms: Record<string, number>;
    running: Record<string, JsonTensor>;
  };
}

/**
 * A gradient norm's error is taken relative to max(norm, this × the largest
 * norm), as make_model_fixtures.py measures torch's: a BatchNorm bias whose
 * shift later train-mode BatchNorms remove has a true gradient of ~1e-19,
 * which float32 can only give as rounding noise.
 */
const GRAD_NORM_FLOOR = 1e-2;

/** Worst scaled errors seen by {@link checkParity}, for the log. */
export interface ParityErrors {
  eval: number;
  trainLogits: number;
  loss: number;
  grads: number;
  gradNorms: number;
}

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
  const fx = JSON.parse(
    await Deno.readTextFile(new URL(`model_${name}.json`, FIXTURES)),
  ) as ParityFixture;
  const sd = await loadSafetensors(new URL(`model_${name}.safetensors`, FIXTURES).pathname);
  const io = await loadSafetensors(new URL(`model_${name}_input.safetensors`, FIXTURES).pathname);
  const model = build(fx.model.config);
  const errors: ParityErrors = { eval: 0, trainLogits: 0, loss: 0, grads: 0, gradNorms: 0 };
  try {
    // Strict: every key of torchvision's file, and only those, with the same shapes.
    model.loadStateDict(sd);
    const { x, y } = io;
    assert.deepEqual(x.shape, fx.x_shape);
    assert.equal(y.dtype, "i32", "I64 labels arrive as i32");

    model.eval();
    const evalLogits = model.forward(x);
    assert.deepEqual(evalLogits.shape, fx.eval_logits.shape);
    errors.eval = assertScaledClose(
      await evalLogits.toArray(),
      fx.eval_logits.data,
      evalTol,
      `${name}: eval logits`,
    );
    evalLogits.dispose();

    model.train();
    const logits = model.forward(x);
    errors.trainLogits = assertScaledClose(
      await logits.toArray(),
      fx.train.logits.data,
      trainTol,
      `${name}: train logits`,
    );
    const loss = crossEntropy(logits, y);
    errors.loss = assertScaledClose(
      [await loss.item()],
      [fx.train.loss],
      trainTol,
      `${name}: loss`,
    );
    loss.backward();
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
    assert.deepEqual(named.map(([k]) => k).sort(), Object.keys(fx.train.grad_norms).sort());
    const grads = await Promise.all(named.map(([, p]) => p.grad!.toArray()));
    const norms = grads.map((g) => {
      let s = 0;
      for (const v of g) s += v * v;
      return Math.sqrt(s);
    });
    const wantNorms = named.map(([k]) => fx.train.grad_norms[k]);
    const floor = GRAD_NORM_FLOOR * Math.max(...wantNorms);
    named.forEach(([k], i) => {
      const err = Math.abs(norms[i] - wantNorms[i]) / Math.max(wantNorms[i], floor);
      assert.ok(err <= trainTol, `${name}: |grad ${k}| ${norms[i]} vs ${wantNorms[i]} (${err})`);
      errors.gradNorms = Math.max(errors.gradNorms, err);
    });
    const state = model.stateDict();
    for (const [k, v] of Object.entries(fx.train.running)) {
      assertScaledClose(await state[k].toArray(), v.data, trainTol, `${name}: ${k} after train`);
    }
    logits.dispose();
    loss.dispose();
  } finally {
    for (const t of [...Object.values(sd), ...Object.values(io)]) t.dispose();
    model.dispose();
  }
  if (Deno.env.get("FROST_PARITY_LOG")) {
    console.log(name, { ours: errors, torchF32: fx.torch_f32_errors });
  }
  return { ours: errors, torchF32: fx.torch_f32_errors };
}
