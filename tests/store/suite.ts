// Shared pieces of the conformance suite: one describe per store kind (from factory.ts), a
// fresh store per test, and small builders. A test here speaks only the Store interface; what
// it needs to know about a kind (how to hold its lock, how to damage it) is in breakers.ts.

import { afterEach, beforeEach, describe, it } from "vitest";
import { POSTGRES_SKIPPED, STORE_FACTORIES, type StoreFactory, type StoreFixture } from "./factory.js";
import { StoreError, type StoreErrorKind } from "../../src/store/errors.js";
import { TeamworkError, type ErrorCode } from "../../src/lib/errors.js";
import type { NewJob, NewTask, NodeSession, Store, ClaimLimits, TickBatch } from "../../src/store/types.js";

/** A fixed start for stored times, so that assertions can name exact instants. */
export const T0 = Date.parse("2026-05-04T09:00:00Z");
export const iso = (ms: number) => new Date(ms).toISOString();

/** A suite that does not run, shown as skipped with why. */
function skipped(title: string, why: string): void {
  describe.skip(title, () => {
    it(`skipped: ${why}`, () => {});
  });
}

/**
 * Runs `body` once per store kind, inside describe(kind). `fx()` is that test's fresh store
 * (created before it, cleaned up after it, including every second handle it opened).
 */
export function forEachStore(title: string, body: (fx: () => StoreFixture, factory: StoreFactory) => void): void {
  if (POSTGRES_SKIPPED !== null) skipped(`postgres: ${title}`, POSTGRES_SKIPPED);
  for (const factory of STORE_FACTORIES) {
    describe(`${factory.name}: ${title}`, () => {
      let current: StoreFixture | undefined;
      beforeEach(async () => {
        current = await factory.create();
      });
      afterEach(async () => {
        await current?.cleanup();
        current = undefined;
      });
      body(() => {
        if (!current) throw new Error("no store: fx() is only valid inside a test");
        return current;
      }, factory);
    });
  }
}

export const newTask = (over: Partial<NewTask> = {}): NewTask => ({
  title: "write the spec",
  board: "default",
  description: "",
  assignee: null,
  dueDate: null,
  status: "todo",
  ...over,
});

export const newJob = (over: Partial<NewJob> = {}): NewJob => ({
  type: "noop",
  payload: {},
  runAt: T0,
  priority: 0,
  maxAttempts: 3,
  uniqueKey: null,
  ...over,
});

/** What a promise rejects with (it must reject). */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
    },
    (e: unknown) => e,
  );
}

/** The StoreError a promise rejects with; anything else fails the test with what it was. */
export async function storeError(p: Promise<unknown>, kind?: StoreErrorKind): Promise<StoreError> {
  const err = await rejection(p);
  if (!(err instanceof StoreError)) throw new Error(`expected a StoreError, got ${String(err)}`, { cause: err });
  if (kind !== undefined && err.kind !== kind) throw new Error(`expected a StoreError of kind ${kind}, got ${err.kind}: ${err.reason}`, { cause: err });
  return err;
}

/** The TeamworkError (not_found, conflict, ...) a promise rejects with. */
export async function teamworkError(p: Promise<unknown>, code: ErrorCode): Promise<TeamworkError> {
  const err = await rejection(p);
  if (!(err instanceof TeamworkError) || err.code !== code) throw new Error(`expected a TeamworkError ${code}, got ${String(err)}`, { cause: err });
  return err;
}

/** A lease long enough for any test: a node registered with it never lapses during one. */
export const TEST_LEASE_MS = 600_000;

/**
 * Registers each id as a node of the store (its handles share it), with TEST_LEASE_MS: a store
 * shared by nodes (PostgreSQL) claims only for a live node. The sessions close with the store.
 */
export async function asNodes(store: Store, ...ids: string[]): Promise<NodeSession[]> {
  const out: NodeSession[] = [];
  for (const id of ids) out.push(await store.nodes.register({ id, host: "test-host", pid: process.pid }, TEST_LEASE_MS));
  return out;
}

/** A claim of any job (one budget "any"), at most n. */
export const anyJobs = (n: number, over: Partial<ClaimLimits> = {}): ClaimLimits => ({ limit: n, pausedTypes: [], budgets: { any: n }, draws: {}, otherTypes: ["any"], ...over });

/** A tick's batch for `owner` at T0 with nothing in it but `over`. */
export const tickBatch = (owner: string, over: Partial<TickBatch> = {}): TickBatch => ({
  now: T0,
  owner,
  inserts: [],
  finishes: [],
  progress: [],
  checkpoints: [],
  logs: [],
  begins: [],
  claim: null,
  ...over,
});
