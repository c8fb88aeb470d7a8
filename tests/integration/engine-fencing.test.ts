// The engine's side of ownership: its owner id is logged at start and recorded by its claims;
// when another daemon run took a job over, this engine's late writes are refused by the store
// and logged, and the job stays the other run's.

import { afterEach, describe, expect, it } from "vitest";
import { startEngine, type TestEngine } from "../helpers/engine.js";
import { waitFor } from "../helpers/wait.js";

let t: TestEngine | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe("engine ownership", () => {
  it("logs its owner at start, and a late finish of a job another run took over as refused", async () => {
    t = await startEngine();
    const owner = t.engine.owner;
    expect(owner).toMatch(/^[0-9a-f-]{36}$/);
    expect(t.logs.some((l) => l.includes("engine.started") && l.includes(`owner=${owner}`))).toBe(true);

    const { job } = await t.engine.enqueue({ type: "late", payload: { ms: 300 }, maxAttempts: 1 });
    await waitFor(async () => ((await t!.engine.get(job.id)).status === "running" ? true : null));
    // Nothing new starts here; another run ("B") rescues the job as if this one were gone,
    // and claims it (attempt 2).
    await t.engine.pause();
    const now = t.clock.now();
    expect(await t.store.jobs.rescue({ now, liveOwners: ["B"] })).toEqual({ interrupted: 1 });
    const { claimed } = await t.store.jobs.claim({ owner: "B", now, limit: 1, pausedTypes: [], budgets: { any: 1 }, draws: {}, otherTypes: ["any"] });
    expect(claimed).toMatchObject([{ id: job.id, attempts: 2 }]);

    const refused = await waitFor(() => t!.logs.find((l) => l.includes("job.write_refused")) ?? null, { what: "the refused finish logged" });
    expect(refused).toContain(`job=${job.id}`);
    expect(refused).toContain("attempt=1");
    expect(refused).toContain(`owner=${owner}`);
    expect(refused).toContain("write=finish");
    expect(await t.store.jobs.get(job.id)).toMatchObject({ status: "running", attempts: 2, result: null });
  });
});
