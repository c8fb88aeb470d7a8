// Event streams against a real daemon, read over raw HTTP on its socket: every frame has an
// id and the stream a retry; a reconnect with Last-Event-ID (header or query) gets exactly
// what was missed, no gap and no duplicate; an id the daemon cannot resume from is answered
// with a reset and the current state; events carry a job's head, never its payload; a reader
// that never reads is dropped once it falls out of the window, and the daemon stays responsive.

import { readFileSync } from "node:fs";
import { request, type ClientRequest, type IncomingMessage } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";

let d: TestDaemon | undefined;
afterEach(async () => {
  await d?.cleanup();
  d = undefined;
});

interface Frame {
  id: string | null;
  event: string;
  data: unknown;
  retry?: number;
}

/** An SSE reader over the daemon's socket that keeps every frame it parsed. */
function openStream(socket: string, path: string, headers: Record<string, string> = {}) {
  const frames: Frame[] = [];
  let buf = "";
  let res: IncomingMessage | undefined;
  let ended = false;
  let status = 0;
  const req: ClientRequest = request({ socketPath: socket, path, headers: { accept: "text/event-stream", ...headers } });
  const opened = new Promise<void>((resolve, reject) => {
    req.on("response", (r) => {
      res = r;
      status = r.statusCode ?? 0;
      r.setEncoding("utf8");
      r.on("data", (chunk: string) => {
        buf += chunk;
        for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const f: Frame = { id: null, event: "message", data: null };
          let data: string | null = null;
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue;
            const [k, ...rest] = line.split(":");
            const v = rest.join(":").replace(/^ /, "");
            if (k === "id") f.id = v;
            else if (k === "event") f.event = v;
            else if (k === "data") data = data === null ? v : data + "\n" + v;
            else if (k === "retry") f.retry = Number(v);
          }
          if (data !== null) f.data = JSON.parse(data);
          if (data !== null || f.retry !== undefined) frames.push(f);
        }
      });
      r.on("end", () => (ended = true));
      r.on("close", () => (ended = true));
      resolve();
    });
    req.on("error", reject);
  });
  req.end();
  return {
    frames,
    opened,
    get status() {
      return status;
    },
    get ended() {
      return ended;
    },
    events: () => frames.filter((f) => f.event.startsWith("job:")),
    close() {
      req.destroy();
      res?.destroy();
    },
  };
}

const seqOf = (id: string | null) => Number(id!.split("-")[1]);

describe("event streams", () => {
  it("resume after a disconnect with Last-Event-ID: every event once, in order, with ids and a retry", async () => {
    d = await startDaemon();
    const sock = d.paths.socket;
    const first = openStream(sock, "/events");
    await first.opened;
    await waitFor(() => first.frames.length > 0);
    expect(first.frames[0]!.retry).toBeGreaterThan(0);
    for (let i = 0; i < 5; i++) await d.client.call("jobsEnqueue", { type: "quick", payload: { big: "x".repeat(2000) } });
    await waitFor(() => first.events().filter((f) => f.event === "job:status" && (f.data as { job: { status: string } }).job.status === "complete").length === 5);
    first.close();
    const seen = first.events();
    const last = seen.at(-1)!.id!;
    // Events carry the job's head: no payload (nor result) in a stream.
    for (const f of seen.filter((e) => e.event === "job:status")) {
      expect(f.data).toMatchObject({ job: { id: expect.any(Number), type: "quick", status: expect.any(String) } });
      expect(Object.keys((f.data as { job: object }).job)).not.toContain("payload");
      expect(Object.keys((f.data as { job: object }).job)).not.toContain("result");
    }

    // Missed while away: five more jobs.
    for (let i = 0; i < 5; i++) await d.client.call("jobsEnqueue", { type: "quick" });
    await waitFor(async () => (await d!.client.call("jobsList", { status: "complete", type: "quick" })).jobs.length === 10);
    const second = openStream(sock, "/events", { "last-event-id": last });
    await second.opened;
    await waitFor(() => second.events().filter((f) => f.event === "job:status" && (f.data as { job: { status: string } }).job.status === "complete").length === 5);
    second.close();
    const ids = [...seen, ...second.events()].map((f) => seqOf(f.id));
    // The global stream sees every event: consecutive ids across both connections.
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => ids[0]! + i));

    // The same through the query string, for clients that cannot set a header.
    const third = openStream(sock, `/events?lastEventId=${encodeURIComponent(last)}`);
    await third.opened;
    await waitFor(() => third.events().length >= second.events().length);
    third.close();
    expect(third.events().map((f) => f.id)).toEqual(second.events().map((f) => f.id));
  });

  it("a job's stream resumes with that job's events only, and an unknown id gets a reset and the job's state", async () => {
    d = await startDaemon();
    const sock = d.paths.socket;
    const { job } = await d.client.call("jobsEnqueue", { type: "slow-progress", payload: { steps: 6, stepMs: 150 } });
    await d.client.call("jobsEnqueue", { type: "quick" }); // another job's events interleave
    const s1 = openStream(sock, `/jobs/${job.id}/events`);
    await s1.opened;
    await waitFor(() => s1.events().some((f) => f.event === "job:progress"));
    s1.close();
    const last = s1.events().at(-1)!.id!;
    await waitFor(async () => (await d!.client.call("jobsGet", { id: job.id })).job.status === "complete", { timeoutMs: 10_000 });
    const s2 = openStream(sock, `/jobs/${job.id}/events`, { "last-event-id": last });
    await s2.opened;
    await waitFor(() => s2.events().some((f) => f.event === "job:status" && (f.data as { job: { status: string } }).job.status === "complete"));
    s2.close();
    const all = [...s1.events(), ...s2.events()];
    expect(all.every((f) => ((f.data as { jobId?: number; job?: { id: number } }).jobId ?? (f.data as { job: { id: number } }).job.id) === job.id)).toBe(true);
    const seqs = all.map((f) => seqOf(f.id));
    expect(new Set(seqs).size).toBe(seqs.length); // no duplicate
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs); // in order
    // Resumed: no snapshot was sent again (the first frame is a live event after `last`).
    expect(seqOf(s2.events()[0]!.id)).toBeGreaterThan(seqOf(last));

    for (const bad of ["00000000-5", "nonsense", `${last.split("-")[0]}-999999999`]) {
      const s3 = openStream(sock, `/jobs/${job.id}/events`, { "last-event-id": bad });
      await s3.opened;
      await waitFor(() => s3.events().length >= 1);
      s3.close();
      expect(s3.frames.find((f) => f.event === "reset")).toMatchObject({ data: { reason: expect.any(String) } });
      expect(s3.events()[0]).toMatchObject({ event: "job:status", data: { job: { id: job.id, status: "complete" } } });
    }
    const missing = openStream(sock, `/jobs/999999/events`);
    await missing.opened;
    expect(missing.status).toBe(404);
    missing.close();
  });

  it("drops a reader that never reads once it falls out of the window; the daemon stays responsive", async () => {
    d = await startDaemon({ config: { concurrency: 2 } });
    const sock = d.paths.socket;
    // A reader that stops reading at once: its socket buffers fill, then nothing moves.
    const stalled = request({ socketPath: sock, path: "/events", headers: { accept: "text/event-stream" } });
    const got = new Promise<IncomingMessage>((resolve) => stalled.on("response", resolve));
    stalled.end();
    const res = await got;
    res.pause();
    const rssBefore = readRss(d.pid);
    // Well over the window (10,000 events): each job makes three.
    const big = "y".repeat(500);
    for (let b = 0; b < 8; b++) await d.client.call("jobsEnqueueBatchIds", { jobs: Array.from({ length: 1000 }, () => ({ type: "quick", payload: { big } })) });
    await waitFor(async () => (await d!.client.call("jobsList", { status: "pending", type: "quick", limit: 1 })).jobs.length === 0 && (await d!.client.call("jobsList", { status: "running", limit: 1 })).jobs.length === 0, { timeoutMs: 60_000 });
    const t = performance.now();
    await d.client.call("health", {});
    expect(performance.now() - t).toBeLessThan(1000);
    expect(readRss(d.pid) - rssBefore).toBeLessThan(150 * 1024 * 1024);
    // Reading now, what the stalled reader had been sent ends with a "dropped" event that
    // says how to resume, and then the daemon ends the stream.
    const text = await drain(res);
    expect(text).toMatch(/event: dropped\ndata: \{"reason":"[^"]+","lastEventId":"[0-9a-f]{8}-\d+"\}\n\n$/);
  });
});

function readRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) * 1024;
}

function drain(res: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    res.setEncoding("utf8");
    res.on("data", (c: string) => (text += c));
    res.on("close", () => resolve(text));
    res.on("end", () => resolve(text));
    res.resume();
  });
}
