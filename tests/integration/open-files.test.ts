// The daemon's limit of open files (issue 18: "raise the soft limit to the hard limit at
// start"). A daemon started with a low soft limit runs with soft = hard, says so in its log
// and in `daemon status`; where the soft limit is still low after Node's own start-up raise,
// prlimit raises it; without prlimit the process carries on with what it has and says why.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, rmSync } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { Client } from "../../src/client/client.js";
import { resolvePaths } from "../../src/config/paths.js";
import { DAEMON, FIXTURE_JOBS, tempHome, writeConfig } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";

const CLI = fileURLToPath(new URL("../../bin/teamwork.cjs", import.meta.url));
const DESCRIPTORS = fileURLToPath(new URL("../../dist/daemon/descriptors.js", import.meta.url));
/** prlimit (util-linux) on PATH, by its full path; the tests are skipped without it. */
const PRLIMIT = (process.env.PATH ?? "")
  .split(delimiter)
  .filter((dir) => dir !== "")
  .map((dir) => join(dir, "prlimit"))
  .find((p) => existsSync(p));

/** The open-files line of /proc/<pid>/limits, read here independently of the daemon's parser. */
function limitsOf(pid: number | "self"): { soft: string; hard: string } {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, "utf8"))!;
  return { soft: m[1]!, hard: m[2]! };
}

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe.skipIf(!PRLIMIT || !existsSync("/proc/self/limits"))("open files", () => {
  it("a daemon started with a soft limit of 256 runs with soft = hard, and says so", async () => {
    const home = tempHome("tw-nofile-");
    writeConfig(home, { jobModules: [FIXTURE_JOBS] });
    const fd = openSync(join(home, "daemon.log"), "a");
    const child: ChildProcess = spawn(PRLIMIT!, ["--nofile=256:4096", process.execPath, DAEMON, "--home", home], { stdio: ["ignore", fd, fd] });
    closeSync(fd);
    const exited = new Promise((r) => child.on("exit", r));
    const client = new Client({ socket: resolvePaths({ home }).socket, keepAlive: false, timeoutMs: 10_000 });
    cleanups.push(async () => {
      child.kill("SIGTERM");
      await exited;
      rmSync(home, { recursive: true, force: true });
    });
    await waitFor(async () => (await client.call("health", {}).catch(() => null))?.pid === child.pid, { timeoutMs: 15_000, what: "daemon health" });

    expect(limitsOf(child.pid!)).toEqual({ soft: "4096", hard: "4096" });
    const status = await client.call("daemonStatus", {});
    expect(status.openFiles).toMatchObject({ soft: 4096, hard: 4096, note: null });
    expect(readFileSync(join(home, "daemon.log"), "utf8")).toMatch(/daemon\.open_files limit="4096 \(soft = hard\)"/);
    const cli = spawnSync(process.execPath, [CLI, "--home", home, "daemon", "status"], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
    expect(cli.stdout).toMatch(/open files:\s+4096 \(soft = hard\)/);
  }, 30_000);

  // Node raises the soft limit itself as it starts, so the daemon's own step is for what
  // comes after: a process whose limit was lowered once it ran (here, by itself).
  const lowerThenRaise = (env: NodeJS.ProcessEnv) => {
    const script = `
      import { spawnSync } from "node:child_process";
      import { raiseOpenFileLimit } from ${JSON.stringify(DESCRIPTORS)};
      spawnSync(${JSON.stringify(PRLIMIT)}, ["--pid=" + process.pid, "--nofile=256:4096"]);
      console.log(JSON.stringify(raiseOpenFileLimit()));`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", env: { ...process.env, ...env } });
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as { before: unknown; after: unknown; raised: boolean; note?: string };
  };

  it("a soft limit lowered after the start is raised to the hard one through prlimit", () => {
    const r = lowerThenRaise({});
    expect(r).toEqual({ before: { soft: 256, hard: 4096 }, after: { soft: 4096, hard: 4096 }, raised: true });
  });

  it("without prlimit on PATH the limit stays, and the report says why", () => {
    const r = lowerThenRaise({ PATH: "/nonexistent" });
    expect(r.raised).toBe(false);
    expect(r.after).toEqual({ soft: 256, hard: 4096 });
    expect(r.note).toMatch(/soft limit 256 of hard 4096 open files: prlimit \(util-linux\) is not on PATH/);
  });
});
