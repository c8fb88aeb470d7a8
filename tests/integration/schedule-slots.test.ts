// A slot is fired once, whoever tries, through real daemons: a crash and a restart do not fire
// a slot again, and a daemon racing another process (tests/fixtures/store/fire-slots.mjs) on
// the same store for the same slots handles only those the other did not.

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { startDaemon, tempHome, type TestDaemon } from "../helpers/daemon.js";
import { startEngine, type TestEngine } from "../helpers/engine.js";
import { waitFor } from "../helpers/wait.js";
import { openStore } from "../../src/store/index.js";
import { taskEventPolicy } from "../../src/board/task-events.js";
import type { ScheduleRun } from "../../src/store/types.js";
import { Scheduler } from "../../src/scheduler/scheduler.js";
import { Housekeeping } from "../../src/scheduler/housekeeping.js";
import { createLogger } from "../../src/lib/logger.js";
import { DEFAULTS } from "../../src/config/config.js";
import { resolvePaths } from "../../src/config/paths.js";
import { rmSync } from "node:fs";

const FIRE_SLOTS = fileURLToPath(new URL("../fixtures/store/fire-slots.mjs", import.meta.url));

let d: TestDaemon | undefined;
let t: TestEngine | undefined;
afterEach(async () => {
  await d?.cleanup();
  await t?.close();
  d = undefined;
  t = undefined;
});

interface Fired {
  slot: number;
  outcome: string;
}

/** The daemon's "schedule.fired" lines for one schedule, in order. */
function firings(log: string, schedule: string): Fired[] {
  const re = new RegExp(`schedule\\.fired schedule=${schedule} slot=(\\S+) outcome=(\\S+)`, "g");
  return [...log.matchAll(re)].map((m) => ({ slot: Date.parse(m[1]!), outcome: m[2]! }));
}

async function storedRuns(d: TestDaemon, schedule: string): Promise<ScheduleRun[]> {
  const store = await openStore({ kind: "sqlite", path: d.paths.database }, { durability: "process", taskEvents: taskEventPolicy });
  try {
    return await store.schedules.runs(schedule, 10_000);
  } finally {
    await store.close();
  }
}

describe("one firing per slot, through the daemon", () => {
  it("a crash and a restart do not fire a slot again", async () => {
    d = await startDaemon();
    await d.client.call("schedulesSet", { name: "beat", cron: "* * * * * *", type: "noop" });
    await waitFor(() => firings(d!.log(), "beat").length >= 3, { timeoutMs: 10_000, what: "three firings" });
    await d.kill9(); // a crash, possibly in the middle of a firing
    await d.restart();
    const atRestart = firings(d.log(), "beat").length;
    await waitFor(() => firings(d!.log(), "beat").length >= atRestart + 3, { timeoutMs: 10_000, what: "three firings after the restart" });
    await d.stop();

    const handled = firings(d.log(), "beat").filter((f) => f.outcome !== "already-fired");
    const slots = handled.map((f) => f.slot);
    expect(new Set(slots).size, `slots handled: ${slots.map((s) => new Date(s).toISOString()).join(" ")}`).toBe(slots.length);
    // The store recorded each slot once; every logged firing is among them (a crash may cut
    // the log line of a firing that committed, never the other way round).
    const runs = await storedRuns(d, "beat");
    const stored = runs.map((r) => r.slot);
    expect(new Set(stored).size).toBe(stored.length);
    for (const s of slots) expect(stored).toContain(s);
  });

  it("a daemon and another process on the same store: the slots the other fired first are already-fired for the daemon", async () => {
    d = await startDaemon();
    await d.client.call("schedulesSet", { name: "beat", cron: "* * * * * *", type: "noop" });
    // Slots 4 to 7 seconds ahead, fired now by another process (as another daemon would).
    const first = (Math.floor(Date.now() / 1000) + 4) * 1000;
    const theirs = [0, 1, 2, 3].map((i) => first + i * 1000);
    const child = spawn(process.execPath, [FIRE_SLOTS, JSON.stringify({ kind: "sqlite", path: d.paths.database }), "beat", String(first), "4", "1000"], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (err += b.toString()));
    child.stdin.end("go\n");
    const code = await new Promise<number | null>((r) => child.once("exit", r));
    expect(code, err).toBe(0);
    const outside = out.replace(/^ready\n/, "").trim().split("\n").map((l) => JSON.parse(l) as Fired);
    // Each slot is the other process's: fired by it, never refused as already fired. Its firing
    // is "skipped" instead of "enqueued" when the daemon's run of the second before is still
    // pending or running (no overlap): on a loaded machine its no-op can wait that long (seen
    // in CI, all four); the slot is recorded as handled either way.
    expect(outside.map((f) => f.outcome)).toHaveLength(4);
    for (const f of outside) expect(["enqueued", "skipped"]).toContain(f.outcome);

    // The daemon's timers reach those slots, and refuses each; the next is its own.
    await waitFor(() => firings(d!.log(), "beat").some((f) => f.slot > theirs.at(-1)! && f.outcome === "enqueued"), { timeoutMs: 15_000, what: "the daemon's firing after the other process's slots" });
    const daemon = firings(d.log(), "beat");
    for (const s of theirs) {
      const mine = daemon.filter((f) => f.slot === s);
      expect(mine.map((f) => f.outcome), new Date(s).toISOString()).toEqual(["already-fired"]);
    }
    await d.stop();
    const runs = await storedRuns(d, "beat");
    expect(new Set(runs.map((r) => r.slot)).size).toBe(runs.length);
    for (const s of theirs) expect(runs.filter((r) => r.slot === s)).toHaveLength(1);
  });
});

describe("pruning fired slots", () => {
  it("housekeeping forgets slots fired longer ago than the retention, at start and then on its timer; they stay refused", async () => {
    const start = Date.parse("2026-03-01T10:00:00.500Z");
    t = await startEngine({}, { start });
    const home = tempHome("tw-housekeeping-");
    const log = createLogger((l) => t!.logs.push(l), () => t!.clock.now());
    const config = { ...DEFAULTS, retention: 3_600_000 }; // an hour: pruned every 6 minutes
    const scheduler = new Scheduler({ store: t.store, engine: t.engine, clock: t.clock, log, builtins: [] });
    await scheduler.start();
    await scheduler.set({ name: "min", cron: "0 * * * * *", timezone: null, jobType: "noop", payload: {} });
    const slot = (n: number) => Date.parse("2026-03-01T10:00:00Z") + n * 60_000;
    for (let n = 1; n <= 3; n++) {
      t.clock.advance(60_000);
      await waitFor(async () => (await t!.store.schedules.runs("min")).length === n, { what: `slot ${n} fired` });
      await waitFor(async () => (await t!.engine.list({ type: "noop" })).every((j) => j.status === "complete"), { what: "its job done" });
    }
    scheduler.stop();
    expect((await t.store.schedules.runs("min")).map((r) => r.slot)).toEqual([slot(3), slot(2), slot(1)]);

    // Two hours on: at start, everything older than an hour goes.
    t.clock.advance(2 * 3_600_000);
    const hk = new Housekeeping({ store: t.store, engine: t.engine, scheduler, clock: t.clock, log, paths: resolvePaths({ home }), config });
    try {
      await hk.start();
      expect(await t.store.schedules.runs("min")).toEqual([]);
      expect(t.logs.some((l) => /schedule\.runs_pruned count=3/.test(l))).toBe(true);
      // A pruned slot is still refused.
      expect((await scheduler.fire("min", slot(2)))!.outcome).toBe("already-fired");

      // A slot fired now is kept until it is an hour old, then the timer prunes it.
      const now = t.clock.now();
      const fresh = await t.store.schedules.fire("min", now - (now % 60_000), now, { type: "noop", payload: {}, runAt: now, priority: 0, maxAttempts: 1, uniqueKey: null });
      expect(fresh!.outcome).toBe("enqueued");
      t.clock.advance(30 * 60_000); // the timer pruned; the slot is half an hour old
      expect(await t.store.schedules.runs("min")).toHaveLength(1);
      t.clock.advance(36 * 60_000); // the timer again: now the slot is over an hour old
      await waitFor(async () => (await t!.store.schedules.runs("min")).length === 0, { what: "the timer's prune" });
      // Stopped, it prunes no more.
      hk.stop();
      await t.store.schedules.fire("min", slot(200), t.clock.now(), { type: "noop", payload: {}, runAt: t.clock.now(), priority: 0, maxAttempts: 1, uniqueKey: null });
      t.clock.advance(3 * 3_600_000);
      expect(await t.store.schedules.runs("min")).toHaveLength(1);
    } finally {
      hk.stop();
      rmSync(home, { recursive: true, force: true });
    }
  });
});
