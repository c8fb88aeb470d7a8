import { parseDuration } from "../../lib/duration.js";
import { invalid, notFound } from "../../lib/errors.js";
import type { AppContext, Handlers, StreamHandlers } from "../context.js";
import { ok } from "../context.js";
import { EventLog, jobHead, serveStream } from "../sse.js";
import { listInSlices } from "./slices.js";

type JobRoutes = "jobsLogs" | "jobsWhy" | "queueGet" | "queuePause" | "queueResume" | "queueConcurrency" | "jobsEnqueue" | "jobsEnqueueBatch" | "jobsEnqueueBatchIds" | "jobsList" | "jobsGet" | "jobsCancel" | "jobsRetry" | "jobsPrune";

export function jobRoutes(app: AppContext): Pick<Handlers, JobRoutes> {
  const { engine } = app;
  const queueState = () => ({ concurrency: engine.concurrency, running: engine.runningCount, paused: engine.pausedState });
  return {
    async jobsEnqueue(spec) {
      const r = await engine.enqueue(spec);
      return { status: r.created ? 202 : 200, body: r };
    },
    async jobsEnqueueBatch({ jobs }) {
      return { status: 202, body: { jobs: await engine.enqueueBatch(jobs) } };
    },
    async jobsEnqueueBatchIds({ jobs }) {
      return { status: 202, body: await engine.enqueueBatchIds(jobs) };
    },
    async jobsLogs({ id, afterId }) {
      return ok({ logs: await engine.logsOf(id, afterId) });
    },
    async jobsWhy({ id }) {
      return ok(await engine.why(id));
    },
    async queueGet() {
      return ok(queueState());
    },
    async queuePause({ type }) {
      await engine.pause(type);
      return ok(queueState());
    },
    async queueResume({ type }) {
      await engine.resume(type);
      return ok(queueState());
    },
    async queueConcurrency({ concurrency }) {
      engine.setConcurrency(concurrency);
      return ok(queueState());
    },
    async jobsList(filter) {
      // Newest first: each slice starts below the last id of the one before.
      return listInSlices("jobs", filter.limit ?? 50, filter.beforeId, (limit, beforeId) => engine.list({ ...filter, limit, beforeId }), (j) => j.id);
    },
    async jobsGet({ id }) {
      return ok({ job: await engine.get(id) });
    },
    async jobsCancel({ id, wait }) {
      const { job, runsOn } = await engine.cancel(id, { wait });
      return ok(runsOn ? { job, runsOn } : { job });
    },
    async jobsRetry({ id }) {
      return ok({ job: await engine.retry(id) });
    },
    async jobsPrune({ olderThan }) {
      let ms: number | undefined;
      if (olderThan !== undefined) {
        try {
          ms = parseDuration(olderThan);
        } catch (err) {
          throw invalid(`olderThan: ${(err as Error).message}`);
        }
      }
      return ok({ pruned: await engine.prune(ms) });
    },
  };
}

export function jobStreams(app: AppContext): Pick<StreamHandlers, "jobsStream" | "eventsStream"> {
  // One log for every stream of this daemon: each event serialised once, a resume window. On
  // a shared store it follows the store's events (every daemon's), not this daemon's bus.
  const events = new EventLog(app.bus, app.clock, undefined, app.store.events ? { events: app.store.events, log: app.log } : undefined);
  return {
    async jobsStream({ id }, sse) {
      await serveStream(events, sse, {
        jobId: id,
        snapshot: async () => {
          const job = await app.engine.get(id).catch(() => null);
          if (!job) throw notFound(`job ${id} not found`);
          return [{ event: "job:status", data: { job: jobHead(job) } }];
        },
      });
    },
    async eventsStream(_input, sse) {
      await serveStream(events, sse);
    },
  };
}
