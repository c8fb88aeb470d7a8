// What each isolation mode costs per job (issue 18, item 5): a job type's worker is a thread
// of the daemon ("thread") or a child process under a memory cap ("process"). Drives the
// compiled worker pool directly (no daemon, no store), so only the worker's cost is measured.
//
//   npm run build && node bench/isolation.mjs [--cold 20] [--warm 2000]
//
// cold: a fresh worker for one no-op job (start, load the job modules -- the built-in ones
//       and this file's --, run, end), a new pool each time.
// warm: no-op jobs one at a time through one warm worker, each handed over after the last
//       one ended (the round trip a job pays at the least).
// rss:  the resident memory one idle warm worker adds.

import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { WorkerPool } from "../dist/queue/pool/pool.js";
import { BUILTIN_JOB_MODULES } from "../dist/jobs/builtin.js";

const { values } = parseArgs({ options: { cold: { type: "string", default: "20" }, warm: { type: "string", default: "2000" } } });
const COLD = Number(values.cold);
const WARM = Number(values.warm);
const NOOP = fileURLToPath(new URL("./noop.mjs", import.meta.url));

const workerData = {
  modules: [...BUILTIN_JOB_MODULES, NOOP],
  paths: { home: "/tmp", database: "/tmp/x.db", reports: "/tmp", uploads: "/tmp", uploadsTmp: "/tmp", thumbs: "/tmp", outbox: "/tmp" },
  settings: { smtpUrl: null, mailFrom: "bench@localhost", cleanupMaxAgeMs: 86_400_000, digestRecipients: [], digestSendEmpty: false },
};

const rssKb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
const childPids = () =>
  readdirSync("/proc")
    .filter((n) => /^\d+$/.test(n))
    .filter((n) => {
      try {
        return Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${n}/status`, "utf8"))?.[1]) === process.pid;
      } catch {
        return false;
      }
    })
    .map(Number);

function makePool() {
  let ended = null;
  const pool = new WorkerPool(workerData, {
    progress() {},
    log() {},
    checkpoint(_id, _a, _s, ack) {
      ack(null);
    },
    begin() {},
    end(_id, _attempt, end) {
      ended?.(end);
    },
  }, 60_000);
  pool.resize(1);
  let id = 0;
  const runOne = (isolation) =>
    new Promise((resolve, reject) => {
      ended = (end) => (end.ok ? resolve() : reject(new Error(end.message)));
      pool.run(1, { jobId: ++id, attempt: 1, type: "bench-noop", payload: null, state: null, memoryMb: 512, isolation });
    });
  return { pool, runOne };
}

const stats = (ms) => {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { mean: s.reduce((a, b) => a + b, 0) / s.length, p50: q(0.5), p95: q(0.95) };
};
const fmt = (x) => (x >= 10 ? x.toFixed(1) : x.toFixed(3));

console.log(`node ${process.version}, ${COLD} cold starts and ${WARM} warm jobs per mode`);
for (const isolation of ["thread", "process"]) {
  const cold = [];
  for (let i = 0; i < COLD; i++) {
    const { pool, runOne } = makePool();
    const t0 = performance.now();
    await runOne(isolation);
    cold.push(performance.now() - t0);
    await pool.close();
  }
  const ownBefore = rssKb(process.pid);
  const { pool, runOne } = makePool();
  await runOne(isolation);
  for (let i = 0; i < 200; i++) await runOne(isolation); // warm-up: JIT on both sides
  const warm = [];
  for (let i = 0; i < WARM; i++) {
    const t0 = performance.now();
    await runOne(isolation);
    warm.push(performance.now() - t0);
  }
  // A thread lives in this process (the daemon, in real life); a process is a child.
  const rss = isolation === "process" ? childPids().map(rssKb).reduce((a, b) => a + b, 0) / 1024 : (rssKb(process.pid) - ownBefore) / 1024;
  await pool.close();
  const c = stats(cold);
  const w = stats(warm);
  console.log(
    `${isolation.padEnd(8)} cold start: mean ${fmt(c.mean)} ms, p50 ${fmt(c.p50)}, p95 ${fmt(c.p95)}` +
      `   warm no-op job: mean ${fmt(w.mean)} ms, p50 ${fmt(w.p50)}, p95 ${fmt(w.p95)}` +
      `   RSS of a warm worker: ${rss.toFixed(0)} MiB${isolation === "thread" ? " (in the daemon)" : " (a child)"}`,
  );
}
