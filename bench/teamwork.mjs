// teamwork's side of the benchmarks: a real daemon on a temp home (a separate process, as
// in real use), driven over its socket with the compiled client in dist/.
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "../dist/client/client.js";
import { resolvePaths } from "../dist/config/paths.js";
import { DAEMON_NODE_FLAGS } from "../dist/client/autostart.js";
import { peakMiB, resetPeak, rssMiB, rssSampler, sleep, until, wallNow, withTimeout } from "./lib/util.mjs";

const DAEMON = fileURLToPath(new URL("../dist/daemon/main.js", import.meta.url));
const NOOP = fileURLToPath(new URL("./noop.mjs", import.meta.url));

/** Every daemon this process started and has not stopped yet (for cleanup on Ctrl-C). */
export const liveDaemons = new Set();

/**
 * Starts a daemon and waits for /health. `home` reuses a folder (kept on stop); otherwise a
 * fresh temp home is made and removed on stop. `execArgv` goes to node (e.g. --cpu-prof).
 */
export async function startTeamwork({ concurrency = 3, durability = "full", home, execArgv = [], config = {} } = {}) {
  const ownHome = !home;
  home ??= mkdtempSync(join(tmpdir(), "tw-bench-"));
  writeFileSync(join(home, "config.json"), JSON.stringify({ jobModules: [NOOP], concurrency, durability, retention: "30d", ...config }));
  const paths = resolvePaths({ home });
  const fd = openSync(join(home, "daemon.log"), "a");
  const t0 = performance.now();
  // Started as the product starts it (auto-start, the service unit): with its V8 flags.
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, ...execArgv, DAEMON, "--home", home], { stdio: ["ignore", fd, fd], cwd: home });
  closeSync(fd);
  let exited = false;
  const exit = new Promise((r) => child.on("exit", () => ((exited = true), r())));
  const client = new Client({ socket: paths.socket, keepAlive: true });
  const handle = {
    home,
    client,
    pid: child.pid,
    socket: paths.socket,
    database: join(home, "teamwork.db"),
    startMs: 0,
    async stop({ keepHome = !ownHome } = {}) {
      liveDaemons.delete(handle);
      if (!exited) {
        child.kill("SIGTERM");
        await withTimeout(exit, 20_000, "daemon stop").catch(async () => {
          child.kill("SIGKILL");
          await exit;
        });
      }
      client.close();
      if (!keepHome) rmSync(home, { recursive: true, force: true });
    },
    log: () => (existsSync(join(home, "daemon.log")) ? readFileSync(join(home, "daemon.log"), "utf8").split("\n").slice(-20).join("\n") : ""),
  };
  liveDaemons.add(handle);
  try {
    await until(
      async () => {
        if (exited) throw new Error(`the daemon exited at start:\n${handle.log()}`);
        try {
          await client.call("health", {});
          return true;
        } catch {
          return false;
        }
      },
      { timeoutMs: 60_000, intervalMs: 10, what: "the daemon to answer /health" },
    );
  } catch (err) {
    await handle.stop();
    throw err;
  }
  handle.startMs = performance.now() - t0;
  return handle;
}

/** Waits until every job is complete by following the event stream (used by quick.mjs). */
export function completions(client, total) {
  let done = 0;
  let resolve;
  const finished = new Promise((r) => (resolve = r));
  const stream = client.stream("eventsStream", {}, (e) => {
    if (e.type === "job:status" && e.data.job.status === "complete" && ++done === total) {
      stream.close();
      resolve();
    }
  });
  return { opened: stream.opened, finished };
}

/** True when no job is pending or running (cheap: two indexed LIMIT 1 reads). */
async function drained(client) {
  if ((await client.call("jobsList", { status: "pending", limit: 1 })).jobs.length) return false;
  return (await client.call("jobsList", { status: "running", limit: 1 })).jobs.length === 0;
}

const BATCH = 1000;
/** The daemon's concurrency in the latency workloads (its default); the peers get the same. */
export const CONCURRENCY = 3;
/** Gap between warm-up jobs before an idle period (sporadic). */
export const WARM_GAP_MS = 5;
const specs = (from, count, extra = {}) => Array.from({ length: count }, (_, k) => ({ type: "bench-noop", payload: { i: from + k }, ...extra }));

/** teamwork as one system of the comparison, at one durability. */
export function teamworkSystem(durability) {
  return {
    id: `teamwork-${durability}`,
    label: `teamwork (${durability})`,
    teamwork: true,
    settings:
      durability === "full"
        ? "durability \"full\": SQLite WAL, synchronous=FULL — every commit fsync'd before the reply; daemon in its own process, the client over the Unix socket (RPC: one connection, a JSON line per call; batches with POST /jobs/batch/ids, answered with the ids); handlers in worker threads, started with the daemon's own V8 flags (--max-semi-space-size=1 --optimize-for-size)"
        : "durability \"process\": SQLite WAL, synchronous=NORMAL — no fsync per commit (safe against a daemon crash, not a power cut); otherwise as above",
    async oneByOne(n) {
      const tw = await startTeamwork({ durability });
      try {
        await tw.client.call("queuePause", {});
        const t = performance.now();
        for (let i = 0; i < n; i++) await tw.client.call("jobsEnqueue", { type: "bench-noop", payload: { i } });
        return n / ((performance.now() - t) / 1000);
      } finally {
        await tw.stop();
      }
    },
    async bulk(n) {
      const tw = await startTeamwork({ durability });
      try {
        await tw.client.call("queuePause", {});
        const t = performance.now();
        for (let i = 0; i < n; i += BATCH) await tw.client.call("jobsEnqueueBatchIds", { jobs: specs(i, Math.min(BATCH, n - i)) });
        return n / ((performance.now() - t) / 1000);
      } finally {
        await tw.stop();
      }
    },
    /**
     * B and D: n queued no-ops, processed with `concurrency` slots; the daemon's peak RSS
     * meanwhile. The jobs are queued (paused), then the daemon is restarted on them, so that
     * what it has left over from receiving them (heap, buffers) is not counted; the peers'
     * worker processes likewise start with their jobs already stored.
     */
    async process(n, concurrency) {
      const first = await startTeamwork({ durability, concurrency });
      let tw = first;
      try {
        await tw.client.call("queuePause", {});
        for (let i = 0; i < n; i += BATCH) await tw.client.call("jobsEnqueueBatchIds", { jobs: specs(i, Math.min(BATCH, n - i)) });
        await tw.stop({ keepHome: true });
        tw = await startTeamwork({ durability, concurrency, home: first.home }); // still paused: kept across restarts
        await sleep(200);
        const idleMiB = rssMiB(tw.pid);
        const reset = resetPeak(tw.pid);
        const sampler = rssSampler([tw.pid]);
        const t = performance.now();
        await tw.client.call("queueResume", {});
        await until(() => drained(tw.client), { timeoutMs: 600_000, intervalMs: 10, what: `teamwork to process ${n} jobs` });
        const seconds = (performance.now() - t) / 1000;
        const sampled = sampler.stop();
        const peak = reset ? peakMiB(tw.pid) : sampled;
        const counts = (await tw.client.call("daemonStatus", {})).counts.jobs;
        if (counts.complete !== n) throw new Error(`teamwork completed ${counts.complete} of ${n} jobs (${JSON.stringify(counts)})`);
        return { rate: n / seconds, peakMiB: Math.max(peak, sampled), idleMiB };
      } finally {
        await tw.stop({ keepHome: false });
      }
    },
    /**
     * Enqueue→start latency (C, C cold, sporadic), on a fresh daemon with the default
     * concurrency: `warm` jobs WARM_GAP_MS apart, not counted; then, if `idleMs`, nothing at
     * all for idleMs once they are done; then `count` jobs `gapMs` apart. With warm = 0 and
     * idleMs = 0 the first job is sent as soon as the new daemon answers /health (cold).
     * Returns, in enqueue order (index 0 = the first job measured), the ms from the enqueue
     * call to the handler's first line (`lat`) and to the enqueue's reply (`ack`).
     */
    async latency({ count, gapMs, warm = 0, idleMs = 0 }) {
      const tw = await startTeamwork({ durability, concurrency: CONCURRENCY });
      try {
        const stamp = () => tw.client.call("jobsEnqueue", { type: "bench-stamp" });
        let idleRss;
        for (let i = 0; i < warm; i++) {
          await stamp();
          await sleep(idleMs > 0 ? WARM_GAP_MS : gapMs);
        }
        if (idleMs > 0) {
          await until(() => drained(tw.client), { timeoutMs: 60_000, what: "the warm-up jobs to finish" });
          await sleep(idleMs);
          idleRss = rssMiB(tw.pid);
        }
        const ids = [];
        const sent = [];
        const ack = [];
        for (let i = 0; i < count; i++) {
          const t0 = wallNow();
          const { job } = await stamp();
          ack.push(wallNow() - t0);
          ids.push(job.id);
          sent.push(t0);
          if (i < count - 1) await sleep(gapMs);
        }
        await until(() => drained(tw.client), { timeoutMs: 60_000, what: "the latency jobs to finish" });
        // One GET /jobs/:id per job: lists are capped at 1,000 and carry only a result preview.
        const lat = [];
        for (let k = 0; k < count; k++) {
          const { job } = await tw.client.call("jobsGet", { id: ids[k] });
          if (!job.result || typeof job.result.at !== "number") throw new Error(`teamwork: latency job ${ids[k]} (#${k}) reported no start (status ${job.status})`);
          lat.push(job.result.at - sent[k]);
        }
        return { lat, ack, idleRssMiB: idleRss };
      } finally {
        await tw.stop();
      }
    },
    /** The daemon's RSS once started and quiet. */
    async idle() {
      const tw = await startTeamwork({ durability });
      try {
        await sleep(1000);
        return { rssMiB: rssMiB(tw.pid), startMs: tw.startMs };
      } finally {
        await tw.stop();
      }
    },
  };
}
