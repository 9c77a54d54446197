/**
 * Side-by-side benchmark of our vision ops against TensorFlow.js (WebGPU) and
 * jax-js (WebGPU), in one process on the same adapter:
 *
 * - conv2d forward, batch 8, 64→64 channels, 3×3, padding 1, 32×32 (ours and
 *   jax-js in NCHW, tfjs in its native NHWC: the same FLOPs), checked against
 *   float64 sums on 20 output elements per engine;
 * - one training step of a small CNN (three 3×3 conv + ReLU + 2×2 max pool
 *   blocks, 3→32→64→64, then a linear layer; batch 16, 32×32, 10 classes),
 *   every engine from the same weights, the first loss checked against a
 *   float64 CPU forward pass;
 * - one training step of ResNet-18 with the CIFAR stem (BasicBlocks with
 *   BatchNorm, 11,173,962 parameters; batch 16, 3×32×32, 10 classes), every
 *   engine from the same torchvision-initialised weights, the first loss
 *   checked across engines.
 *
 * Training steps are SGD with momentum 0.9 on mean cross-entropy, BatchNorm
 * in training mode. Each timed run is synchronised: a conv reads one output
 * element back, a step reads its loss back.
 *
 * ```sh
 * deno task compare:vision [--quick] [--only conv,cnn,resnet] [--json runs/vision.json]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { conv2d, keep, models, nn, type Tensor, tensor } from "../mod.ts";
import { gpu } from "../engine/device.ts";
import { flushErrors, readBuffer } from "../engine/dispatch.ts";
import {
  checkConvOutputs,
  type CnnProblem,
  cnnProblem,
  convFlops,
  type ConvProblem,
  convProblem,
  cpuCnnLoss,
  firstLossCheck,
  lossAgreement,
  median,
  paramCount,
  type ResnetProblem,
  resnetProblem,
  timeRuns,
} from "./peers_ref.ts";
import {
  attempt,
  CNN_PROTOCOL,
  type ConvTiming,
  finishComparison,
  jaxCnnStep,
  jaxConv,
  jaxResnetStep,
  type LossCheck,
  onTrainingStep,
  RESNET_PROTOCOL,
  type Row,
  startComparison,
  stepTiming,
  tfjsCnnStep,
  tfjsConv,
  tfjsResnetStep,
  type VisionStepTiming,
} from "./peers.ts";
import { oursTraining, stateTensors } from "./ours_training.ts";

/** ResNet-18 with the CIFAR stem and 10 classes: torchvision's count less the 7×7 stem and 1000-way head. */
export const RESNET18_CIFAR_PARAMS = 11_173_962;

/**
 * Our conv2d forward (NCHW). Each timed run records a fresh output and reads
 * its last element back, then frees the previous one; the compile run's
 * output and the last timed one are checked on the CPU.
 */
export async function oursConv(reps: number, p: ConvProblem = convProblem()): Promise<ConvTiming> {
  const x = keep(tensor(p.x, { shape: [p.N, p.C, p.H, p.W] }));
  const w = keep(tensor(p.w, { shape: [p.O, p.C, p.k, p.k] }));
  const held: { c: Tensor | null } = { c: null };
  try {
    const c0 = conv2d(x, w, { padding: p.pad });
    const maxRelErr = checkConvOutputs(p, (await c0.toArray()) as Float32Array, "nchw");
    c0.dispose();
    const times = await timeRuns(reps, async () => {
      held.c?.dispose();
      const c = held.c = conv2d(x, w, { padding: p.pad });
      await readBuffer(c.storage, (c.size - 1) * 4, 4);
    });
    const lastErr = checkConvOutputs(p, (await held.c!.toArray()) as Float32Array, "nchw");
    const ms = median(times);
    return {
      ms,
      minMs: Math.min(...times),
      gflops: convFlops(p) / (ms * 1e6),
      runs: times.length,
      device: "webgpu",
      layout: "NCHW",
      maxRelErr: Math.max(maxRelErr, lastErr),
    };
  } finally {
    held.c?.dispose();
    x.dispose();
    w.dispose();
    await flushErrors();
  }
}

/**
 * Our CNN step: `nn.Sequential` of `nn.Conv2d` (bias, padding 1), `nn.ReLU`,
 * `nn.MaxPool2d(2)`, `nn.Flatten` and `nn.Linear`, loaded with the problem's
 * weights, trained with `optim.SGD`.
 */
export async function oursCnnStep(
  reps: number,
  check?: LossCheck,
  p: CnnProblem = cnnProblem(),
): Promise<VisionStepTiming> {
  const layers: nn.Module[] = [];
  const entries: [string, number[], Float32Array][] = [];
  for (const c of p.convs) {
    entries.push([`${layers.length}.weight`, [c.outC, c.inC, 3, 3], c.w]);
    entries.push([`${layers.length}.bias`, [c.outC], c.b]);
    layers.push(
      new nn.Conv2d(c.inC, c.outC, 3, { padding: 1 }),
      new nn.ReLU(),
      new nn.MaxPool2d(2),
    );
  }
  layers.push(new nn.Flatten());
  const feat = p.fcW.length / p.classes;
  entries.push([`${layers.length}.weight`, [p.classes, feat], p.fcW]);
  entries.push([`${layers.length}.bias`, [p.classes], p.fcB]);
  layers.push(new nn.Linear(feat, p.classes));
  const model = new nn.Sequential(...layers);
  const sd = stateTensors(entries);
  model.loadStateDict(sd);
  for (const t of Object.values(sd)) t.dispose();
  const x = keep(tensor(p.x, { shape: [p.batch, 3, p.size, p.size] }));
  const y = keep(tensor(p.y, { shape: [p.batch], dtype: "i32" }));
  try {
    return stepTiming(
      await oursTraining(
        model,
        () => model.forward(x),
        y,
        p,
        reps,
        { ...CNN_PROTOCOL, check },
      ),
      CNN_PROTOCOL.checkSteps,
      {
        device: "webgpu",
        params: model.numParameters(),
        build: "nn.Sequential (Conv2d, ReLU, MaxPool2d, Flatten, Linear), NCHW, optim.SGD",
      },
    );
  } finally {
    x.dispose();
    y.dispose();
    model.dispose();
    await flushErrors();
  }
}

/**
 * Our ResNet-18 step: `models.resnet18({numClasses, cifarStem: true})`, its
 * parameters replaced by the problem's (the running statistics keep their
 * initial 0 and 1), trained with `optim.SGD`. Throws unless the model has
 * {@link RESNET18_CIFAR_PARAMS} parameters, all of them in the problem.
 */
export async function oursResnetStep(
  reps: number,
  p: ResnetProblem,
  check?: LossCheck,
): Promise<VisionStepTiming> {
  const model = models.resnet18({ numClasses: p.classes, cifarStem: true });
  const x = keep(tensor(p.x, { shape: [p.batch, 3, p.size, p.size] }));
  const y = keep(tensor(p.y, { shape: [p.batch], dtype: "i32" }));
  try {
    const count = model.numParameters();
    if (count !== RESNET18_CIFAR_PARAMS || paramCount(p.params) !== count) {
      throw new Error(
        `resnet18 has ${count} parameters, the problem ${paramCount(p.params)}; ` +
          `expected ${RESNET18_CIFAR_PARAMS}`,
      );
    }
    const sd = stateTensors(
      Object.entries(p.params).map(([k, v]) => [k, v.shape, v.data]),
    );
    const { missingKeys, unexpectedKeys } = model.loadStateDict(sd, { strict: false });
    for (const t of Object.values(sd)) t.dispose();
    const notBuffer = missingKeys.filter((k) =>
      !/running_(mean|var)$|num_batches_tracked$/.test(k)
    );
    if (unexpectedKeys.length || notBuffer.length) {
      throw new Error(`resnet18 state dict mismatch: ${[...unexpectedKeys, ...notBuffer]}`);
    }
    return stepTiming(
      await oursTraining(model, () => model.forward(x), y, p, reps, {
        ...RESNET_PROTOCOL,
        check,
      }),
      RESNET_PROTOCOL.checkSteps,
      {
        device: "webgpu",
        params: count,
        build: "models.resnet18({ numClasses: 10, cifarStem: true }), NCHW, optim.SGD",
      },
    );
  } finally {
    x.dispose();
    y.dispose();
    model.dispose();
    await flushErrors();
  }
}

// ------------------------------------------------------------------------ main

const { values } = parseArgs({
  args: Deno.args,
  options: { quick: { type: "boolean" }, json: { type: "string" }, only: { type: "string" } },
});
const quick = values.quick ?? false;
const only = new Set((values.only ?? "conv,cnn,resnet").split(",").map((s) => s.trim()));
for (const o of only) {
  if (!["conv", "cnn", "resnet"].includes(o)) {
    throw new Error(`--only takes a comma list of conv, cnn, resnet; got ${values.only}`);
  }
}
const convReps = quick ? 5 : 15;
const cnnReps = quick ? 3 : 7;
const resnetReps = quick ? 1 : 3;

const start = await startComparison(gpu().label, quick);

const details: Record<string, Record<string, ConvTiming | VisionStepTiming>> = {};
const log = (m: string) => console.log(`  ${m}`);
const keepConv = (row: string, who: string) => (r: ConvTiming) => {
  (details[row] ??= {})[who] = r;
  log(
    `${who} conv2d (${r.layout}): median ${r.ms.toFixed(1)} ms (min ${r.minMs.toFixed(1)}, ` +
      `${r.runs} runs) = ${r.gflops.toPrecision(3)} GFLOP/s on ${r.device}; max rel err ` +
      r.maxRelErr.toExponential(1),
  );
};
const keepStep = (row: string, who: string) => (r: VisionStepTiming) => {
  (details[row] ??= {})[who] = r;
  log(
    `${who} ${row}: median ${r.ms.toFixed(0)} ms (min ${r.minMs.toFixed(0)}, ${r.runs} runs) ` +
      `on ${r.device}; ${r.params.toLocaleString("en-US")} parameters; ` +
      `losses [${r.losses.map((v) => v.toFixed(4))}] (first ${r.checkedSteps} checked); ${r.build}`,
  );
};
const fail = (who: string) => (cell: unknown) => {
  if (typeof cell === "string") log(`${who} failed: ${cell.split("\n")[0]}`);
};

/** Prints how far every engine's losses are from the first engine's, over every step both ran. */
const agreement = (row: string) => {
  const ran = Object.entries(details[row] ?? {}) as [string, VisionStepTiming][];
  for (const line of lossAgreement(ran)) log(line);
};

const t0 = performance.now();
const rows: Row[] = [];
if (only.has("conv")) {
  const p = convProblem();
  const name = `conv2d fwd [${p.N},${p.C},${p.H},${p.W}] ${p.C}→${p.O} ${p.k}×${p.k} pad ${p.pad}`;
  console.log(`\n${name}: ${(convFlops(p) / 1e6).toFixed(0)} MFLOP`);
  const gf = (r: ConvTiming) => r.gflops;
  const ours = await attempt(() => oursConv(convReps, p), gf, keepConv(name, "ours"));
  fail("ours")(ours);
  const tfjs = await attempt(() => tfjsConv(convReps, p), gf, keepConv(name, "tfjs"));
  fail("tfjs")(tfjs);
  const jax = await attempt(() => jaxConv(convReps, p), gf, keepConv(name, "jax-js"));
  fail("jax-js")(jax);
  rows.push({ name: `${name} (tfjs NHWC)`, unit: "GFLOP/s", ours, tfjs, jax });
}
if (only.has("cnn")) {
  const p = cnnProblem();
  const name = `3-conv CNN train step, batch ${p.batch}`;
  const ref = cpuCnnLoss(p);
  console.log(`\n${name}: CPU float64 first loss ${ref.toFixed(6)}`);
  const ms = (r: VisionStepTiming) => r.ms;
  const check = (who: string) => firstLossCheck(who, "CNN", () => ref);
  const ours = await attempt(
    () => oursCnnStep(cnnReps, check("ours"), p),
    ms,
    keepStep(name, "ours"),
  );
  fail("ours")(ours);
  const tfjs = await attempt(
    () => tfjsCnnStep(cnnReps, check("tfjs"), p),
    ms,
    keepStep(name, "tfjs"),
  );
  fail("tfjs")(tfjs);
  const jax = await attempt(
    () => jaxCnnStep(cnnReps, check("jax-js"), p),
    ms,
    keepStep(name, "jax-js"),
  );
  fail("jax-js")(jax);
  agreement(name);
  rows.push({ name, unit: "ms", ours, tfjs, jax });
}
if (only.has("resnet")) {
  const p = resnetProblem();
  const name = `ResNet-18 (CIFAR stem) train step, batch ${p.batch}`;
  console.log(`\n${name}: ${paramCount(p.params).toLocaleString("en-US")} parameters`);
  const ms = (r: VisionStepTiming) => r.ms;
  onTrainingStep((i, t, loss) =>
    log(`  step ${i}: ${(t / 1000).toFixed(1)} s, loss ${loss.toFixed(4)}`)
  );
  // No CPU reference (a float64 ResNet-18 pass takes minutes in JS): the first
  // engine that runs sets the reference for the others' first loss.
  const firstRan = () => Object.values(details[name] ?? {})[0] as VisionStepTiming | undefined;
  const check = (who: string) => firstLossCheck(who, "ResNet-18", () => firstRan()?.losses[0]);
  const ours = await attempt(
    () => oursResnetStep(resnetReps, p, check("ours")),
    ms,
    keepStep(name, "ours"),
  );
  fail("ours")(ours);
  const tfjs = await attempt(
    () => tfjsResnetStep(resnetReps, p, check("tfjs")),
    ms,
    keepStep(name, "tfjs"),
  );
  fail("tfjs")(tfjs);
  const jax = await attempt(
    () => jaxResnetStep(resnetReps, p, check("jax-js")),
    ms,
    keepStep(name, "jax-js"),
  );
  fail("jax-js")(jax);
  onTrainingStep(null);
  agreement(name);
  rows.push({ name, unit: "ms", ours, tfjs, jax });
}
await finishComparison({ start, quick, t0, timed: "runs", rows, details, json: values.json });
