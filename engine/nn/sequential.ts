/**
 * A chain of layers.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";
import { type Module, ModuleList } from "./module.ts";
import { Linear } from "./linear.ts";
import { ReLU } from "./activation.ts";
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
    const mods = [...this];
    let h = x;
    for (let i = 0; i < mods.length; i++) {
      const m = mods[i];
      let next: Tensor;
      if (
        this.fuse && m.constructor === Linear && mods[i + 1]?.constructor === ReLU
      ) {
        const fc = m as Linear;
        next = linear(h, fc.weight, fc.bias, "relu");
        i++;
      } else {
        next = m.forward(h);
      }
      if (h !== x && h !== next && !h.kept) h.dispose();
      h = next;
    }
    return h;
  }
}
