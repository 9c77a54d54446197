/**
 * Parameter-free layers: activations, softmax, identity.
 *
 * @module
 */

import { Module } from "./module.ts";
import type { Tensor } from "../tensor.ts";
import { gelu, relu, relu6, sigmoid, tanh } from "../ops/elementwise.ts";
import { logSoftmax, softmax } from "../ops/softmax.ts";

/**
 * `max(x, 0)`. After a `Linear` inside a `Sequential` with `fuse` set, it runs
 * in the matmul's epilogue.
 *
 * @example
 * ```ts
 * import { tensor } from "../../mod.ts";
 * import { ReLU } from "./activation.ts";
 * console.log(await new ReLU().forward(tensor([-1, 2])).toArray()); // [0, 2]
 * ```
 */
export class ReLU extends Module {
  /** Elementwise ReLU. */
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

/** `min(max(x, 0), 6)` (MobileNet's activation). */
export class ReLU6 extends Module {
  /** Elementwise ReLU6. */
  forward(x: Tensor): Tensor {
    return relu6(x);
  }
}

/** Options of {@link GELU}. */
export interface GELUOptions {
  /** "none": the exact erf form (default); "tanh": the tanh approximation. */
  approximate?: "none" | "tanh";
}

/**
 * Gaussian error linear unit, `x · Φ(x)`.
 *
 * @example
 * ```ts
 * import { tensor } from "../../mod.ts";
 * import { GELU } from "./activation.ts";
 * console.log(await new GELU({ approximate: "tanh" }).forward(tensor([1])).toArray());
 * ```
 */
export class GELU extends Module {
  /** Which formula. */
  readonly approximate: "none" | "tanh";

  /** @param opts `approximate: "tanh"` for the tanh approximation. */
  constructor(opts: GELUOptions = {}) {
    super();
    this.approximate = opts.approximate ?? "none";
  }

  /** Elementwise GELU. */
  forward(x: Tensor): Tensor {
    return gelu(x, this.approximate);
  }

  /** `approximate='tanh'`, as PyTorch prints it. */
  override extraRepr(): string {
    return `approximate='${this.approximate}'`;
  }
}

/** `tanh x`. */
export class Tanh extends Module {
  /** Elementwise tanh. */
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

/** `1 / (1 + e^−x)`. */
export class Sigmoid extends Module {
  /** Elementwise sigmoid. */
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

/** Softmax along `dim`. */
export class Softmax extends Module {
  /** The axis normalised. */
  readonly dim: number;

  /** @param dim The axis normalised (default last). */
  constructor(dim = -1) {
    super();
    this.dim = dim;
  }

  /** Softmax of `x` along `dim`. */
  forward(x: Tensor): Tensor {
    return softmax(x, this.dim);
  }

  /** `dim=-1`, as PyTorch prints it. */
  override extraRepr(): string {
    return `dim=${this.dim}`;
  }
}

/** Log-softmax along `dim`. */
export class LogSoftmax extends Module {
  /** The axis normalised. */
  readonly dim: number;

  /** @param dim The axis normalised (default last). */
  constructor(dim = -1) {
    super();
    this.dim = dim;
  }

  /** Log-softmax of `x` along `dim`. */
  forward(x: Tensor): Tensor {
    return logSoftmax(x, this.dim);
  }

  /** `dim=-1`, as PyTorch prints it. */
  override extraRepr(): string {
    return `dim=${this.dim}`;
  }
}

/** Returns its input unchanged (the same tensor, not a copy). */
export class Identity extends Module {
  /** `x` itself. */
  forward(x: Tensor): Tensor {
    return x;
  }
}
