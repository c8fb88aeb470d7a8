// Loads one of the tests' TypeScript helpers for the bench, which runs without a TypeScript
// step: esbuild (a dev dependency of the project) strips the types, and the module is imported
// from memory. The helpers it loads import only Node's own modules. One implementation, no copy
// to keep in step.
import { readFileSync } from "node:fs";
import { transform } from "esbuild";

/** The module at `path` (relative to the repository's root). */
export async function loadTs(path) {
  const file = new URL(`../../${path}`, import.meta.url);
  const { code } = await transform(readFileSync(file, "utf8"), { loader: "ts", format: "esm", sourcefile: file.pathname });
  return import(`data:text/javascript;base64,${Buffer.from(code).toString("base64")}`);
}
