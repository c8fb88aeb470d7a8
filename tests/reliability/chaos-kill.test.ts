// Chaos: kill -9 the daemon many times at random (seeded) moments while thousands of jobs
// are queued and running, restart it each time, and check that nothing acknowledged was
// lost and that only jobs running at a kill ran twice.

import { afterAll, describe, expect, it } from "vitest";
import { prng } from "../helpers/random.js";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";
import type { JobSpec } from "../../src/protocol/routes.js";

let d: TestDaemon | undefined;
afterAll(async () => {
  await d?.cleanup();
});


const SEED = Number(process.env.CHAOS_SEED ?? 20261128);
const KILLS = 8;
const CONCURRENCY = 3;
const BATCHES = 30;
const BATCH = 100;

describe(`chaos (seed ${SEED})`, () => {
  it("loses no acknowledged job across repeated kill -9, and repeats only interrupted ones", async () => {
    const rand = prng(SEED);
    d = await startDaemon({ config: { concurrency: CONCURRENCY } });
    const acked = new Set<number>();
    let done = false;

    // Producer: batches of jobs; a batch that fails (daemon down) is simply sent again later.
    const producer = (async () => {
      for (let b = 0; b < BATCHES; ) {
        const jobs: JobSpec[] = Array.from({ length: BATCH }, (_, i): JobSpec =>
          (b * BATCH + i) % 25 === 0 ? { type: "slow-progress", payload: { steps: 3, stepMs: 40 } } : { type: "noop", payload: { b, i } },
        );
        try {
          const r = await d!.client.call("jobsEnqueueBatch", { jobs });
          for (const j of r.jobs) acked.add(j.job.id);
          b++;
        } catch {
          await new Promise((r) => setTimeout(r, 30));
        }
      }
      done = true;
    })();

    for (let k = 0; k < KILLS; k++) {
      await new Promise((r) => setTimeout(r, 100 + Math.floor(rand() * 400)));
      await d.kill9();
      await d.restart();
    }
    await producer;
    expect(done).toBe(true);
    expect(acked.size).toBe(BATCHES * BATCH);

    // Every acknowledged job completes.
    await waitFor(
      async () => {
        const s = await d!.client.call("daemonStatus", {});
        return s.counts.jobs.pending === 0 && s.counts.jobs.running === 0;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: "the queue to drain" },
    );
    const all = new Map<number, { status: string; attempts: number; errors: { message: string }[] }>();
    for (let before: number | undefined; ; ) {
      const page = (await d.client.call("jobsList", { limit: 1000, beforeId: before })).jobs;
      for (const j of page) all.set(j.id, j);
      if (page.length < 1000) break;
      before = page.at(-1)!.id;
    }
    const missing = [...acked].filter((id) => !all.has(id));
    expect(missing, `seed ${SEED}`).toEqual([]);
    const notComplete = [...acked].filter((id) => all.get(id)!.status !== "complete");
    expect(notComplete, `seed ${SEED}`).toEqual([]);

    // Only jobs running at a kill ran again, and each says so.
    const repeated = [...all.values()].filter((j) => j.attempts > 1);
    expect(repeated.length, `seed ${SEED}`).toBeLessThanOrEqual(KILLS * CONCURRENCY);
    for (const j of repeated) expect(j.errors.some((e) => /interrupted/.test(e.message)), `seed ${SEED}`).toBe(true);
    expect(d.log().match(/daemon.started/g)!.length).toBe(KILLS + 1);
  }, 120_000);
});
