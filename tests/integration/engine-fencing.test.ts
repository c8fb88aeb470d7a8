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
    expect(await t.store.jobs.rescue({ now, liveOwners: ["B"] })).toEqual({ interrupted: 1, cancelled: 0 });
    const { claimed } = await t.store.jobs.claim({ owner: "B", now, limit: 1, pausedTypes: [], budgets: { any: 1 }, draws: {}, otherTypes: ["any"] });
    expect(claimed).toMatchObject([{ id: job.id, attempts: 2 }]);

    const refused = await waitFor(() => t!.logs.find((l) => l.includes("job.write_refused")) ?? null, { what: "the refused finish logged" });
    expect(refused).toContain(`job=${job.id}`);
    expect(refused).toContain("attempt=1");
    expect(refused).toContain(`owner=${owner}`);
    expect(refused).toContain("write=finish");
    expect(await t.store.jobs.get(job.id)).toMatchObject({ status: "running", attempts: 2, result: null });
  });

  it("fence: stops the running attempt at once and claims nothing; its writes are refused; resumeAs claims again under the new owner", async () => {
    t = await startEngine();
    const first = t.engine.owner;
    const { job: held } = await t.engine.enqueue({ type: "until-cancelled" });
    await waitFor(async () => (await t!.engine.get(held.id)).progress === 10 || null, { what: "the attempt under way" });

    t.engine.fence("the lease was lost", 1000);
    expect(t.logs.some((l) => l.includes("job.fenced") && l.includes(`job=${held.id}`) && l.includes(`owner=${first}`))).toBe(true);
    // The stopped attempt's finish goes out, and is refused: the job stays as the store has it
    // (running for the old owner, for rescue to hand back).
    await waitFor(() => t!.logs.find((l) => l.includes("job.write_refused") && l.includes(`job=${held.id}`)) ?? null, { what: "the stopped attempt's finish refused" });
    expect(t.engine.runningCount).toBe(0);
    expect(await t.store.jobs.get(held.id)).toMatchObject({ status: "running", attempts: 1 });

    // While fenced nothing is claimed (inserts still go in): the tick that stored the job, and
    // one woken after it (the second enqueue's tick comes later still), claim nothing.
    const { job: waiting } = await t.engine.enqueue({ type: "noop" });
    t.engine.wake();
    await t.engine.enqueue({ type: "noop" });
    expect(await t.store.jobs.get(waiting.id)).toMatchObject({ status: "pending", attempts: 0 });

    t.engine.resumeAs("node-2");
    expect(t.engine.owner).toBe("node-2");
    await waitFor(async () => ((await t!.store.jobs.get(waiting.id))?.status === "complete" ? true : null), { what: "the job claimed under the new owner" });
    expect((await t.store.nodes.list()).length).toBe(0); // the engine alone registers nothing
  });
});
