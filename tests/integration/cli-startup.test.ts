// The CLI's entry (bin/teamwork.cjs) starts the bundle from V8's code cache. A missing or
// unusable cache must never break a command: it is compiled from source and the cache is
// written again. Runs on a copy of the package's CLI files so the real build stays untouched.

import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const pkg = mkdtempSync(join(tmpdir(), "tw-cli-copy-"));
mkdirSync(join(pkg, "bin"));
mkdirSync(join(pkg, "dist", "cli"), { recursive: true });
copyFileSync(join(root, "bin", "teamwork.cjs"), join(pkg, "bin", "teamwork.cjs"));
copyFileSync(join(root, "dist", "cli", "bundle.cjs"), join(pkg, "dist", "cli", "bundle.cjs"));
copyFileSync(join(root, "package.json"), join(pkg, "package.json"));
const cache = join(pkg, "dist", "cli", "bundle.cjs.v8cache");
const home = join(pkg, "home");

afterAll(() => rmSync(pkg, { recursive: true, force: true }));

function run(...args: string[]) {
  return spawnSync(process.execPath, [join(pkg, "bin", "teamwork.cjs"), ...args], {
    env: { ...process.env, TEAMWORK_HOME: home, NO_COLOR: "1" },
    encoding: "utf8",
    timeout: 20_000,
  });
}

describe("CLI start-up from the code cache", () => {
  const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;

  it("runs without a cache and writes one", () => {
    expect(existsSync(cache)).toBe(false);
    const r = run("--version");
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe(version);
    expect(r.status).toBe(0);
    expect(statSync(cache).size).toBeGreaterThan(10_000);
  });

  it("runs from the cache it wrote, with errors and exit codes intact", () => {
    const before = readFileSync(cache);
    const r = run("jobs", "status", "1", "--no-autostart");
    expect(r.status).toBe(3);
    expect(r.stderr).toContain("daemon not running");
    const bad = run("jobs", "status", "x");
    expect(bad.status).toBe(2);
    expect(readFileSync(cache).equals(before)).toBe(true); // an accepted cache is left alone
  });

  it("replaces a cache V8 rejects and still answers", () => {
    writeFileSync(cache, Buffer.alloc(4096, 7));
    const r = run("--version");
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(version);
    const rewritten = readFileSync(cache);
    expect(rewritten.length).toBeGreaterThan(10_000);
    expect(rewritten.equals(Buffer.alloc(4096, 7))).toBe(false);
  });

  it("goes without a cache where the package is read-only", () => {
    rmSync(cache);
    const dir = join(pkg, "dist", "cli");
    chmodSync(dir, 0o555);
    try {
      const r = run("--version");
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe(version);
      if (process.getuid?.() !== 0) expect(existsSync(cache)).toBe(false); // root writes anyway
      expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    } finally {
      chmodSync(dir, 0o755);
    }
  });
});
