// Turns the measurements into the Markdown report and the list of targets from issues 7 and 16.
import { bucketLabels } from "./latency.mjs";
import { cell, fmt, median } from "./util.mjs";

const isTeamwork = (s) => s.teamwork ?? s.id.startsWith("teamwork");

export const ROWS = [
  { key: "A1", label: "A. enqueue {N1} one by one, awaiting each (jobs/s)", better: "higher" },
  { key: "A2", label: "A. enqueue {N} in batches of 1,000 (jobs/s)", better: "higher" },
  { key: "B1", label: "B. process {N} queued no-ops, concurrency 1 (jobs/s)", better: "higher" },
  { key: "B3", label: "B. process {N} queued no-ops, pool of 3 (jobs/s)", better: "higher" },
  { key: "Bb", label: "B. process {N} queued no-ops, each peer at its best concurrency ({BEST}) (jobs/s)", better: "higher" },
  { key: "Bbest", label: "B. process {N} queued no-ops, each system at its best concurrency (of 1, 3 and the peer's best) (jobs/s)", better: "higher" },
  { key: "C50", label: "C. enqueue→start p50, {L} jobs 5 ms apart after {W} warm-up jobs (ms)", better: "lower" },
  { key: "C95", label: "C. enqueue→start p95 (ms)", better: "lower" },
  { key: "C99", label: "C. enqueue→start p99 (ms)", better: "lower" },
  { key: "Cack", label: "C. (for reference) enqueue call → acknowledged, p50 (ms)", better: "lower" },
  { key: "Ccold50", label: "C cold. enqueue→start p50, {L} jobs 5 ms apart into a fresh daemon / worker, no warm-up (ms)", better: "lower" },
  { key: "Ccold99", label: "C cold. enqueue→start p99 (ms)", better: "lower" },
  { key: "CcoldMax", label: "C cold. enqueue→start max (ms)", better: "lower" },
  { key: "S50", label: "Sporadic. enqueue→start p50, {S} jobs {SG} apart after {SI} idle (ms)", better: "lower" },
  { key: "S99", label: "Sporadic. enqueue→start p99 (ms)", better: "lower" },
  { key: "Smax", label: "Sporadic. enqueue→start max (ms)", better: "lower" },
  { key: "D3", label: "D. peak RSS during B, pool of 3 (MiB)", better: "lower" },
  { key: "D1", label: "D. peak RSS during B, concurrency 1 (MiB)", better: "lower" },
  { key: "Didle", label: "D. idle RSS of the daemon / worker process (MiB)", better: "lower" },
  { key: "DidleS", label: "D. RSS of the daemon / worker process at the end of the sporadic workload's idle period (MiB)", better: "lower" },
];

/** The rows of the summary "teamwork ÷ the best peer": one per workload. */
const SUMMARY = ["A1", "A2", "Bbest", "C50", "C99", "Ccold50", "Ccold99", "S50", "S99", "Didle", "DidleS"];

const med = (results, key, id) => {
  const xs = results[key]?.[id];
  return xs && xs.length ? median(xs) : undefined;
};

/** The best peer's median for a row: [value, label] or undefined. */
function bestPeer(results, row, systems) {
  let best;
  for (const s of systems) {
    if (isTeamwork(s)) continue;
    const v = med(results, row.key, s.id);
    if (v === undefined) continue;
    if (!best || (row.better === "higher" ? v > best[0] : v < best[0])) best = [v, s.label];
  }
  return best;
}

const ratioCell = (tw, best) => (tw === undefined || !best ? "–" : `${(tw / best[0]).toFixed(2)}× (${best[1]})`);

/** A row's label with its {placeholders} filled in. */
const rowLabel = (row, vars) => `${row.label.replace(/\{([A-Z0-9]+)\}/g, (m, k) => vars[k] ?? m)} ${row.better === "higher" ? "↑" : "↓"}`;

export function mainTable(results, systems, vars) {
  const tw = systems.filter(isTeamwork);
  const head = ["workload", ...systems.map((s) => s.label), ...tw.map((s) => `${s.label} ÷ best peer`)];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`];
  for (const row of ROWS) {
    if (!results[row.key]) continue;
    const label = rowLabel(row, vars);
    const best = bestPeer(results, row, systems);
    const cells = systems.map((s) => cell(results[row.key]?.[s.id]));
    const ratios = tw.map((s) => ratioCell(med(results, row.key, s.id), best));
    lines.push(`| ${label} | ${cells.join(" | ")} | ${ratios.join(" | ")} |`);
  }
  return lines.join("\n");
}

/** teamwork's ratio to the best peer (whichever it is, at its best) for each workload. */
export function bestPeerTable(results, systems, vars, bBestAt = {}) {
  /** " at concurrency 50" (or "3, 50" when the runs differ) for the row "B at its best". */
  const at = (key, label) => {
    const s = systems.find((x) => x.label === label);
    const cs = key === "Bbest" && s ? [...new Set(bBestAt[s.id] ?? [])].sort((a, b) => a - b) : [];
    return cs.length ? ` at concurrency ${cs.join(", ")}` : "";
  };
  const tw = systems.filter(isTeamwork);
  const head = ["workload", "best peer", ...tw.flatMap((s) => [s.label, "÷ best peer"])];
  const lines = [`| ${head.join(" | ")} |`, `|---|---|${tw.map(() => "---:|---:").join("|")}|`];
  for (const key of SUMMARY) {
    const row = ROWS.find((r) => r.key === key);
    if (!results[key]) continue;
    const best = bestPeer(results, row, systems);
    const cells = tw.flatMap((s) => {
      const v = med(results, key, s.id);
      return [fmt(v), v === undefined || !best ? "–" : `**${(v / best[0]).toFixed(2)}×**`];
    });
    lines.push(`| ${rowLabel(row, vars)} | ${best ? `${best[1]}${at(key, best[1])}: ${fmt(best[0])}` : "–"} | ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

/** One table per latency workload: a row per system and run, with the buckets and the slowest jobs. */
export function histogramTables(latency, systems, vars) {
  if (!latency) return [];
  const titles = {
    C: `C: ${vars.L} jobs 5 ms apart after ${vars.W} warm-up jobs`,
    Ccold: `C cold: ${vars.L} jobs 5 ms apart into a fresh daemon / worker, no warm-up`,
    S: `Sporadic: ${vars.S} jobs ${vars.SG} apart after ${vars.W} warm-up jobs and ${vars.SI} idle`,
  };
  const out = [];
  for (const [w, title] of Object.entries(titles)) {
    const bySystem = latency[w];
    if (!bySystem || Object.keys(bySystem).length === 0) continue;
    const head = ["system", "run", "p50", "p90", "p99", "max", ...bucketLabels().map((b) => `${b} ms`), "slowest 10 (#index in the run: ms)"];
    out.push(`### ${title}`, "", `| ${head.join(" | ")} |`, `|---|${head.slice(1, -1).map(() => "---:").join("|")}|---|`);
    for (const s of systems) {
      for (const h of bySystem[s.id] ?? []) {
        const slow = h.slowest.map((x) => `#${x.i}: ${fmt(x.ms)}`).join(", ");
        out.push(`| ${s.label} | ${h.run} | ${fmt(h.p50)} | ${fmt(h.p90)} | ${fmt(h.p99)} | ${fmt(h.max)} | ${h.buckets.join(" | ")} | ${slow} |`);
      }
    }
    out.push("");
  }
  return out;
}

const ms = (s) => (s ? `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})` : "–");

export function eTable(e) {
  if (!e) return "";
  const J = e.settings.jobs.toLocaleString("en-US");
  const T = e.settings.tasks.toLocaleString("en-US");
  const rows = [
    ["`node -e 0` wall time (ms)", ms(e.cli?.nodeE0), `median of ${e.settings.cliRuns}`],
    ["`teamwork jobs status ID` wall time, daemon running (ms)", ms(e.cli?.jobsStatus), `${e.cli ? e.cli.ratio.toFixed(2) : "–"}× \`node -e 0\``],
    ["daemon RSS, idle, empty store (MiB)", fmt(e.idleEmptyMiB), "2 s after start"],
    [`daemon RSS, idle, ${J} stored jobs (MiB)`, fmt(e.idleBigMiB), "2 s after start"],
    ["daemon RSS after list/show queries, empty store (MiB)", fmt(e.afterQueriesEmptyMiB), ""],
    [`daemon RSS after list/show queries, ${J} stored jobs (MiB)`, fmt(e.afterQueriesBigMiB), `growth ${fmt(e.rssGrowthMiB)} MiB (${fmt((e.rssGrowthMiB * 1048576) / 1e6)} MB)`],
    [`daemon start-up to /health, ${J} stored jobs (ms)`, fmt(e.startMsBig), ""],
    ["`GET /jobs?limit=50` over the socket, empty store (ms)", ms(e.empty?.jobsList50), `median of ${e.settings.routeRuns}`],
    [`\`GET /jobs?limit=50\` over the socket, ${J} jobs (ms)`, ms(e.big?.jobsList50), `median of ${e.settings.routeRuns}`],
    [`\`GET /jobs?status=failed&limit=50\`, ${J} jobs, none failed (ms)`, ms(e.big?.jobsListFailed50), ""],
    ["`GET /jobs/ID` over the socket, empty store (ms)", ms(e.empty?.jobsGet), ""],
    [`\`GET /jobs/ID\` over the socket, ${J} jobs, spread ids (ms)`, ms(e.big?.jobsGet), ""],
    [`\`GET /daemon/status\` (counts by status), ${J} jobs (ms)`, ms(e.big?.daemonStatus), "median of 5"],
    [`\`teamwork jobs list --limit 50\` wall time, ${J} jobs (ms)`, ms(e.cliBig?.jobsList50), "CLI, including node start-up"],
    [`\`teamwork jobs show ID\` wall time, ${J} jobs (ms)`, ms(e.cliBig?.jobsShow), "CLI, including node start-up"],
    [`report job (md) over a ${T}-task board: enqueue → complete (ms)`, ms(e.report?.wall), `median of ${e.settings.reports}`],
    ["… of which the handler ran (ms, from startedAt/finishedAt)", ms(e.report?.handler), ""],
    ["daemon RSS right after the reports (MiB)", fmt(e.afterReportMiB), ""],
  ];
  return ["| E. teamwork only | figure | note |", "|---|---:|---|", ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

/** Each target of issue 7 with the figures that decide it, and by how much it is met or missed. */
export function targets(results, systems, fsync, e) {
  const m = (key, id) => med(results, key, id);
  const best = (key) => bestPeer(results, ROWS.find((r) => r.key === key), systems);
  const out = [];
  /** kind "min": value ≥ goal is met; "max": value ≤ goal is met. */
  const add = (target, value, goal, kind, figure, unit = "") => {
    if (value === undefined || !Number.isFinite(value)) return out.push({ target, status: "not measured", detail: figure });
    const met = kind === "min" ? value >= goal : value <= goal;
    let gap;
    if (kind === "min") gap = met ? `${(value / goal).toFixed(2)}× the target` : `missed by ${((1 - value / goal) * 100).toFixed(0)}%: ${(goal / value).toFixed(2)}× to go`;
    else gap = met ? `${fmt(goal - value)}${unit} to spare` : `missed by ${fmt(value - goal)}${unit} (${(value / goal).toFixed(2)}× the limit)`;
    out.push({ target, status: met ? "met" : "missed", value, goal, detail: `${figure} — ${gap}` });
  };
  const tw = (key, d) => m(key, `teamwork-${d}`);
  for (const [key, what] of [["B3", "pool of 3"], ["B1", "concurrency 1"]]) {
    const b = best(key);
    const v = tw(key, "full");
    add(`B (${what}, full durability) ≥ 2× the best peer`, b && v ? v / b[0] : undefined, 2, "min", b ? `teamwork ${fmt(v)}/s vs ${b[1]} ${fmt(b[0])}/s = ${v ? (v / b[0]).toFixed(2) : "–"}× (needs ${fmt(2 * b[0])}/s)` : "no peer measured");
  }
  const pj = m("A2", "plainjob");
  const a2 = tw("A2", "full");
  add("A in batches (full durability, over the socket) ≥ plainjob's in-process batch rate", pj && a2 ? a2 / pj : undefined, 1, "min", pj ? `teamwork ${fmt(a2)}/s vs plainjob ${fmt(pj)}/s = ${a2 ? (a2 / pj).toFixed(2) : "–"}×` : "plainjob not measured");
  const bq = m("A1", "bullmq");
  const a1p = tw("A1", "process");
  add("A one by one (process durability) ≥ BullMQ's one-by-one rate", bq && a1p ? a1p / bq : undefined, 1, "min", bq ? `teamwork ${fmt(a1p)}/s vs BullMQ ${fmt(bq)}/s = ${a1p ? (a1p / bq).toFixed(2) : "–"}×` : "BullMQ not measured");
  const fb = fsync?.length ? median(fsync.map((f) => f.fsyncPerSecond)) : undefined;
  const a1f = tw("A1", "full");
  add("A one by one (full durability) ≥ 90% of the fsync bound", fb && a1f ? a1f / fb / 0.9 : undefined, 1, "min", fb ? `teamwork ${fmt(a1f)}/s vs the bound ${fmt(fb)}/s = ${a1f ? ((a1f / fb) * 100).toFixed(0) : "–"}% (needs ${fmt(0.9 * fb)}/s)` : "");
  for (const d of ["full", "process"]) {
    add(`C p50 ≤ 1 ms (${d})`, tw("C50", d), 1, "max", `p50 ${fmt(tw("C50", d))} ms`, " ms");
    add(`C p99 ≤ 5 ms (${d})`, tw("C99", d), 5, "max", `p99 ${fmt(tw("C99", d))} ms`, " ms");
  }
  for (const d of ["full", "process"]) add(`D peak RSS during B with the pool of 3 ≤ 100 MiB (${d})`, tw("D3", d), 100, "max", `${fmt(tw("D3", d))} MiB`, " MiB");
  add("D idle RSS ≤ 60 MiB", tw("Didle", "full"), 60, "max", `${fmt(tw("Didle", "full"))} MiB, fresh daemon, 1 s after start`, " MiB");
  // Issue 16.
  for (const d of ["full", "process"]) {
    add(`(issue 16) C cold p99 ≤ 5 ms (${d})`, tw("Ccold99", d), 5, "max", `p99 ${fmt(tw("Ccold99", d))} ms, max ${fmt(tw("CcoldMax", d))} ms`, " ms");
    add(`(issue 16) sporadic p99 ≤ 5 ms (${d})`, tw("S99", d), 5, "max", `p99 ${fmt(tw("S99", d))} ms, max ${fmt(tw("Smax", d))} ms`, " ms");
  }
  {
    const b = best("Bbest");
    const v = tw("Bbest", "full");
    add("(issue 16) B (full durability) ≥ 2× the best peer, each at its best concurrency", b && v ? v / b[0] : undefined, 2, "min", b ? `teamwork ${fmt(v)}/s vs ${b[1]} ${fmt(b[0])}/s = ${v ? (v / b[0]).toFixed(2) : "–"}× (needs ${fmt(2 * b[0])}/s)` : "no peer measured");
  }
  add("(issue 16) D idle RSS ≤ 70 MiB, fresh daemon", tw("Didle", "full"), 70, "max", `${fmt(tw("Didle", "full"))} MiB, 1 s after start`, " MiB");
  add("(issue 16) D idle RSS ≤ 70 MiB, after the sporadic workload's idle period", tw("DidleS", "full"), 70, "max", `${fmt(tw("DidleS", "full"))} MiB`, " MiB");
  if (e) {
    add("E `teamwork jobs status ID` within 1.5× of `node -e 0`", e.cli?.ratio, 1.5, "max", e.cli ? `${fmt(e.cli.jobsStatus.median)} ms vs ${fmt(e.cli.nodeE0.median)} ms = ${e.cli.ratio.toFixed(2)}×` : "", "×");
    const J = e.settings.jobs.toLocaleString("en-US");
    const mb = e.rssGrowthMiB === undefined ? undefined : (e.rssGrowthMiB * 1048576) / 1e6;
    add(`E RSS growth ≤ 20 MB from 0 to ${J} stored jobs`, mb, 20, "max", `${fmt(e.afterQueriesEmptyMiB)} → ${fmt(e.afterQueriesBigMiB)} MiB = +${fmt(mb)} MB`, " MB");
    add(`E \`jobs list --limit 50\` ≤ 20 ms at ${J} jobs (the daemon's answer over the socket)`, e.big?.jobsList50?.median, 20, "max", `${fmt(e.big?.jobsList50?.median)} ms (the whole CLI command: ${fmt(e.cliBig?.jobsList50?.median)} ms)`, " ms");
  }
  return out;
}

export function targetsTable(list) {
  return ["| target (issue 7 unless marked) | status | figures |", "|---|---|---|", ...list.map((t) => `| ${t.target} | ${t.status === "met" ? "✅ met" : t.status === "missed" ? "❌ missed" : "– " + t.status} | ${t.detail} |`)].join("\n");
}

/** The whole report, from what run.mjs saves as JSON. */
export function renderMarkdown(j) {
  const { N, N1, runs, latencyJobs: L, warmup } = j.params;
  const sp = j.params.sporadic;
  const secs = (v) => `${fmt(v / 1000)} s`;
  const vars = {
    N: N.toLocaleString("en-US"),
    N1: (N1 ?? N).toLocaleString("en-US"),
    L: String(L),
    W: String(warmup),
    S: String(sp?.jobs ?? "–"),
    SG: sp ? secs(sp.gapMs) : "–",
    SI: sp ? secs(sp.idleMs) : "–",
    BEST: j.systems.filter((s) => s.bestConcurrency !== undefined).map((s) => `${s.label} ${s.bestConcurrency}`).join(", "),
  };
  const fsync = j.fsync ?? [];
  const e = j.e;
  const load = j.loadAverage ? ` Load average (1/5/15 min) at the start ${j.loadAverage.start.join(" / ")}, at the end ${j.loadAverage.end.join(" / ")}.` : "";
  return [
    `# teamwork benchmarks, ${j.date}`,
    "",
    `Command: \`${j.command}\` (${j.minutes} min). Machine: ${j.machine}.${load}`,
    "",
    `N = ${N.toLocaleString("en-US")} jobs for A in batches and for B, ${(N1 ?? N).toLocaleString("en-US")} for A one by one; C: ${L} jobs enqueued 5 ms apart into an idle worker (after ${warmup} warm-up jobs), from the enqueue call to the first line of the handler. ` +
      (sp ? `C cold: the same with no warm-up, the first job sent as soon as a fresh daemon answers /health or a fresh peer worker has started. Sporadic: ${warmup} warm-up jobs, ${vars.SI} of nothing, then ${sp.jobs} jobs ${vars.SG} apart; once per system, not per run${sp.jobs ? "" : " (skipped)"}. A and B start from a fresh daemon / worker process with no warm-up jobs: they are cold already. ` : "") +
      `${runs === 1 ? "One run." : `Each cell is the median of ${runs} runs with (min–max).`} ↑ higher is better, ↓ lower is better; "÷ best peer" divides teamwork's median by the best peer's (above 1 is better for ↑ rows, below 1 for ↓ rows).`,
    "",
    ...(fsync.length
      ? [
          `fsync bound on this disk: ${fmt(median(fsync.map((f) => f.fsyncPerSecond)))} durable commits/s (median fdatasync of a 128-byte append: ${median(fsync.map((f) => f.fsyncMs)).toFixed(3)} ms); SQLite WAL synchronous=FULL autocommit insert: ${median(fsync.map((f) => f.sqliteCommitMs)).toFixed(3)} ms (${fmt(median(fsync.map((f) => f.sqliteCommitsPerSecond)))}/s).`,
          "",
        ]
      : []),
    mainTable(j.results, j.systems, vars),
    "",
    "## teamwork ÷ the best peer",
    "",
    "Per workload, the best peer's median (each peer at its best: B over concurrency 1, 3 and its best concurrency) and teamwork's ratio to it (above 1 is better for ↑ rows, below 1 for ↓ rows).",
    "",
    bestPeerTable(j.results, j.systems, vars, j.bBestAt),
    "",
    ...(e ? [eTable(e), ""] : []),
    ...(j.latency
      ? [
          "## Latency histograms",
          "",
          `Each run of each latency workload: percentiles, the number of jobs per bucket of enqueue→start time, and the 10 slowest jobs with their index in the run (#0 is the first job measured: in C cold the first job after the daemon or worker started, in the sporadic workload the first after the idle period). C's warm-up jobs are not counted (they are not in the index). The histograms are in the JSON too (\`latency\`, with each slowest job's enqueue acknowledgement time).`,
          "",
          ...histogramTables(j.latency, j.systems, vars),
        ]
      : []),
    "## Targets",
    "",
    targetsTable(j.targets),
    "",
    "## Settings",
    "",
    ...j.systems.map((s) => `- **${s.label}**: ${s.settings}.`),
    "- Every worker runs in a process of its own, apart from the process that enqueues: teamwork's daemon (handlers in its worker threads), each peer's worker process forked by the bench. Handlers are no-ops (C's return the time they started). Before B, teamwork's daemon is restarted on its queued (paused) jobs, as the peers' worker processes start with their jobs already stored.",
    "- Peak RSS is the kernel's VmHWM of the daemon or the worker process, reset once the jobs are queued (cross-checked by sampling VmRSS every 20 ms). Idle RSS: teamwork's daemon 1 s after start; a peer's worker process once set up, before B. RSS at the end of the sporadic workload's idle period: after its warm-up jobs and idle period, just before its first measured job (what a warm worker costs while nothing happens).",
    ...(e ? [`- **E**: teamwork, durability "full". ${e.settings.jobs.toLocaleString("en-US")} stored jobs (complete) and a ${e.settings.tasks.toLocaleString("en-US")}-task board with one "created" event per task are copies, made with SQL while the daemon is stopped, of a job and a task the daemon created; the daemon is then restarted on that database. CLI times are wall times of \`node bin/teamwork.cjs …\` spawned by the bench, alternating with \`node -e 0\`.`] : []),
    ...(j.notes?.length ? ["", "## Notes", "", ...j.notes.map((n) => `- ${n}`)] : []),
    "",
  ].join("\n");
}
