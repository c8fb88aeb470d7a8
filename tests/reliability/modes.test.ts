// Nothing the daemon writes is readable by other users, whatever the umask and the mode of
// a home made beforehand: a home made with `mkdir` (0755) under umask 022, a daemon
// auto-started there, and work of every kind done (task, jobs, a report, an upload and
// its thumbnail, an email to the outbox, log lines). Then every file and folder under the
// home is checked.

import { spawn } from "node:child_process";
import { lstatSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import sharp from "sharp";
import { afterEach, describe, expect, it } from "vitest";
import { BIN, type CliResult } from "../helpers/cli.js";
import { killDaemonsFor } from "./support.js";

const homes: string[] = [];
afterEach(async () => {
  for (const h of homes.splice(0)) {
    await killDaemonsFor(h);
    rmSync(h, { recursive: true, force: true });
  }
});

/** The CLI run under umask 022 (the usual default), so the daemon it starts inherits it. */
function cliUnderUmask022(home: string, args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("/bin/sh", ["-c", 'umask 022 && exec "$@"', "sh", process.execPath, BIN, ...args], {
      env: { ...process.env, TEAMWORK_HOME: home, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ exitCode: code ?? 1, stdout, stderr }));
  });
}

function walk(root: string): { path: string; mode: number; dir: boolean }[] {
  const out: { path: string; mode: number; dir: boolean }[] = [];
  for (const e of readdirSync(root, { withFileTypes: true })) {
    const p = join(root, e.name);
    const st = lstatSync(p);
    out.push({ path: relative(root, p) || ".", mode: st.mode & 0o777, dir: st.isDirectory() });
    if (st.isDirectory()) out.push(...walk(p).map((x) => ({ ...x, path: join(e.name, x.path) })));
  }
  return out;
}

const openToOthers = (entries: { path: string; mode: number }[]) => entries.filter((e) => (e.mode & 0o077) !== 0).map((e) => `${e.path} ${e.mode.toString(8)}`);

describe("file modes", () => {
  it("in a home made 0755 under umask 022, everything the daemon writes is its owner's only", { timeout: 120_000 }, async () => {
    const home = join(tmpdir(), `tw-modes-${process.pid}-${Date.now()}`);
    mkdirSync(home, { mode: 0o755 }); // as `mkdir` makes it, before teamwork ever ran
    homes.push(home);
    const image = join(tmpdir(), `tw-modes-${process.pid}.png`);
    await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 40, g: 120, b: 200 } } }).png().toFile(image);

    const run = async (...args: string[]) => {
      const r = await cliUnderUmask022(home, args);
      expect(r.exitCode, `teamwork ${args.join(" ")}: ${r.stderr}`).toBe(0);
      return r;
    };
    try {
      await run("boards", "add", "web");
      const task = JSON.parse((await run("tasks", "add", "secret plans", "--board", "web", "--json")).stdout) as { id: number };
      await run("tasks", "assign", String(task.id), "ana@example.com", "--wait");
      await run("enqueue", "report", "--board", "web", "--data", '{"format":"json"}', "--watch");
      await run("upload", image, "--task", String(task.id), "--watch");
      expect((await cliUnderUmask022(home, ["tasks", "show", "9999999"])).exitCode).not.toBe(0); // a logged refusal
      // While it runs (the database's -wal and -shm exist), and after it stopped.
      expect(openToOthers(walk(home))).toEqual([]);
      expect(walk(home).some((e) => e.path === "teamwork.db-wal")).toBe(true);
      await run("daemon", "stop");
    } finally {
      rmSync(image, { force: true });
    }

    const entries = walk(home);
    // The work above really wrote each kind of file.
    // (Reports, uploads and thumbnails are kept in the database.)
    for (const kind of [/^teamwork\.db$/, /^daemon\.log$/, /^outbox\/.+\.eml$/]) {
      expect(entries.some((e) => !e.dir && kind.test(e.path)), `no file matching ${kind} in ${entries.map((e) => e.path).join(", ")}`).toBe(true);
    }
    expect(openToOthers(entries)).toEqual([]);
  });
});
