// /metrics on a real daemon (issue 17, item 10): counters that only grow, by exactly the
// jobs that finished between two scrapes, also after those jobs left the store (pruned:
// what `teamwork stats`, a window over stored jobs, no longer sees), and a valid exposition.

import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { runJson } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";
import { key, parseExposition, type Exposition } from "../helpers/prometheus.js";
import type { Job, Stats } from "../../src/protocol/types.js";

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon({ config: { backoff: { base: "10ms", cap: "20ms" } } });
});
afterAll(async () => {
  await d?.cleanup();
});

function scrape(): Promise<Exposition> {
  return new Promise((resolve, reject) => {
    request({ socketPath: d.paths.socket, path: "/metrics" }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString("utf8")));
      res.on("end", () => {
        try {
          expect(res.statusCode).toBe(200);
          expect(res.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
          resolve(parseExposition(body));
        } catch (err) {
          reject(err);
        }
      });
    })
      .on("error", reject)
      .end();
  });
}

const enqueue = async (type: string, extra: Record<string, unknown> = {}) => (await d.client.call("jobsEnqueue", { type, ...extra })).job;
const settled = (ids: number[]) =>
  Promise.all(ids.map((id) => waitFor(async () => {
    const j: Job = (await d.client.call("jobsGet", { id })).job;
    return j.status === "complete" || j.status === "failed" || j.status === "cancelled" ? j : null;
  }, { what: `job ${id} to finish` })));

/** Every counter and histogram series of `before`, with its value in `after`. */
function cumulativeSeries(before: Exposition, after: Exposition): [string, number, number][] {
  const families = [...before.types].filter(([, t]) => t === "counter" || t === "histogram").map(([n]) => n);
  return [...before.samples]
    .filter(([k]) => families.some((f) => k === f || k.startsWith(`${f}{`) || k.startsWith(`${f}_`)))
    .map(([k, v]) => [k, v, after.samples.get(k) ?? NaN]);
}

/**
 * How much each counter and histogram series of the test's types grew; every series of
 * every type (a built-in schedule may run a job meanwhile) must not have shrunk.
 */
function growth(before: Exposition, after: Exposition): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, a, b] of cumulativeSeries(before, after)) {
    expect(b, `${k} disappeared or decreased`).toBeGreaterThanOrEqual(a);
    if (b !== a && /type="(noop|throw)"/.test(k)) out.set(k, Math.round((b - a) * 1e6) / 1e6);
  }
  return out;
}

const c = (name: string, labels: Record<string, string>) => key(name, labels);

describe("GET /metrics", () => {
  it("counts since start: never decreasing, growing by exactly the jobs finished in between, after the jobs are gone", async () => {
    const s0 = await scrape();
    expect(s0.samples.get(key("process_start_time_seconds"))).toBeGreaterThan(Date.now() / 1000 - 600);
    // Registered types are there from the start, at zero.
    expect(s0.samples.get(c("teamwork_jobs_finished_total", { type: "noop", outcome: "complete" }))).toBe(0);
    expect(s0.samples.get(c("teamwork_job_run_seconds_count", { type: "noop" }))).toBe(0);

    // Round 1: 5 complete, 2 fail after a retry each, 1 cancelled while waiting.
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await enqueue("noop")).id);
    for (let i = 0; i < 2; i++) ids.push((await enqueue("throw", { maxAttempts: 2 })).id);
    const waiting = await enqueue("noop", { delayMs: 3_600_000 });
    await d.client.call("jobsCancel", { id: waiting.id });
    await settled([...ids, waiting.id]);
    const s1 = await scrape();
    expect(Object.fromEntries(growth(s0, s1))).toMatchObject({
      [c("teamwork_jobs_finished_total", { type: "noop", outcome: "complete" })]: 5,
      [c("teamwork_jobs_finished_total", { type: "noop", outcome: "cancelled" })]: 1,
      [c("teamwork_jobs_finished_total", { type: "throw", outcome: "failed" })]: 2,
      [c("teamwork_job_attempts_total", { type: "noop" })]: 5,
      [c("teamwork_job_attempts_total", { type: "throw" })]: 4,
      [c("teamwork_job_retries_total", { type: "throw" })]: 2,
      [c("teamwork_job_run_seconds_count", { type: "noop" })]: 5,
      [c("teamwork_job_run_seconds_bucket", { type: "noop", le: "+Inf" })]: 5,
      [c("teamwork_job_start_latency_seconds_count", { type: "noop" })]: 5,
      [c("teamwork_job_start_latency_seconds_count", { type: "throw" })]: 4,
    });
    expect(growth(s0, s1).has(c("teamwork_job_retries_total", { type: "noop" }))).toBe(false);
    expect(growth(s0, s1).has(c("teamwork_job_run_seconds_count", { type: "throw" }))).toBe(false);

    // The finished jobs leave the store: the windowed view (`teamwork stats`) loses them.
    await waitFor(async () => {
      await d.client.call("jobsPrune", { olderThan: "1ms" });
      const counts = (await scrape()).samples;
      return ["complete", "failed", "cancelled"].every((status) => counts.get(c("teamwork_jobs", { status })) === 0);
    }, { what: "every finished job pruned" });
    const stats = await runJson<Stats>(["stats", "--since", "24h"], { home: d.home });
    expect(stats.json.types).toEqual([]);
    const s2 = await scrape();
    expect(growth(s1, s2).size).toBe(0);

    // Round 2: exactly these show up, on top of round 1.
    const more = [];
    for (let i = 0; i < 3; i++) more.push((await enqueue("noop")).id);
    more.push((await enqueue("throw", { maxAttempts: 1 })).id);
    await settled(more);
    const s3 = await scrape();
    const g = growth(s2, s3);
    const counters = Object.fromEntries([...g].filter(([k]) => !k.includes("_seconds_")));
    expect(counters).toEqual({
      [c("teamwork_jobs_finished_total", { type: "noop", outcome: "complete" })]: 3,
      [c("teamwork_jobs_finished_total", { type: "throw", outcome: "failed" })]: 1,
      [c("teamwork_job_attempts_total", { type: "noop" })]: 3,
      [c("teamwork_job_attempts_total", { type: "throw" })]: 1,
    });
    expect(g.get(c("teamwork_job_run_seconds_count", { type: "noop" }))).toBe(3);
    expect(g.get(c("teamwork_job_start_latency_seconds_count", { type: "noop" }))).toBe(3);
    expect(g.get(c("teamwork_job_start_latency_seconds_count", { type: "throw" }))).toBe(1);
    expect(s3.samples.get(c("teamwork_jobs_finished_total", { type: "noop", outcome: "complete" }))).toBe(8);
    growth(s0, s3);
  });
});
