// One daemon per home, whoever starts it and whatever the pid file holds: many real daemon
// processes started at once on one home, round after round, with no pid file, a stale one
// (a daemon killed by -9), an empty one and one cut short. Exactly one stays; the others exit
// 10 ("already running"); `daemon stop` leaves none, and `daemon status` then says so.

import { spawn } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { resolvePaths } from "../../src/config/paths.js";
import { runCli, runJson } from "../helpers/cli.js";
import { tempHome } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";
import { daemonsFor, killDaemonsFor, spawnDaemon } from "./support.js";
import { Client } from "../../src/client/client.js";

const STARTERS = 10;
const ALREADY_RUNNING = 10;

const homes: string[] = [];
afterEach(async () => {
  for (const h of homes.splice(0)) {
    await killDaemonsFor(h);
    rmSync(h, { recursive: true, force: true });
  }
});

function newHome(): string {
  const h = tempHome("tw-lock-");
  homes.push(h);
  return h;
}

async function healthPid(home: string): Promise<number | null> {
  const client = new Client({ socket: resolvePaths({ home }).socket, timeoutMs: 3000 });
  try {
    return (await client.call("health", {})).pid;
  } catch {
    return null;
  } finally {
    client.close();
  }
}

/**
 * Starts STARTERS daemons at once on the home. Returns the pid of the one left running
 * after every other one has exited, and the others' exit codes.
 */
async function race(home: string): Promise<{ winner: number; codes: (number | null)[] }> {
  const kids = Array.from({ length: STARTERS }, () => spawnDaemon(home));
  const codes = new Map<number, number | null>();
  kids.forEach((k) => void k.exited.then((e) => codes.set(k.child.pid!, e.code)));
  // Losers exit as soon as they see the lock taken. With a lock that lets several win, more
  // than one stays: the wait ends at its bound and the count below says how many.
  await waitFor(() => codes.size >= STARTERS - 1, { timeoutMs: 30_000, what: "every starter but one to exit" }).catch(() => {});
  const running = kids.map((k) => k.child.pid!).filter((pid) => !codes.has(pid));
  expect(running, `daemons left running on one home: ${running.join(", ")}`).toHaveLength(1);
  const winner = running[0]!;
  await waitFor(async () => (await healthPid(home)) === winner, { timeoutMs: 20_000, what: "the winner to answer" });
  expect(daemonsFor(home)).toEqual([winner]);
  return { winner, codes: [...codes.values()] };
}

async function stopAndCheck(home: string): Promise<void> {
  const stop = await runCli(["daemon", "stop"], { home });
  expect(stop.exitCode, stop.stderr).toBe(0);
  expect(daemonsFor(home)).toEqual([]);
  const status = await runJson<{ running: boolean }>(["daemon", "status"], { home });
  expect(status.exitCode).toBe(3);
  expect(status.json.running).toBe(false);
}

async function roundWith(home: string, prepare: () => void | Promise<void>): Promise<void> {
  await prepare();
  const { codes } = await race(home);
  expect(codes).toEqual(Array(STARTERS - 1).fill(ALREADY_RUNNING));
  await stopAndCheck(home);
}

const LOCK_MODULE = fileURLToPath(new URL("../../dist/daemon/lock.js", import.meta.url));

/**
 * RACERS processes that take the home's lock at the same millisecond (each spins until an
 * agreed time, after its start-up): the narrowest race there is. Returns how many won; the
 * winners hold the lock until all have answered.
 */
async function lockRace(home: string, racers: number): Promise<number> {
  const paths = resolvePaths({ home });
  const script = join(home, "racer.mjs");
  writeFileSync(
    script,
    `const { acquireHomeLock } = await import(${JSON.stringify(LOCK_MODULE)});
const startAt = Number(process.argv[2]);
while (Date.now() < startAt) {}
let won = true;
try { await acquireHomeLock(${JSON.stringify(paths.runtimeDir)}, ${JSON.stringify(paths.pidFile)}); } catch (e) { if (e.name !== "Error" || !/already running/.test(e.message)) throw e; won = false; }
process.stdout.write(won ? "won\\n" : "lost\\n");
if (won) process.stdin.resume(); // hold the lock until the test lets go
`,
  );
  const startAt = Date.now() + 1500;
  const kids = Array.from({ length: racers }, () => spawn(process.execPath, [script, String(startAt)], { stdio: ["pipe", "pipe", "inherit"] }));
  const answers = await Promise.all(
    kids.map((k) => new Promise<string>((resolve) => {
      let out = "";
      k.stdout!.on("data", (c: Buffer) => {
        out += c.toString();
        if (out.endsWith("\n")) resolve(out.trim());
      });
      k.on("exit", () => resolve(out.trim() || "exited"));
    })),
  );
  await Promise.all(kids.map((k) => new Promise((r) => (k.exitCode !== null ? r(null) : (k.on("exit", r), k.stdin!.end())))));
  expect(answers.filter((a) => a !== "won" && a !== "lost")).toEqual([]);
  return answers.filter((a) => a === "won").length;
}

describe("the lock itself, taken by many processes at the same instant", () => {
  it("exactly one of 12 wins, round after round, with no, stale, empty and cut-short pid files", { timeout: 180_000 }, async () => {
    const home = newHome();
    const paths = resolvePaths({ home });
    mkdirSync(paths.runtimeDir, { recursive: true, mode: 0o700 });
    const pidFiles = [null, "999999\n", "", "4"];
    const winners: number[] = [];
    for (let round = 0; round < 12; round++) {
      const content = pidFiles[round % pidFiles.length]!;
      rmSync(paths.pidFile, { force: true });
      if (content !== null) writeFileSync(paths.pidFile, content, { mode: 0o600 });
      winners.push(await lockRace(home, 12));
    }
    expect(winners).toEqual(Array(12).fill(1));
  });
});

describe("many starters on one home", () => {
  it("with no pid file: exactly one runs, every round", { timeout: 180_000 }, async () => {
    const home = newHome();
    for (let round = 0; round < 3; round++) await roundWith(home, () => rmSync(resolvePaths({ home }).pidFile, { force: true }));
  });

  it("with the pid file and socket of a daemon killed by -9: exactly one runs", { timeout: 180_000 }, async () => {
    const home = newHome();
    for (let round = 0; round < 2; round++) {
      await roundWith(home, async () => {
        const first = spawnDaemon(home);
        await waitFor(async () => (await healthPid(home)) === first.child.pid, { timeoutMs: 20_000, what: "the first daemon" });
        first.child.kill("SIGKILL");
        await first.exited;
      });
    }
  });

  it("with an empty pid file: exactly one runs", { timeout: 120_000 }, async () => {
    const home = newHome();
    const paths = resolvePaths({ home });
    await roundWith(home, () => {
      mkdirSync(paths.runtimeDir, { recursive: true, mode: 0o700 });
      writeFileSync(paths.pidFile, "", { mode: 0o600 });
    });
  });

  it("with a pid file cut short mid-write: exactly one runs", { timeout: 120_000 }, async () => {
    const home = newHome();
    const paths = resolvePaths({ home });
    await roundWith(home, () => {
      mkdirSync(paths.runtimeDir, { recursive: true, mode: 0o700 });
      writeFileSync(paths.pidFile, "4", { mode: 0o600 }); // the first digit of a pid; no newline
    });
  });

  it("the lock does not live in the filesystem: with the run folder deleted under a live daemon, new starters still refuse", { timeout: 120_000 }, async () => {
    // The pid-file lock could be undone by anything that moved or removed files (a slow
    // rename between two starters, a cleaner). Here the daemon's socket and pid file are
    // gone altogether; the lock must still say a daemon runs.
    const home = newHome();
    const paths = resolvePaths({ home });
    const first = spawnDaemon(home);
    await waitFor(async () => (await healthPid(home)) === first.child.pid, { timeoutMs: 20_000, what: "the first daemon" });
    rmSync(paths.runtimeDir, { recursive: true, force: true });

    const kids = Array.from({ length: 8 }, () => spawnDaemon(home));
    const codes = await Promise.all(kids.map((k) => Promise.race([k.exited.then((e) => e.code), new Promise<string>((r) => setTimeout(() => r("still running"), 30_000))])));
    expect(codes).toEqual(Array(8).fill(ALREADY_RUNNING));
    expect(daemonsFor(home)).toEqual([first.child.pid]);

    // `daemon status` agrees with reality: a daemon runs, though it no longer answers.
    const status = await runJson<{ running: boolean; responding?: boolean; pid?: number }>(["daemon", "status"], { home });
    expect(status.json).toMatchObject({ running: true, responding: false, pid: first.child.pid });
    expect(status.exitCode).not.toBe(0);
  });
});
