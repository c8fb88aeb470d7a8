// Output that cannot be written is a failed command; a reader that went away is not. Run for
// real: stdout opened on /dev/full (every write fails with ENOSPC), and stdout a pipe whose
// reading end is closed before the command writes (EPIPE).

import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { BIN } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";

let d: TestDaemon;
let logged: number;
beforeAll(async () => {
  d = await startDaemon();
  await d.client.call("tasksAdd", { title: "one" });
  for (let i = 0; i < 3; i++) await d.client.call("jobsEnqueue", { type: "noop" });
  ({ job: { id: logged } } = await d.client.call("jobsEnqueue", { type: "chatty", payload: { lines: 3, gapMs: 1 } }));
  await waitFor(async () => (await d.client.call("jobsGet", { id: logged })).job.status === "complete", { what: "the chatty job to finish" });
});
afterAll(async () => {
  await d?.cleanup();
});

interface Run {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs the CLI with stdout on the given descriptor, or on a pipe whose reader is closed at once. */
function runWithStdout(args: string[], stdout: number | "closed-pipe"): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1", TEAMWORK_HOME: d.home };
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ["ignore", stdout === "closed-pipe" ? "pipe" : stdout, "pipe"] });
    // Closed before the child has even loaded: its first write to stdout gets EPIPE.
    if (stdout === "closed-pipe") child.stdout!.destroy();
    let stderr = "";
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`teamwork ${args.join(" ")} did not finish in time; stderr: ${stderr}`));
    }, 20_000);
    child.on("error", reject);
    child.on("close", (exitCode, signal) => {
      clearTimeout(timer);
      resolve({ exitCode, signal, stderr });
    });
  });
}

const COMMANDS = [
  ["jobs", "list"],
  ["tasks", "list", "--json"],
  ["tasks", "list"],
  ["tasks", "show", "1"],
  ["jobs", "show", "1", "--json"],
  ["daemon", "status"],
  ["completion", "bash"],
  ["--help"],
];

describe("stdout on a full device (/dev/full)", () => {
  it("every command that prints exits 1 and says why on stderr", async (ctx) => {
    if (!existsSync("/dev/full")) {
      console.warn("skipped: this system has no /dev/full");
      return ctx.skip();
    }
    for (const args of COMMANDS) {
      const fd = openSync("/dev/full", "w");
      try {
        const r = await runWithStdout(args, fd);
        expect(r.exitCode, `${args.join(" ")}: ${r.stderr}`).toBe(1);
        expect(r.stderr, args.join(" ")).toMatch(/^error: could not write output: ENOSPC/m);
        expect(r.stderr, args.join(" ")).not.toMatch(/\n\s+at /); // no stack trace
      } finally {
        closeSync(fd);
      }
    }
  });
});

describe("stdout a pipe whose reader went away", () => {
  it("ends quietly with exit 0, with no stack trace", async () => {
    for (const args of [...COMMANDS, ["jobs", "logs", String(logged), "--follow"]]) {
      const r = await runWithStdout(args, "closed-pipe");
      expect(r.signal, args.join(" ")).toBeNull();
      expect(r.exitCode, `${args.join(" ")}: ${r.stderr}`).toBe(0);
      expect(r.stderr, args.join(" ")).toBe("");
    }
  });
});
