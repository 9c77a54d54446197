/**
 * The PyTorch golden fixtures (tests/fixtures/mlp_*.json): starting from the
 * recorded initial parameters, feeding the recorded raw gradients of each step
 * must reproduce PyTorch's parameters after each of the 3 steps.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { Tensor } from "../../../mod.ts";
import { AdamW, type Optimizer, SGD } from "../../../engine/optim/mod.ts";
import { assertClose, param, setGrad } from "./reference.ts";

interface FixtureTensor {
  shape: number[];
  data: number[];
}

interface MlpFixture {
  optimizer: Record<string, unknown> & { type: "SGD" | "AdamW" };
  keys: string[];
  init: Record<string, FixtureTensor>;
  steps: {
    loss: number;
    grads: Record<string, FixtureTensor>;
    params: Record<string, FixtureTensor>;
  }[];
}

function load(name: string): MlpFixture {
  const path = fileURLToPath(new URL(`../../fixtures/${name}`, import.meta.url));
  return JSON.parse(Deno.readTextFileSync(path));
}

function makeOptimizer(f: MlpFixture, params: Tensor[]): Optimizer {
  const o = f.optimizer;
  if (o.type === "SGD") {
    return new SGD(params, {
      lr: o.lr as number,
      momentum: o.momentum as number,
      dampening: o.dampening as number,
      nesterov: o.nesterov as boolean,
      weightDecay: o.weight_decay as number,
    });
  }
  return new AdamW(params, {
    lr: o.lr as number,
    betas: o.betas as [number, number],
    eps: o.eps as number,
    weightDecay: o.weight_decay as number,
  });
}

async function replay(name: string, expectType: string): Promise<void> {
  const f = load(name);
  assert.equal(f.optimizer.type, expectType);
  assert.equal(f.steps.length, 3);
  const params = f.keys.map((k) => param(new Float32Array(f.init[k].data), f.init[k].shape));
  const opt = makeOptimizer(f, params);
  for (let s = 0; s < f.steps.length; s++) {
    const step = f.steps[s];
    f.keys.forEach((k, i) => setGrad(params[i], new Float32Array(step.grads[k].data)));
    opt.step();
    for (let i = 0; i < f.keys.length; i++) {
      const k = f.keys[i];
      // 1e-5 relative; the 1e-7 floor covers the few entries that pass near 0.
      assertClose(
        await params[i].toArray(),
        step.params[k].data,
        `${name} step ${s + 1} ${k}`,
        1e-5,
        1e-7,
      );
    }
  }
  opt.zeroGrad();
  opt.dispose();
  params.forEach((p) => p.dispose());
}

Deno.test("SGD() with momentum and weight decay reproduces PyTorch on mlp_sgd.json", async () => {
  await replay("mlp_sgd.json", "SGD");
});

Deno.test("SGD() with Nesterov momentum reproduces PyTorch on mlp_sgd_nesterov.json", async () => {
  await replay("mlp_sgd_nesterov.json", "SGD");
});

Deno.test("AdamW() reproduces PyTorch on mlp_adamw.json", async () => {
  await replay("mlp_adamw.json", "AdamW");
});
