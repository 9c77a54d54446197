/**
 * Side-by-side benchmark of one BERT-mini training step (Hugging Face
 * `google/bert_uncased_L-4_H-256_A-4` with a two-way sequence classifier,
 * 11,171,074 parameters, dropout 0; batch 8, sequence length 128 with
 * padding, token types 0/1) in our engine, TensorFlow.js (WebGPU) and jax-js
 * (WebGPU), in one process on the same adapter, every engine from the same
 * weights ({@link bertProblem}). A step is forward, mean cross-entropy,
 * backward and a plain SGD update (lr 0.01, no momentum), then the loss read
 * back. Each engine's first loss must match a float64 CPU forward pass
 * ({@link cpuBertLoss}) within 1e-3 relative; afterwards the log prints how
 * far the engines' losses are from each other over every step they ran.
 *
 * ```sh
 * deno task compare:bert [--quick] [--engines ours,tfjs,jax] [--json runs/bert.json]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { keep, models, tensor } from "../mod.ts";
import { gpu } from "../engine/device.ts";
import { flushErrors } from "../engine/dispatch.ts";
import { BERT_MINI_PARAMS, type BertProblem, bertProblem, cpuBertLoss } from "./bert_ref.ts";
import { BERT_PROTOCOL, jaxBertStep, tfjsBertStep } from "./bert_peers.ts";
import { firstLossCheck, lossAgreement, paramCount } from "./peers_ref.ts";
import {
  attempt,
  finishComparison,
  type LossCheck,
  onTrainingStep,
  type Row,
  startComparison,
  stepTiming,
  type TrainingProtocol,
  type VisionStepTiming,
} from "./peers.ts";
import { oursTraining, stateTensors } from "./ours_training.ts";

/**
 * Our BERT step: `models.bertForSequenceClassification(p.config)` loaded
 * (strictly) with the problem's weights, `forward(inputIds, {tokenTypeIds,
 * attentionMask})`, `nn.crossEntropy`, `backward()`, `optim.SGD` without
 * momentum. Throws unless the model has {@link BERT_MINI_PARAMS} parameters.
 */
export async function oursBertStep(
  reps: number,
  p: BertProblem,
  check?: LossCheck,
  protocol: TrainingProtocol = BERT_PROTOCOL,
): Promise<VisionStepTiming> {
  const model = models.bertForSequenceClassification(p.config);
  const shape = [p.batch, p.seqLen];
  const ids = keep(tensor(p.inputIds, { shape, dtype: "i32" }));
  const tokenTypeIds = keep(tensor(p.tokenTypeIds, { shape, dtype: "i32" }));
  const attentionMask = keep(tensor(p.attentionMask, { shape, dtype: "i32" }));
  const y = keep(tensor(p.labels, { shape: [p.batch], dtype: "i32" }));
  try {
    const count = model.numParameters();
    if (count !== BERT_MINI_PARAMS || paramCount(p.params) !== count) {
      throw new Error(
        `the model has ${count} parameters, the problem ${paramCount(p.params)}; ` +
          `expected ${BERT_MINI_PARAMS}`,
      );
    }
    const sd = stateTensors(Object.entries(p.params).map(([k, v]) => [k, v.shape, v.data]));
    try {
      model.loadStateDict(sd);
    } finally {
      for (const t of Object.values(sd)) t.dispose();
    }
    return stepTiming(
      await oursTraining(
        model,
        () => model.forward(ids, { tokenTypeIds, attentionMask }),
        y,
        p,
        reps,
        { ...protocol, check },
      ),
      protocol.checkSteps,
      {
        device: "webgpu",
        params: count,
        build: "models.bertForSequenceClassification(BERT-mini config), optim.SGD",
      },
    );
  } finally {
    for (const t of [ids, tokenTypeIds, attentionMask, y]) t.dispose();
    model.dispose();
    await flushErrors();
  }
}

// ------------------------------------------------------------------------ main

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { quick: { type: "boolean" }, json: { type: "string" }, engines: { type: "string" } },
  });
  const quick = values.quick ?? false;
  const engines = new Set((values.engines ?? "ours,tfjs,jax").split(",").map((s) => s.trim()));
  for (const e of engines) {
    if (!["ours", "tfjs", "jax"].includes(e)) {
      throw new Error(`--engines takes a comma list of ours, tfjs, jax; got ${values.engines}`);
    }
  }
  const reps = quick ? 1 : 3;

  const start = await startComparison(gpu().label, quick);
  const log = (m: string) => console.log(`  ${m}`);
  const p = bertProblem();
  const name = `BERT-mini train step, batch ${p.batch}, seq ${p.seqLen}`;
  const t0 = performance.now();
  const ref = cpuBertLoss(p);
  console.log(
    `\n${name}: ${paramCount(p.params).toLocaleString("en-US")} parameters, lengths ` +
      `[${p.lengths}], SGD lr ${p.lr}; CPU float64 first loss ${ref.toFixed(6)} ` +
      `(${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );

  const details: Record<string, VisionStepTiming> = {};
  const keepStep = (who: string) => (r: VisionStepTiming) => {
    details[who] = r;
    log(
      `${who}: median ${r.ms.toFixed(0)} ms (min ${r.minMs.toFixed(0)}, ${r.runs} timed) on ` +
        `${r.device}; ${r.params.toLocaleString("en-US")} parameters; losses ` +
        `[${r.losses.map((v) => v.toFixed(6))}] (first within 1e-3 of the CPU's); ${r.build}`,
    );
  };
  onTrainingStep((i, t, loss) =>
    log(`  step ${i}: ${(t / 1000).toFixed(1)} s, loss ${loss.toFixed(6)}`)
  );
  const check = (who: string) => firstLossCheck(who, "BERT", () => ref, { abs: 0, rel: 1e-3 });
  const steps = {
    ours: () => oursBertStep(reps, p, check("ours")),
    tfjs: () => tfjsBertStep(reps, p, check("tfjs")),
    jax: () => jaxBertStep(reps, p, check("jax-js")),
  };
  const row: Row = { name, unit: "ms" };
  for (
    const [who, run] of Object.entries(steps) as [
      keyof typeof steps,
      () => Promise<VisionStepTiming>,
    ][]
  ) {
    if (!engines.has(who)) continue;
    const label = who === "jax" ? "jax-js" : who;
    log(`${label}:`);
    row[who] = await attempt(run, (r) => r.ms, keepStep(label));
    const cell = row[who];
    if (typeof cell === "string") log(`${label} failed: ${cell.split("\n")[0]}`);
  }
  onTrainingStep(null);
  for (const line of lossAgreement(Object.entries(details))) log(line);

  await finishComparison({
    start,
    quick,
    t0,
    timed: "steps",
    rows: [row],
    details,
    json: values.json,
    extra: { cpuFirstLoss: ref },
  });
}
