// `teamwork daemon install --print` (issue 17, item 9) with a home whose path holds what
// systemd would otherwise expand or split: the printed unit runs the daemon on that home.

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { analyzeWorks, systemdArgv, unitValues, verify } from "../helpers/systemd.js";
import { waitFor } from "../helpers/wait.js";
import { resolvePaths } from "../../src/config/paths.js";
import { Client } from "../../src/client/client.js";
import { DAEMON_EXIT } from "../../src/protocol/daemon-exit.js";

const dir = mkdtempSync(join(tmpdir(), "tw-install-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hasAnalyze = analyzeWorks(dir);

describe("daemon install --print", () => {
  it("prints a unit that systemd reads back as --home <that exact path>, and that verifies", async () => {
    const home = join(dir, `cli %h $HOME "q" back\\slash`);
    mkdirSync(home, { recursive: true });
    const printed = await runCli(["daemon", "install", "--print"], { home });
    expect(printed.exitCode, printed.stderr).toBe(0);
    expect(systemdArgv(unitValues(printed.stdout, "ExecStart")[0]!).slice(-2)).toEqual(["--home", home]);
    expect(unitValues(printed.stdout, "RestartPreventExitStatus")).toHaveLength(1);
    if (hasAnalyze) {
      const file = join(dir, "tw-cli.service");
      writeFileSync(file, printed.stdout);
      expect(verify(file)).toBe("");
    }
  });
});

describe("the daemon as the unit runs it", () => {
  /** Starts ExecStart's argv, as systemd would (stdout and stderr to the journal: here, a pipe). */
  function run(argv: string[]): { child: ChildProcess; stderr: () => string; exited: Promise<number | null> } {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stdout!.on("data", (c: Buffer) => (err += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
    return { child, stderr: () => err, exited: new Promise((r) => child.on("exit", (code) => r(code))) };
  }

  it("logs to stdout/stderr (the journal), not to daemon.log, and exits with a no-restart code when a daemon already runs", async () => {
    const home = join(dir, `run %h $HOME "q" sp`);
    mkdirSync(home, { recursive: true });
    const printed = await runCli(["daemon", "install", "--print"], { home });
    const argv = systemdArgv(unitValues(printed.stdout, "ExecStart")[0]!);
    const noRestart = unitValues(printed.stdout, "RestartPreventExitStatus")[0]!.split(" ").map(Number);
    const first = run(argv);
    try {
      await waitFor(() => first.stderr().includes("daemon.started"), { timeoutMs: 15_000, what: "daemon.started on stderr" });
      // It serves that exact home.
      const client = new Client({ socket: resolvePaths({ home }).socket, keepAlive: false, timeoutMs: 10_000 });
      expect((await client.call("health", {})).pid).toBe(first.child.pid);
      client.close();
      expect(existsSync(resolvePaths({ home }).logFile)).toBe(false);

      const second = run(argv);
      const code = await second.exited;
      expect(code).toBe(DAEMON_EXIT.alreadyRunning);
      expect(noRestart).toContain(code);
      expect(second.stderr()).toMatch(/daemon\.already_running/);
    } finally {
      first.child.kill("SIGTERM");
    }
    expect(await first.exited).toBe(0);

    writeFileSync(join(home, "config.json"), JSON.stringify({ concurency: 2 }));
    const bad = run(argv);
    const code = await bad.exited;
    expect(code).toBe(DAEMON_EXIT.config);
    expect(noRestart).toContain(code);
    expect(bad.stderr()).toMatch(/config_invalid.*concurency/);
  });
});
