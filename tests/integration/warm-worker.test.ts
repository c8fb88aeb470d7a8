// The warm worker (issue 16): a pool that keeps one warm has a loaded worker in slot 1 from
// its start, and keeps it through idle spells that retire every other worker; a job there
// begins without a worker start. Real worker threads, real job modules.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { WorkerPool, type JobEnd, type PoolEvents } from "../../src/queue/pool/pool.js";
import { FIXTURE_JOBS } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";

const pools: WorkerPool[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) await p.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function pool(keepWarm: boolean, idleMs: number) {
  const dir = mkdtempSync(join(tmpdir(), "tw-warm-"));
  dirs.push(dir);
  const ends = new Map<number, JobEnd>();
  const events: PoolEvents = { progress() {}, log() {}, checkpoint: (_i, _a, _s, ack) => ack(null), begin() {}, end: (id, _a, end) => ends.set(id, end) };
  const p = new WorkerPool(
    {
      modules: [FIXTURE_JOBS],
      store: { kind: "sqlite", path: join(dir, "teamwork.db") },
      paths: { home: dir, reports: dir, uploads: dir, uploadsTmp: dir, thumbs: dir, outbox: dir },
      settings: { smtpUrl: null, mailFrom: "t@example.com", cleanupMaxAgeMs: 1000, digestRecipients: [], digestSendEmpty: false, fileMaxBytes: 1024 * 1024 },
    },
    events,
    idleMs,
    keepWarm ? { isolation: "thread", memoryMb: 256 } : null,
  );
  pools.push(p);
  return { p, ends };
}

const job = (jobId: number, isolation: "thread" | "process" = "thread") => ({ jobId, attempt: 1, type: "quick", payload: null, memoryMb: 256, isolation, state: null });

describe("the warm worker", () => {
  it("is there from the start, and stays through an idle spell that retires the others", async () => {
    const warm = pool(true, 100);
    const cold = pool(false, 100);
    warm.p.resize(2);
    cold.p.resize(2);
    expect(warm.p.warm(1)).toBe(true); // started with the pool, before any job
    expect(warm.p.warm(2)).toBe(false);
    expect(cold.p.warm(1)).toBe(false);

    for (const { p } of [warm, cold]) {
      p.run(1, job(1));
      p.run(2, job(2));
    }
    await waitFor(() => warm.ends.size === 2 && cold.ends.size === 2);
    expect([...warm.ends.values()].every((e) => e.ok)).toBe(true);
    // The idle spell passes: the pool without a warm worker retires both of its workers...
    await waitFor(() => !cold.p.warm(1) && !cold.p.warm(2));
    // ...and the warm pool's second worker; its first stays.
    await waitFor(() => !warm.p.warm(2));
    expect(warm.p.warm(1)).toBe(true);
  });

  it("comes back as a thread after slot 1 ran a job in a process", async () => {
    const warm = pool(true, 100);
    warm.p.resize(1);
    warm.p.run(1, job(1, "process"));
    await waitFor(() => warm.ends.size === 1, { timeoutMs: 10_000 });
    expect(warm.ends.get(1)).toMatchObject({ ok: true });
    expect(warm.p.workerKind(1)).toMatch(/^process/);
    // Idle: the process worker retires and the warm thread takes its place.
    await waitFor(() => warm.p.workerKind(1)?.startsWith("thread") === true);
    warm.p.run(1, job(2));
    await waitFor(() => warm.ends.size === 2);
    expect(warm.ends.get(2)).toMatchObject({ ok: true });
  });

  it("is not kept when the pool is not asked to", async () => {
    const cold = pool(false, 100);
    cold.p.resize(3);
    expect([1, 2, 3].map((n) => cold.p.warm(n))).toEqual([false, false, false]);
  });
});
