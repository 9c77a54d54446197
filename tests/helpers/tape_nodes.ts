/**
 * The autograd tape behind a tensor, for tests that check what freezing cuts.
 *
 * @module
 */

import type { Node, Tensor } from "../../mod.ts";

/** Every node reachable from `t`'s producer (each once, in no particular order). */
export function tapeNodes(t: Tensor): Node[] {
  const seen = new Set<Node>();
  const stack = [t.node];
  while (stack.length) {
    const n = stack.pop();
    if (!n || seen.has(n)) continue;
    seen.add(n);
    for (const i of n.inputs) stack.push(i.node);
  }
  return [...seen];
}
