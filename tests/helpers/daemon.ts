// A real daemon process on a fresh temp home, for integration tests.

import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "../../src/client/client.js";
import { resolvePaths, type Paths } from "../../src/config/paths.js";
import { waitFor } from "./wait.js";

export const DAEMON = fileURLToPath(new URL("../../dist/daemon/main.js", import.meta.url));
export const FIXTURE_JOBS = fileURLToPath(new URL("../fixtures/jobs/fixtures.mjs", import.meta.url));

export interface TestDaemon {
  home: string;
  paths: Paths;
  client: Client;
  pid: number;
  process: ChildProcess;
  /** Resolves with the exit code when the current process ends. */
  exited: Promise<number | null>;
  /** SIGTERM and wait for exit. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit: a crash. */
  kill9(): Promise<void>;
  /** Starts the daemon again on the same home. */
  restart(extraArgs?: string[]): Promise<void>;
  log(): string;
  /** Stops the daemon if running and removes the home. */
  cleanup(): Promise<void>;
}

export function tempHome(prefix = "tw-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeConfig(home: string, config: Record<string, unknown>): void {
  writeFileSync(join(home, "config.json"), JSON.stringify(config, null, 2));
}

export async function startDaemon(opts: { home?: string; config?: Record<string, unknown>; args?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<TestDaemon> {
  const home = opts.home ?? tempHome();
  if (opts.config !== null) writeConfig(home, { jobModules: [FIXTURE_JOBS], ...opts.config });
  const paths = resolvePaths({ home });
  const client = new Client({ socket: paths.socket, keepAlive: false, timeoutMs: 10_000 });
  let child!: ChildProcess;
  let exited!: Promise<number | null>;

  const launch = async (args: string[] = opts.args ?? []) => {
    const fd = openSync(join(home, "daemon.log"), "a");
    child = spawn(process.execPath, [DAEMON, "--home", home, ...args], { stdio: ["ignore", fd, fd], env: { ...process.env, ...opts.env } });
    closeSync(fd);
    const c = child;
    exited = new Promise((r) => c.on("exit", (code) => r(code)));
    let code: number | null | undefined;
    void exited.then((x) => (code = x));
    await waitFor(
      async () => {
        if (code !== undefined) throw new Error(`daemon exited with ${code}: ${readFileSync(join(home, "daemon.log"), "utf8")}`);
        return (await client.call("health", {})).pid === c.pid;
      },
      { timeoutMs: 15_000, what: "daemon health" },
    ).catch((err: Error) => {
      if (code !== undefined) throw new Error(`daemon exited with code ${code}:\n${readFileSync(join(home, "daemon.log"), "utf8")}`);
      throw err;
    });
  };
  await launch();

  const d: TestDaemon = {
    home,
    paths,
    client,
    get pid() {
      return child.pid!;
    },
    get process() {
      return child;
    },
    get exited() {
      return exited;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      return exited;
    },
    async kill9() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await exited;
    },
    restart: (args) => launch(args),
    log: () => readFileSync(join(home, "daemon.log"), "utf8"),
    async cleanup() {
      await d.stop();
      client.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
  return d;
}
