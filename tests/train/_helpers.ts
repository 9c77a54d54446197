/** Helpers for the training command-line tests: a toy IDX dataset and a child-process runner. */
import { gzipSync } from "node:zlib";

const root = new URL("../../", import.meta.url).pathname;

/** Runs `train/main.ts` with `args` in a child process. */
export async function train(args: string[], env: Record<string, string> = {}) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "train/main.ts", ...args],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    env,
    signal: AbortSignal.timeout(180_000),
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

function idx(magicType: number, dims: number[], data: Uint8Array): Uint8Array {
  const head = new Uint8Array(4 + 4 * dims.length);
  const v = new DataView(head.buffer);
  v.setUint8(2, magicType);
  v.setUint8(3, dims.length);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  const out = new Uint8Array(head.length + data.length);
  out.set(head);
  out.set(data, head.length);
  return out;
}

/** A learnable toy set in the IDX format: class c lights up row band c of the image. */
export async function writeToyDataset(dir: string, nTrain: number, nTest: number) {
  const make = (n: number, seed: number) => {
    const images = new Uint8Array(n * 784);
    const labels = new Uint8Array(n);
    let s = seed;
    for (let i = 0; i < n; i++) {
      const c = i % 10;
      labels[i] = c;
      for (let p = 0; p < 784; p++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        const row = Math.floor(p / 28);
        const on = row >= 2 * c + 4 && row < 2 * c + 7;
        images[i * 784 + p] = on ? 200 + (s >>> 27) : s >>> 26;
      }
    }
    return { images, labels };
  };
  const tr = make(nTrain, 1);
  const te = make(nTest, 2);
  await Deno.writeFile(
    `${dir}/train-images-idx3-ubyte.gz`,
    gzipSync(idx(8, [nTrain, 28, 28], tr.images)),
  );
  await Deno.writeFile(`${dir}/train-labels-idx1-ubyte`, idx(8, [nTrain], tr.labels));
  await Deno.writeFile(`${dir}/t10k-images-idx3-ubyte`, idx(8, [nTest, 28, 28], te.images));
  await Deno.writeFile(`${dir}/t10k-labels-idx1-ubyte.gz`, gzipSync(idx(8, [nTest], te.labels)));
}

/** Step records of a run's log.jsonl: `[step, loss]` pairs in order. */
export async function stepLosses(runDir: string): Promise<[number, number][]> {
  const text = await Deno.readTextFile(`${runDir}/log.jsonl`);
  return text.split("\n").filter((l) => l).map((l) => JSON.parse(l))
    .filter((r) => r.type === "step").map((r) => [r.step, r.loss]);
}

/**
 * Starts a training run and SIGKILLs it once `when()` says so (polled every
 * 20 ms); resolves when the process is gone.
 */
export async function trainAndKill(
  args: string[],
  when: () => Promise<boolean>,
  env: Record<string, string> = {},
): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "train/main.ts", ...args],
    cwd: root,
    stdout: "null",
    stderr: "null",
    env,
  }).spawn();
  const deadline = Date.now() + 120_000;
  try {
    while (Date.now() < deadline) {
      if (await when().catch(() => false)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}

/**
 * A learnable toy task in GLUE's CoLA format (no header; source, label,
 * original label, sentence): label 1 sentences mention a colour, label 0 ones
 * an animal, among shared filler words.
 */
export async function writeToyCola(dir: string, nTrain: number, nTest: number) {
  const colours = ["red", "blue", "green", "yellow", "purple", "orange"];
  const animals = ["dog", "cat", "horse", "mouse", "bird", "fish"];
  const filler = ["the", "a", "is", "was", "very", "quite", "here", "there", "today", "again"];
  let s = 7;
  const pick = <T>(xs: T[]) => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return xs[s % xs.length];
  };
  const rows = (n: number) =>
    Array.from({ length: n }, (_, i) => {
      const label = i % 2;
      const words = [pick(filler), pick(filler), pick(label ? colours : animals), pick(filler)];
      return `toy\t${label}\t${label ? "" : "*"}\t${words.join(" ")} .`;
    }).join("\n") + "\n";
  await Deno.writeTextFile(`${dir}/train.tsv`, rows(nTrain));
  await Deno.writeTextFile(`${dir}/dev.tsv`, rows(nTest));
}
