/**
 * `backward()`: walks the tape from a tensor in reverse topological order,
 * calls each node's rule, and accumulates gradients into the leaves' `.grad`.
 * Each node's saved tensors and each intermediate gradient are released as
 * soon as they have been used, so backward's peak memory is the forward's
 * saved activations plus a frontier of gradients.
 *
 * @module
 */

import { fmtShape, scope, type Tensor } from "./tensor.ts";
import { freeNode, type Node, noGrad, type Op, type VjpRule } from "./autograd.ts";
import { vjpRules } from "./ops/vjp.ts";
import { add, ones } from "./ops/elementwise.ts";

/** Runs backward from `root` (a one-element tensor, or any tensor with `grad` given). */
export function backward(root: Tensor, grad?: Tensor): void {
  if (!root.requiresGrad) {
    throw new Error(
      `backward(): ${root} does not require grad (no input of the ops that made it requires grad)`,
    );
  }
  if (!grad && root.size !== 1) {
    throw new RangeError(`backward(): ${root} is not a scalar; pass the upstream gradient`);
  }
  if (grad && grad.shape.join() !== root.shape.join()) {
    throw new RangeError(
      `backward(): gradient shape ${fmtShape(grad.shape)} differs from ${fmtShape(root.shape)}`,
    );
  }
  // Iterative post-order DFS: deep graphs (hundreds of layers) must not overflow the stack.
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const node = t.node;
    if (node && i < node.inputs.length) {
      top[1]++;
      const c = node.inputs[i];
      if (node.needs[i] && c.node && !seen.has(c)) {
        seen.add(c);
        stack.push([c, 0]);
      }
      continue;
    }
    stack.pop();
    if (node) order.push(t);
  }
  noGrad(() => {
    const seed = grad ? grad.detach() : ones(root.shape);
    if (!root.node) {
      // A leaf that requires grad: its gradient is the seed itself (PyTorch sets ones).
      accumulateLeaf(root, seed);
      return;
    }
    const grads = new Map<Tensor, Tensor>();
    grads.set(root, seed);
    try {
      walk(order, grads);
    } finally {
      // Only non-empty when a rule threw: release what was in flight.
      for (const g of grads.values()) g.dispose();
    }
  });
}

/** Runs the rules in reverse topological order, routing gradients to inputs. */
function walk(order: Tensor[], grads: Map<Tensor, Tensor>): void {
  for (let k = order.length - 1; k >= 0; k--) {
    const t = order[k];
    const node = t.node!;
    const g = grads.get(t);
    grads.delete(t);
    if (!g) continue;
    if (node.freed) {
      g.dispose();
      throw new Error(
        `backward(): the graph through ${t} was already freed (by an earlier backward() or its scope)`,
      );
    }
    const rule = vjpRules()[node.op] as VjpRule<Op>;
    // The rule's intermediates die with this scope; only its results survive.
    const gins = scope(() => rule(node as Node<Op>, g));
    freeNode(node);
    node.inputs.forEach((inp, i) => {
      const gi = gins[i];
      if (!gi) return;
      if (!node.needs[i]) return;
      if (gi.shape.join() !== node.inputShapes[i].join()) {
        throw new Error(
          `internal: backward of ${node.op} gave a gradient ${fmtShape(gi.shape)} for an input ${
            fmtShape(node.inputShapes[i])
          }`,
        );
      }
      // An input gradient may alias g (identity rules): keep our own reference.
      const own = gi === g ? g.detach() : gi;
      if (inp.node) accumulate(grads, inp, own);
      else if (inp.requiresGrad) accumulateLeaf(inp, own);
      else own.dispose();
    });
    g.dispose();
  }
}

function accumulate(grads: Map<Tensor, Tensor>, t: Tensor, g: Tensor): void {
  const prev = grads.get(t);
  if (!prev) {
    grads.set(t, g);
    return;
  }
  grads.set(t, add(prev, g));
  prev.dispose();
  g.dispose();
}

function accumulateLeaf(t: Tensor, g: Tensor): void {
  const prev = t.grad;
  let next: Tensor;
  if (prev && !prev.disposed) {
    next = add(prev, g);
    prev.dispose();
    g.dispose();
  } else next = g;
  next.kept = true;
  next.storage.category = "gradient";
  t.grad = next;
}
