/**
 * Reverse-mode autograd: the tape, grad mode, and `backward()`.
 *
 * What the tape records is decided during the forward pass: an op records a
 * node only when grad mode is on and one of its inputs requires grad, and it
 * saves only the tensors its backward rule will need for the gradients that
 * are actually required. A frozen prefix of a network (parameters with
 * `requiresGrad = false`, fed by data that needs no grad) therefore records
 * nothing and keeps no activations: it costs only its forward pass.
 *
 * @module
 */

import type { Tensor } from "./tensor.ts";
import type { UnaryFn } from "../kernels/elementwise.ts";
import type { BinaryFn, ScalarFn } from "../kernels/elementwise.ts";

/** The differentiable primitive ops and the attributes each records. */
export interface OpAttrs {
  /** Elementwise function of one tensor. */
  unary: { fn: UnaryFn };
  /** Elementwise function of two tensors (broadcasting). */
  binary: { fn: BinaryFn };
  /** Elementwise function of a tensor and a number. */
  scalar: { fn: ScalarFn; s: number };
  /** Selection by a mask. */
  where: Record<never, never>;
  /** Sum over axes. */
  sum: { axes: number[]; keepdim: boolean };
  /** Maximum over axes. */
  max: { axes: number[]; keepdim: boolean };
  /** Matrix product with optional fused epilogue. */
  matmul: { transA: boolean; transB: boolean; act: "none" | "relu" | "gelu"; bias: boolean };
  /** Softmax or log-softmax over the last axis. */
  softmax: { log: boolean };
  /** Attention softmax `softmax(scale·s + mask)` over the last axis (the mask gets no gradient). */
  maskedSoftmax: { scale: number };
  /** Per-row cross-entropy with integer labels. */
  crossEntropy: { labelSmoothing: number; ignoreIndex: number };
  /** View with another shape. */
  reshape: Record<never, never>;
  /** Axis reordering. */
  permute: { perm: number[] };
  /** Sub-tensor copy. */
  slice: { starts: number[] };
  /** Broadcast copy. */
  expand: Record<never, never>;
  /** Join along an axis. */
  concat: { axis: number; sizes: number[] };
  /** Constant padding. */
  pad: { before: number[] };
  /** Gather along an axis. */
  indexSelect: { axis: number };
  /** Scatter-add along an axis. */
  scatterAdd: { axis: number };
  /** Inverted dropout. */
  dropout: { p: number; seed: number; offset: number };
  /** 2-D convolution over NCHW; `padding` is `[top, bottom, left, right]`. */
  conv2d: {
    stride: [number, number];
    padding: [number, number, number, number];
    dilation: [number, number];
    groups: number;
    bias: boolean;
  };
  /** 2-D max pooling over NCHW; backward reads the saved argmax indices. */
  maxPool2d: {
    kernel: [number, number];
    stride: [number, number];
    padding: [number, number];
    dilation: [number, number];
  };
  /** 2-D average pooling over NCHW (`divisor` 0: window size; else PyTorch's divisor_override). */
  avgPool2d: {
    kernel: [number, number];
    stride: [number, number];
    padding: [number, number];
    dilation: [number, number];
    countIncludePad: boolean;
    divisor: number;
  };
  /** 2-D adaptive average pooling over NCHW (the output size is the gradient's). */
  adaptiveAvgPool2d: Record<never, never>;
  /**
   * Batch normalisation over NCHW, with an optional fused residual add and
   * ReLU; inputs are `[x, weight?, bias?, residual?]` as the flags say.
   * Running-statistics updates are not part of the op.
   */
  batchNorm: {
    training: boolean;
    weight: boolean;
    bias: boolean;
    residual: boolean;
    relu: boolean;
  };
  /** Layer normalisation over the last axis; inputs are `[x, weight?, bias?]` as the flags say. */
  layerNorm: { weight: boolean; bias: boolean };
  /** Embedding lookup (inputs `[weight]`); rows of `paddingIdx` (-1: none) get no gradient. */
  embedding: { paddingIdx: number };
}

/** Name of a differentiable primitive. */
export type Op = keyof OpAttrs;

/** One recorded operation. */
export interface Node<P extends Op = Op> {
  /** Which primitive produced the output. */
  op: P;
  /** The op's attributes. */
  attrs: OpAttrs[P];
  /** The op's inputs (tensors and non-differentiable operands alike). */
  inputs: Tensor[];
  /** Shapes of the inputs, kept since an input may be disposed before backward. */
  inputShapes: (readonly number[])[];
  /** Which inputs need a gradient. */
  needs: boolean[];
  /** Tensors the backward rule reads; released once it has run. */
  saved: Tensor[];
  /**
   * Other GPU resources the backward rule reads (a conv's packed input
   * texture), disposed with the saved tensors.
   */
  keep?: { dispose(): void }[];
  /** Whether backward has already consumed this node. */
  freed: boolean;
}

/**
 * A backward rule: given the node and the gradient of its output, returns one
 * gradient per input (`null` where `node.needs[i]` is false).
 */
export type VjpRule<P extends Op> = (node: Node<P>, gradOut: Tensor) => (Tensor | null)[];

/** Every primitive's rule; a primitive without one fails type checking in ops/vjp.ts. */
export type VjpTable = { [P in Op]: VjpRule<P> };

let gradEnabled = true;

/** Whether ops record onto the tape now. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/**
 * Runs `fn` with the tape off: nothing it does is recorded or differentiable.
 *
 * @example
 * ```ts
 * import { noGrad, randn } from "../mod.ts";
 * const w = randn([3]);
 * w.requiresGrad = true;
 * const y = noGrad(() => w.mul(2));
 * console.log(y.requiresGrad); // false
 * ```
 */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    const r = fn();
    if (r instanceof Promise) {
      throw new Error("noGrad(fn): fn must be synchronous (ops are recorded synchronously)");
    }
    return r;
  } finally {
    gradEnabled = prev;
  }
}

/** Frees a node's saved tensors (after backward, or when its graph is dropped). */
export function freeNode(node: Node): void {
  if (node.freed) return;
  node.freed = true;
  for (const k of node.keep ?? []) k.dispose();
  node.keep = undefined;
  for (const t of node.saved) {
    const s = t.storage;
    if (--s.savedBy === 0 && s.category === "activation") s.category = "temporary";
    t.dispose();
  }
  node.saved = [];
}

/**
 * Attaches a node to `out` when grad mode is on and some input requires grad.
 * `save` is called only then, so an op on frozen inputs saves nothing. Saved
 * tensors are shared views held by the tape until backward consumes them;
 * `keep` are other resources the node then owns (disposed with it). Returns
 * whether a node was recorded (if not, `keep` is still the caller's).
 */
export function record<P extends Op>(
  op: P,
  attrs: OpAttrs[P],
  inputs: Tensor[],
  out: Tensor,
  save?: (needs: boolean[]) => Tensor[],
  keep?: { dispose(): void }[],
): boolean {
  if (!gradEnabled) return false;
  const needs = inputs.map((t) => t.requiresGrad);
  if (!needs.some((n) => n)) return false;
  const saved = save ? save(needs).map((t) => t.saveForBackward()) : [];
  const node: Node<P> = {
    op,
    attrs,
    inputs,
    inputShapes: inputs.map((t) => t.shape),
    needs,
    saved,
    keep,
    freed: false,
  };
  out.setNode(node as unknown as Node);
  return true;
}
