/**
 * Device-level failures: each must end in a clear, thrown error, never a hang
 * or a silent wrong answer. The cases that break the device run in a child
 * process so the rest of the suite keeps a healthy one.
 */
import assert from "node:assert/strict";
import { relu, softmax, synchronize, Tensor, tensor } from "../../mod.ts";
import { gpu } from "../../engine/device.ts";
import { bindGroupCount, run } from "../../engine/dispatch.ts";
import type { KernelProgram } from "../../kernels/program.ts";
import { runSelfCheck } from "../../engine/self_check.ts";

const root = new URL("../../", import.meta.url).pathname;

async function child(code: string): Promise<{ code: number; out: string }> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  });
  const r = await cmd.output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

Deno.test("without an adapter, initGpu() says so and how to get one", async () => {
  const r = await child(`
    Object.defineProperty(navigator.gpu, "requestAdapter", { value: async () => null });
    const { initGpu } = await import("./engine/device.ts");
    try { await initGpu(); console.log("no error"); } catch (e) { console.log(e.name + ": " + e.message); }
  `);
  assert.match(r.out, /GpuError: WebGPU: no GPU adapter was found/);
  assert.match(r.out, /mesa/i);
});

Deno.test("a lost device fails the next read-back with an error instead of hanging", async () => {
  const r = await child(`
    const { tensor } = await import("./mod.ts");
    const { gpu } = await import("./engine/device.ts");
    const t = tensor([1, 2, 3]);
    await t.toArray();
    gpu().device.destroy();
    await new Promise((r) => setTimeout(r, 50));
    try { await t.add(1).toArray(); console.log("no error"); } catch (e) { console.log(e.name + ": " + e.message); }
  `);
  assert.match(r.out, /GpuError: WebGPU device lost/);
});

Deno.test("after a lost device, initGpu() gives a working device and old tensors fail clearly", async () => {
  const r = await child(`
    const { conv2d, initGpu, matmul, randn, tensor } = await import("./mod.ts");
    const { gpu } = await import("./engine/device.ts");
    const old = tensor([1, 2, 3]);
    await matmul(randn([64, 64]), randn([64, 64])).toArray(); // fill the caches
    const first = gpu().device;
    first.destroy();
    await new Promise((r) => setTimeout(r, 50));
    await initGpu();
    console.log("new device:", gpu().device !== first);
    const a = tensor(Float32Array.from({ length: 64 * 64 }, (_, i) => (i % 7) - 3), { shape: [64, 64] });
    const y = await matmul(a, a).toArray();
    let want = 0;
    for (let k = 0; k < 64; k++) want += ((k % 7) - 3) * (((k * 64) % 7) - 3);
    console.log("matmul ok:", y[0] === want);
    const c = await conv2d(randn([2, 1, 5, 5]), randn([2, 1, 3, 3])).toArray();
    console.log("conv ok:", c.length === 2 * 2 * 3 * 3 && c.every(Number.isFinite));
    try { await old.add(1).toArray(); console.log("no error"); } catch (e) { console.log(e.name + ": " + e.message); }
  `);
  assert.match(r.out, /new device: true/, r.out);
  assert.match(r.out, /matmul ok: true/, r.out);
  assert.match(r.out, /conv ok: true/, r.out);
  assert.match(
    r.out,
    /GpuError: kernel "[a-z_]+": binding 0 is a tensor of a WebGPU device that was lost/,
  );
});

Deno.test("an adapter that computes wrong numbers is refused by the self-check, naming adapter and backend", async () => {
  // Simulated by corrupting every read-back: the check must catch it before any op returns.
  const corrupt = `
    const orig = GPUBuffer.prototype.getMappedRange;
    GPUBuffer.prototype.getMappedRange = function (...a) {
      const r = orig.apply(this, a);
      const f = new Float32Array(r);
      for (let i = 0; i < f.length; i++) f[i] += 0.5;
      return r;
    };
    const { tensor } = await import("./mod.ts");
    try { console.log("result", Array.from(await tensor([1, 2]).add(1).toArray())); }
    catch (e) { console.log(e.name + ": " + e.message); }
  `;
  const r = await child(corrupt);
  assert.match(
    r.out,
    /GpuError: WebGPU self-check failed on .+, wgpu \S+( \(auto\))? backend: /,
    r.out,
  );
  assert.match(r.out, /FROST_SKIP_SELF_CHECK=1/);
  const skipped = await child(`Deno.env.set("FROST_SKIP_SELF_CHECK", "1");\n${corrupt}`);
  assert.match(skipped.out, /result/, skipped.out);
});

Deno.test("runSelfCheck() passes on this adapter and names nothing wrong", async () => {
  assert.equal(await runSelfCheck(), null);
});

Deno.test("a kernel that fails to compile is reported with its name, the line and its source", async () => {
  const r = await child(`
    const { synchronize, Tensor } = await import("./mod.ts");
    const { run } = await import("./engine/dispatch.ts");
    const bad = { name: "broken_kernel", key: "broken_kernel", inputs: 0, outputs: 1, uniforms: false,
      wgsl: () => "@group(0) @binding(0) var<storage, read_write> o: array<f32>;\\n@compute @workgroup_size(1) fn main() { o[0] = undefined_name; }" };
    const out = Tensor.empty([1]);
    run(bad, { inputs: [], outputs: [out.storage], workgroups: 1 });
    try { await synchronize(); console.log("no error"); } catch (e) { console.log(e.name + ": " + e.message); }
  `);
  assert.match(r.out, /GpuError: kernel "broken_kernel" failed to compile/);
  assert.match(r.out, /undefined_name/);
  assert.match(r.out, /line 2/);
});

Deno.test("a kernel that cannot split a tensor above maxStorageBufferBindingSize refuses it by name", () => {
  // Elementwise ops, reductions to a scalar, optimizers and matmul work in pieces
  // (tests/engine/large_tensor_test.ts); a row-wise softmax over one huge row does not.
  const limit = gpu().limits.maxStorageBufferBindingSize;
  const big = Tensor.empty([limit / 4 + 1]);
  try {
    assert.throws(() => softmax(big), (e: Error) => {
      assert.ok(e instanceof RangeError);
      assert.match(e.message, /softmax/);
      assert.match(e.message, /maxStorageBufferBindingSize/);
      return true;
    });
  } finally {
    big.dispose();
  }
});

Deno.test("run() checks a kernel's binding count against the program", async () => {
  const p: KernelProgram = {
    name: "two_inputs",
    key: "two_inputs_test",
    inputs: 2,
    outputs: 1,
    uniforms: false,
    wgsl: () => "",
  };
  const t = tensor([1]);
  assert.throws(
    () => run(p, { inputs: [t.storage], outputs: [t.storage], workgroups: 1 }),
    /expected 2 inputs/,
  );
  t.dispose();
  await synchronize();
});

Deno.test("run() reuses a bind group for the same kernel and buffers, and never mixes buffers up", async () => {
  const a = tensor([-1, 2, -3, 4, 5, -6, 7, -8]);
  const b = tensor([1, -2, 3, -4, -5, 6, -7, 8]);
  relu(a).dispose(); // the output buffer goes back to the pool
  const before = bindGroupCount();
  const ya = relu(a); // the same input and (pooled) output buffer: the cached bind group
  assert.equal(bindGroupCount(), before);
  const yb = relu(b); // another input: a bind group of its own, and b's values
  assert.equal(bindGroupCount(), before + 1);
  assert.deepEqual(Array.from(await ya.toArray()), [0, 2, 0, 4, 5, 0, 7, 0]);
  assert.deepEqual(Array.from(await yb.toArray()), [1, 0, 3, 0, 0, 6, 0, 8]);
  for (const t of [a, b, ya, yb]) t.dispose();
});

Deno.test("a tape node's kept conv texture is dropped cleanly after the device is lost", async () => {
  const r = await child(`
    const { conv2d, randn } = await import("./mod.ts");
    const { gpu } = await import("./engine/device.ts");
    const { freeNode } = await import("./engine/autograd.ts");
    const w = randn([2, 1, 3, 3]);
    w.requiresGrad = true;
    const y = conv2d(randn([2, 1, 5, 5]), w);
    console.log("kept:", y.node.keep.length);
    gpu().device.destroy();
    await new Promise((r) => setTimeout(r, 50));
    try { freeNode(y.node); console.log("dropped"); } catch (e) { console.log("threw: " + e.message); }
  `);
  assert.match(r.out, /kept: 1/, r.out);
  assert.match(r.out, /dropped/, r.out);
});
