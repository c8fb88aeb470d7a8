// Workload E (teamwork only): CLI start-up against a running daemon next to bare node, the
// daemon's memory idle and with a big store, `jobs list` / `jobs show` with a big store, and
// a report over a big board. The big store is made fast: one job and one task are created
// through the daemon, then copied with SQL into the stopped daemon's database (so every
// column holds what the daemon itself writes), and the daemon is started on it.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { startTeamwork } from "./teamwork.mjs";
import { max, median, min, rssMiB, sleep, until } from "./lib/util.mjs";

const BIN = fileURLToPath(new URL("../bin/teamwork.cjs", import.meta.url));

/** Wall time of one command, ms; throws if it fails. */
function timeCommand(args, env) {
  const t = performance.now();
  const r = spawnSync(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`\`node ${args.join(" ")}\` exited ${r.status}: ${r.stderr}`);
  return { ms, stdout: String(r.stdout) };
}

/** Runs the commands alternately (so drift hits both alike), `runs` times after 2 warm-ups. */
function timeAlternately(commands, env, runs) {
  const out = commands.map(() => []);
  for (let r = -2; r < runs; r++) {
    commands.forEach((args, k) => {
      const { ms } = timeCommand(args, env);
      if (r >= 0) out[k].push(ms);
    });
  }
  return out;
}

async function timeRoute(client, runs, input) {
  const xs = [];
  for (let r = -3; r < runs; r++) {
    const t = performance.now();
    await client.call(...input(r));
    if (r >= 0) xs.push(performance.now() - t);
  }
  return xs;
}

const summary = (xs) => ({ median: median(xs), min: min(xs), max: max(xs), n: xs.length });

function columnsOf(db, table) {
  return db.prepare(`SELECT name FROM pragma_table_info(?)`).all(table).map((c) => c.name).filter((c) => c !== "id");
}

/**
 * Copies job `templateId` into `count` jobs, and task `taskId` into `tasks` tasks of its board
 * (statuses, assignees and due dates varied), each with a "created" event, in the stopped
 * daemon's database.
 */
function fillDatabase(path, { templateId, count, taskId, tasks }) {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  const now = Date.now();
  const t = performance.now();
  const jobCols = columnsOf(db, "jobs");
  const jobExpr = { payload: "json_object('i', x)", created_at: `${now} - x`, run_at: `${now} - x`, started_at: `${now} - x + 1`, finished_at: `${now} - x + 2` };
  db.prepare(
    `WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < @count)
     INSERT INTO jobs (${jobCols.join(", ")})
     SELECT ${jobCols.map((c) => jobExpr[c] ?? c).join(", ")} FROM seq, jobs WHERE jobs.id = @templateId`,
  ).run({ count: count - 1, templateId });
  const jobsMs = performance.now() - t;

  const t2 = performance.now();
  const taskCols = columnsOf(db, "tasks");
  const taskExpr = {
    title: "'Task ' || x",
    status: "CASE x % 3 WHEN 0 THEN 'done' WHEN 1 THEN 'todo' ELSE 'doing' END",
    assignee: "'person' || (x % 25) || '@example.com'",
    due_date: `CASE WHEN x % 4 = 0 THEN NULL ELSE date(${now} / 1000 - (x % 60 - 20) * 86400, 'unixepoch') END`,
    created_at: `${now} - x * 1000`,
    updated_at: `${now} - x * 1000`,
    completed_at: `CASE x % 3 WHEN 0 THEN ${now} - x * 500 ELSE NULL END`,
  };
  db.prepare(
    `WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < @count)
     INSERT INTO tasks (${taskCols.join(", ")})
     SELECT ${taskCols.map((c) => taskExpr[c] ?? c).join(", ")} FROM seq, tasks WHERE tasks.id = @taskId`,
  ).run({ count: tasks - 1, taskId });
  const boardId = db.prepare("SELECT board_id FROM tasks WHERE id = ?").get(taskId).board_id;
  // One "created" event per copied task, spread over the last 10 days (the report reads 7).
  db.prepare(
    `INSERT INTO task_events (task_id, board_id, type, title, data, created_at)
     SELECT id, board_id, 'created', title, json_object('status', status), ${now} - (id % 1000) * 864000
     FROM tasks WHERE board_id = ? AND id <> ?`,
  ).run(boardId, taskId);
  const tasksMs = performance.now() - t2;
  db.pragma("wal_checkpoint(TRUNCATE)");
  const stored = db.prepare("SELECT count(*) n FROM jobs").get().n;
  const boardTasks = db.prepare("SELECT count(*) n FROM tasks WHERE board_id = ?").get(boardId).n;
  db.close();
  return { jobsMs, tasksMs, stored, boardTasks };
}

export async function workloadE({ jobs = 1_000_000, tasks = 100_000, cliRuns = 20, routeRuns = 30, reports = 3, log = () => {} } = {}) {
  const out = { settings: { jobs, tasks, cliRuns, routeRuns, reports, durability: "full" } };
  let tw = await startTeamwork({ durability: "full" });
  const home = tw.home;
  const env = { ...process.env, TEAMWORK_HOME: home, NO_COLOR: "1", TEAMWORK_NO_AUTOSTART: "1" };
  try {
    // One real job and one real task, the templates of the copies.
    const { job } = await tw.client.call("jobsEnqueue", { type: "bench-noop" });
    await until(async () => (await tw.client.call("jobsGet", { id: job.id })).job.status === "complete", { what: "the template job" });
    await tw.client.call("boardsAdd", { name: "big" });
    const { task } = await tw.client.call("tasksAdd", { title: "Template", board: "big", assignee: "ana@example.com", dueDate: "2026-01-15" });

    // E1: a CLI command against the running daemon next to bare node.
    log(`E: CLI start-up (${cliRuns} runs each)`);
    const [bare, status] = timeAlternately([["-e", "0"], [BIN, "jobs", "status", String(job.id)]], env, cliRuns);
    out.cli = { nodeE0: summary(bare), jobsStatus: summary(status), ratio: median(status) / median(bare) };

    // E2 at the (nearly) empty store, on a freshly started daemon like the big store's below
    // (no worker thread yet): memory and route latencies, the baseline of the growth figure.
    await tw.stop({ keepHome: true });
    tw = await startTeamwork({ durability: "full", home });
    await sleep(2000);
    out.idleEmptyMiB = rssMiB(tw.pid);
    out.empty = {
      jobsList50: summary(await timeRoute(tw.client, routeRuns, () => ["jobsList", { limit: 50 }])),
      jobsGet: summary(await timeRoute(tw.client, routeRuns, () => ["jobsGet", { id: job.id }])),
    };
    await sleep(500);
    out.afterQueriesEmptyMiB = rssMiB(tw.pid);
    await tw.stop({ keepHome: true });

    log(`E: copying to ${jobs.toLocaleString("en-US")} jobs and ${tasks.toLocaleString("en-US")} tasks (daemon stopped)`);
    out.fill = fillDatabase(tw.database, { templateId: job.id, count: jobs, taskId: task.id, tasks });

    log("E: daemon on the big store");
    tw = await startTeamwork({ durability: "full", home });
    out.startMsBig = tw.startMs;
    await sleep(2000);
    out.idleBigMiB = rssMiB(tw.pid);
    const ids = Array.from({ length: routeRuns + 3 }, (_, k) => 1 + Math.floor(((k * 7919) % 1000) / 1000 * jobs));
    out.big = {
      jobsList50: summary(await timeRoute(tw.client, routeRuns, () => ["jobsList", { limit: 50 }])),
      jobsGet: summary(await timeRoute(tw.client, routeRuns, (r) => ["jobsGet", { id: ids[r + 3] }])),
      jobsListFailed50: summary(await timeRoute(tw.client, routeRuns, () => ["jobsList", { status: "failed", limit: 50 }])),
      daemonStatus: summary(await timeRoute(tw.client, 5, () => ["daemonStatus", {}])),
    };
    await sleep(500);
    out.afterQueriesBigMiB = rssMiB(tw.pid);
    out.rssGrowthMiB = out.afterQueriesBigMiB - out.afterQueriesEmptyMiB;

    log("E: CLI jobs list / jobs show on the big store");
    const [list, show] = timeAlternately([[BIN, "jobs", "list", "--limit", "50"], [BIN, "jobs", "show", String(ids[0])]], env, Math.max(5, Math.round(cliRuns / 2)));
    out.cliBig = { jobsList50: summary(list), jobsShow: summary(show) };

    log(`E: report over the ${tasks.toLocaleString("en-US")}-task board (${reports} runs)`);
    const wall = [];
    const handler = [];
    for (let r = 0; r < reports; r++) {
      const t = performance.now();
      const { job: rep } = await tw.client.call("jobsEnqueue", { type: "report", payload: { board: "big", format: "md" } });
      const done = await until(
        async () => {
          const j = (await tw.client.call("jobsGet", { id: rep.id })).job;
          return j.status === "complete" || j.status === "failed" || j.status === "cancelled" ? j : null;
        },
        { timeoutMs: 300_000, intervalMs: 5, what: "the report job" },
      );
      wall.push(performance.now() - t);
      if (done.status !== "complete") throw new Error(`report job ${done.status}: ${done.error}`);
      if (done.result?.tasks !== out.fill.boardTasks) throw new Error(`report covered ${done.result?.tasks} tasks, expected ${out.fill.boardTasks}`);
      handler.push(Date.parse(done.finishedAt) - Date.parse(done.startedAt));
    }
    out.report = { wall: summary(wall), handler: summary(handler), tasks: out.fill.boardTasks };
    out.afterReportMiB = rssMiB(tw.pid);
  } finally {
    await tw.stop({ keepHome: false });
  }
  return out;
}
