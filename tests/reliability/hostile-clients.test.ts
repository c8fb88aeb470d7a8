// Every kind of hostile or careless client at once, against one real daemon (issue 18's
// done-when): event readers that never read, 50 watchers that do, 150 idle connections, an
// RPC client that pipelines calls and never reads the replies, HTTP bodies sent a byte now
// and then, and a loop of the biggest lists. Meanwhile a worker thread of its own asks for
// /health every 50 ms (so what it measures is the daemon, not this busy test thread).
//
// The daemon drains 3,000 jobs five times over with the same clients attached. It must
// finish every job, keep answering, and keep its memory flat: what a round adds to the
// peak must not keep growing round after round (a leak, or a queue that fills), and the
// peak stays under a bound. The bounds on wall times and memory are loose, for a loaded
// 2-core machine; /health's wait on the daemon's own work (its main thread on a core while
// the answer waited, from /proc on Linux) is bounded closer, as a loaded machine does not
// stretch it. The figures are printed, and bench/hostile.mjs measures them (docs/operations.md).

import { readFileSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { request, type IncomingMessage } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";
import { healthProbe } from "../helpers/health-probe.js";

let d: TestDaemon | undefined;
const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  await d?.cleanup();
  d = undefined;
});

const status = (pid: number, field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
/** Resets the kernel's peak-RSS counter (VmHWM) of a process; false where that is refused. */
const resetPeak = (pid: number) => {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
};

function sse(socket: string, read: boolean): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path: "/events", headers: { accept: "text/event-stream" } }, (res) => {
      if (read) res.resume();
      else res.pause();
      cleanups.push(() => void res.destroy());
      resolve(res);
    });
    req.on("error", reject);
    req.end();
  });
}

function raw(socket: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(socket, () => resolve(s));
    s.on("error", () => {});
    s.once("error", reject);
    cleanups.push(() => void s.destroy());
  });
}

const ROUNDS = 5;
const JOBS = 3000;

describe("hostile clients, all at once", () => {
  it("the daemon finishes every job, answers /health and keeps its memory flat", async () => {
    // With the V8 flag the product starts the daemon with (DAEMON_NODE_FLAGS; the other one is
    // not allowed in NODE_OPTIONS): the memory measured is nearer what a user's daemon takes.
    d = await startDaemon({ config: { concurrency: 3 }, env: { NODE_OPTIONS: "--max-semi-space-size=1" } });
    const sock = d.paths.socket;
    const pid = d.pid;
    const start = status(pid, "VmRSS");

    // Stalled and reading event streams.
    for (let i = 0; i < 3; i++) await sse(sock, false);
    for (let i = 0; i < 50; i++) await sse(sock, true);
    // Idle connections.
    for (let i = 0; i < 150; i++) await raw(sock);
    // An RPC client that pipelines the biggest lists and never reads.
    const rpc = await raw(sock);
    rpc.pause();
    rpc.write("GET /rpc HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: teamwork-rpc\r\n\r\n");
    for (let i = 0; i < 300; i++) rpc.write(JSON.stringify({ id: i, call: "jobsList", input: { limit: 1000 } }) + "\n");
    // Slow bodies: headers promise 1 KiB, a byte comes now and then.
    const slow: Socket[] = [];
    for (let i = 0; i < 5; i++) {
      const s = await raw(sock);
      s.write("POST /tasks HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1024\r\n\r\n{");
      slow.push(s);
    }
    const drip = setInterval(() => slow.forEach((s) => s.writable && s.write(" ")), 500);
    cleanups.push(() => clearInterval(drip));
    // A well-behaved client looping over the biggest list.
    let listing = true;
    const lists = (async () => {
      while (listing) await d!.client.call("jobsList", { limit: 1000 }).catch(() => null);
    })();
    cleanups.push(async () => {
      listing = false;
      await lists;
    });

    const peaks: number[] = [];
    let worst = 0;
    let probes = 0;
    /** Per answer, the daemon's main thread on a core meanwhile (Linux; none elsewhere). */
    const own: number[] = [];
    const measuredPeak = resetPeak(pid);
    for (let round = 1; round <= ROUNDS; round++) {
      await d.client.call("queuePause", {});
      for (let b = 0; b < JOBS / 1000; b++) {
        await d.client.call("jobsEnqueueBatchIds", { jobs: Array.from({ length: 1000 }, (_, i) => ({ type: "quick", payload: { n: b * 1000 + i, pad: "h".repeat(400) } })) });
      }
      if (measuredPeak) resetPeak(pid);
      const probe = healthProbe(sock, 50, pid);
      cleanups.push(() => void probe.terminate());
      await d.client.call("queueResume", {});
      await waitFor(async () => (await d!.client.call("jobsList", { status: "pending", limit: 1 })).jobs.length === 0 && (await d!.client.call("jobsList", { status: "running", limit: 1 })).jobs.length === 0, { timeoutMs: 120_000, intervalMs: 100 });
      const times = await probe.stop();
      probes += times.length;
      worst = Math.max(worst, ...times);
      for (const split of probe.splits()) own.push(split.cpuMs);
      peaks.push(measuredPeak ? status(pid, "VmHWM") : status(pid, "VmRSS"));
    }
    listing = false;
    await lists;
    const complete = (await d.client.call("daemonStatus", {})).counts.jobs.complete;
    const growth = peaks.map((p) => p - start);
    console.log(
      `hostile clients: ${ROUNDS} rounds of ${JOBS} jobs; /health worst ${worst.toFixed(1)} ms (${probes} probes from a thread of their own), ` +
        `its wait on the daemon's own work (main thread on a core) worst ${own.length ? Math.max(...own).toFixed(1) : "unknown"} ms; ` +
        `daemon RSS ${start.toFixed(0)} MiB at start, peak per round +${growth.map((g) => g.toFixed(0)).join(", +")} MiB`,
    );
    expect(complete).toBe(ROUNDS * JOBS);
    // Loose bounds for wall times on a loaded machine. Measured on 2 shared cores (2026-12-03): /health worst
    // 45-160 ms; the peak rises over the first three rounds and levels off (+38, +49, +98,
    // +91, +102 MiB; +50, +61, +87, +77, +92 MiB). Much of that is the drain itself and the growing database:
    // bench/hostile.mjs --calm, with no hostile client, levels off at +35-55 MiB.
    expect(worst).toBeLessThan(1000);
    // What the daemon's own code decides: how long /health waited on the daemon's main thread
    // doing other work (on a core meanwhile; the rest of a wait is the machine's: a core taken
    // by other threads, a disk sync). On 2 cores shared with other runs (2026-12-03, load 6-10)
    // this was 27-30 ms worst while the wall worst was 229-393 ms (bench/hostile.mjs: 19-46
    // against 129-427): load does not stretch it, a slower core does. Any one task of the main
    // thread over 120 ms that a probe meets fails it, where the wall bound must stay loose.
    if (own.length > 0) expect(Math.max(...own)).toBeLessThan(120);
    expect(Math.max(...growth)).toBeLessThan(200);
    // Flat: once warm, two more rounds add little to the peak (measured 1-15 MiB; a leak of
    // 10 KB per job, or a queue that keeps what it sends, would add 60 MiB or more).
    expect(peaks[4]! - peaks[2]!).toBeLessThan(40);
  }, 240_000);
});
