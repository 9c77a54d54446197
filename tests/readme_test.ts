/**
 * The README's library example must run as written (with `./mod.ts` in place
 * of the JSR specifier), and the module doc's example with it.
 */
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url).pathname;

async function runSnippet(code: string): Promise<string> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const out = new TextDecoder().decode(r.stdout);
  assert.equal(r.code, 0, `snippet failed:\n${code}\n${new TextDecoder().decode(r.stderr)}`);
  return out;
}

Deno.test("README's library example runs as written and prints a loss and memory stats", async () => {
  const readme = await Deno.readTextFile(`${root}README.md`);
  const block = readme.match(/## Use it as a library\s+```ts\n([\s\S]*?)```/);
  assert.ok(block, "README has a 'Use it as a library' TypeScript block");
  const code = block[1].replace(/"jsr:@frost\/frost"/, '"./mod.ts"');
  const out = await runSnippet(code);
  const loss = Number(out.trim().split(/\s/)[0]);
  // Ten balanced classes from random logits: the loss is near ln 10 ≈ 2.30.
  assert.ok(loss > 1.5 && loss < 3.5, `loss ${loss} from:\n${out}`);
  assert.match(out, /liveBytes/);
  assert.match(out, /peakBytes/);
});
