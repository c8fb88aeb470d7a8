// A small application on teamwork's client: an HTTP endpoint that queues a report and
// streams its progress, and one that waits for a job's result.
//
//   POST /reports?board=web&format=md   202, then one JSON object per line (application/x-ndjson):
//                                       {"event":"queued","jobId":7}, {"event":"progress",…}, …,
//                                       and last {"event":"done","artifact":…,"download":"/jobs/7/report"}
//                                       or {"event":"failed","error":…}
//   GET  /jobs/7/report                 the report's bytes, streamed from teamwork's database (any
//                                       node of a team may have made it), with its media type
//   GET  /jobs/7/result?timeout=5000    200 with the job's result, or the error as JSON with its status
//
// Run it against a daemon (`teamwork daemon start`, or TEAMWORK_AUTOSTART=1 to start one):
//   node examples/report-server/server.mjs          # prints {"listening":<port>}
//   curl -N -X POST 'localhost:<port>/reports?board=default&format=md'

import { createServer } from "node:http";
import { connect, JobFailedError, TeamworkError } from "teamwork";

const tw = await connect({ autostart: process.env.TEAMWORK_AUTOSTART === "1" });

/** An error as JSON, with the HTTP status its code carries. */
function sendError(res, err) {
  const e = err instanceof TeamworkError ? err : new TeamworkError("internal", String(err));
  const body = { error: { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) } };
  if (e instanceof JobFailedError) body.error.lastError = e.lastError;
  if (res.headersSent) res.end(JSON.stringify({ event: "failed", ...body }) + "\n");
  else res.writeHead(e.status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

async function streamReport(req, res, url) {
  const { job } = await tw.jobs.enqueue("report", {
    board: url.searchParams.get("board") ?? "default",
    format: url.searchParams.get("format") ?? "html",
  });
  res.writeHead(202, { "content-type": "application/x-ndjson" });
  const send = (line) => res.write(JSON.stringify(line) + "\n");
  send({ event: "queued", jobId: job.id });
  // Stop watching when the HTTP client goes away (the report itself goes on).
  const gone = new AbortController();
  res.on("close", () => gone.abort());
  for await (const e of tw.jobs.watch(job, { signal: gone.signal })) {
    if (e.type === "job:progress") send({ event: "progress", percent: e.data.progress, message: e.data.message });
    if (e.type === "job:status") send({ event: "status", status: e.data.job.status, percent: e.data.job.progress });
  }
  const final = await tw.jobs.get(job.id);
  if (final.status === "complete") send({ event: "done", artifact: final.result.artifact, tasks: final.result.tasks, download: `/jobs/${job.id}/report` });
  else send({ event: "failed", error: final.error });
  res.end();
}

async function sendReport(res, id) {
  const job = await tw.jobs.get(id);
  if (job.type !== "report" || job.status !== "complete") throw new TeamworkError("not_found", `job ${id} is not a completed report`);
  const file = await tw.jobs.artifact(id, job.result.artifact);
  res.writeHead(200, { "content-type": file.mediaType, "content-length": file.size });
  file.body.pipe(res);
}

async function jobResult(res, id, url) {
  const timeout = Number(url.searchParams.get("timeout") ?? 30_000);
  const result = await tw.jobs.wait(id, { timeout });
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ result }));
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://localhost");
  const result = /^\/jobs\/(\d+)\/result$/.exec(url.pathname);
  const report = /^\/jobs\/(\d+)\/report$/.exec(url.pathname);
  let work;
  if (req.method === "POST" && url.pathname === "/reports") work = streamReport(req, res, url);
  else if (req.method === "GET" && result) work = jobResult(res, Number(result[1]), url);
  else if (req.method === "GET" && report) work = sendReport(res, Number(report[1]));
  else work = Promise.reject(new TeamworkError("not_found", `no route ${req.method} ${url.pathname}`));
  work.catch((err) => sendError(res, err));
});

server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(JSON.stringify({ listening: server.address().port }));
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    server.close();
    tw.close();
  });
}
