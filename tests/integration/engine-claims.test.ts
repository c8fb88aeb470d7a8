// Claims as data: the engine asks the store for jobs within budgets (placement.ts), then
// places them. When types compete for the last empty slot the claim can take a job that
// finds no slot: it goes back to pending uncounted, and runs once a slot frees.

import { afterEach, describe, expect, it } from "vitest";
import { startEngine, type TestEngine } from "../helpers/engine.js";
import { waitFor } from "../helpers/wait.js";

let t: TestEngine | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe("engine claims", () => {
  it("hands back a claimed job that finds no slot, uncounted, and runs it when a slot frees", async () => {
    // Run times a previous run measured: "quick" is fast, "slow-progress" slow.
    t = await startEngine({ concurrency: 1, fastWorkers: 1 }, { prepare: (store) => store.meta.set("engine.costs", { quick: 0.01, "slow-progress": 50 }) });
    const statuses = new Map<number, string[]>();
    t.bus.on("job:status", ({ job }) => statuses.set(job.id, [...(statuses.get(job.id) ?? []), job.status]));
    // One slot: the claim takes both (the fast job's budget, and the empty slot for the slow
    // one), then the fast job wakes the only slot and the slow one finds none.
    const { ids } = await t.engine.enqueueBatchIds([
      { type: "quick", payload: { n: 1 } },
      { type: "slow-progress", payload: { steps: 1, stepMs: 20 } },
    ]);
    const done = await waitFor(async () => {
      const jobs = await Promise.all(ids.map((id) => t!.engine.get(id)));
      return jobs.every((j) => j.status === "complete") ? jobs : null;
    });
    expect(done.map((j) => j.attempts)).toEqual([1, 1]);
    expect(done.map((j) => j.errors)).toEqual([[], []]);
    expect(statuses.get(ids[1]!)).toEqual(["pending", "pending", "running", "complete"]);
    expect(t.logs.some((l) => l.includes("job.write_refused"))).toBe(false);
  });
});
