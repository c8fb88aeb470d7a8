// The job commands through the real binary: --json shapes, exit codes, plain watch output.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { runCli, runJson } from "../helpers/cli.js";
import type { Job } from "../../src/protocol/types.js";

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon({ config: { backoff: { base: "20ms", cap: "50ms" }, cancelGrace: "300ms" } });
});
afterAll(async () => {
  await d?.cleanup();
});

const SUMMARY_FIELDS = ["id", "type", "status", "progress", "progressMessage", "attempts", "maxAttempts", "runAt", "priority", "uniqueKey", "slot", "error", "createdAt", "startedAt", "finishedAt", "payloadBytes", "payloadPreview", "payloadTruncated", "resultBytes", "resultPreview", "resultTruncated"];
const JOB_FIELDS = ["id", "type", "payload", "status", "progress", "progressMessage", "attempts", "maxAttempts", "runAt", "priority", "uniqueKey", "slot", "result", "error", "createdAt", "startedAt", "finishedAt"];

describe("teamwork enqueue / jobs", () => {
  it("enqueue --json prints the job object at once", async () => {
    const r = await runJson<Job>(["enqueue", "noop", "--data", '{"a":1}', "--priority", "7", "--max-attempts", "2"], { home: d.home });
    expect(r.exitCode).toBe(0);
    for (const f of JOB_FIELDS) expect(r.json).toHaveProperty(f);
    expect(r.json).toMatchObject({ type: "noop", payload: { a: 1 }, priority: 7, maxAttempts: 2 });
  });

  it("jobs list --json prints an array of jobs; jobs show --json one job", async () => {
    expect((await runCli(["enqueue", "noop", "--watch"], { home: d.home })).exitCode).toBe(0);
    const list = await runJson<Job[]>(["jobs", "list", "--type", "noop", "--limit", "5"], { home: d.home });
    expect(Array.isArray(list.json)).toBe(true);
    expect(list.json.length).toBeGreaterThan(0);
    expect(list.json.every((j) => j.type === "noop")).toBe(true);
    for (const f of SUMMARY_FIELDS) expect(list.json[0]).toHaveProperty(f);
    expect(list.json[0]).not.toHaveProperty("payload");
    const latest = list.json[0]!;
    const show = await runJson<Job>(["jobs", "show", String(latest.id)], { home: d.home });
    expect(show.json.id).toBe(latest.id);
    expect(show.json.status).toBe(latest.status);
  });

  it("watch prints one plain line per change outside a TTY and exits 0 on complete", async () => {
    const r = await runCli(["enqueue", "slow-progress", "--data", '{"steps":3,"stepMs":40}', "--watch"], { home: d.home });
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^Queued job \d+ \(slow-progress\)$/);
    expect(lines.some((l) => /running 33%: step 1 of 3/.test(l))).toBe(true);
    expect(lines.at(-1)).toMatch(/complete: \{"steps":3\}$/);
    expect(r.stdout).not.toMatch(/\u001b\[/);
  });

  it("watch exits 1 when the job fails, and shows the error", async () => {
    // The type is paused until the watcher follows the job: with 20 ms between attempts, a
    // watcher that subscribes late (a loaded machine) would only see the end.
    await d.client.call("queuePause", { type: "throw" });
    let resumed: Promise<unknown> | null = null;
    const r = await runCli(["enqueue", "throw", "--max-attempts", "2", "--watch"], {
      home: d.home,
      onStdout: (soFar) => {
        if (!resumed && /\(throw\) pending/.test(soFar)) resumed = d.client.call("queueResume", { type: "throw" });
      },
    });
    await resumed;
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/retry 2\/2 after error: boom on attempt 1/);
    expect(r.stdout.trim().split("\n").at(-1)).toMatch(/failed after 2 attempts: boom on attempt 2/);
  });

  it("watch --json prints one JSON event per line", async () => {
    const r = await runCli(["enqueue", "noop", "--watch", "--json"], { home: d.home });
    expect(r.exitCode).toBe(0);
    const events = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { event: string; job?: Job });
    expect(events[0]!.event).toBe("job:status");
    expect(events.at(-1)!.job!.status).toBe("complete");
  });

  it("cancel prints Cancelled by user; a watcher of a cancelled job exits 1", async () => {
    const { json: job } = await runJson<Job>(["enqueue", "until-cancelled"], { home: d.home });
    const watching = runCli(["jobs", "watch", String(job.id)], { home: d.home });
    const c = await runCli(["jobs", "cancel", String(job.id)], { home: d.home });
    expect(c.exitCode).toBe(0);
    expect(c.stdout).toMatch(/Cancelled by user/);
    const w = await watching;
    expect(w.exitCode).toBe(1);
    expect(w.stdout).toMatch(/Cancelled by user/);
    const again = await runCli(["jobs", "cancel", String(job.id)], { home: d.home });
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toMatch(/already cancelled/);
  });

  it("retry puts a failed job back; status prints one line", async () => {
    expect((await runCli(["enqueue", "permanent", "--watch"], { home: d.home })).exitCode).toBe(1);
    const list = await runJson<Job[]>(["jobs", "list", "--type", "permanent", "--limit", "1"], { home: d.home });
    const id = list.json[0]!.id;
    const r = await runCli(["jobs", "retry", String(id)], { home: d.home });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`job ${id} \\(permanent\\) queued again`));
    const s = await runCli(["jobs", "status", String(id)], { home: d.home });
    expect(s.stdout.trim().split("\n")).toHaveLength(1);
    expect(s.stdout).toMatch(new RegExp(`^job ${id} \\(permanent\\)`));
  });

  it("uses the documented exit codes for bad input and unknown jobs", async () => {
    const cases: [string[], number, RegExp][] = [
      [["jobs", "show", "424242"], 4, /job 424242 not found/],
      [["jobs", "show", "x1"], 2, /not an id/],
      [["jobs", "cancel", "424242"], 4, /not found/],
      [["enqueue", "noop", "--data", "{nope"], 2, /not valid JSON/],
      [["enqueue", "noop", "--in", "10"], 2, /no unit/],
      [["enqueue", "noop", "--in", "5m", "--at", "2026-12-01T09:00"], 2, /cannot be used with/],
      [["enqueue", "noop", "--at", "tomorrow"], 2, /is not a time/],
      [["enqueue", "noop", "--priority", "high"], 2, /whole number/],
      [["enqueue", "noop", "--max-attempts", "0"], 2, /between 1 and 100/],
      [["enqueue", "nope"], 2, /unknown job type "nope"/],
      [["enqueue", "validated", "--data", '{"n":"x"}'], 2, /n must be a number/],
      [["jobs", "list", "--status", "done"], 2, /Allowed choices/],
      [["jobs", "prune", "--older-than", "soon"], 2, /could not read/],
      [["jbos", "list"], 2, /Did you mean jobs\?/i],
    ];
    for (const [args, code, message] of cases) {
      const r = await runCli(args, { home: d.home });
      expect(r.exitCode, args.join(" ")).toBe(code);
      expect(r.stderr, args.join(" ")).toMatch(message);
    }
    const j = await runJson<{ error: { code: string; message: string } }>(["jobs", "show", "424242"], { home: d.home });
    expect(j.exitCode).toBe(4);
    expect(j.json.error).toMatchObject({ code: "not_found", message: "job 424242 not found" });
  });

  it("prune reports how many finished jobs it removed", async () => {
    const r = await runJson<{ pruned: number }>(["jobs", "prune", "--older-than", "0s"], { home: d.home });
    expect(r.exitCode).toBe(0);
    expect(r.json.pruned).toBeGreaterThan(0);
    const left = await runJson<Job[]>(["jobs", "list", "--limit", "1000"], { home: d.home });
    expect(left.json.every((j) => j.status === "pending" || j.status === "running")).toBe(true);
  });
});

describe("the report job", () => {
  it("writes a report with exact counts for a board built here", async () => {
    const home = { home: d.home };
    expect((await runCli(["boards", "add", "web"], home)).exitCode).toBe(0);
    const add = (args: string[]) => runJson<{ id: number }>(["tasks", "add", ...args, "--board", "web"], home).then((r) => r.json.id);
    const a = await add(["Spec", "--assignee", "ana@example.com"]);
    await add(["Design", "--assignee", "ana@example.com", "--due", "2020-01-01"]);
    await add(["Build", "--assignee", "bo@example.com", "--due", "2999-01-01"]);
    const gone = await add(["Scrap"]);
    await runCli(["tasks", "done", String(a)], home);
    await runCli(["tasks", "rm", String(gone)], home);

    // --out: follows the job, then saves the report it stored (in the database) here.
    const out = join(d.home, "..", `report-${process.pid}.json`);
    const r = await runCli(["enqueue", "report", "--board", "web", "--data", '{"format":"json"}', "--out", out], home);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/complete: artifact web-\d{8}-\d{6}-job\d+\.json \([\d.]+ (B|KiB)\)/);
    expect(r.stdout).toMatch(new RegExp(`Saved web-\\d{8}-\\d{6}-job\\d+\\.json \\(application/json, [\\d.]+ (B|KiB)\\) to ${out.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
    const report = JSON.parse(readFileSync(out, "utf8"));
    expect(report.board).toBe("web");
    expect(report.totals).toEqual({ tasks: 3, done: 1, pending: 2, byStatus: { todo: 2, doing: 0, done: 1 } });
    expect(report.byAssignee).toEqual([
      { assignee: "ana@example.com", total: 2, done: 1, pending: 1, overdue: 1 },
      { assignee: "bo@example.com", total: 1, done: 0, pending: 1, overdue: 0 },
    ]);
    expect(report.overdue.count).toBe(1);
    expect(report.overdue.tasks[0].title).toBe("Design");
    expect(report.activity.counts).toMatchObject({ created: 4, completed: 1, deleted: 1, assigned: 3 });

    // --watch: says where the report is and how to fetch it; `jobs artifact` sends it to stdout (not a terminal).
    const html = await runCli(["enqueue", "report", "--board", "web", "--watch"], home);
    const [, jobId, name] = /fetch it from any node with: teamwork jobs artifact (\d+) -o (\S+\.html)/.exec(html.stdout)!;
    const page = (await runCli(["jobs", "artifact", jobId!, name!], home)).stdout;
    expect(page).toMatch(/^<!doctype html>/);
    expect(page).toContain("Board report: web");
    expect(page).not.toMatch(/<script|<link /); // self-contained

    // The one artifact of a job needs no name.
    const md = await runCli(["enqueue", "report", "--board", "web", "--format", "md", "--watch"], home);
    expect(md.exitCode).toBe(0);
    const mdJob = /teamwork jobs artifact (\d+) -o/.exec(md.stdout)![1]!;
    const mdText = await runCli(["jobs", "artifact", mdJob], home);
    expect(mdText.exitCode, mdText.stderr).toBe(0);
    expect(mdText.stdout).toContain("# Board report: web");
    const badFormat = await runCli(["enqueue", "report", "--board", "web", "--format", "pdf"], home);
    expect(badFormat.exitCode).toBe(2);
    expect(badFormat.stderr).toMatch(/format must be one of html, md, json/);
    const notObject = await runCli(["enqueue", "report", "--format", "md", "--data", "[1]"], home);
    expect(notObject.exitCode).toBe(2);
    expect(notObject.stderr).toContain("--format needs --data to be a JSON object");

    const missing = await runCli(["enqueue", "report", "--board", "nope"], home);
    expect(missing.exitCode).toBe(4);
  });
});
