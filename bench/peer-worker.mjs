// A peer's worker in its own process (as teamwork's workers are off the enqueuing client):
// waits for "go", processes no-op jobs, reports each start (for latency) and stays up
// until told to stop. argv: system, connection info, concurrency.
import Database from "better-sqlite3";

const [system, target, concurrencyText] = process.argv.slice(2);
const concurrency = Number(concurrencyText);
const send = (m) => process.send?.(m);
let reportStarts = false;

if (system === "plainjob") {
  const { better, defineQueue, defineWorker } = await import("plainjob");
  const db = new Database(target);
  db.pragma("journal_mode = WAL");
  const queue = defineQueue({ connection: better(db), logger: { info() {}, warn() {}, error() {}, debug() {} } });
  const workers = Array.from({ length: concurrency }, () =>
    defineWorker("bench", async (job) => {
      if (reportStarts) send({ t: "start", id: JSON.parse(job.data).i, at: performance.timeOrigin + performance.now() });
    }, { queue, pollIntervall: 1, logger: { info() {}, warn() {}, error() {}, debug() {} } }),
  );
  process.on("message", async (m) => {
    if (m.t === "go") {
      reportStarts = Boolean(m.reportStarts);
      for (const w of workers) void w.start();
    }
    if (m.t === "stop") {
      await Promise.all(workers.map((w) => w.stop()));
      process.exit(0);
    }
  });
  send({ t: "ready" });
} else if (system === "bullmq") {
  const { Worker } = await import("bullmq");
  const [host, port] = target.split(":");
  let worker;
  process.on("message", async (m) => {
    if (m.t === "go") {
      reportStarts = Boolean(m.reportStarts);
      worker = new Worker(m.queue, async (job) => {
        if (reportStarts) send({ t: "start", id: job.data.i, at: performance.timeOrigin + performance.now() });
      }, { connection: { host, port: Number(port) }, concurrency, removeOnComplete: { count: 0 } });
    }
    if (m.t === "stop") {
      await worker?.close();
      process.exit(0);
    }
  });
  send({ t: "ready" });
}
