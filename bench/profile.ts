/**
 * `deno task profile KERNEL [--size flags]`: times one kernel family at chosen
 * sizes and prints the per-kernel table (GPU timestamps where available).
 *
 *   deno task profile matmul --m 1024 --n 1024 --k 1024 [--transA] [--transB] [--backward]
 *   deno task profile elementwise --n 1048576 [--op add|mul|relu|gelu|exp]
 *   deno task profile reduce --rows 1024 --cols 1024 [--axis 0|1]
 *   deno task profile softmax --rows 1024 --cols 1000
 *   deno task profile cross_entropy --rows 1024 --cols 1000
 *   deno task profile copy --rows 1024 --cols 1024        (transpose)
 *   deno task profile gather --rows 30522 --cols 128 --n 4096
 *   deno task profile layernorm --rows 4096 --cols 256 [--backward]
 *   deno task profile embedding --rows 30522 --cols 256 --n 4096 [--backward]
 *   deno task profile random --n 1048576
 *   deno task profile optimizer --n 1048576 [--op sgd|adamw]
 *   deno task profile conv2d --n 8 --cin 64 --cout 64 --h 32 --w 32 --k 3 --stride 1 --pad 1
 *     [--groups 1] [--backward]
 *   deno task profile pool --n 16 --c 64 --h 32 --w 32 [--op max|avg|adaptive] [--k 2]
 *     [--stride 2] [--pad 0] [--backward]
 *   deno task profile batchnorm --n 16 --c 64 --h 32 --w 32 [--op train|eval] [--backward]
 *   deno task profile attention --b 32 --h 4 --t 128 --d 64 [--mask] [--dropout 0.1] [--backward]
 *
 * Or one whole training step of a model of `deno task train`, its kernels
 * grouped by phase (forward through the loss, backward, optimizer):
 *
 *   deno task profile --model resnet18 --width 16 --batch 128 [--steps 3]
 *   deno task profile --model bert-mini --batch 32 --tokens 64
 *
 * Vision models get 1×28×28 inputs and SGD with momentum 0.9; text models
 * random token ids and AdamW. Times are GPU timestamps (each dispatch in its
 * own compute pass, timed at its start and end) where the adapter offers
 * `timestamp-query`, else queue completions (see `engine/profiler.ts`). The
 * step's wall time, without the profiler, is measured first and printed next
 * to the kernels' sum: the difference is what the GPU did not spend in
 * kernels (CPU recording, submission, waiting).
 *
 * @module
 */

import { parseArgs } from "node:util";
import * as F from "../mod.ts";
import { formatPhases, formatProfile, profile, profilePhase } from "../engine/profiler.ts";
import { benchModel } from "./bench_model.ts";
import { flushErrors } from "../engine/dispatch.ts";
import { gpu } from "../engine/device.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    m: { type: "string" },
    n: { type: "string" },
    k: { type: "string" },
    rows: { type: "string" },
    cols: { type: "string" },
    axis: { type: "string" },
    op: { type: "string" },
    reps: { type: "string" },
    transA: { type: "boolean" },
    transB: { type: "boolean" },
    backward: { type: "boolean" },
    cin: { type: "string" },
    cout: { type: "string" },
    h: { type: "string" },
    w: { type: "string" },
    stride: { type: "string" },
    pad: { type: "string" },
    groups: { type: "string" },
    c: { type: "string" },
    b: { type: "string" },
    t: { type: "string" },
    d: { type: "string" },
    mask: { type: "boolean" },
    dropout: { type: "string" },
    model: { type: "string" },
    width: { type: "string" },
    batch: { type: "string" },
    tokens: { type: "string" },
    steps: { type: "string" },
  },
});
const int = (v: string | undefined, d: number) => (v === undefined ? d : Number.parseInt(v, 10));
const reps = int(values.reps, 5);
const family = positionals[0];

type Body = () => void;
function setup(): Body {
  switch (family) {
    case "matmul": {
      const m = int(values.m, 512), n = int(values.n, 512), k = int(values.k, 512);
      const a = F.randn(values.transA ? [k, m] : [m, k]);
      const b = F.randn(values.transB ? [n, k] : [k, n]);
      if (values.backward) {
        a.requiresGrad = true;
        b.requiresGrad = true;
      }
      return () =>
        F.scope(() => {
          const c = F.matmul(a, b, { transA: values.transA, transB: values.transB });
          if (values.backward) {
            c.sum().backward();
            a.grad?.dispose();
            b.grad?.dispose();
            a.grad = b.grad = null;
          }
        });
    }
    case "elementwise": {
      const n = int(values.n, 1 << 20);
      const a = F.randn([n]), b = F.randn([n]);
      const op = values.op ?? "add";
      return () =>
        F.scope(() => {
          if (op === "add") F.add(a, b);
          else if (op === "mul") F.mul(a, b);
          else if (op === "relu") F.relu(a);
          else if (op === "gelu") F.gelu(a);
          else if (op === "exp") F.exp(a);
          else throw new Error(`unknown --op ${op}`);
        });
    }
    case "reduce": {
      const x = F.randn([int(values.rows, 1024), int(values.cols, 1024)]);
      const axis = int(values.axis, 1);
      return () => F.scope(() => void F.sum(x, axis));
    }
    case "softmax": {
      const x = F.randn([int(values.rows, 1024), int(values.cols, 1000)]);
      return () => F.scope(() => void F.softmax(x));
    }
    case "cross_entropy": {
      const rows = int(values.rows, 1024), cols = int(values.cols, 1000);
      const x = F.randn([rows, cols]);
      const y = F.tensor(Int32Array.from({ length: rows }, (_, i) => i % cols), { dtype: "i32" });
      return () => F.scope(() => void F.crossEntropy(x, y));
    }
    case "copy": {
      const x = F.randn([int(values.rows, 1024), int(values.cols, 1024)]);
      return () => F.scope(() => void F.transpose(x));
    }
    case "gather": {
      const rows = int(values.rows, 30522), cols = int(values.cols, 128), n = int(values.n, 4096);
      const x = F.randn([rows, cols]);
      const idx = F.tensor(Int32Array.from({ length: n }, (_, i) => (i * 7919) % rows), {
        dtype: "i32",
      });
      return () => F.scope(() => void F.indexSelect(x, 0, idx));
    }
    case "layernorm": {
      // Forward, and with --backward dx, dweight and dbias, over [rows, cols].
      const x = F.randn([int(values.rows, 4096), int(values.cols, 256)]);
      const [w, b] = [F.ones([x.shape[1]]), F.zeros([x.shape[1]])];
      x.requiresGrad = w.requiresGrad = b.requiresGrad = !!values.backward;
      return () =>
        F.scope(() => {
          const y = F.layerNorm(x, w, b);
          if (values.backward) {
            y.backward(F.ones(y.shape));
            for (const t of [x, w, b]) {
              t.grad?.dispose();
              t.grad = null;
            }
          }
        });
    }
    case "embedding": {
      // A [rows, cols] table looked up by n ids; --backward adds the weight gradient.
      const rows = int(values.rows, 30522), n = int(values.n, 4096);
      const w = F.randn([rows, int(values.cols, 256)]);
      w.requiresGrad = !!values.backward;
      const ids = F.tensor(Int32Array.from({ length: n }, (_, i) => (i * 7919) % rows), {
        dtype: "i32",
      });
      return () =>
        F.scope(() => {
          const y = F.embedding(ids, w, { paddingIdx: 0 });
          if (values.backward) {
            y.backward(F.ones(y.shape));
            w.grad?.dispose();
            w.grad = null;
          }
        });
    }
    case "random": {
      const n = int(values.n, 1 << 20);
      return () => F.scope(() => void F.randn([n]));
    }
    case "optimizer": {
      const n = int(values.n, 1 << 20);
      const p = F.keep(F.randn([n]));
      p.requiresGrad = true;
      const opt = values.op === "adamw"
        ? new F.optim.AdamW([p], { lr: 1e-3 })
        : new F.optim.SGD([p], { lr: 0.1, momentum: 0.9 });
      return () => {
        p.grad = F.keep(F.randn([n]));
        opt.step();
        opt.zeroGrad();
      };
    }
    case "conv2d": {
      // Forward, and with --backward the data and weight gradients (kernels named by pass).
      const cin = int(values.cin, 64), k = int(values.k, 3), groups = int(values.groups, 1);
      const x = F.randn([int(values.n, 8), cin, int(values.h, 32), int(values.w, 32)]);
      const w = F.randn([int(values.cout, 64), cin / groups, k, k]);
      x.requiresGrad = w.requiresGrad = !!values.backward;
      const opts = { stride: int(values.stride, 1), padding: int(values.pad, 1), groups };
      return () =>
        F.scope(() => {
          const y = F.conv2d(x, w, opts);
          if (values.backward) {
            y.backward(F.ones(y.shape));
            x.grad?.dispose();
            w.grad?.dispose();
            x.grad = w.grad = null;
          }
        });
    }
    case "pool":
    case "batchnorm": {
      // Forward, and with --backward the input (and BN affine) gradients, on [n, c, h, w].
      const x = F.randn([
        int(values.n, 16),
        int(values.c, 64),
        int(values.h, 32),
        int(values.w, 32),
      ]);
      x.requiresGrad = !!values.backward;
      const C = x.shape[1];
      const [weight, bias, rm, rv] = [F.ones([C]), F.zeros([C]), F.zeros([C]), F.ones([C])];
      weight.requiresGrad = bias.requiresGrad = !!values.backward;
      const op = values.op ?? (family === "pool" ? "max" : "train");
      const k = int(values.k, 2);
      const pool = { kernelSize: k, stride: int(values.stride, k), padding: int(values.pad, 0) };
      const fwd = (): F.Tensor => {
        if (op === "max") return F.maxPool2d(x, pool);
        if (op === "avg") return F.avgPool2d(x, pool);
        if (op === "adaptive") return F.adaptiveAvgPool2d(x, [7, 7]);
        if (op === "train" || op === "eval") {
          return F.batchNorm2d(x, weight, bias, rm, rv, { training: op === "train" });
        }
        throw new Error(`unknown --op ${op}`);
      };
      return () =>
        F.scope(() => {
          const y = fwd();
          if (values.backward) {
            y.backward(F.ones(y.shape));
            for (const t of [x, weight, bias]) {
              t.grad?.dispose();
              t.grad = null;
            }
          }
        });
    }
    case "attention": {
      // q, k, v [b, h, t, d]; --mask: a u32 padding mask [b, 1, 1, t] (the last quarter of keys off).
      const [b, h, t, d] = [
        int(values.b, 32),
        int(values.h, 4),
        int(values.t, 128),
        int(values.d, 64),
      ];
      const [q, k, v] = [0, 1, 2].map(() => F.randn([b, h, t, d]));
      for (const x of [q, k, v]) x.requiresGrad = !!values.backward;
      const keep = Uint32Array.from({ length: b * t }, (_, i) => +(i % t < t - (t >> 2)));
      const mask = values.mask ? F.tensor(keep, { shape: [b, 1, 1, t], dtype: "u32" }) : undefined;
      const dropoutP = Number(values.dropout ?? 0);
      return () =>
        F.scope(() => {
          const o = F.scaledDotProductAttention(q, k, v, { mask, dropoutP });
          if (values.backward) {
            o.backward(F.ones(o.shape));
            for (const x of [q, k, v]) {
              x.grad?.dispose();
              x.grad = null;
            }
          }
        });
    }
    default:
      console.error(
        `usage: deno task profile <matmul|elementwise|reduce|softmax|cross_entropy|copy|gather|random|optimizer|conv2d|pool|batchnorm|layernorm|embedding|attention> [size flags]\n` +
          `unknown kernel family "${family ?? ""}"`,
      );
      Deno.exit(2);
  }
}

if (values.model) {
  await profileStep(values.model);
  Deno.exit(0);
}

/** `--model`: one training step's kernels, by phase, against the step's wall time. */
async function profileStep(name: string) {
  const batch = int(values.batch, 128), tokens = int(values.tokens, 64);
  const { built, step, text } = benchModel(name, { batch, tokens, width: int(values.width, 16) });
  const params = built.model.parameters();
  const opt = text
    ? new F.optim.AdamW(params, { lr: 1e-4, weightDecay: 0.01 })
    : new F.optim.SGD(params, { lr: 0.05, momentum: 0.9 });
  const steps = int(values.steps, 3);
  // Two warm-up steps (pipelines compile, the buffer pool fills), then timed ones.
  const walls: number[] = [];
  for (let i = 0; i < 2 + steps; i++) {
    const t = performance.now();
    step(opt);
    await flushErrors();
    if (i >= 2) walls.push(performance.now() - t);
  }
  const { report } = await profile(async () => {
    for (let i = 0; i < steps; i++) step(opt, profilePhase);
    await flushErrors();
  });
  const sum = report.kernels.reduce((a, k) => a + k.totalMs, 0) / steps;
  const wall = walls.sort((a, b) => a - b)[walls.length >> 1];
  console.log(
    `${name} training step, batch ${batch}${text ? ` × ${tokens} tokens` : ""}, ` +
      `${params.length} parameter tensors, on ${gpu().label}; per step, mean of ${steps}:\n`,
  );
  console.log(formatPhases(report, steps));
  console.log(
    `kernels ${sum.toFixed(1)} ms per step (${report.timing}); step wall time without the ` +
      `profiler ${wall.toFixed(1)} ms (median of ${steps}); kernels/wall ${
        (sum / wall).toFixed(3)
      }; ` +
      `wall with the profiler ${(report.wallMs / steps).toFixed(1)} ms`,
  );
}

const body = setup();
// First run compiles the pipelines (llvmpipe also JIT-compiles on first dispatch): not timed.
body();
F.sync();
const { report } = await profile(() => {
  for (let i = 0; i < reps; i++) body();
});
console.log(`${family} ×${reps}\n${formatProfile(report)}`);
