/**
 * Our side of the training rows of the side-by-side benchmarks
 * (bench/vision_compare.ts, bench/bert_compare.ts): one training step of a
 * model under the peers' {@link timeTraining} protocol, and state-dict
 * tensors from the problems' row-major arrays.
 *
 * @module
 */

import { nn, optim, scope, type Tensor, tensor } from "../mod.ts";
import { timeTraining, type TrainingProtocol } from "./peers.ts";

/**
 * Trains `model` on one batch with `optim.SGD` (momentum `p.momentum`, 0 =
 * plain SGD) under `protocol`: a step is `logits()`, mean cross-entropy
 * against `y`, backward, update, then the loss read back.
 */
export async function oursTraining(
  model: nn.Module,
  logits: () => Tensor,
  y: Tensor,
  p: { lr: number; momentum?: number },
  reps: number,
  protocol: TrainingProtocol,
): Promise<{ losses: number[]; times: number[] }> {
  const opt = new optim.SGD(model.parameters(), { lr: p.lr, momentum: p.momentum ?? 0 });
  const step = async (): Promise<number> => {
    const loss = scope(() => {
      const l = nn.crossEntropy(logits(), y);
      l.backward();
      opt.step();
      opt.zeroGrad();
      return l.detach();
    });
    const v = await loss.item();
    loss.dispose();
    return v;
  };
  try {
    return await timeTraining(step, reps, protocol);
  } finally {
    opt.dispose();
  }
}

/** Tensors of a state dict from `[key, shape, row-major values]`; the caller disposes them. */
export function stateTensors(entries: [string, number[], Float32Array][]): Record<string, Tensor> {
  return Object.fromEntries(entries.map(([k, shape, data]) => [k, tensor(data, { shape })]));
}
