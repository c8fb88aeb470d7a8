// StoreNode (queue/node.ts) in this process on a real PostgreSQL store, with an engine that
// records what it is told: a lost control session fences at once and the node registers under
// a new id; a write after a silence past SELF_FENCE_MS (a frozen process resuming) fences
// before it is made; dead nodes are rescued and the engine woken; a graceful stop leaves.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import pg from "pg";
import { StoreNode, type FenceableEngine } from "../../src/queue/node.js";
import { systemClock } from "../../src/lib/clock.js";
import { createLogger } from "../../src/lib/logger.js";
import { nodeSessionName } from "../../src/store/postgres/nodes.js";
import { POSTGRES_SKIPPED, postgresFactory, type StoreFixture, rawClient } from "../store/factory.js";
import { newJob, T0 } from "../store/suite.js";
import { waitFor } from "../helpers/wait.js";
import type { CancelNotice } from "../../src/store/types.js";

class RecordingEngine implements FenceableEngine {
  calls: string[] = [];
  guard: (() => void) | null = null;
  fence(reason: string) {
    this.calls.push(`fence: ${reason}`);
  }
  resumeAs(owner: string) {
    this.calls.push(`resume ${owner}`);
  }
  wake() {
    this.calls.push("wake");
  }
  guardWrites(check: () => void) {
    this.guard = check;
  }
  cancelRequested(notice: CancelNotice, via: "notify" | "heartbeat") {
    this.calls.push(`cancel ${notice.id}/${notice.attempt} via ${via}`);
  }
  /** What the engine was told, wakes (the claim poll's) left out. */
  get told() {
    return this.calls.filter((c) => c !== "wake");
  }
}

describe.skipIf(POSTGRES_SKIPPED !== null)("StoreNode on PostgreSQL", () => {
  let f: StoreFixture;
  let raw: pg.Client;
  let node: StoreNode | undefined;
  let engine: RecordingEngine;
  let skew = 0;
  const logs: string[] = [];
  let ids = 0;

  beforeEach(async () => {
    f = await postgresFactory.create();
    raw = await rawClient(f);
    engine = new RecordingEngine();
    skew = 0;
    logs.length = 0;
    node = new StoreNode({
      store: f.store,
      engine,
      clock: systemClock,
      log: createLogger((l) => logs.push(l)),
      host: "test-host",
      pid: 7,
      monotonic: () => performance.now() + skew,
      newId: () => `node-${++ids}`,
    });
  });
  afterEach(async () => {
    await node?.leave();
    await raw.end();
    await f.cleanup();
  });

  const rows = async () => (await raw.query<{ id: string; stopping: boolean }>(`SELECT id, stopping FROM nodes ORDER BY started_at`)).rows;

  it("a lost control session: fences at once, registers under a new id, and resumes the engine as it", async () => {
    await node!.join("first");
    expect(await rows()).toEqual([{ id: "first", stopping: false }]);
    await raw.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1`, [nodeSessionName({ id: "first", host: "test-host", pid: 7 })]);
    await waitFor(() => engine.told.length >= 2, { what: "fence and resume" });
    expect(engine.told[0]).toMatch(/^fence: the control connection was lost/);
    const newId = engine.told[1]!.replace("resume ", "");
    expect(newId).toMatch(/^node-\d+$/);
    expect(node!.id).toBe(newId);
    expect(node!.fences).toBe(1);
    // The new id's row is there; the old one is found dead by rescue (this node's own, within
    // RESCUE_SILENT_MS and a tick) and goes.
    await waitFor(async () => (await rows()).map((r) => r.id).join() === newId, { timeoutMs: 10_000, what: "only the new node left" });
    expect(logs.some((l) => l.includes("node.rejoined") && l.includes("previous=first"))).toBe(true);
  });

  it("a write after a silence past SELF_FENCE_MS (a frozen process resuming) fences before it is made", async () => {
    await node!.join("frozen");
    expect(node!.serving).toBe(true);
    engine.guard!();
    expect(engine.told).toEqual([]);
    skew += 2500; // the process was stopped for 2.5 s: no timer has run yet
    engine.guard!(); // the engine is about to write
    expect(engine.told[0]).toMatch(/^fence: no heartbeat succeeded for 2\.\d s/);
    expect(node!.serving).toBe(false);
    await waitFor(() => engine.told.length === 2, { what: "the rejoin" });
    expect(engine.told[1]).toMatch(/^resume node-\d+$/);
    expect(node!.serving).toBe(true);
  });

  it("rescues a dead node's running jobs, and wakes the engine to claim them", async () => {
    await node!.join("rescuer");
    await f.store.nodes.register({ id: "dead", host: "elsewhere", pid: 1 }, 200);
    const [job] = (await f.store.jobs.tick({ now: T0, owner: "E", inserts: [newJob()], finishes: [], progress: [], checkpoints: [], logs: [], begins: [], claim: null })).inserted.map((r) => r.job);
    await f.store.jobs.claim({ limit: 1, pausedTypes: [], budgets: { any: 1 }, draws: {}, otherTypes: ["any"], owner: "dead", now: T0 });
    await waitFor(async () => (await f.store.jobs.get(job!.id))?.status === "pending", { what: "the dead node's job rescued" });
    expect(engine.calls).toContain("wake");
    expect(logs.some((l) => l.includes("nodes.rescued") && l.includes("nodes=dead"))).toBe(true);
    expect((await rows()).map((r) => r.id)).toEqual(["rescuer"]);
  });

  it("a graceful stop marks the node stopping (it still heartbeats), then leaves", async () => {
    await node!.join("graceful");
    await node!.markStopping();
    expect(await rows()).toEqual([{ id: "graceful", stopping: true }]);
    // Still renewed while it drains: heartbeats go on past SELF_FENCE_MS, and nothing fences.
    await waitFor(async () => (await raw.query(`SELECT 1 FROM nodes WHERE id = 'graceful' AND heartbeat_at > started_at + interval '2.2 s'`)).rowCount === 1, { what: "heartbeats while stopping" });
    expect(engine.told).toEqual([]);
    await node!.leave();
    node = undefined;
    expect(await rows()).toEqual([]);
  });
});
