/**
 * Scratch textures (engine/scratch.ts): sizes that every wgpu backend binds as
 * a `2d-array`, and an eviction that never destroys a texture its op still
 * uses.
 */
import assert from "node:assert/strict";
import { synchronize, zeros } from "../../mod.ts";
import { gpu } from "../../engine/device.ts";
import { sync } from "../../engine/dispatch.ts";
import { arrayTextureSize, ScratchTextures } from "../../engine/scratch.ts";
import { matmulRef } from "../helpers/reference.ts";

const root = new URL("../../", import.meta.url).pathname;

Deno.test("arrayTextureSize() never gives 1 layer nor a square with a multiple of 6 layers", () => {
  assert.deepEqual(arrayTextureSize(5, 7, 1), [5, 7, 2]);
  assert.deepEqual(arrayTextureSize(5, 7, 6), [5, 7, 6]);
  assert.deepEqual(arrayTextureSize(9, 9, 6), [9, 9, 7]);
  assert.deepEqual(arrayTextureSize(9, 9, 96), [9, 9, 97]);
  assert.deepEqual(arrayTextureSize(9, 9, 5), [9, 9, 5]);
  // At the layer limit the width grows instead.
  assert.deepEqual(arrayTextureSize(9, 9, 12, 12), [10, 9, 12]);
  for (let w = 1; w <= 8; w++) {
    for (let l = 1; l <= 200; l++) {
      const [tw, th, tl] = arrayTextureSize(w, 8, l);
      assert.ok(tl >= 2 && tl >= l && tw >= w && th === 8, `${w}x8x${l}`);
      assert.ok(!(tw === th && tl % 6 === 0), `${w}x8x${l} -> ${tw}x${th}x${tl}`);
    }
  }
});

Deno.test("ScratchTextures never evicts the newest texture of a role, which its op may still use", async () => {
  const { device } = gpu();
  const s = new ScratchTextures("test", 1); // every texture is over budget
  const a1 = s.get("A", 3, 5, 1);
  const b = s.get("B", 7, 5, 2); // must not destroy a1: the op of a1 and b is being recorded
  const a2 = s.get("A", 4, 5, 1); // a1 is no longer its role's newest: it may go
  zeros([4]).dispose(); // a batch to submit: evictions happen once the batch is submitted
  sync();
  const write = async (t: GPUTexture) => {
    device.pushErrorScope("validation");
    device.queue.writeTexture({ texture: t }, new Float32Array(4), { bytesPerRow: 16 }, [1, 1, 1]);
    return await device.popErrorScope();
  };
  assert.equal(await write(b.texture), null);
  assert.equal(await write(a2.texture), null);
  assert.notEqual(await write(a1.texture), null, "the superseded texture was destroyed");
  await synchronize();
});

Deno.test("matmul's packed A outliving the scratch budget survives a submit between its dispatches", async () => {
  // A stored [4096, 4096] used transposed packs to a 128 MiB texture, above matmul's 64 MiB
  // budget: getting B's texture once evicted A's before the product ran, and a submit after
  // each dispatch (FROST_DEBUG_SYNC=1) then used the destroyed texture.
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--ext=ts",
      `
      const { matmul, tensor } = await import("./mod.ts");
      const n = 4096;
      const a = new Float32Array(n * n);
      for (let i = 0; i < a.length; i++) a[i] = ((i * 7919) % 13) / 13 - 0.5;
      const b = new Float32Array(n * 4);
      for (let i = 0; i < b.length; i++) b[i] = ((i * 104729) % 11) / 11 - 0.5;
      const y = matmul(tensor(a, { shape: [n, n] }), tensor(b, { shape: [n, 4] }), { transA: true });
      console.log(JSON.stringify(Array.from((await y.toArray()).slice(0, 8))));
    `,
    ],
    cwd: root,
    env: { FROST_DEBUG_SYNC: "1" },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  });
  const r = await cmd.output();
  const out = new TextDecoder().decode(r.stdout);
  const err = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, err);
  const got: number[] = JSON.parse(out.trim().split("\n").at(-1)!);
  // Rows 0 and 1 of Aᵀ·B in float64: column m of A against B.
  const n = 4096;
  const colA = (m: number) => ({
    shape: [1, n],
    data: Float64Array.from(
      { length: n },
      (_, k) => Math.fround(((k * n + m) * 7919 % 13) / 13 - 0.5),
    ),
  });
  const B = {
    shape: [n, 4],
    data: Float64Array.from({ length: n * 4 }, (_, i) => Math.fround((i * 104729 % 11) / 11 - 0.5)),
  };
  const want = [...matmulRef(colA(0), B).data, ...matmulRef(colA(1), B).data];
  for (let i = 0; i < 8; i++) {
    assert.ok(Math.abs(got[i] - want[i]) < 1e-3 * (1 + Math.abs(want[i])), `y[${i}]`);
  }
});
