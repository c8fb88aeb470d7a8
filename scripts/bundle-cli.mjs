// Bundles the compiled CLI into one CommonJS file (dist/cli/bundle.cjs): Node then reads and
// compiles one file instead of ~50 modules, and bin/teamwork.cjs can start it from V8's code
// cache, which this script writes by running the CLI once. Daemon-only and heavy packages stay
// external; the CLI never loads them (ora is imported on demand for --watch).
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";

await build({
  entryPoints: ["dist/cli/main.js"],
  outfile: "dist/cli/bundle.cjs",
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  external: ["better-sqlite3", "sharp", "nodemailer", "ora", "croner"],
  define: { "import.meta.url": "__importMetaUrl" },
  banner: { js: "const __importMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: "warning",
});
rmSync("dist/cli/bundle.cjs.v8cache", { force: true });
execFileSync(process.execPath, ["bin/teamwork.cjs", "--version"], { stdio: "ignore" });
