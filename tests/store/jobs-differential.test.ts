// The job queue, SQLite against PostgreSQL, step by step: one seeded sequence of operations
// (enqueues with and without unique keys, claims under budgets and paused types, every kind
// of finish, late and foreign writes, rescues, cancels, retries, prunes, lists) is run on a
// fresh store of each kind, one handle each, and every answer must be the same. Ids agree
// because both stores number jobs from 1 in insert order and nothing here rolls back.
// More sequences: TW_DIFF_SEEDS=4,5,6 (default 1,2,3).

import { afterEach, describe, expect, it } from "vitest";
import { POSTGRES_SKIPPED, postgresFactory, sqliteFactory, type StoreFixture } from "./factory.js";
import type { ClaimLimits, Finish, NewJob, Store, TickBatch } from "../../src/store/types.js";
import { asNodes } from "./suite.js";

const T0 = Date.parse("2026-07-01T08:00:00Z");
const TYPES = ["a", "b", "c"];
const OWNERS = ["A", "B"];

/** mulberry32: a small seeded generator, so a failure can be replayed. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Step = { name: string; run: (s: Store) => Promise<unknown> };

/** The sequence: each step is a call on a store; `known` is what the driver remembers of running jobs (as SQLite answered). */
function steps(seed: number): (known: Map<number, { attempt: number; owner: string }>, now: () => number) => Step {
  const r = rng(seed);
  const pick = <T,>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const empty = (owner: string, now: number): TickBatch => ({ now, owner, inserts: [], finishes: [], progress: [], checkpoints: [], logs: [], begins: [], claim: null });
  return (known, now) => {
    const t = now();
    const roll = r();
    const job = (): NewJob => ({
      type: pick(TYPES),
      payload: { n: int(0, 999), s: "x".repeat(int(0, 3) * 100) },
      runAt: t + pick([-500, 0, 0, 0, 200, 5000]),
      priority: int(-1, 2),
      maxAttempts: int(1, 3),
      uniqueKey: r() < 0.3 ? `k${int(0, 4)}` : null,
    });
    const limits = (): ClaimLimits => ({
      limit: int(0, 6),
      pausedTypes: r() < 0.2 ? [pick(TYPES)] : [],
      budgets: { slots: int(0, 4), fast: int(0, 3) },
      draws: { a: ["fast"], b: ["slots", "fast"] },
      otherTypes: ["slots"],
    });
    const running = [...known.entries()];
    const someRunning = () => pick(running);
    // Every random draw is made here, once, never inside run (which is called once per store).
    if (roll < 0.25) {
      const inserts = Array.from({ length: int(1, 4) }, job);
      return { name: "enqueue", run: (s) => s.jobs.tick({ ...empty("E", t), inserts }) };
    }
    if (roll < 0.45) {
      const owner = pick(OWNERS);
      const l = limits();
      return { name: `claim ${owner} ${JSON.stringify(l)}`, run: (s) => s.jobs.claim({ ...l, owner, now: t }) };
    }
    if (roll < 0.7 && running.length) {
      const writes: Finish[] = [];
      const b = empty(pick(OWNERS), t);
      for (let i = int(1, 3); i > 0; i--) {
        const [id, k] = someRunning();
        // Mostly the attempt's own owner; sometimes a stale attempt or another owner.
        const attempt = r() < 0.15 ? k.attempt - 1 : k.attempt;
        b.owner = r() < 0.85 ? k.owner : pick(OWNERS);
        const kind = r();
        if (kind < 0.2) b.begins.push({ id, attempt, at: t - 1, slot: int(0, 3) });
        else if (kind < 0.3) b.progress.push({ id, attempt, progress: int(0, 100), message: r() < 0.5 ? null : `step ${int(1, 9)}` });
        else if (kind < 0.38) b.logs.push({ id, attempt, at: t, message: `line ${int(1, 99)}` });
        else if (kind < 0.44) b.checkpoints.push({ id, attempt, state: { at: int(0, 9) } });
        else {
          const o = r();
          writes.push(
            o < 0.45
              ? { id, attempt, outcome: "complete", result: { ok: int(0, 9) } }
              : o < 0.65
                ? { id, attempt, outcome: "retry", error: "boom", runAt: t + pick([0, 300]), crashed: r() < 0.3 }
                : o < 0.8
                  ? { id, attempt, outcome: "failed", error: "bad", permanent: r() < 0.5, crashed: r() < 0.3 }
                  : o < 0.9
                    ? { id, attempt, outcome: "cancelled" }
                    : { id, attempt, outcome: "requeue" },
          );
        }
      }
      b.finishes = writes;
      if (r() < 0.4) b.claim = limits();
      return { name: `tick ${JSON.stringify(b)}`, run: (s) => s.jobs.tick(b) };
    }
    if (roll < 0.76) {
      const live = OWNERS.filter(() => r() < 0.6);
      return { name: `rescue ${live}`, run: (s) => s.jobs.rescue({ now: t, liveOwners: live }) };
    }
    const id = int(1, 40);
    if (roll < 0.8) return { name: `cancel ${id}`, run: (s) => s.jobs.cancelPending(id, t) };
    if (roll < 0.84) return { name: `retry ${id}`, run: (s) => s.jobs.retry(id, t).catch((e: Error) => `refused: ${e.message}`) };
    if (roll < 0.86) return { name: "prune", run: (s) => s.jobs.prune(t - 2000) };
    if (roll < 0.9) return { name: `get ${id}`, run: (s) => s.jobs.get(id) };
    if (roll < 0.93) return { name: `logs ${id}`, run: (s) => s.jobs.logs(id, 0) };
    const type = pick(TYPES);
    if (roll < 0.96) return { name: "list", run: async (s) => [await s.jobs.list({ limit: 20 }), await s.jobs.list({ status: "pending", type }), await s.jobs.counts()] };
    return {
      name: `ahead/stats ${id}`,
      run: async (s) => {
        const j = await s.jobs.get(id);
        return [j && (await s.jobs.countAhead(j, t, [type])), await s.jobs.stats(T0, t)];
      },
    };
  };
}

/** What the driver learns of running jobs from an answer (claims and ticks). */
function learn(known: Map<number, { attempt: number; owner: string }>, answer: unknown, owner: string | null): void {
  const a = answer as { claimed?: { id: number; attempts: number }[]; finished?: { id: number; status: string }[] } | null;
  for (const f of a?.finished ?? []) if (f.status !== "running") known.delete(f.id);
  if (owner) for (const c of a?.claimed ?? []) known.set(c.id, { attempt: c.attempts, owner });
}

describe.skipIf(POSTGRES_SKIPPED !== null)("jobs store: SQLite and PostgreSQL answer alike", () => {
  const fixtures: StoreFixture[] = [];
  afterEach(async () => {
    for (const f of fixtures.splice(0)) await f.cleanup();
  });

  for (const seed of (process.env.TW_DIFF_SEEDS ?? "1,2,3").split(",").map(Number)) {
    it(`seed ${seed}: 400 operations, the same answers`, { timeout: 120_000 }, async () => {
      const lite = await sqliteFactory.create();
      const pg = await postgresFactory.create();
      fixtures.push(lite, pg);
      for (const f of [lite, pg]) await asNodes(f.store, ...OWNERS);
      const next = steps(seed);
      const known = new Map<number, { attempt: number; owner: string }>();
      let clock = T0;
      const tally = { claimed: 0, finished: 0, refused: 0, rescued: 0 };
      for (let i = 0; i < 400; i++) {
        clock += 100;
        const step = next(known, () => clock);
        const [a, b] = [await step.run(lite.store), await step.run(pg.store)];
        expect(b, `step ${i}: ${step.name}`).toEqual(a);
        const owner = step.name.startsWith("claim ") ? step.name.split(" ")[1]! : step.name.startsWith("tick ") ? (JSON.parse(step.name.slice(5)) as TickBatch).owner : null;
        learn(known, a, owner);
        const seen = a as { claimed?: unknown[]; finished?: unknown[]; refused?: unknown[]; interrupted?: number } | null;
        tally.claimed += seen?.claimed?.length ?? 0;
        tally.finished += seen?.finished?.length ?? 0;
        tally.refused += seen?.refused?.length ?? 0;
        tally.rescued += seen?.interrupted ?? 0;
        // Rescue and requeue end attempts the driver cannot see in an answer's claimed list: forget what is no longer running.
        if (step.name.startsWith("rescue") || step.name.startsWith("tick")) {
          for (const id of [...known.keys()]) {
            const j = await lite.store.jobs.get(id);
            if (!j || j.status !== "running") known.delete(id);
            else known.set(id, { attempt: j.attempts, owner: known.get(id)!.owner });
          }
        }
      }
      // The sequence did exercise the queue (not only empty answers).
      console.log(`seed ${seed}: ${JSON.stringify(tally)}`);
      expect(Math.min(tally.claimed, tally.finished, tally.refused, tally.rescued)).toBeGreaterThan(0);
    });
  }
});
