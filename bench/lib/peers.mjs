// The parent side of a peer: the same workloads as teamwork's (teamwork.mjs), with the
// peer's workers in separate processes (peers/worker.mjs), as teamwork's daemon is separate
// from its client.
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { peakMiB, resetPeak, rssMiB, rssSampler, sleep, until, wallNow, withTimeout } from "./util.mjs";

const WORKER = fileURLToPath(new URL("../peers/worker.mjs", import.meta.url));
const BATCH = 1000;

/** Every worker process alive (for cleanup on Ctrl-C). */
export const liveWorkers = new Set();

function spawnWorker(peerId, ref, concurrency) {
  const child = fork(WORKER, [peerId, JSON.stringify(ref), String(concurrency)], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv: [] });
  liveWorkers.add(child);
  let exited = false;
  const exit = new Promise((r) => child.on("exit", (code, signal) => ((exited = true), liveWorkers.delete(child), r({ code, signal }))));
  const w = {
    pid: child.pid,
    count: 0,
    starts: new Map(),
    ready: new Promise((resolve, reject) => {
      child.on("message", (m) => m.t === "ready" && resolve());
      exit.then(({ code, signal }) => reject(new Error(`${peerId} worker exited before it was ready (code ${code}, signal ${signal})`)));
    }),
    exited: () => exited,
    go: (report = false) => child.send({ t: "go", report }),
    async stop() {
      if (exited) return;
      child.send({ t: "stop" });
      await withTimeout(exit, 15_000, `${peerId} worker stop`).catch(async () => {
        child.kill("SIGKILL");
        await exit;
      });
    },
  };
  child.on("message", (m) => {
    if (m.t === "count") w.count = m.count;
    else if (m.t === "start") w.starts.set(m.i, m.at);
  });
  return w;
}

async function fill(q, n) {
  const batch = q.addBatch ?? q.fill;
  if (batch) for (let i = 0; i < n; i += BATCH) await batch(i, Math.min(BATCH, n - i));
  else for (let i = 0; i < n; i++) await q.add(i);
}

/** A peer module (peers/<id>.mjs) as one system of the comparison. */
export function peerSystem(peer, defaultConcurrency) {
  return {
    id: peer.id,
    label: peer.label,
    teamwork: false,
    get settings() {
      return peer.settings(defaultConcurrency);
    },
    async oneByOne(n) {
      const q = await peer.openQueue();
      try {
        const t = performance.now();
        for (let i = 0; i < n; i++) await q.add(i);
        return n / ((performance.now() - t) / 1000);
      } finally {
        await q.close();
      }
    },
    async bulk(n) {
      const q = await peer.openQueue();
      try {
        if (!q.addBatch) return null;
        const t = performance.now();
        for (let i = 0; i < n; i += BATCH) await q.addBatch(i, Math.min(BATCH, n - i));
        return n / ((performance.now() - t) / 1000);
      } finally {
        await q.close();
      }
    },
    async process(n, concurrency) {
      const q = await peer.openQueue();
      const { processes, perProcess } = peer.layout(concurrency);
      const workers = [];
      try {
        await fill(q, n);
        for (let p = 0; p < processes; p++) workers.push(spawnWorker(peer.id, q.ref, perProcess));
        await withTimeout(Promise.all(workers.map((w) => w.ready)), 60_000, `${peer.id} workers ready`);
        await sleep(200);
        const pids = workers.map((w) => w.pid);
        const idleMiB = pids.reduce((s, pid) => s + rssMiB(pid), 0);
        const reset = pids.every((pid) => resetPeak(pid));
        const sampler = rssSampler(pids);
        const t = performance.now();
        for (const w of workers) w.go();
        await until(
          () => {
            if (workers.some((w) => w.exited())) throw new Error(`a ${peer.id} worker died`);
            return workers.reduce((s, w) => s + w.count, 0) >= n;
          },
          { timeoutMs: 600_000, intervalMs: 2, what: `${peer.id} to process ${n} jobs` },
        );
        // A completion callback can run just before the completion is committed.
        await until(() => q.drained(), { timeoutMs: 60_000, intervalMs: 2, what: `${peer.id}'s queue to drain` });
        const seconds = (performance.now() - t) / 1000;
        const sampled = sampler.stop();
        const peak = reset ? pids.reduce((s, pid) => s + peakMiB(pid), 0) : sampled;
        return { rate: n / seconds, peakMiB: Math.max(peak, sampled), idleMiB };
      } finally {
        await Promise.all(workers.map((w) => w.stop()));
        await q.close();
      }
    },
    async latency(count, gapMs, warm) {
      const q = await peer.openQueue();
      const { perProcess } = peer.layout(1);
      const w = spawnWorker(peer.id, q.ref, perProcess);
      try {
        await withTimeout(w.ready, 60_000, `${peer.id} worker ready`);
        w.go(true);
        await sleep(300);
        const sent = new Map();
        const ack = [];
        for (let i = 0; i < warm + count; i++) {
          const t0 = wallNow();
          await q.add(i);
          if (i >= warm) {
            sent.set(i, t0);
            ack.push(wallNow() - t0);
          }
          await sleep(gapMs);
        }
        await until(() => [...sent.keys()].every((i) => w.starts.has(i)), { timeoutMs: 60_000, what: `${peer.id}'s latency jobs to start` });
        return { lat: [...sent].map(([i, t0]) => w.starts.get(i) - t0), ack };
      } finally {
        await w.stop();
        await q.close();
      }
    },
  };
}
