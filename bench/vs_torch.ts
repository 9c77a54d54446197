/**
 * `deno run -A bench/vs_torch.ts`: whole training steps of ours against
 * PyTorch on the CPU of the same machine (Debian's `python3-torch`), same
 * weights, same batch, interleaved.
 *
 *   deno run -A bench/vs_torch.ts [--only resnet8,resnet16,resnet32,bert]
 *     [--rounds 3] [--steps 2] [--threads N] [--device cpu|cuda] [--json FILE]
 *
 * Op rows, for `bench/gpu.sh` (and `--only` here): `matmul1024` ... `matmul8192`
 * (n×n·n×n, f32) and `conv` (batch 64, 64→64 channels, 3×3, padding 1, 32×32),
 * the operands of `deno task compare` (peers_ref.ts) on both sides; each side's
 * first and last product rows, or the conv's corner and seeded outputs, are
 * checked against float64 sums before anything is timed; reported in GFLOP/s.
 *
 * Rows: the ResNet-18 of `deno task train` (CIFAR stem, 1×28×28 inputs, batch
 * 128, SGD with momentum 0.9, lr 0.05) at base widths 8, 16 and 32, and
 * BERT-mini (batch 32 × 64 tokens, AdamW lr 1e-4, weight decay 0.01, dropout
 * 0.1 on both sides). Per row: our model is built and its state dict and batch
 * written to a temporary directory; `bench/vs_torch.py` builds the same network
 * in PyTorch with torchvision's / Hugging Face's names and loads them strictly.
 * The first losses (forward only) must agree within 1e-3 relative, and for
 * the ResNet also the loss of the first training step (no dropout there), or
 * the row fails. Then after four warm-up steps each, `--rounds` rounds of
 * `--steps` steps of ours, then of PyTorch; every step is forward, backward,
 * update and reading the loss back on both sides. Reported: median ms per step
 * and the ratio (ours / PyTorch: > 1 means we are slower).
 *
 * PyTorch runs with as many threads as the machine has cores unless
 * `--threads` is given (0: torch's default, which was 1 here). Needs a Python
 * with `torch`: `apt-get install python3-torch libopenblas0-pthread` (without
 * OpenBLAS Debian's torch multiplies through the reference BLAS: 5.8 GFLOP/s
 * at 1024³ here against 84 with OpenBLAS; the log names the BLAS loaded), `--python`, else the first of `python3` and
 * `/usr/bin/python3` that imports torch; a row whose PyTorch side cannot start
 * says why.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { conv2d, matmul, optim, type Tensor, tensor } from "../mod.ts";
import { flushErrors } from "../engine/dispatch.ts";
import { gpu, initGpu } from "../engine/device.ts";
import { saveSafetensors } from "../engine/checkpoint.ts";
import { writeSafetensorsFile } from "../engine/safetensors.ts";
import { benchModel } from "./bench_model.ts";
import {
  checkConvOutputs,
  checkMatmulRows,
  convCheckPoints,
  convFlops,
  convOutSize,
  convProblem,
  matmulOperands,
  median,
} from "./peers_ref.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    only: { type: "string", default: "resnet8,resnet16,resnet32,bert" },
    rounds: { type: "string", default: "3" },
    steps: { type: "string", default: "2" },
    threads: { type: "string", default: String(navigator.hardwareConcurrency) },
    device: { type: "string", default: "cpu" },
    python: { type: "string" },
    json: { type: "string" },
  },
});

interface Row {
  name: string;
  /** A model of `deno task train`, or an op: "matmul" (n×n) or "conv". */
  model: string;
  width: number;
  batch: number;
  n?: number;
}
const ROWS: Row[] = [
  ...[1024, 2048, 4096, 8192].map((n) => ({
    name: `matmul${n}`,
    model: "matmul",
    width: 0,
    batch: 0,
    n,
  })),
  { name: "conv", model: "conv", width: 0, batch: 64 },
  { name: "resnet8", model: "resnet18", width: 8, batch: 128 },
  { name: "resnet16", model: "resnet18", width: 16, batch: 128 },
  { name: "resnet32", model: "resnet18", width: 32, batch: 128 },
  { name: "bert", model: "bert-mini", width: 0, batch: 32 },
];
const rounds = Number(values.rounds), steps = Number(values.steps);

/** The Python to run vs_torch.py with: `--python`, or the first that imports torch. */
async function pickPython(): Promise<string> {
  if (values.python) return values.python;
  for (const py of ["python3", "/usr/bin/python3"]) {
    try {
      const r = await new Deno.Command(py, { args: ["-c", "import torch"], stderr: "null" })
        .output();
      if (r.success) return py;
    } catch { /* not installed */ }
  }
  return "python3";
}
const python = await pickPython();

/** The PyTorch process: one JSON line answered per command line. */
class Torch {
  #proc: Deno.ChildProcess;
  #lines: AsyncIterator<string>;
  #w: WritableStreamDefaultWriter<Uint8Array>;
  #err = "";

  constructor(dir: string, row: Row) {
    this.#proc = new Deno.Command(python, {
      args: [
        new URL("./vs_torch.py", import.meta.url).pathname,
        dir,
        "--model",
        row.model,
        "--width",
        String(row.width),
        "--threads",
        String(values.threads),
        "--device",
        String(values.device),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#w = this.#proc.stdin.getWriter();
    this.#lines = this.#proc.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(
      new TransformStream<string, string>(
        {
          buf: "",
          transform(chunk, ctl) {
            const parts = (this.buf + chunk).split("\n");
            this.buf = parts.pop()!;
            for (const p of parts) if (p.trim()) ctl.enqueue(p);
          },
        } as Transformer<string, string> & { buf: string },
      ),
    )[Symbol.asyncIterator]();
    const stderr = this.#proc.stderr;
    (async () => {
      for await (const c of stderr.pipeThrough(new TextDecoderStream())) this.#err += c;
    })();
  }

  async read(): Promise<Record<string, unknown>> {
    const r = await this.#lines.next();
    if (r.done) throw new Error(`PyTorch side ended: ${this.#err.trim().slice(-2000)}`);
    return JSON.parse(r.value);
  }

  async ask(cmd: string): Promise<Record<string, unknown>> {
    await this.#w.write(new TextEncoder().encode(cmd + "\n"));
    return await this.read();
  }

  async close(): Promise<void> {
    try {
      await this.#w.write(new TextEncoder().encode("quit\n"));
      await this.#w.close();
    } catch { /* already gone */ }
    await this.#proc.status;
  }
}

interface Result {
  row: string;
  oursMs: number[];
  torchMs: number[];
  losses: { ours: number[]; torch: number[] };
  /** Op rows: floating-point operations of one run, and the worst checked error (ours, torch). */
  flops?: number;
  maxErr?: { ours: number; torch: number };
  torchThreads?: number;
  torchGpu?: string | null;
  error?: string;
}

async function runOp(row: Row): Promise<Result> {
  const result: Result = {
    row: row.name,
    oursMs: [],
    torchMs: [],
    losses: { ours: [], torch: [] },
  };
  const dir = await Deno.makeTempDir({ prefix: "frost-vs-torch-" });
  let torch: Torch | null = null;
  const owned: Tensor[] = [];
  try {
    // The operands and float64 checks of bench/compare.ts and vision_compare.ts (peers_ref.ts).
    let run: () => Tensor;
    /** Flat indices of the outputs checked, and the check of either side's values there. */
    let picks: number[];
    let check: (out: { readonly [i: number]: number }) => number;
    if (row.model === "matmul") {
      const n = row.n!;
      const { a, b } = matmulOperands(n);
      await writeSafetensorsFile(`${dir}/batch.safetensors`, {
        a: { dtype: "f32", shape: [n, n], data: a },
        b: { dtype: "f32", shape: [n, n], data: b },
      });
      const [ta, tb] = [tensor(a, { shape: [n, n] }), tensor(b, { shape: [n, n] })];
      owned.push(ta, tb);
      run = () => matmul(ta, tb);
      result.flops = 2 * n ** 3;
      const rows = [0, n - 1];
      picks = rows.flatMap((i) => Array.from({ length: n }, (_, j) => i * n + j));
      check = (out) => checkMatmulRows(a, b, out, n, rows);
    } else {
      const p = convProblem(row.batch, 64, 64, 32, 32, 3, 1);
      const [OH, OW] = convOutSize(p);
      await writeSafetensorsFile(`${dir}/batch.safetensors`, {
        x: { dtype: "f32", shape: [p.N, p.C, p.H, p.W], data: p.x },
        w: { dtype: "f32", shape: [p.O, p.C, p.k, p.k], data: p.w },
      });
      const tx = tensor(p.x, { shape: [p.N, p.C, p.H, p.W] });
      const tw = tensor(p.w, { shape: [p.O, p.C, p.k, p.k] });
      owned.push(tx, tw);
      run = () => conv2d(tx, tw, { padding: p.pad });
      result.flops = convFlops(p);
      picks = convCheckPoints(p).map(([n, o, y, x]) => ((n * p.O + o) * OH + y) * OW + x);
      check = (out) => checkConvOutputs(p, out, "nchw");
    }
    torch = new Torch(dir, row);
    const hello = await torch.read();
    result.torchThreads = hello.threads as number;
    result.torchGpu = hello.gpu as string | null;
    console.error(
      `  ${row.name}: torch ${hello.torch}, ${hello.threads} threads, BLAS ${hello.blas}`,
    );
    // Both sides against float64 sums before anything is timed (each check throws if off).
    const mine = run();
    const ours = await mine.toArray();
    mine.dispose();
    const values = (await torch.ask(`check ${picks.join(",")}`)).values as number[];
    const theirs: Record<number, number> = {};
    picks.forEach((o, i) => theirs[o] = values[i]);
    result.maxErr = { ours: check(ours as Float32Array), torch: check(theirs) };
    const once = async () => {
      const t = performance.now();
      run().dispose();
      await flushErrors();
      return performance.now() - t;
    };
    await once();
    await torch.ask("time 2");
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < steps; i++) result.oursMs.push(await once());
      result.torchMs.push(...((await torch.ask(`time ${steps}`)).ms as number[]));
    }
  } catch (e) {
    result.error = e instanceof Error ? e.message : String(e);
  } finally {
    await torch?.close();
    for (const t of owned) t.dispose();
    await Deno.remove(dir, { recursive: true });
  }
  return result;
}

async function runRow(row: Row): Promise<Result> {
  const text = row.model.startsWith("bert");
  const bm = benchModel(row.model, { batch: row.batch, tokens: 64, width: row.width || 16 });
  const params = bm.built.model.parameters();
  const opt = text
    ? new optim.AdamW(params, { lr: 1e-4, weightDecay: 0.01 })
    : new optim.SGD(params, { lr: 0.05, momentum: 0.9 });
  const dir = await Deno.makeTempDir({ prefix: "frost-vs-torch-" });
  const result: Result = {
    row: row.name,
    oursMs: [],
    torchMs: [],
    losses: { ours: [], torch: [] },
  };
  let torch: Torch | null = null;
  try {
    await saveSafetensors(`${dir}/weights.safetensors`, bm.built.model.stateDict());
    const xShape = [row.batch, ...bm.built.sampleShape];
    await writeSafetensorsFile(`${dir}/batch.safetensors`, {
      x: { dtype: text ? "i32" : "f32", shape: xShape, data: bm.x },
      y: { dtype: "i32", shape: [row.batch], data: bm.y },
    });
    torch = new Torch(dir, row);
    const hello = await torch.read();
    result.torchThreads = hello.threads as number;
    console.error(
      `  ${row.name}: torch ${hello.torch}, ${hello.threads} threads, BLAS ${hello.blas}`,
    );
    // The first loss, forward only: dropout off for BERT (eval), batch statistics for the ResNet.
    bm.built.model.train(!text);
    const ours0 = await bm.loss();
    bm.built.model.train(true);
    const torch0 = (await torch.ask("loss")).loss as number;
    result.losses.ours.push(ours0);
    result.losses.torch.push(torch0);
    const close = (a: number, b: number) => Math.abs(a - b) <= 1e-3 * Math.max(Math.abs(b), 1e-3);
    if (!close(ours0, torch0)) {
      throw new Error(`first losses differ: ours ${ours0}, torch ${torch0}`);
    }
    if (!text) {
      // No dropout in the ResNet: the first training steps must agree too.
      const a = await bm.stepLoss(opt), b = (await torch.ask("step")).loss as number;
      result.losses.ours.push(a);
      result.losses.torch.push(b);
      if (!close(a, b)) throw new Error(`first step losses differ: ours ${a}, torch ${b}`);
    }
    // Warm-up: PyTorch's steps settle only after a few (ResNet-18 w8: 133-152 ms for the first
    // two timed steps after two warm-up steps, 57-62 ms after four).
    for (let i = 0; i < 4; i++) await bm.stepLoss(opt);
    await torch.ask("time 4");
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < steps; i++) {
        const t = performance.now();
        await bm.stepLoss(opt);
        result.oursMs.push(performance.now() - t);
      }
      result.torchMs.push(...((await torch.ask(`time ${steps}`)).ms as number[]));
      console.error(
        `  ${row.name} round ${r + 1}/${rounds}: ours ${
          result.oursMs.slice(-steps).map((v) => v.toFixed(0)).join(", ")
        } ms, torch ${result.torchMs.slice(-steps).map((v) => v.toFixed(0)).join(", ")} ms`,
      );
    }
  } catch (e) {
    result.error = e instanceof Error ? e.message : String(e);
  } finally {
    await torch?.close();
    bm.built.model.dispose();
    await Deno.remove(dir, { recursive: true });
  }
  return result;
}

await initGpu();
const label = gpu().label;
console.error(`ours on ${label}; PyTorch on the CPU`);
const results: Result[] = [];
for (const name of values.only!.split(",")) {
  const row = ROWS.find((r) => r.name === name);
  if (!row) throw new Error(`--only: unknown row ${name} (${ROWS.map((r) => r.name).join(", ")})`);
  results.push(
    row.model === "matmul" || row.model === "conv" ? await runOp(row) : await runRow(row),
  );
}

const desc: Record<string, string> = {
  matmul1024: "matmul 1024³ (GFLOP/s)",
  matmul2048: "matmul 2048³ (GFLOP/s)",
  matmul4096: "matmul 4096³ (GFLOP/s)",
  matmul8192: "matmul 8192³ (GFLOP/s)",
  conv: "conv2d 64×64×32×32, 64 out, 3×3 (GFLOP/s)",
  resnet8: "ResNet-18 w8, batch 128, SGD",
  resnet16: "ResNet-18 w16, batch 128, SGD",
  resnet32: "ResNet-18 w32, batch 128, SGD",
  bert: "BERT-mini, 32×64 tokens, AdamW",
};
const torchWhere = results.find((r) => r.torchGpu)?.torchGpu ?? "CPU";
const lines = [
  `| row | ours (${label}) | PyTorch ${torchWhere} | ours / PyTorch | checked (ours / torch) |`,
  "| --- | ---: | ---: | ---: | --- |",
];
for (const r of results) {
  if (r.error) {
    lines.push(`| ${desc[r.row]} | failed: ${r.error} | | | |`);
    continue;
  }
  const o = median(r.oursMs), t = median(r.torchMs);
  if (r.flops) {
    const rate = (ms: number) => (r.flops! / (ms / 1000) / 1e9).toFixed(1);
    lines.push(
      `| ${desc[r.row]} | ${rate(o)} | ${rate(t)} | ${(t / o).toFixed(2)}× of its rate | ` +
        `max error / Σ|terms|: ${r.maxErr!.ours.toExponential(1)} / ${
          r.maxErr!.torch.toExponential(1)
        } |`,
    );
    continue;
  }
  lines.push(
    `| ${desc[r.row]} (ms per step) | ${o.toFixed(0)} | ${t.toFixed(0)}${
      r.torchGpu ? "" : ` (${r.torchThreads} threads)`
    } | ${(o / t).toFixed(2)}× | losses ${
      r.losses.ours.map((v, i) => `${v.toFixed(5)} / ${r.losses.torch[i].toFixed(5)}`).join("; ")
    } |`,
  );
}
console.log(lines.join("\n"));
if (values.json) {
  await Deno.writeTextFile(values.json, JSON.stringify({ adapter: label, results }, null, 2));
}
