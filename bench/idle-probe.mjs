// Why workload C's enqueue-to-start takes longer than a busy round trip: calls into an idle
// daemon (5 ms apart, as in C) next to the same calls back to back, and the same SQLite
// commit (insert + claim + complete, as one tick) in this process, back to back and 5 ms
// apart. On a VM whose idle vCPUs halt, each wake-up and a cold cache cost more than the work.
//
//   node bench/idle-probe.mjs [full|process]
import Database from "better-sqlite3";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startTeamwork } from "./teamwork.mjs";

const durability = process.argv[2] ?? "full";
if (!["full", "process"].includes(durability)) {
  console.error("usage: node bench/idle-probe.mjs [full|process]");
  process.exit(2);
}
const pct = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const line = (name, gap, xs) => console.log(`${name.padEnd(34)} ${gap ? "5 ms apart  " : "back to back"}  p50 ${pct(xs, 50).toFixed(3)} ms  p95 ${pct(xs, 95).toFixed(3)} ms`);

async function measure(name, fn) {
  for (const gap of [0, 5]) {
    const xs = [];
    for (let i = 0; i < 300; i++) {
      const t = performance.now();
      await fn();
      xs.push(performance.now() - t);
      if (gap) await sleep(gap);
      else await new Promise((r) => setImmediate(r));
    }
    line(name, gap, xs);
  }
}

console.log(`durability ${durability}; each figure over 300 calls`);
const tw = await startTeamwork({ durability, concurrency: 3 });
try {
  await measure("daemon: health", () => tw.client.call("health", {}));
  await measure("daemon: enqueue (delayed 1 h)", () => tw.client.call("jobsEnqueue", { type: "bench-noop", delayMs: 3_600_000 }));
  await measure("daemon: enqueue (starts at once)", () => tw.client.call("jobsEnqueue", { type: "bench-noop" }));
} finally {
  await tw.stop();
}

// The same commit in this process: no socket, no thread, only SQLite and the disk.
const schema = readFileSync(fileURLToPath(new URL("../src/store/sqlite/schema.sql", import.meta.url)), "utf8")
  .split("\n")
  .filter((l) => !/sqlite_sequence/.test(l))
  .join("\n");
const dir = mkdtempSync(join(tmpdir(), "tw-idle-"));
const db = new Database(join(dir, "db"));
db.pragma("journal_mode = WAL");
db.pragma(`synchronous = ${durability === "full" ? "FULL" : "NORMAL"}`);
db.exec(schema);
const ins = db.prepare("INSERT INTO jobs (type, payload, status, max_attempts, run_at, priority, unique_key, created_at) VALUES ('x', '{}', 'pending', 3, 1, 0, NULL, 1)");
const claim = db.prepare("UPDATE jobs SET status = 'running', slot = 1, attempts = attempts + 1, started_at = 2 WHERE id = ? AND status = 'pending'");
const complete = db.prepare("UPDATE jobs SET status = 'complete', result = 'null', progress = 100, slot = NULL, finished_at = 3 WHERE id = ? AND status = 'running'");
let prev = null;
const tick = db.transaction(() => {
  if (prev !== null) complete.run(prev);
  prev = Number(ins.run().lastInsertRowid);
  claim.run(prev);
});
await measure("in-process SQLite tick (commit)", () => tick.immediate());
db.close();
rmSync(dir, { recursive: true, force: true });
