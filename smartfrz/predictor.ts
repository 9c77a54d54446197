/**
 * SmartFRZ's attention-based predictor (Li et al., ICLR 2023, §3.3): it reads
 * a window of a unit's tailored weight snapshots and says whether the unit
 * has converged. Three MLPs (1,024 → 256 → 256 → 64, ReLU between layers)
 * map the latest snapshot to a query and the earlier ones to keys and values;
 * dot-product attention pools the values; a classifier 64 → 32 → 32 → 2 gives
 * the logits of "keep training" (0) and "freeze" (1).
 *
 * Inputs are made independent of the layer's scale before the MLPs see them,
 * so that one predictor serves every architecture: with μ and σ the mean and
 * standard deviation of the latest snapshot x_W, the query reads
 * (x_W − μ) / σ and the keys and values read each earlier snapshot's
 * displacement d_t = (x_t − x_W) / σ, compressed as
 * sign(d)·ln(1 + 1000|d|) / ln(1001): relative moves from 10⁻⁴ to 1 all land
 * in a range where a ReLU network can tell them apart.
 *
 * Each of these vectors is then sorted. The 1,024 positions are random picks
 * from the layer, so their order carries nothing, and a network reading them
 * unsorted must learn to ignore it from examples (the first shipped predictor,
 * `inputs: "raw"`, did, with permuted training windows). Sorted, each vector is
 * the empirical distribution of the weights (query) or of their moves at one
 * lag (keys and values), which is what the question "has this layer stopped
 * changing?" depends on (smartfrz/README.md measures both). The paper does
 * not say how it scales or orders its inputs; both are our choices.
 *
 * @module
 */

import * as nn from "../engine/nn/mod.ts";
import { noGrad } from "../engine/autograd.ts";
import { fmtShape, keep, scope, type Tensor, tensor } from "../engine/tensor.ts";
import { add, div, log, mul, relu, sqrt, sub } from "../engine/ops/elementwise.ts";
import { mean, variance } from "../engine/ops/reduce.ts";
import { reshape, slice } from "../engine/ops/shape.ts";
import { scaledDotProductAttention } from "../engine/ops/attention.ts";
import { softmax } from "../engine/ops/softmax.ts";
import { sort } from "../engine/ops/sort.ts";
import { decodeSafetensors } from "../engine/safetensors.ts";

/** Sizes of a {@link FreezePredictor}. */
export interface PredictorOptions {
  /** Weights per snapshot (default 1,024). */
  size?: number;
  /** Hidden width of the query/key/value MLPs (default 256). */
  hidden?: number;
  /** Attention width (default 64). */
  dim?: number;
  /**
   * Whether the inputs are sorted (see {@link normalizeWindows}): `"sorted"`,
   * the default, or `"raw"` (positions in the order they were sampled; the
   * first shipped predictor's inputs).
   */
  inputs?: PredictorInputs;
}

/** How a predictor orders its inputs. */
export type PredictorInputs = "sorted" | "raw";

const COMPRESS = 1000;

function mlp(sizes: number[]): nn.Sequential {
  const layers: nn.Module[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    layers.push(new nn.Linear(sizes[i], sizes[i + 1]));
    if (i + 2 < sizes.length) layers.push(new nn.ReLU());
  }
  return new nn.Sequential(...layers);
}

/**
 * The predictor network. `forward(windows)` takes `[B, W, size]` snapshot
 * windows (oldest first) and returns `[B, 2]` logits; {@link FreezePredictor.freezeProbability}
 * gives P(freeze) without recording a tape.
 *
 * @example
 * ```ts
 * import { randn } from "../mod.ts";
 * import { FreezePredictor } from "./predictor.ts";
 * const p = new FreezePredictor({ size: 64 });
 * console.log(p.forward(randn([3, 30, 64])).shape, p.numParameters()); // [3, 2] 299842
 * ```
 */
export class FreezePredictor extends nn.Module {
  /** Query MLP (latest snapshot). */
  query: nn.Sequential;
  /** Key MLP (earlier snapshots). */
  key: nn.Sequential;
  /** Value MLP (earlier snapshots). */
  value: nn.Sequential;
  /** Classifier over the attention output. */
  classifier: nn.Sequential;
  /** Weights per snapshot. */
  readonly size: number;
  /** Whether its inputs are sorted. */
  readonly inputs: PredictorInputs;
  readonly #dim: number;

  /** @param o Sizes (the paper's by default). */
  constructor(o: PredictorOptions = {}) {
    super();
    const inputs = o.inputs ?? "sorted";
    if (inputs !== "sorted" && inputs !== "raw") {
      throw new RangeError(`FreezePredictor: inputs must be "sorted" or "raw", got "${inputs}"`);
    }
    const size = o.size ?? 1024, hidden = o.hidden ?? 256, dim = o.dim ?? 64;
    this.query = mlp([size, hidden, hidden, dim]);
    this.key = mlp([size, hidden, hidden, dim]);
    this.value = mlp([size, hidden, hidden, dim]);
    this.classifier = mlp([dim, 32, 32, 2]);
    this.size = size;
    this.inputs = inputs;
    this.#dim = dim;
  }

  /** Logits `[B, 2]` ("keep training", "freeze") of snapshot windows `[B, W, size]`. */
  forward(windows: Tensor): Tensor {
    const [B, W, S] = windows.shape;
    if (windows.ndim !== 3 || S !== this.size || W < 2) {
      throw new RangeError(
        `FreezePredictor: expected windows [batch, window ≥ 2, ${this.size}], got ${
          fmtShape(windows.shape)
        }`,
      );
    }
    return scope(() => {
      const { latest, moves } = normalizeWindows(windows, this.inputs);
      const q = reshape(this.query.forward(latest), [B, 1, 1, this.#dim]);
      const k = reshape(this.key.forward(moves), [B, 1, W - 1, this.#dim]);
      const v = reshape(this.value.forward(moves), [B, 1, W - 1, this.#dim]);
      const a = scaledDotProductAttention(q, k, v, { scale: 1 / Math.sqrt(this.#dim) });
      return this.classifier.forward(reshape(a, [B, this.#dim]));
    });
  }

  /** P(freeze) for each window of `[B, W, size]`, read back (no tape). */
  async freezeProbability(windows: Tensor): Promise<number[]> {
    const p = noGrad(() =>
      scope(() => {
        const probs = softmax(this.forward(windows), 1);
        return keep(slice(probs, [0, 1], [probs.shape[0], 2]));
      })
    );
    const out = Array.from(await p.toArray());
    p.dispose();
    return out;
  }
}

/**
 * The predictor's view of windows `[B, W, S]`: the latest snapshot
 * standardised (`latest`, `[B, 1, S]`) and the earlier ones as compressed
 * displacements from it (`moves`, `[B, W − 1, S]`); see the module doc.
 */
export function normalizeWindows(
  windows: Tensor,
  inputs: PredictorInputs = "sorted",
): { latest: Tensor; moves: Tensor } {
  const [B, W, S] = windows.shape;
  const last = slice(windows, [0, W - 1, 0], [B, W, S]);
  const mu = mean(last, 2, true);
  const sigma = add(sqrt(variance(last, 2, { keepdim: true, correction: 0 })), 1e-12);
  const latest = div(sub(last, mu), sigma);
  const d = div(sub(slice(windows, [0, 0, 0], [B, W - 1, S]), last), sigma);
  const squash = (x: Tensor) => log(add(mul(relu(x), COMPRESS), 1));
  const moves = mul(sub(squash(d), squash(mul(d, -1))), 1 / Math.log(1 + COMPRESS));
  if (inputs === "raw") return { latest, moves };
  return { latest: sort(latest), moves: sort(moves) };
}

/** What a predictor file says about itself (its `__metadata__`). */
export interface PredictorCard {
  /** Free-form fields: data, runs, held-out precision and recall, date. */
  [key: string]: string;
}

/**
 * Loads a predictor from safetensors bytes or a path/URL (default: the
 * weights that ship with the package, `smartfrz/predictor.safetensors`,
 * read from the package itself: no network). Returns the network and the
 * card stored in the file's metadata.
 *
 * @example
 * ```ts ignore
 * const { predictor, card } = await loadPredictor();
 * console.log(card.data, card.heldOutPrecision);
 * ```
 */
export async function loadPredictor(
  source: string | URL | Uint8Array = new URL("./predictor.safetensors", import.meta.url),
): Promise<{ predictor: FreezePredictor; card: PredictorCard }> {
  let bytes: Uint8Array;
  let name: string;
  if (source instanceof Uint8Array) {
    bytes = source;
    name = "<bytes>";
  } else {
    const url = source instanceof URL
      ? source
      : /^[a-z]+:/i.test(source)
      ? new URL(source)
      : new URL(source, `file://${Deno.cwd()}/`);
    name = url.href;
    try {
      if (url.protocol === "file:") bytes = await Deno.readFile(url);
      else {
        const res = await fetch(url);
        if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`);
        bytes = new Uint8Array(await res.arrayBuffer());
      }
    } catch (e) {
      throw new Error(`loadPredictor: cannot read ${name}: ${e instanceof Error ? e.message : e}`);
    }
  }
  const { tensors, metadata } = decodeSafetensors(bytes, name);
  const w = tensors["query.0.weight"];
  if (!w || w.shape.length !== 2) {
    throw new Error(`loadPredictor: ${name} is not a FreezePredictor (no query.0.weight matrix)`);
  }
  const predictor = new FreezePredictor({
    size: w.shape[1],
    hidden: w.shape[0],
    dim: tensors["query.4.weight"]?.shape[0],
    // Files written before inputs were recorded read them raw.
    inputs: (metadata.inputs ?? "raw") as PredictorInputs,
  });
  const sd: Record<string, Tensor> = {};
  for (const [k, h] of Object.entries(tensors)) {
    sd[k] = tensor(h.data, { shape: h.shape, dtype: h.dtype });
  }
  try {
    predictor.loadStateDict(sd);
  } catch (e) {
    predictor.dispose();
    throw new Error(`loadPredictor: ${name}: ${e instanceof Error ? e.message : e}`);
  } finally {
    for (const t of Object.values(sd)) t.dispose();
  }
  predictor.eval();
  return { predictor, card: metadata };
}
