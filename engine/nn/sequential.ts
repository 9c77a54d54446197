/**
 * A chain of layers.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";
import { type Module, ModuleList } from "./module.ts";
import { Linear } from "./linear.ts";
import { ReLU } from "./activation.ts";
import { BatchNorm2d } from "./batchnorm.ts";
import { linear } from "./functional.ts";

/**
 * Feeds its input through each module in turn (PyTorch's `nn.Sequential`).
 * Children are named `"0"`, `"1"`, ..., so state-dict keys match PyTorch's
 * (`"0.weight"`, `"2.bias"`, ...).
 *
 * Each intermediate result is disposed as soon as the next one exists: the
 * tape keeps its own reference to what backward needs, so this only returns
 * memory earlier than the enclosing `scope()` would.
 *
 * With {@link Sequential.fuse} set, a `Linear` directly followed by a `ReLU`
 * (exactly those classes) runs as one matmul with the ReLU in its epilogue;
 * modules, names and parameters are unchanged. It is off by default because it
 * was not faster: on llvmpipe, 64×784→128 took 27.3 ms of CPU fused vs 27.0 ms
 * unfused for the forward pass and 60.0 vs 59.0 ms with backward (medians of 21
 * runs of 10 steps), since the fused backward spends three elementwise kernels
 * where ReLU's own backward needs one. It does keep one fewer activation per
 * pair during training (the pre-activation), 32 KB for that layer.
 *
 * A `BatchNorm2d` directly followed by a `ReLU` always runs fused (the ReLU in
 * batch norm's output pass, its mask in batch norm's gradient pass; see
 * {@link forwardChain}); hooked modules run on their own.
 *
 * @example
 * ```ts
 * import { randn } from "../../mod.ts";
 * import { Sequential } from "./sequential.ts";
 * import { Linear } from "./linear.ts";
 * import { ReLU } from "./activation.ts";
 * const model = new Sequential(new Linear(784, 128), new ReLU(), new Linear(128, 10));
 * console.log(Object.keys(model.stateDict())); // ["0.weight", "0.bias", "2.weight", "2.bias"]
 * console.log(model.numParameters(), model.forward(randn([2, 784])).shape); // 101770 [2, 10]
 * ```
 */
export class Sequential extends ModuleList {
  /** Whether Linear→ReLU pairs run as one fused matmul (off by default; see the class doc). */
  fuse = false;

  /** @param modules The layers, in order. */
  constructor(...modules: Module[]) {
    super(modules);
  }

  /** The output of the last module (the input itself when empty). */
  override forward(x: Tensor): Tensor {
    return forwardChain(x, [...this], this.fuse);
  }
}

/** Whether `a` then `b` may run as one fused op: exactly these classes, neither hooked. */
function pair(a: Module, A: unknown, b: Module | undefined, B: unknown): boolean {
  return a.constructor === A && b !== undefined && b.constructor === B && !a.hooked && !b.hooked;
}

/**
 * Feeds `x` through `mods` in turn, disposing each intermediate result (never
 * `x`), as `Sequential` does: `BatchNorm2d → ReLU` pairs run fused (measured
 * faster: a ResNet-18 step's batch-norm and ReLU kernels, see
 * engine/ops/batchnorm.ts), `Linear → ReLU` pairs only with `fuseLinear`.
 *
 * @example
 * ```ts
 * import { randn } from "../../mod.ts";
 * import { BatchNorm2d, Conv2d, ReLU } from "./mod.ts";
 * import { forwardChain } from "./sequential.ts";
 * const y = forwardChain(randn([2, 3, 8, 8]), [new Conv2d(3, 4, 3), new BatchNorm2d(4), new ReLU()]);
 * console.log(y.shape); // [2, 4, 6, 6]
 * ```
 */
export function forwardChain(x: Tensor, mods: Module[], fuseLinear = false): Tensor {
  let h = x;
  for (let i = 0; i < mods.length; i++) {
    const m = mods[i];
    let next: Tensor;
    if (fuseLinear && pair(m, Linear, mods[i + 1], ReLU)) {
      const fc = m as Linear;
      next = linear(h, fc.weight, fc.bias, "relu");
      i++;
    } else if (pair(m, BatchNorm2d, mods[i + 1], ReLU)) {
      next = (m as BatchNorm2d).forwardFused(h, { relu: true });
      i++;
    } else {
      next = m.forward(h);
    }
    if (h !== x && h !== next && !h.kept) h.dispose();
    h = next;
  }
  return h;
}
