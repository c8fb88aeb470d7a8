// Big payloads and results (issue 18, item 4): a list of jobs whose payloads are large is
// answered with summaries, quickly and under a byte bound, without the daemon's memory
// jumping; `jobs show` still gives the whole payload; a handler's result has a limit.

import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { runCli, runJson } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";
import { httpRequest } from "../reliability/support.js";
import type { Job, JobSummary } from "../../src/protocol/types.js";
import { MAX_LIST_LIMIT, MAX_RESULT_BYTES } from "../../src/protocol/routes.js";

const JOBS = 2_000;
const PAYLOAD_BYTES = 128 * 1024;
/** Jobs per enqueue call: the body stays under the 8 MiB request limit. */
const PER_BATCH = 48;
const MiB = 1024 * 1024;

let d: TestDaemon;
let firstId = 0;

/** The daemon's resident set, from the kernel. */
function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m![1]) * 1024;
}

beforeAll(async () => {
  // durability "process": the seeding (256 MB, about 13 s here) is not what is tested.
  d = await startDaemon({ config: { concurrency: 2, durability: "process" } });
  // Due in an hour: they stay pending, as a backlog does.
  const spec = (i: number) => ({ type: "noop", delayMs: 3_600_000, payload: { i, blob: "x".repeat(PAYLOAD_BYTES - 32) } });
  for (let i = 0; i < JOBS; i += PER_BATCH) {
    const { ids } = await d.client.call("jobsEnqueueBatchIds", { jobs: Array.from({ length: Math.min(PER_BATCH, JOBS - i) }, (_, k) => spec(i + k)) });
    if (i === 0) firstId = ids[0]!;
  }
}, 120_000);
afterAll(async () => {
  await d?.cleanup();
});

describe("lists of jobs with big payloads", () => {
  it(`answers jobs list --limit ${MAX_LIST_LIMIT} with summaries, quickly, under 1 MiB, without the daemon's memory jumping`, async () => {
    const before = rssBytes(d.pid);
    const t0 = performance.now();
    const r = await httpRequest(d.paths.socket, { method: "GET", path: `/jobs?limit=${MAX_LIST_LIMIT}` }, 60_000);
    const ms = performance.now() - t0;
    const grew = rssBytes(d.pid) - before;
    expect(r.status, r.body.slice(0, 300)).toBe(200);
    const bytes = Buffer.byteLength(r.body);
    expect(bytes, `reply of ${bytes} bytes`).toBeLessThan(MiB);
    expect(ms, `answered in ${Math.round(ms)} ms`).toBeLessThan(5_000);
    expect(grew, `RSS grew by ${(grew / MiB).toFixed(1)} MiB`).toBeLessThan(64 * MiB);

    const { jobs } = JSON.parse(r.body) as { jobs: JobSummary[] };
    expect(jobs).toHaveLength(MAX_LIST_LIMIT);
    for (const j of jobs) {
      expect(j).not.toHaveProperty("payload");
      expect(j).not.toHaveProperty("result");
      expect(j.payloadBytes).toBeGreaterThan(PAYLOAD_BYTES - 64);
      expect(j.payloadTruncated).toBe(true);
      expect(j.payloadPreview.length).toBeLessThanOrEqual(200);
    }
    expect(jobs[0]!.payloadPreview).toMatch(/^\{"i":1999,"blob":"xxx/);

    // The CLI's table and --json take the same summaries.
    const table = await runCli(["jobs", "list", "--limit", String(MAX_LIST_LIMIT)], { home: d.home, timeoutMs: 30_000 });
    expect(table.exitCode, table.stderr).toBe(0);
    expect(table.stdout.split("\n").filter((l) => /^\s*\d+\s+noop\s+pending/.test(l))).toHaveLength(MAX_LIST_LIMIT);
    const list = await runJson<JobSummary[]>(["jobs", "list", "--limit", "3"], { home: d.home });
    expect(list.json.map((j) => j.payloadBytes)).toEqual([jobs[0]!.payloadBytes, jobs[1]!.payloadBytes, jobs[2]!.payloadBytes]);
    expect(await d.client.call("health", {})).toMatchObject({ ok: true, pid: d.pid });
  });

  it("still shows one job's whole payload", async () => {
    const shown = await runJson<Job>(["jobs", "show", String(firstId)], { home: d.home });
    expect(shown.exitCode, shown.stderr).toBe(0);
    expect(shown.json.payload).toEqual({ i: 0, blob: "x".repeat(PAYLOAD_BYTES - 32) });
  });

  it(`refuses a limit over ${MAX_LIST_LIMIT} with a 400 that says so`, async () => {
    const r = await httpRequest(d.paths.socket, { method: "GET", path: `/jobs?limit=${MAX_LIST_LIMIT + 1}` });
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).error).toMatchObject({ code: "invalid_input", message: expect.stringMatching(new RegExp(`limit.*at most ${MAX_LIST_LIMIT}|limit.*between 1 and ${MAX_LIST_LIMIT}`)) });
    const cli = await runCli(["jobs", "list", "--limit", String(MAX_LIST_LIMIT + 1)], { home: d.home });
    expect(cli.exitCode).toBe(2);
    expect(cli.stderr).toMatch(new RegExp(`--limit must be between 1 and ${MAX_LIST_LIMIT}`));
  });
});

describe("results over the limit", () => {
  it("fails an attempt that returns 50 MB, permanently, with a clear message; the stored job stays small", async () => {
    expect(MAX_RESULT_BYTES).toBe(MiB);
    const { job } = await d.client.call("jobsEnqueue", { type: "huge-result", payload: { mb: 50 } });
    const failed = await waitFor(
      async () => {
        const j = (await d.client.call("jobsGet", { id: job.id })).job;
        return j.status === "failed" || j.status === "complete" ? j : null;
      },
      { timeoutMs: 20_000, what: "the huge-result job to end" },
    );
    expect(failed).toMatchObject({ status: "failed", attempts: 1, result: null });
    expect(failed.error).toBe("the job's result is 47.7 MiB; the limit is 1 MiB: store big outputs as artifacts (ctx.files.putArtifact) and return their names");
    expect(failed.errors).toEqual([expect.objectContaining({ attempt: 1, permanent: true })]);
    const stored = await httpRequest(d.paths.socket, { method: "GET", path: `/jobs/${job.id}` });
    expect(Buffer.byteLength(stored.body)).toBeLessThan(4096);
    expect(await d.client.call("health", {})).toMatchObject({ ok: true, pid: d.pid });
  });

  it("keeps a result just under the limit", async () => {
    const { job } = await d.client.call("jobsEnqueue", { type: "huge-result", payload: { mb: 1 } });
    const done = await waitFor(
      async () => {
        const j = (await d.client.call("jobsGet", { id: job.id })).job;
        return j.status === "failed" || j.status === "complete" ? j : null;
      },
      { timeoutMs: 20_000, what: "the 1 MB result job to end" },
    );
    expect(done.status, done.error ?? "").toBe("complete");
    expect((done.result as { blob: string }).blob).toHaveLength(1e6);
  });
});
