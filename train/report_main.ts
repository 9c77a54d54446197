/**
 * `deno task report RUN_DIR...`: writes each run's `report.html` and, for
 * two or more runs, a page comparing them (default `runs/compare.html`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { writeComparison, writeReport } from "./report.ts";

const HELP = `Usage: deno task report [--out FILE] RUN_DIR...

Writes RUN_DIR/report.html for each training run directory (config.json and
log.jsonl, as written by deno task train), and with two or more runs a page
comparing them side by side. The first run is the baseline that the others'
accuracy difference, speed-up and memory change are measured against.

Options:
  --out FILE   where to write the comparison page (default runs/compare.html;
               given with a single run, writes the page for that run too)
  --help       show this help
`;

/** Parsed command line. */
export interface ReportArgs {
  /** Run directories, the baseline first. */
  runs: string[];
  /** Comparison page path, or `null` for none. */
  out: string | null;
}

class UsageError extends Error {}

/**
 * Parses the command line; `null` for `--help`. Throws a usage error with a
 * clear message for unknown flags or no run directory.
 *
 * @example
 * ```ts
 * import { parseReportArgs } from "./report_main.ts";
 * console.log(parseReportArgs(["runs/a", "runs/b"])); // { runs: [ "runs/a", "runs/b" ], out: "runs/compare.html" }
 * ```
 */
export function parseReportArgs(argv: string[]): ReportArgs | null {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: { out: { type: "string" }, help: { type: "boolean" } },
    });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify.*$/s, ""));
  }
  if (parsed.values.help) return null;
  const runs = parsed.positionals;
  if (runs.length === 0) throw new UsageError("no run directory given");
  const out = parsed.values.out ?? (runs.length > 1 ? "runs/compare.html" : null);
  if (out === "") throw new UsageError("--out: expected a file name");
  return { runs, out };
}

async function main(argv: string[]): Promise<number> {
  let args: ReportArgs | null;
  try {
    args = parseReportArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}\n\n${HELP}`);
      return 2;
    }
    throw e;
  }
  if (!args) {
    console.log(HELP);
    return 0;
  }
  for (const dir of args.runs) console.log(`wrote ${await writeReport(dir)}`);
  if (args.out) console.log(`wrote ${await writeComparison(args.runs, args.out)}`);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exitCode = await main(Deno.args);
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : e}`);
    Deno.exitCode = 1;
  }
}
