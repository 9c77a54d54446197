/**
 * `deno task frz:compare --quick`: every method of both tiny workloads runs
 * in its own process, results land in compare.json, the report and the
 * table, and a second invocation skips every finished run.
 */
import assert from "node:assert/strict";
import { writeToyDataset } from "../train/_helpers.ts";
import { type CompareRun, markdownTable, METHODS } from "../../train/frz_compare.ts";

const root = new URL("../../", import.meta.url).pathname;

async function compare(args: string[]) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "train/frz_compare.ts", "--quick", ...args],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(600_000),
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

Deno.test("frz:compare --quick runs every method, writes compare.json and the report, and resumes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeToyDataset(dir, 1024, 200);
    const args = ["--out", `${dir}/out`, "--runs", `${dir}/runs`, "--data", dir];
    const a = await compare(args);
    assert.equal(a.code, 0, a.stderr + a.stdout);
    const json = JSON.parse(await Deno.readTextFile(`${dir}/out/compare.json`)) as {
      runs: CompareRun[];
    };
    const methods = Object.keys(METHODS);
    assert.equal(json.runs.length, 2 * methods.length);
    for (const r of json.runs) {
      for (const k of ["workload", "method", "seed", "accuracy", "seconds", "flops", "peakBytes"]) {
        assert.ok(k in r, `${k} in ${JSON.stringify(r)}`);
      }
      assert.ok(r.accuracy > 0 && r.accuracy <= 1 && r.seconds > 0 && r.flops > 0);
      assert.ok(Array.isArray(r.frozen));
    }
    // Freezing adds at most its own bookkeeping (AutoFreeze sums gradients: under 2% here).
    for (const w of ["quick-mlp3", "quick-berttiny"]) {
      const none = json.runs.find((r) => r.workload === w && r.method === "none")!;
      assert.deepEqual(none.frozen, []);
      for (const r of json.runs.filter((r) => r.workload === w)) {
        assert.ok(r.flops <= none.flops * 1.02, `${w} ${r.method}: ${r.flops} > ${none.flops}`);
      }
    }
    // Linear freezing always freezes its units in the second half of the run.
    const lin = json.runs.find((r) => r.workload === "quick-mlp3" && r.method === "linear")!;
    assert.deepEqual(lin.frozen.map((f) => f.unit), ["0", "2", "4"]);
    const html = await Deno.readTextFile(`${dir}/out/report.html`);
    assert.match(html, /SmartFRZ comparison/);
    assert.match(html, /quick-berttiny/);
    const table = await Deno.readTextFile(`${dir}/out/table.md`);
    assert.equal(table.trim(), markdownTable(json.runs.map((r) => ({ ...r, curve: [] }))));
    // A second invocation finds every run done and trains nothing.
    const b = await compare(args);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(b.stdout.match(/: done before/g)?.length, 2 * methods.length);
    assert.equal(b.stdout.match(/, rerun/g), null);
    // A run measured with another engine is set aside and measured again.
    const one = `${dir}/out/results/quick-mlp3/none-s1.json`;
    const old = JSON.parse(await Deno.readTextFile(one)) as CompareRun;
    assert.match(old.engine ?? "", /^[0-9a-f]{12}$/);
    await Deno.writeTextFile(one, JSON.stringify({ ...old, engine: "0123456789ab" }));
    const c = await compare([...args, "--only", "quick-mlp3", "--methods", "none"]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(
      c.stdout,
      /measured with engine 0123456789ab: moved to .*superseded\/0123456789ab/,
    );
    const again = JSON.parse(await Deno.readTextFile(one)) as CompareRun;
    assert.equal(again.engine, old.engine);
    await Deno.stat(`${dir}/out/superseded/0123456789ab/quick-mlp3/none-s1.json`);
    // A finished run directory without a result and without its engine's name is trained
    // afresh, not read back (it may come from another engine).
    const runDir = `${dir}/runs/quick-mlp3/none-s1`;
    await Deno.remove(one);
    await Deno.remove(`${runDir}/ENGINE`);
    await Deno.writeTextFile(`${runDir}/marker`, "");
    const d = await compare([...args, "--only", "quick-mlp3", "--methods", "none"]);
    assert.equal(d.code, 0, d.stderr);
    await assert.rejects(() => Deno.stat(`${runDir}/marker`), Deno.errors.NotFound);
    assert.equal((await Deno.readTextFile(`${runDir}/ENGINE`)).trim(), old.engine);
    await Deno.stat(one);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
