/**
 * One model and one fixed batch for the step benchmarks (freeze_savings.ts,
 * smartfrz_overhead.ts): a model of `train/models.ts` on 1×28×28 images or
 * on token ids, random-looking but deterministic inputs, and a training step.
 *
 * @module
 */

import { crossEntropy, keep, noGrad, type optim, scope, type Tensor, tensor } from "../mod.ts";
import { buildModel, isTextModel } from "../train/models.ts";

/** Builds `name` (width for ResNets) with a batch of `batch` samples (`tokens` per text). */
export function benchModel(name: string, o: { batch: number; tokens: number; width: number }) {
  const text = isTextModel(name);
  const built = buildModel(name, {
    channels: 1,
    height: 28,
    width: 28,
    classes: 2,
    text: text ? { vocabSize: 30522, maxLength: o.tokens } : undefined,
  }, { hidden: 256, width: o.width, patchSize: 7 });
  const forward = built.forward ?? ((x: Tensor) => built.model.forward(x));
  // One fixed batch: random token ids (all attended) or random pixels.
  const sample = built.sampleShape.reduce((a, b) => a * b, 1);
  const B = o.batch, T = o.tokens;
  const x = text
    ? Int32Array.from({ length: B * sample }, (_, i) => {
      const part = Math.floor(i / T) % 3;
      return part === 0 ? 1000 + ((i * 7919) % 29000) : part === 1 ? 0 : 1;
    })
    : Float32Array.from({ length: B * sample }, (_, i) => Math.sin(i * 0.37));
  const y = Int32Array.from({ length: B }, (_, i) => i % 2);
  /** The loss of the fixed batch (recorded on the tape unless under noGrad). */
  const lossOf = () =>
    crossEntropy(forward(tensor(x, { shape: [B, ...built.sampleShape] })), tensor(y));
  /** Forward, backward and update; `phase` is told when each part starts. */
  const train = (opt: optim.Optimizer, phase: (name: string) => void) => {
    phase("forward");
    const l = lossOf();
    phase("backward");
    l.backward();
    phase("optimizer");
    opt.step();
    opt.zeroGrad();
    return l;
  };
  /** Reads a kept scalar back and releases it. */
  const read = async (l: Tensor): Promise<number> => {
    const v = await l.item();
    l.dispose();
    return v;
  };
  /**
   * One training step with `opt` (forward, backward, update), tensors released;
   * `phase` is told when each part starts (the step profile labels kernels with it).
   */
  const step = (opt: optim.Optimizer, phase: (name: string) => void = () => {}) =>
    scope(() => void train(opt, phase));
  /** The loss of a forward pass alone (no tape, no update), read back. */
  const loss = () => read(noGrad(() => scope(() => keep(lossOf()))));
  /** One training step (as `step`) whose loss is read back, as PyTorch's `loss.item()`. */
  const stepLoss = (opt: optim.Optimizer) => read(scope(() => keep(train(opt, () => {}))));
  return { built, step, stepLoss, loss, text, x, y };
}
