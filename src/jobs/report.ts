// `report`: reads a board through ctx.board (one snapshot) and stores a report (HTML,
// Markdown or JSON) as the job's artifact `<board>-<time>-job<id>.<format>` (ctx.files), so
// that it can be fetched from any node of a team (`teamwork jobs artifact ID`), whichever
// node made it. Tasks are streamed, so a board of 100,000 tasks reports in flat memory; only
// the aggregates and bounded lists are kept, so the report's size is bounded too (a few
// hundred KB). A report that cannot be stored (the database refused) fails the attempt,
// which is retried; nothing partial is ever stored.

import { defineJob, PermanentJobError, type JobContext } from "./define.js";
import { notFound } from "../lib/errors.js";
import type { BoardPort } from "../store/board-port.js";

export const REPORT_FORMATS = ["html", "md", "json"] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export interface ReportPayload {
  board: string;
  format: ReportFormat;
}

/** Overdue tasks listed by title; the count covers all of them. */
const OVERDUE_LISTED = 200;
const ACTIVITY_LISTED = 50;
const ACTIVITY_DAYS = 7;

export interface ReportData {
  board: string;
  generatedAt: string;
  today: string;
  totals: { tasks: number; done: number; pending: number; byStatus: { todo: number; doing: number; done: number } };
  byAssignee: { assignee: string | null; total: number; done: number; pending: number; overdue: number }[];
  overdue: { count: number; tasks: { id: number; title: string; assignee: string | null; dueDate: string; daysLate: number }[] };
  activity: { since: string; counts: Record<string, number>; recent: { taskId: number; type: string; title: string; at: string }[] };
}

function parsePayload(payload: unknown): ReportPayload {
  const p = (payload ?? {}) as Record<string, unknown>;
  if (typeof p !== "object" || Array.isArray(p)) throw new Error("payload must be an object like {\"board\": \"web\", \"format\": \"html\"}");
  for (const k of Object.keys(p)) if (k !== "board" && k !== "format") throw new Error(`unknown field "${k}" (report takes board and format)`);
  const board = p.board ?? "default";
  const format = p.format ?? "html";
  if (typeof board !== "string" || board === "") throw new Error("board must be a board name");
  if (typeof format !== "string" || !(REPORT_FORMATS as readonly string[]).includes(format)) throw new Error(`format must be one of ${REPORT_FORMATS.join(", ")}`);
  return { board, format: format as ReportFormat };
}

/** Reads the board at one moment and folds it into the report's figures. */
export async function gather(board: BoardPort, boardName: string, now: number, onProgress: (pct: number, msg: string) => void = () => {}): Promise<ReportData> {
  const data = await board.readBoard(boardName, async (snap) => {
    const today = new Date(now).toISOString().slice(0, 10);
    const total = snap.taskCount;
    const byStatus = { todo: 0, doing: 0, done: 0 };
    const assignees = new Map<string | null, { total: number; done: number; pending: number; overdue: number }>();
    const overdue: ReportData["overdue"]["tasks"] = [];
    let overdueCount = 0;
    let seen = 0;
    let lastPct = -1;
    for await (const t of snap.tasks()) {
      byStatus[t.status]++;
      let a = assignees.get(t.assignee);
      if (!a) assignees.set(t.assignee, (a = { total: 0, done: 0, pending: 0, overdue: 0 }));
      a.total++;
      if (t.status === "done") a.done++;
      else {
        a.pending++;
        if (t.dueDate !== null && t.dueDate < today) {
          a.overdue++;
          overdueCount++;
          if (overdue.length < OVERDUE_LISTED) {
            overdue.push({ id: t.id, title: t.title, assignee: t.assignee, dueDate: t.dueDate, daysLate: Math.round((Date.parse(today) - Date.parse(t.dueDate)) / 86_400_000) });
          }
        }
      }
      seen++;
      const pct = Math.floor((seen / Math.max(1, total)) * 80);
      if (pct !== lastPct && pct % 5 === 0) {
        lastPct = pct;
        onProgress(5 + pct, `read ${seen} of ${total} tasks`);
      }
    }
    overdue.sort((x, y) => y.daysLate - x.daysLate || x.id - y.id);
    onProgress(88, "reading the last 7 days of activity");
    const since = now - ACTIVITY_DAYS * 86_400_000;
    const counts: Record<string, number> = { created: 0, updated: 0, completed: 0, assigned: 0, deleted: 0 };
    const recent: ReportData["activity"]["recent"] = [];
    for await (const e of snap.eventsSince(since)) {
      counts[e.type] = (counts[e.type] ?? 0) + 1;
      recent.push({ taskId: e.taskId, type: e.type, title: e.title, at: new Date(e.createdAt).toISOString() });
      if (recent.length > ACTIVITY_LISTED) recent.shift();
    }
    recent.reverse();
    return {
      board: snap.board,
      generatedAt: new Date(now).toISOString(),
      today,
      totals: { tasks: total, done: byStatus.done, pending: total - byStatus.done, byStatus },
      byAssignee: [...assignees].map(([assignee, v]) => ({ assignee, ...v })).sort((x, y) => y.total - x.total || String(x.assignee).localeCompare(String(y.assignee))),
      overdue: { count: overdueCount, tasks: overdue },
      activity: { since: new Date(since).toISOString(), counts, recent },
    };
  });
  if (!data) throw new PermanentJobError(`board "${boardName}" not found`);
  return data;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
const mdEsc = (s: string) => s.replace(/([\\`*_[\]|<>#])/g, "\\$1").replace(/\r?\n/g, " ");
const pct = (n: number, total: number) => (total === 0 ? 0 : Math.round((n / total) * 100));

export function renderMarkdown(r: ReportData): string {
  const lines = [
    `# Board report: ${mdEsc(r.board)}`,
    "",
    `Generated ${r.generatedAt}.`,
    "",
    "## Totals",
    "",
    "| tasks | done | pending | todo | doing |",
    "|---:|---:|---:|---:|---:|",
    `| ${r.totals.tasks} | ${r.totals.done} (${pct(r.totals.done, r.totals.tasks)}%) | ${r.totals.pending} | ${r.totals.byStatus.todo} | ${r.totals.byStatus.doing} |`,
    "",
    "## By assignee",
    "",
    "| assignee | tasks | done | pending | overdue |",
    "|---|---:|---:|---:|---:|",
    ...r.byAssignee.map((a) => `| ${a.assignee ? mdEsc(a.assignee) : "_unassigned_"} | ${a.total} | ${a.done} | ${a.pending} | ${a.overdue} |`),
    "",
    `## Overdue (${r.overdue.count})`,
    "",
    ...(r.overdue.count === 0 ? ["Nothing is overdue."] : r.overdue.tasks.map((t) => `- #${t.id} ${mdEsc(t.title)}, due ${t.dueDate} (${t.daysLate} days late)${t.assignee ? `, ${mdEsc(t.assignee)}` : ""}`)),
    ...(r.overdue.count > r.overdue.tasks.length ? [`- … and ${r.overdue.count - r.overdue.tasks.length} more`] : []),
    "",
    `## Activity since ${r.activity.since.slice(0, 10)}`,
    "",
    Object.entries(r.activity.counts).map(([k, v]) => `${k}: ${v}`).join(", "),
    "",
    ...r.activity.recent.map((e) => `- ${e.at} ${e.type}: #${e.taskId} ${mdEsc(e.title)}`),
    "",
  ];
  return lines.join("\n");
}

export function renderHtml(r: ReportData): string {
  const donePct = pct(r.totals.done, r.totals.tasks);
  const rows = r.byAssignee
    .map((a) => `<tr><td>${a.assignee ? esc(a.assignee) : "<em>unassigned</em>"}</td><td>${a.total}</td><td>${a.done}</td><td>${a.pending}</td><td${a.overdue ? ' class="late"' : ""}>${a.overdue}</td><td><div class="bar"><span style="width:${pct(a.done, a.total)}%"></span></div></td></tr>`)
    .join("\n");
  const overdue = r.overdue.tasks.map((t) => `<li><b>#${t.id}</b> ${esc(t.title)} <span class="muted">due ${t.dueDate}, ${t.daysLate} days late${t.assignee ? `, ${esc(t.assignee)}` : ""}</span></li>`).join("\n");
  const activity = r.activity.recent.map((e) => `<li><span class="tag ${esc(e.type)}">${esc(e.type)}</span> #${e.taskId} ${esc(e.title)} <span class="muted">${e.at.replace("T", " ").slice(0, 16)}</span></li>`).join("\n");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Board report: ${esc(r.board)}</title>
<style>
  :root { --fg:#1d2433; --muted:#6b7385; --line:#e3e6ee; --ok:#1f9d55; --late:#d64545; --accent:#3b6ee8; }
  * { box-sizing: border-box; }
  body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); margin: 0; background: #f6f7fb; }
  main { max-width: 960px; margin: 0 auto; padding: 32px 20px 64px; }
  h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 12px; }
  .muted { color: var(--muted); font-size: 13px; }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin-top: 20px; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; }
  .card b { display: block; font-size: 28px; } .card.late b { color: var(--late); } .card.ok b { color: var(--ok); }
  table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid var(--line); border-radius: 10px; overflow: hidden; }
  th, td { text-align: left; padding: 8px 12px; border-bottom: 1px solid var(--line); } th { font-size: 13px; color: var(--muted); font-weight: 600; }
  td.late { color: var(--late); font-weight: 600; }
  .bar { background: var(--line); border-radius: 4px; height: 8px; min-width: 80px; } .bar span { display: block; height: 8px; border-radius: 4px; background: var(--ok); }
  ul { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 8px 16px 8px 32px; } li { margin: 4px 0; }
  .tag { font-size: 12px; padding: 1px 6px; border-radius: 4px; background: var(--line); } .tag.completed { background: #d8f3e3; } .tag.deleted { background: #fbdcdc; } .tag.assigned { background: #dfe8fd; }
</style>
</head>
<body>
<main>
<h1>Board report: ${esc(r.board)}</h1>
<div class="muted">Generated ${esc(r.generatedAt)}</div>
<div class="cards">
  <div class="card"><span class="muted">Tasks</span><b>${r.totals.tasks}</b></div>
  <div class="card ok"><span class="muted">Done</span><b>${r.totals.done}</b><span class="muted">${donePct}%</span></div>
  <div class="card"><span class="muted">Pending</span><b>${r.totals.pending}</b><span class="muted">${r.totals.byStatus.todo} todo, ${r.totals.byStatus.doing} doing</span></div>
  <div class="card late"><span class="muted">Overdue</span><b>${r.overdue.count}</b></div>
</div>
<h2>By assignee</h2>
<table><thead><tr><th>Assignee</th><th>Tasks</th><th>Done</th><th>Pending</th><th>Overdue</th><th>Progress</th></tr></thead>
<tbody>
${rows || '<tr><td colspan="6" class="muted">No tasks yet.</td></tr>'}
</tbody></table>
<h2>Overdue (${r.overdue.count})</h2>
${r.overdue.count ? `<ul>\n${overdue}${r.overdue.count > r.overdue.tasks.length ? `\n<li class="muted">… and ${r.overdue.count - r.overdue.tasks.length} more</li>` : ""}\n</ul>` : '<p class="muted">Nothing is overdue.</p>'}
<h2>Activity in the last ${ACTIVITY_DAYS} days</h2>
<p class="muted">${Object.entries(r.activity.counts).map(([k, v]) => `${v} ${esc(k)}`).join(" · ")}</p>
${activity ? `<ul>\n${activity}\n</ul>` : '<p class="muted">No activity.</p>'}
</main>
</body>
</html>
`;
}

async function run(payload: unknown, ctx: JobContext) {
  const { board, format } = parsePayload(payload);
  ctx.progress(1, `opening board ${board}`);
  const data = await gather(ctx.board, board, Date.now(), (p, m) => ctx.progress(p, m));
  if (ctx.signal.aborted) throw ctx.signal.reason;
  ctx.progress(92, `writing ${format} report`);
  const body = format === "json" ? JSON.stringify(data, null, 2) + "\n" : format === "md" ? renderMarkdown(data) : renderHtml(data);
  const stamp = data.generatedAt.replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  const name = `${board}-${stamp}-job${ctx.jobId}.${format}`;
  const stored = await ctx.files.putArtifact(name, body, MEDIA_TYPE[format]);
  ctx.progress(100, `stored ${name} (${stored.size} bytes)`);
  return { artifact: name, bytes: stored.size, format, tasks: data.totals.tasks };
}

const MEDIA_TYPE: Record<ReportFormat, string> = { html: "text/html; charset=utf-8", md: "text/markdown; charset=utf-8", json: "application/json" };

export default defineJob({
  type: "report",
  timeoutMs: 10 * 60_000,
  async validate(payload, lookup) {
    const { board } = parsePayload(payload);
    if (!(await lookup.boardExists(board))) throw notFound(`board "${board}" not found`);
  },
  run,
});
