// The report on a big board: how long the `report` job takes on 100,000 tasks (and their
// 200,000 events), and the daemon's peak memory meanwhile. Run before and after a change to
// how handlers read the board (issue 13 item 1):
//
//   npm run build && node bench/report-speed.mjs [TASKS] [RUNS]
//
// The board is written through the store (dist/) before the daemon starts; then each format
// is reported RUNS times through a real daemon, timed from the job's start to its finish.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../dist/store/index.js";
import { taskEventPolicy } from "../dist/board/task-events.js";
import { startTeamwork } from "./teamwork.mjs";
import { median, peakMiB, resetPeak, until } from "./lib/util.mjs";

const TASKS = Number(process.argv[2] ?? 100_000);
const RUNS = Number(process.argv[3] ?? 5);
const home = mkdtempSync(join(tmpdir(), "tw-report-bench-"));
try {
  const store = await openStore({ kind: "sqlite", path: join(home, "teamwork.db") }, { durability: "process", taskEvents: taskEventPolicy });
  const now = Date.now();
  await store.boards.create("big", now);
  const t0 = performance.now();
  for (let i = 0; i < TASKS; i++) {
    const due = i % 3 === 0 ? new Date(now - (i % 40) * 86_400_000).toISOString().slice(0, 10) : null;
    await store.tasks.create({ title: `task ${i}`, board: "big", description: "", assignee: i % 5 === 0 ? null : `user${i % 17}`, dueDate: due, status: i % 4 === 0 ? "done" : i % 4 === 1 ? "doing" : "todo" }, now);
  }
  await store.close();
  console.log(`wrote ${TASKS} tasks in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const tw = await startTeamwork({ home, durability: "full" });
  try {
    for (const format of ["html", "json"]) {
      const ms = [];
      resetPeak(tw.pid);
      for (let r = 0; r < RUNS; r++) {
        const { job } = await tw.client.call("jobsEnqueue", { type: "report", payload: { board: "big", format } });
        const done = await until(async () => {
          const j = (await tw.client.call("jobsGet", { id: job.id })).job;
          if (j.status === "failed") throw new Error(`report failed: ${j.error}`);
          return j.status === "complete" ? j : null;
        }, { intervalMs: 20, what: "the report" });
        ms.push(Date.parse(done.finishedAt) - Date.parse(done.startedAt));
      }
      console.log(`report ${format.padEnd(4)} ${TASKS} tasks: median ${median(ms)} ms (runs: ${ms.join(", ")}); daemon peak RSS ${peakMiB(tw.pid).toFixed(1)} MiB`);
    }
  } finally {
    await tw.stop();
  }
} finally {
  rmSync(home, { recursive: true, force: true });
}
