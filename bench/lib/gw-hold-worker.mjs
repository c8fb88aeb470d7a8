// A graphile-worker worker process for bench/scale-out.mjs's failover workload: runs the task
// "hold" (sleeps payload.ms) with concurrency 1 and tells the bench when each attempt starts.
//   node gw-hold-worker.mjs <connectionString> <schema>
import pg from "pg";
import { Logger, run } from "graphile-worker";

const [connectionString, schema] = process.argv.slice(2);
const send = (m) => process.connected && process.send(m);
const quiet = new Logger(() => () => {});
const pgPool = new pg.Pool({ connectionString, max: 4 });
pgPool.on("error", () => {});
pgPool.on("connect", (c) => c.on("error", () => {}));
await run({
  pgPool,
  schema,
  concurrency: 1,
  noHandleSignals: true,
  logger: quiet,
  taskList: {
    hold: async (payload, helpers) => {
      send({ t: "start", id: String(helpers.job.id), attempt: helpers.job.attempts, at: performance.timeOrigin + performance.now(), pid: process.pid });
      await new Promise((r) => setTimeout(r, payload.ms ?? 60_000));
    },
  },
});
send({ t: "running" });
process.on("disconnect", () => process.exit(0));
setTimeout(() => process.exit(3), 30 * 60_000).unref();
