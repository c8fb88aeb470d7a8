// Schedules on a store shared by several daemons (PostgreSQL for a team): every daemon's
// scheduler arms every schedule and the store lets one firing per slot win. A schedule set,
// changed, paused or removed through one daemon is followed by the others at their next
// resync; a slot of a schedule paused elsewhere is refused by the store even before that.
// A daemon whose clock runs fast never fires a slot before the database's clock reaches it.
//
// In-process schedulers stand for the daemons (each has its own timers, as a daemon has);
// the firings, pauses and slot records go through the real store.

import { afterEach, describe, expect, it } from "vitest";
import { startEngine, type TestEngine } from "../helpers/engine.js";
import { waitFor } from "../helpers/wait.js";
import { Scheduler } from "../../src/scheduler/scheduler.js";
import { createLogger } from "../../src/lib/logger.js";
import { systemClock, type Clock } from "../../src/lib/clock.js";
import { DEFAULTS } from "../../src/config/config.js";
import { Engine } from "../../src/queue/engine.js";
import { EventBus } from "../../src/queue/events/bus.js";
import { loadRegistry } from "../../src/queue/registry.js";
import { FIXTURE_JOBS } from "../helpers/daemon.js";
import { POSTGRES_SKIPPED, postgresFactory, type StoreFixture } from "../store/factory.js";

let t: TestEngine | undefined;
const schedulers: Scheduler[] = [];
afterEach(async () => {
  for (const s of schedulers.splice(0)) s.stop();
  await t?.close();
  t = undefined;
});

function daemon(e: TestEngine, resyncMs = 1000): Scheduler {
  const s = new Scheduler({ store: e.store, engine: e.engine, clock: e.clock, log: createLogger((l) => e.logs.push(l), () => e.clock.now()), builtins: [], resyncMs });
  schedulers.push(s);
  return s;
}

const at = (iso: string) => Date.parse(`2026-03-01T${iso}Z`);

describe("schedules followed across daemons sharing a store", () => {
  it("set through one daemon: another arms it at its resync and fires it; paused through a third: refused, then disarmed", async () => {
    t = await startEngine({}, { start: at("10:00:00.500") });
    const a = daemon(t);
    const b = daemon(t);
    await a.start();
    await b.start();
    await a.set({ name: "tick", cron: "* * * * * *", timezone: null, jobType: "noop", payload: {} });
    a.stop(); // only b is left to fire it
    expect(b.armedSchedules()).toEqual([]);
    await b.resync();
    expect(b.armedSchedules()).toEqual(["tick"]);
    t.clock.advance(500); // 10:00:01
    await waitFor(async () => (await t!.store.schedules.get("tick"))?.lastSlot === at("10:00:01"), { what: "b fires 10:00:01" });
    await daemon(t).pause("tick"); // through another daemon
    t.clock.advance(1000); // 10:00:02: b's timer and b's resync (due at 10:00:01.500) both run
    await waitFor(() => b.armedSchedules().length === 0, { what: "b disarms the paused schedule" });
    expect((await t.store.schedules.runs("tick")).map((r) => r.slot)).toEqual([at("10:00:01")]);
    expect(await t.engine.list({ type: "noop" })).toHaveLength(1);
  });

  it("changed through another daemon: re-armed with the new expression; removed: disarmed", async () => {
    t = await startEngine({}, { start: at("10:00:00.500") });
    const a = daemon(t);
    const b = daemon(t);
    await a.start();
    await a.set({ name: "min", cron: "0 * * * * *", timezone: null, jobType: "noop", payload: {} });
    await b.start(); // b arms it from the store at start
    expect(b.armedSchedules()).toEqual(["min"]);
    await a.set({ name: "min", cron: "*/2 * * * * *", timezone: null, jobType: "noop", payload: {} });
    a.stop();
    await b.resync();
    t.clock.advance(1500); // 10:00:02: a slot of the new expression, not of the old one
    await waitFor(async () => (await t!.store.schedules.get("min"))?.lastSlot === at("10:00:02"), { what: "b fires the new expression's slot" });
    await daemon(t).remove("min");
    await b.resync();
    expect(b.armedSchedules()).toEqual([]);
  });

  it("a slot missed while the schedule was armed nowhere is caught up once by the daemon that arms it", async () => {
    t = await startEngine({}, { start: at("10:00:00.500") });
    const a = daemon(t);
    await a.start();
    await a.set({ name: "min", cron: "0 * * * * *", timezone: null, jobType: "noop", payload: {} });
    a.stop(); // the whole cluster is down
    t.clock.advance(5 * 60_000);
    const b = daemon(t);
    await b.start();
    await b.resync(); // armed already: a resync does not fire it again
    expect((await t.store.schedules.runs("min")).map((r) => r.slot)).toEqual([at("10:05:00")]);
  });
});

describe.skipIf(POSTGRES_SKIPPED !== null)("postgres: a daemon whose clock runs fast", () => {
  let fx: StoreFixture | undefined;
  let engine: Engine | undefined;
  afterEach(async () => {
    await engine?.stop(0);
    await fx?.cleanup();
    engine = undefined;
    fx = undefined;
  });

  it("never fires a slot before the database's clock reaches it, and still fires every slot", async () => {
    fx = await postgresFactory.create();
    const fast: Clock = { now: () => Date.now() + 1500, setTimer: systemClock.setTimer };
    const logs: string[] = [];
    const log = createLogger((l) => logs.push(l), () => fast.now());
    engine = new Engine({
      store: fx.store,
      registry: await loadRegistry([FIXTURE_JOBS]),
      bus: new EventBus(),
      clock: fast,
      log,
      config: DEFAULTS,
      workerData: {
        store: fx.location,
        paths: { home: "/nonexistent", reports: "/nonexistent", uploads: "/nonexistent", uploadsTmp: "/nonexistent", thumbs: "/nonexistent", outbox: "/nonexistent" },
        settings: { smtpUrl: null, mailFrom: "t@example.com", cleanupMaxAgeMs: 86_400_000, digestRecipients: [], digestSendEmpty: false, fileMaxBytes: 32 * 1024 * 1024 },
      },
    });
    await engine.start();
    const s = new Scheduler({ store: fx.store, engine, clock: fast, log, builtins: [], resyncMs: 0 });
    schedulers.push(s);
    await s.start();
    await s.set({ name: "beat", cron: "* * * * * *", timezone: null, jobType: "noop", payload: {} });
    const ahead: number[] = [];
    await waitFor(
      async () => {
        const runs = await fx!.store.schedules.runs("beat", 1000);
        const now = Date.now(); // this test's clock and the database's are the same host's
        for (const r of runs) if (r.slot > now + 50) ahead.push(r.slot - now);
        return runs.length >= 3;
      },
      { timeoutMs: 15_000, what: "three slots fired" },
    );
    expect(ahead).toEqual([]);
    expect(logs.some((l) => l.includes("schedule.early"))).toBe(true);
  });
});
