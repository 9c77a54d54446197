import assert from "node:assert/strict";
import { resample, type ResampleMode } from "../../data/resample.ts";
import { Rng } from "../../data/rng.ts";

const MODES: ResampleMode[] = ["nearest", "bilinear", "area"];

function close(got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-4): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= tol, `index ${i}: got ${got[i]}, want ${want[i]}`);
  }
}

function randomImage(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.int(256));
}

Deno.test("resample() is the identity at the same size for every filter", () => {
  const src = randomImage(2 * 5 * 7, 1);
  for (const mode of MODES) close(resample(src, 2, 5, 7, 5, 7, { mode }), src, 0);
});

Deno.test("resample() keeps a constant image constant at any size", () => {
  const src = new Float32Array(3 * 9 * 13).fill(77);
  for (const mode of MODES) {
    for (const [h, w] of [[4, 5], [20, 31], [1, 1], [9, 2]]) {
      close(resample(src, 3, 9, 13, h, w, { mode }), new Float32Array(3 * h * w).fill(77));
    }
  }
});

Deno.test("resample() bilinear enlarging matches half-pixel interpolation with clamped edges", () => {
  const [h, w, oh, ow] = [4, 5, 7, 12];
  const src = randomImage(h * w, 2);
  const at = (y: number, x: number) => src[y * w + x];
  const want = new Float32Array(oh * ow);
  for (let i = 0; i < oh; i++) {
    for (let j = 0; j < ow; j++) {
      // PyTorch's interpolate(mode="bilinear", align_corners=False).
      const sy = Math.max((i + 0.5) * (h / oh) - 0.5, 0);
      const sx = Math.max((j + 0.5) * (w / ow) - 0.5, 0);
      const y0 = Math.floor(sy), x0 = Math.floor(sx);
      const y1 = Math.min(y0 + 1, h - 1), x1 = Math.min(x0 + 1, w - 1);
      const fy = sy - y0, fx = sx - x0;
      want[i * ow + j] = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) +
        fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
    }
  }
  close(resample(src, 1, h, w, oh, ow, { mode: "bilinear" }), want);
});

Deno.test("resample() bilinear shrinking widens the triangle filter as Pillow does", () => {
  const x = [10, 20, 40, 80, 160, 90, 30, 0];
  // Halving: interior taps 1/8, 3/8, 3/8, 1/8; at the edges the taps outside are dropped and
  // the rest renormalised (Pillow's libImaging/Resample.c).
  const want = [
    (0.75 * x[0] + 0.75 * x[1] + 0.25 * x[2]) / 1.75,
    (x[1] + 3 * x[2] + 3 * x[3] + x[4]) / 8,
    (x[3] + 3 * x[4] + 3 * x[5] + x[6]) / 8,
    (0.25 * x[5] + 0.75 * x[6] + 0.75 * x[7]) / 1.75,
  ];
  close(resample(x, 1, 1, 8, 1, 4, { mode: "bilinear" }), want);
  // Separable: the same along the other axis.
  close(resample(x, 1, 8, 1, 4, 1, { mode: "bilinear" }), want);
});

Deno.test("resample() area averages the covered source, border pixels by their covered fraction", () => {
  const src = randomImage(6 * 6, 3);
  // Integer factor: plain 2x3 block means.
  const got = resample(src, 1, 6, 6, 3, 2, { mode: "area" });
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 2; j++) {
      let s = 0;
      for (let y = 2 * i; y < 2 * i + 2; y++) {
        for (let x = 3 * j; x < 3 * j + 3; x++) s += src[y * 6 + x];
      }
      assert.ok(Math.abs(got[i * 2 + j] - s / 6) < 1e-3);
    }
  }
  // 3 -> 2: output 0 covers pixel 0 and half of pixel 1.
  close(resample([30, 60, 90], 1, 1, 3, 1, 2, { mode: "area" }), [
    (30 + 0.5 * 60) / 1.5,
    (0.5 * 60 + 90) / 1.5,
  ]);
});

Deno.test("resample() nearest takes the pixel under each output centre", () => {
  close(resample([0, 1, 2, 3, 4, 5], 1, 1, 6, 1, 4, { mode: "nearest" }), [0, 2, 3, 5]);
  close(resample([0, 1], 1, 1, 2, 1, 5, { mode: "nearest" }), [0, 0, 1, 1, 1]);
});

Deno.test("resample() of a region at scale 1 copies that region, every plane", () => {
  const [c, h, w] = [2, 6, 8];
  const src = randomImage(c * h * w, 4);
  const region = { x: 3, y: 1, width: 4, height: 3 };
  const want: number[] = [];
  for (let k = 0; k < c; k++) {
    for (let y = 1; y < 4; y++) for (let x = 3; x < 7; x++) want.push(src[(k * h + y) * w + x]);
  }
  for (const mode of MODES) close(resample(src, c, h, w, 3, 4, { mode, region }), want, 0);
});

Deno.test("resample() rejects bad sizes and mismatched sources", () => {
  assert.throws(() => resample([1, 2], 1, 1, 2, 0, 1), /outHeight must be a positive integer/);
  assert.throws(() => resample([1, 2], 1, 1, 2, 1, 1.5), /outWidth must be a positive integer/);
  assert.throws(() => resample([1, 2, 3], 1, 1, 2, 1, 1), /3 values, 1x1x2 needs 2/);
  assert.throws(
    () => resample([1, 2], 1, 1, 2, 1, 1, { region: { x: 0, y: 0, width: 0, height: 1 } }),
    /positive size/,
  );
});
