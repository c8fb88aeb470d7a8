// How soon a watcher sees a job end: one daemon, one board-wide event stream open, no-op jobs
// enqueued one at a time; for each, the time from the enqueue call to the stream's `complete`
// status event for it. A script that prints figures, not a test. Runs on the compiled daemon
// (`npm run build`).
//
//   node bench/watch-latency.mjs [--store sqlite|postgres] [--n 300]
//
// PostgreSQL: a database tw_bench_<random> on TEAMWORK_TEST_PG_URL's server (default
// postgres://postgres@127.0.0.1:5432/test), dropped at the end.
import { randomBytes } from "node:crypto";
import { request } from "node:http";
import pg from "pg";
import { startTeamwork } from "./teamwork.mjs";

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const kind = arg("store", "postgres");
const N = Number(arg("n", 300));

let database = null;
let admin = null;
const config = {};
if (kind === "postgres") {
  const base = process.env.TEAMWORK_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
  database = `tw_bench_${randomBytes(5).toString("hex")}`;
  admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  const u = new URL(base);
  u.pathname = `/${database}`;
  config.database = u.toString();
}

const tw = await startTeamwork({ concurrency: 3, durability: "full", config });
try {
  // The board-wide stream: the time each job's `complete` status arrives.
  const completeAt = new Map();
  let wake = null;
  let buffer = "";
  await new Promise((resolve, reject) => {
    const req = request({ socketPath: tw.socket, path: "/events", headers: { accept: "text/event-stream" } }, (res) => {
      res.setEncoding("utf8");
      res.on("data", (chunk) => {
        const now = performance.now();
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (!block.includes("event: job:status")) continue;
          const data = JSON.parse(block.slice(block.indexOf("data: ") + 6));
          if (data.job.status === "complete" && !completeAt.has(data.job.id)) completeAt.set(data.job.id, now);
        }
        wake?.();
      });
      resolve();
    });
    req.on("error", reject);
    req.end();
  });
  const ms = [];
  for (let i = 0; i < N + 20; i++) {
    const t0 = performance.now();
    const { job } = await tw.client.call("jobsEnqueue", { type: "bench-noop" });
    while (!completeAt.has(job.id)) await new Promise((r) => ((wake = r), setTimeout(r, 1000)));
    // The first 20 warm the daemon up.
    if (i >= 20) ms.push(completeAt.get(job.id) - t0);
  }
  ms.sort((a, b) => a - b);
  const q = (p) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))].toFixed(1);
  console.log(`store=${kind} n=${N}: enqueue → watcher sees complete: p50 ${q(0.5)} ms, p95 ${q(0.95)} ms, p99 ${q(0.99)} ms`);
} finally {
  await tw.stop();
  if (admin) {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  }
}
process.exit(0);
