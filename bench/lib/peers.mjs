// The parent side of a peer: the same workloads as teamwork's (teamwork.mjs), with the
// peer's workers in separate processes (peers/worker.mjs), as teamwork's daemon is separate
// from its client.
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { peakMiB, resetPeak, rssMiB, rssSampler, sleep, until, wallNow, withTimeout } from "./util.mjs";

const WORKER = fileURLToPath(new URL("../peers/worker.mjs", import.meta.url));
const BATCH = 1000;
/** Gap between warm-up jobs before an idle period (sporadic), as teamwork's. */
const WARM_GAP_MS = 5;

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
    running: new Promise((resolve, reject) => {
      child.on("message", (m) => m.t === "running" && resolve());
      exit.then(({ code, signal }) => reject(new Error(`${peerId} worker exited before it ran (code ${code}, signal ${signal})`)));
    }),
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
    bestConcurrency: peer.BEST_CONCURRENCY,
    get settings() {
      const best = peer.BEST_CONCURRENCY;
      return `${peer.settings(defaultConcurrency)}; B also at its best concurrency, ${best}${best === 1 || best === defaultConcurrency ? " (the same run)" : ""} (found with bench/concurrency.mjs, see BEST_CONCURRENCY in peers/${peer.id}.mjs); the latency workloads (C, C cold, sporadic) with concurrency ${defaultConcurrency}, as teamwork's daemon`;
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
    /**
     * Enqueue→start latency (C, C cold, sporadic), as teamwork's (teamwork.mjs): a fresh
     * worker process with `concurrency` slots, set up and started; unless `cold`, 300 ms to
     * settle; `warm` jobs not counted; if `idleMs`, nothing at all for idleMs once they have
     * started; then `count` jobs `gapMs` apart. Cold: the first job is sent as soon as the
     * worker has said it runs (its run() returned), with no warm-up.
     */
    async latency({ count, gapMs, warm = 0, idleMs = 0, cold = false, concurrency = 1 }) {
      const q = await peer.openQueue();
      const { perProcess } = peer.layout(concurrency);
      const w = spawnWorker(peer.id, q.ref, perProcess);
      try {
        await withTimeout(w.ready, 60_000, `${peer.id} worker ready`);
        w.go(true);
        await withTimeout(w.running, 60_000, `${peer.id} worker running`);
        if (!cold) await sleep(300);
        let idleRss;
        for (let i = 0; i < warm; i++) {
          await q.add(i);
          await sleep(idleMs > 0 ? WARM_GAP_MS : gapMs);
        }
        if (idleMs > 0) {
          await until(() => w.starts.size >= warm, { timeoutMs: 60_000, what: `${peer.id}'s warm-up jobs to start` });
          await sleep(idleMs);
          idleRss = rssMiB(w.pid);
        }
        const sent = [];
        const ack = [];
        for (let k = 0; k < count; k++) {
          const t0 = wallNow();
          await q.add(warm + k);
          ack.push(wallNow() - t0);
          sent.push(t0);
          if (k < count - 1) await sleep(gapMs);
        }
        await until(() => sent.every((_, k) => w.starts.has(warm + k)), { timeoutMs: 60_000, what: `${peer.id}'s latency jobs to start` });
        return { lat: sent.map((t0, k) => w.starts.get(warm + k) - t0), ack, idleRssMiB: idleRss };
      } finally {
        await w.stop();
        await q.close();
      }
    },
  };
}
