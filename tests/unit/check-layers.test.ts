// scripts/check-layers.mjs: `npm run check` fails when a module imports across the layers
// (STYLE.md, "Dependencies may only point downward"), or a driver outside its store. Run on
// temporary trees with known imports, and on the real tree.

import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const SCRIPT = join(import.meta.dirname, "../../scripts/check-layers.mjs");
const ROOT = join(import.meta.dirname, "../..");

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A project tree with these files (paths relative to its root). */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "tw-layers-"));
  dirs.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

function check(root: string): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, "--root", root], { encoding: "utf8" });
  return { code: r.status, out: r.stdout + r.stderr };
}

/** The violations the script reports, as "file:line: importer imports what". */
const violations = (out: string) => out.split("\n").filter((l) => /^src\/\S+:\d+: /.test(l));

const CLEAN: Record<string, string> = {
  "src/lib/errors.ts": `export class E extends Error {}\n`,
  "src/protocol/types.ts": `import { E } from "../lib/errors.js";\nexport type T = E;\n`,
  "src/store/types.ts": `import type { T } from "../protocol/types.js";\nexport interface Store { t: T }\n`,
  "src/store/index.ts": `export async function openStore() {\n  return import("./sqlite/index.js");\n}\n`,
  "src/store/sqlite/index.ts": `import Database from "better-sqlite3";\nimport type { Store } from "../types.js";\nexport const x: Store | null = null;\nvoid Database;\n`,
  "src/queue/engine.ts": `import type { Store } from "../store/types.js";\nimport { readFileSync } from "node:fs";\nexport type S = Store;\nvoid readFileSync;\n`,
  "src/jobs/report.ts": `// A comment that names better-sqlite3 and "../store/sqlite/index.js" is not an import.\nimport { E } from "../lib/errors.js";\nexport const e = E;\nconst url = "http://example.com/x"; void url;\n`,
};

describe("check-layers", () => {
  it("passes a tree whose imports point downward, with the driver only in its store", () => {
    const r = check(tree(CLEAN));
    expect(violations(r.out)).toEqual([]);
    expect(r.code, r.out).toBe(0);
  });

  it("fails on a driver or the SQLite store imported from jobs, queue and routes, naming file and line", () => {
    const root = tree({
      ...CLEAN,
      "src/jobs/notify.ts": `import { E } from "../lib/errors.js";\n\nimport Database from "better-sqlite3";\nexport const n = [E, Database];\n`,
      "src/queue/engine.ts": `import {\n  type Store,\n} from "../store/types.js";\nimport {\n  openSqliteStore,\n} from "../store/sqlite/index.js";\nexport type S = Store;\nvoid openSqliteStore;\n`,
      "src/daemon/routes/tasks.ts": `export async function f() {\n  const pg = await import("pg");\n  return pg;\n}\n`,
      "src/board/board.ts": `export * from "../store/sqlite/index.js";\n`,
      "src/protocol/bad.ts": `import type { Store } from "../store/types.js";\nexport type X = Store;\n`,
    });
    const r = check(root);
    expect(r.code).not.toBe(0);
    expect(violations(r.out).map((l) => l.split(": ")[0])).toEqual([
      "src/board/board.ts:1",
      "src/daemon/routes/tasks.ts:2",
      "src/jobs/notify.ts:3",
      "src/protocol/bad.ts:1",
      "src/queue/engine.ts:6",
    ]);
    expect(r.out).toMatch(/src\/jobs\/notify\.ts:3: jobs imports the driver better-sqlite3/);
    expect(r.out).toMatch(/src\/queue\/engine\.ts:6: queue imports store\/sqlite \(\.\.\/store\/sqlite\/index\.js\)/);
  });

  it("fails on a folder no rule names, and on SQLite's result codes outside store/sqlite", () => {
    const root = tree({
      ...CLEAN,
      "src/newthing/x.ts": `export const x = 1;\n`,
      "src/daemon/server.ts": `export const busy = (code: string) =>\n  code === "SQLITE_BUSY";\n`,
    });
    const r = check(root);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/src\/newthing\/x\.ts:1: no rule for src\/newthing\//);
    expect(r.out).toMatch(/src\/daemon\/server\.ts:2: .*SQLITE_/);
  });

  it("on the real tree: clean (src/jobs reaches the board through ctx.board, not SQLite)", () => {
    const r = check(ROOT);
    expect(violations(r.out)).toEqual([]);
    expect(r.code).toBe(0);
  });

  it("a job that imports the SQLite store or its driver is refused", () => {
    const root = tree({
      "src/jobs/x.ts": `import Database from "better-sqlite3";\nimport { openSqliteBoardPort } from "../store/sqlite/board-port.js";\nimport type { BoardPort } from "../store/board-port.js";\n`,
      "src/store/sqlite/board-port.ts": `export const openSqliteBoardPort = 1;\n`,
      "src/store/board-port.ts": `export type BoardPort = 1;\n`,
    });
    const r = check(root);
    expect(r.code).toBe(1);
    expect(violations(r.out).map((l) => l.replace(/;.*$/, ""))).toEqual([
      "src/jobs/x.ts:1: jobs imports the driver better-sqlite3",
      "src/jobs/x.ts:2: jobs imports store/sqlite (../store/sqlite/board-port.js)",
    ]);
  });
});
