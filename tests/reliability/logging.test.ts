// The daemon's log under what logrotate and an unlucky user do to it: the file deleted,
// moved away (logrotate without copytruncate), and rotated many times while requests run.
// Every request is answered and lines keep landing in the current daemon.log. A fatal
// error of a detached daemon reaches its crash file however often the log rotated.

import { existsSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Client } from "../../src/client/client.js";
import { TeamworkError } from "../../src/lib/errors.js";
import { resolvePaths } from "../../src/config/paths.js";
import { runCli } from "../helpers/cli.js";
import { tempHome, writeConfig } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";
import { killDaemonsFor, spawnDaemon } from "./support.js";

const homes: string[] = [];
afterEach(async () => {
  for (const h of homes.splice(0)) {
    await killDaemonsFor(h);
    rmSync(h, { recursive: true, force: true });
  }
});

/** A request that the daemon answers 404 and logs (request.rejected, with the id): one log line each. */
async function loggedRequest(client: Client, id: number): Promise<"answered" | string> {
  try {
    await client.call("tasksGet", { id });
    return "answered with a task?";
  } catch (err) {
    return err instanceof TeamworkError && err.code === "not_found" ? "answered" : `no answer: ${(err as Error).message}`;
  }
}

describe("daemon.log", () => {
  it("deleted, moved and rotated many times while requests run: every request is answered, lines land in the current file", { timeout: 120_000 }, async () => {
    const home = tempHome("tw-log-");
    homes.push(home);
    writeConfig(home, { logMaxBytes: 1024 });
    const logFile = join(home, "daemon.log");
    const d = spawnDaemon(home, { args: ["--log-file", logFile], logFile: join(home, "daemon.out") });
    // Fresh connections: a descriptor closed twice would be one of them.
    const client = new Client({ socket: resolvePaths({ home }).socket, keepAlive: false, timeoutMs: 10_000 });
    try {
      await waitFor(async () => (await client.call("health", {})).pid === d.child.pid, { timeoutMs: 20_000, what: "the daemon" });
      let id = 9_000_000;
      const outcomes: string[] = [];
      const batch = async () => outcomes.push(...(await Promise.all(Array.from({ length: 4 }, () => loggedRequest(client, ++id)))));
      /** Requests until one of them is logged in the current daemon.log (the log noticed the change). */
      const untilLoggedInCurrentFile = async (what: string) => {
        await waitFor(
          async () => {
            await batch();
            return existsSync(logFile) && readFileSync(logFile, "utf8").includes(`task ${id} not found`);
          },
          { timeoutMs: 20_000, intervalMs: 50, what },
        );
      };

      for (let i = 0; i < 3; i++) await batch(); // rotates: about 7 lines fill 1 KiB
      unlinkSync(logFile);
      await untilLoggedInCurrentFile("lines in a new daemon.log after it was deleted");
      for (let i = 0; i < 3; i++) await batch();
      renameSync(logFile, join(home, "daemon.log.moved"));
      await untilLoggedInCurrentFile("lines in a new daemon.log after it was moved");
      for (let i = 0; i < 3; i++) {
        unlinkSync(logFile);
        for (let j = 0; j < 3; j++) await batch();
      }
      await untilLoggedInCurrentFile("lines in daemon.log after many rotations");

      expect(outcomes.length).toBeGreaterThanOrEqual(40);
      expect(outcomes.filter((o) => o !== "answered")).toEqual([]);
      expect(d.child.exitCode).toBeNull();
      expect(existsSync(`${logFile}.1`)).toBe(true); // it did rotate
    } finally {
      client.close();
    }
  });

  it("a fatal error of a detached daemon reaches the crash file, after many rotations", { timeout: 120_000 }, async () => {
    const home = tempHome("tw-log-");
    homes.push(home);
    writeConfig(home, { logMaxBytes: 1024 });
    // A real uncaught exception in the daemon, thrown on a signal by a module preloaded
    // through NODE_OPTIONS (only into the daemon process): nothing in the product knows it.
    const preload = join(home, "fatal-on-usr2.cjs");
    writeFileSync(
      preload,
      `if (/daemon\\/main\\.js$/.test(process.argv[1] || "")) process.on("SIGUSR2", () => setImmediate(() => { throw new Error("forced fatal error 7f3a") }));\n`,
    );
    const env = { NODE_OPTIONS: `--require ${preload}` };
    const started = await runCli(["tasks", "list"], { home, env }); // auto-starts the daemon as users get it
    expect(started.exitCode, started.stderr).toBe(0);
    const client = new Client({ socket: resolvePaths({ home }).socket, keepAlive: false, timeoutMs: 10_000 });
    try {
      const pid = (await client.call("health", {})).pid;
      for (let id = 1_000; id < 1_060; id++) expect(await loggedRequest(client, id)).toBe("answered");
      expect(existsSync(join(home, "daemon.log.3"))).toBe(true); // rotated at least three times

      process.kill(pid, "SIGUSR2");
      await waitFor(async () => !(await client.call("health", {}).then(() => true, () => false)), { timeoutMs: 20_000, what: "the daemon to die" });
      await waitFor(() => existsSync(join(home, "daemon.crash.log")) && readFileSync(join(home, "daemon.crash.log"), "utf8").includes("forced fatal error 7f3a"), {
        timeoutMs: 10_000,
        what: "the fatal error in daemon.crash.log",
      });
    } finally {
      client.close();
    }
  });
});
