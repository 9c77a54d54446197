/**
 * End-to-end parity with PyTorch: a 3-layer MLP trained for 3 steps from the
 * same initial weights must give PyTorch's loss and every parameter gradient at
 * each step, and its parameters after the last step (fixtures made by
 * tests/fixtures/make_fixtures.py with python3-torch, float32 throughout).
 */
import { crossEntropy, nn, optim, type Tensor, tensor } from "../../mod.ts";
import { assertClose } from "../helpers/reference.ts";

interface JsonTensor {
  shape: number[];
  data: number[];
}
interface Fixture {
  optimizer: {
    type: "SGD" | "AdamW";
    lr: number;
    momentum?: number;
    dampening?: number;
    nesterov?: boolean;
    weight_decay: number;
    betas?: [number, number];
    eps?: number;
  };
  keys: string[];
  init: Record<string, JsonTensor>;
  x: JsonTensor;
  y: JsonTensor;
  steps: { loss: number; grads: Record<string, JsonTensor>; params: Record<string, JsonTensor> }[];
}

function up(t: JsonTensor): Tensor {
  return tensor(t.data, { shape: t.shape });
}

for (const name of ["mlp_sgd", "mlp_sgd_nesterov", "mlp_adamw"]) {
  Deno.test(`a 3-layer MLP matches PyTorch's loss, gradients and parameters over 3 steps (${name})`, async () => {
    const f: Fixture = JSON.parse(
      await Deno.readTextFile(new URL(`../fixtures/${name}.json`, import.meta.url)),
    );
    const model = new nn.Sequential(
      new nn.Linear(20, 32),
      new nn.ReLU(),
      new nn.Linear(32, 16),
      new nn.ReLU(),
      new nn.Linear(16, 10),
    );
    const init: Record<string, Tensor> = {};
    for (const k of f.keys) init[k] = up(f.init[k]);
    model.loadStateDict(init);
    for (const t of Object.values(init)) t.dispose();
    const o = f.optimizer;
    const opt = o.type === "SGD"
      ? new optim.SGD(model.parameters(), {
        lr: o.lr,
        momentum: o.momentum,
        dampening: o.dampening,
        nesterov: o.nesterov,
        weightDecay: o.weight_decay,
      })
      : new optim.AdamW(model.parameters(), {
        lr: o.lr,
        betas: o.betas,
        eps: o.eps,
        weightDecay: o.weight_decay,
      });
    const x = up(f.x);
    const y = tensor(f.y.data, { shape: f.y.shape, dtype: "i32" });
    const params = Object.fromEntries(model.namedParameters());
    for (const [i, step] of f.steps.entries()) {
      const loss = crossEntropy(model.forward(x), y);
      loss.backward();
      assertClose([await loss.item()], [step.loss], { rtol: 1e-5, msg: `step ${i + 1} loss` });
      for (const k of f.keys) {
        assertClose(await params[k].grad!.toArray(), step.grads[k].data, {
          rtol: 1e-4,
          atol: 1e-6,
          msg: `step ${i + 1} grad ${k}`,
        });
      }
      opt.step();
      opt.zeroGrad();
      loss.dispose();
      for (const k of f.keys) {
        assertClose(await params[k].toArray(), step.params[k].data, {
          rtol: 1e-4,
          atol: 1e-6,
          msg: `step ${i + 1} params ${k}`,
        });
      }
    }
    model.dispose();
    opt.dispose();
    x.dispose();
    y.dispose();
  });
}
