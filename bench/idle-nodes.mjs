// What idle nodes cost: N daemons on one fresh PostgreSQL database, no jobs, for a while; each
// daemon's CPU (user + system, from /proc) and the database's transactions per second (every
// statement a daemon sends outside a transaction is one: heartbeats, rescue ticks, claim polls,
// NOTIFYs). The figures behind the claim poll's interval (src/queue/node-lease.ts CLAIM_POLL_MS).
//
//   node bench/idle-nodes.mjs [--nodes 2] [--seconds 60] [--notify on|off]
//
// Needs the build (dist/) and PostgreSQL (TEAMWORK_TEST_PG_URL, default
// postgres://postgres@127.0.0.1:5432/test: the server the database is made on).
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import pg from "pg";

const { values } = parseArgs({ options: { nodes: { type: "string", default: "2" }, seconds: { type: "string", default: "60" }, notify: { type: "string", default: "on" } } });
const n = Number(values.nodes);
const seconds = Number(values.seconds);
if (!(n >= 1 && seconds >= 5 && ["on", "off"].includes(values.notify))) {
  console.error("usage: node bench/idle-nodes.mjs [--nodes 2] [--seconds 60] [--notify on|off]");
  process.exit(2);
}
const DAEMON = fileURLToPath(new URL("../dist/daemon/main.js", import.meta.url));
const base = process.env.TEAMWORK_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const database = `tw_idle_${process.pid}`;
const urlOf = (db) => Object.assign(new URL(base), { pathname: `/${db}` }).toString();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TICKS = 100; // clock ticks per second (getconf CLK_TCK on Linux)
const cpuMs = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / TICKS; // utime + stime
};

const admin = new pg.Client({ connectionString: base });
await admin.connect();
await admin.query(`CREATE DATABASE ${database}`);
const dir = mkdtempSync(join(tmpdir(), "tw-idle-"));
const daemons = [];
const cleanup = async () => {
  for (const d of daemons) d.kill("SIGTERM");
  await Promise.all(daemons.map((d) => new Promise((r) => (d.exitCode !== null ? r() : d.on("exit", r)))));
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
};
process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));
try {
  for (let i = 0; i < n; i++) {
    const home = join(dir, `n${i}`);
    const env = { ...process.env, TEAMWORK_DATABASE_URL: urlOf(database), TEAMWORK_DATABASE_NOTIFY: values.notify === "on" ? "true" : "false" };
    mkdirSync(home, { mode: 0o700 });
    writeFileSync(join(home, "config.json"), "{}");
    daemons.push(spawn(process.execPath, [DAEMON, "--home", home], { stdio: "ignore", env }));
  }
  const db = new pg.Client({ connectionString: urlOf(database) });
  await db.connect();
  for (;;) {
    const r = await db.query("SELECT count(*)::int AS n FROM nodes").catch(() => ({ rows: [{ n: 0 }] }));
    if (r.rows[0].n === n) break;
    await sleep(200);
  }
  await sleep(5000); // start-up done (prune, warm worker)
  const xacts = async () => (await db.query("SELECT xact_commit::float8 AS c FROM pg_stat_database WHERE datname = current_database()")).rows[0].c;
  const cpu0 = daemons.map((d) => cpuMs(d.pid));
  const x0 = await xacts();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const elapsed = (performance.now() - t0) / 1000;
  // pg_stat_database is updated by each backend at most every 500 ms (PGSTAT_MIN_INTERVAL): wait, then read.
  await sleep(1500);
  const x1 = await xacts();
  const cpu = daemons.map((d, i) => (cpuMs(d.pid) - cpu0[i]) / elapsed);
  // This script's own two statements (the two reads) are taken out.
  const perSecond = (x1 - x0 - 2) / (elapsed + 1.5);
  console.log(
    `${n} idle node(s), NOTIFY ${values.notify}, ${seconds} s: CPU per daemon ${cpu.map((c) => `${c.toFixed(1)} ms/s`).join(", ")}; database ${perSecond.toFixed(1)} transactions/s (${(perSecond / n).toFixed(1)} per node)`,
  );
  await db.end();
} finally {
  await cleanup();
}
