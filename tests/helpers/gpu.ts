/**
 * Moving test data between {@link Ref}s and engine tensors, and the "poison"
 * step that makes unwritten output elements visible.
 *
 * @module
 */

import { type DType, full, type Tensor, tensor } from "../../mod.ts";
import { sizeClass } from "../../engine/memory.ts";
import { assertClose, type CloseOptions, type Ref, ref } from "./reference.ts";

/** The odd sizes every op is tried at: one element, below/above a 32-wide warp or vec4, prime. */
export const SIZES = [1, 7, 33, 257];

/** An input of {@link checkOp}: f32 by default. */
export type OpInput = Ref | { ref: Ref; dtype: DType };

/** Uploads a Ref as a tensor (f32 by default; integer dtypes must hold integers). */
export function upload(x: Ref, opts: { dtype?: DType; requiresGrad?: boolean } = {}): Tensor {
  const dtype = opts.dtype ?? "f32";
  const data = dtype === "f32"
    ? Float32Array.from(x.data)
    : dtype === "i32"
    ? Int32Array.from(x.data)
    : Uint32Array.from(x.data);
  return tensor(data, { shape: x.shape, dtype, requiresGrad: opts.requiresGrad });
}

/** Reads a tensor back as a Ref (values widened to float64). */
export async function download(t: Tensor): Promise<Ref> {
  return ref(t.shape, await t.toArray());
}

/**
 * Fills the buffers that the next allocations of these element counts will get
 * with NaN, so that an output element a kernel forgets to write reads back as
 * NaN (which {@link assertClose} never accepts) instead of as a stale value or
 * as the zero a fresh WebGPU buffer holds.
 *
 * The trick relies on the buffer pool (engine/memory.ts): a disposed tensor's
 * buffer goes to a free list per size class, and `Tensor.empty` takes the most
 * recently freed buffer of its class, even within the command batch being
 * recorded (the GPU runs the batch in order, so the NaN fill lands before the
 * kernel under test writes). So: allocate `copies` NaN-filled tensors of each
 * size's whole class (every element of the pooled buffer, not only the first
 * `n`: a slightly larger tensor that gets the buffer must read NaN in its
 * tail too, not what an earlier test left there), dispose them, then run the
 * op. Inputs must be uploaded *before* poisoning: uploads skip buffers freed
 * in the current batch (a `writeBuffer` would land before the fill), so they
 * cannot consume the poisoned buffers, but a read-back in between starts a
 * new batch. The test "poison() makes Tensor.empty hand out NaN-filled
 * memory" checks that the trick still works.
 */
export function poison(sizes: number[], copies = 3): void {
  const ts: Tensor[] = [];
  for (const n of sizes) {
    const whole = sizeClass(4 * n) / 4;
    for (let c = 0; c < copies; c++) ts.push(full([whole], NaN));
  }
  for (const t of ts) t.dispose();
}

/** Runs `fn` after poisoning buffers of the given element counts; see {@link poison}. */
export function poisoned<T>(sizes: number[], fn: () => T): T {
  poison(sizes);
  return fn();
}

/** Options of {@link checkOp}. */
export interface CheckOpOptions extends CloseOptions {
  /** Expected dtype of the output (default f32). */
  dtype?: DType;
}

/**
 * Uploads `inputs`, poisons buffers of the expected output size, runs `op`, and
 * asserts the result's shape, dtype and values against `expected`.
 */
export async function checkOp(
  msg: string,
  inputs: OpInput[],
  op: (...ts: Tensor[]) => Tensor,
  expected: Ref,
  opts: CheckOpOptions = {},
): Promise<void> {
  const ts = inputs.map((x) => ("ref" in x ? upload(x.ref, { dtype: x.dtype }) : upload(x)));
  const out = poisoned([expected.data.length], () => op(...ts));
  try {
    if (out.shape.join() !== expected.shape.join()) {
      throw new Error(`${msg}: shape [${out.shape}], expected [${expected.shape}]`);
    }
    const dtype = opts.dtype ?? "f32";
    if (out.dtype !== dtype) throw new Error(`${msg}: dtype ${out.dtype}, expected ${dtype}`);
    assertClose(await out.toArray(), expected, { ...opts, msg });
  } finally {
    out.dispose();
    for (const t of ts) t.dispose();
  }
}
