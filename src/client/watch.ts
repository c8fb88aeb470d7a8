// Following one job: its events as an async iterator that survives a daemon restart (the
// stream is opened again from where it stopped, with nothing missed or twice), and waiting
// for its end. Used by applications (client.jobs.watch / wait) and by the CLI's --watch.

import { TeamworkError } from "../lib/errors.js";
import { formatDuration } from "../lib/duration.js";
import type { ControlEvent, StreamEvent } from "../protocol/events.js";
import type { Job, JobHead, JobStatus } from "../protocol/types.js";
import type { Client } from "./client.js";
import { JobFailedError, NotAnswering } from "./errors.js";

export { JobFailedError };

export const FINAL_STATUSES: ReadonlySet<JobStatus> = new Set<JobStatus>(["complete", "failed", "cancelled"]);

/** How long a daemon that is gone (not one that does not answer) is waited for while watching. */
export const WATCH_LOST_MS = 60_000;

export interface WatchOptions {
  /** Stops the iteration: the iterator then throws a TeamworkError "aborted" (or "timeout", for AbortSignal.timeout). */
  signal?: AbortSignal;
  /** Resume after this event id (a stream's lastEventId): nothing missed, nothing twice. */
  lastEventId?: string | null;
  /**
   * Open the stream again when it ends before the job does (the daemon restarted): true by
   * default. With false, the iteration ends with the stream.
   */
  resume?: boolean;
  /** Called when the daemon is lost while watching, before waiting for it. */
  onLost?: (err: unknown) => void;
  /** Called when it answers again after onLost. */
  onBack?: () => void;
  /** The stream's control events (docs/protocol.md, "Event streams"); they are not yielded. */
  onControl?: (e: ControlEvent) => void;
}

/** The TeamworkError an aborted signal becomes: "timeout" for AbortSignal.timeout, "aborted" otherwise. */
export function abortError(signal: AbortSignal, what: string): TeamworkError {
  const reason: unknown = signal.reason;
  if (reason instanceof TeamworkError) return reason;
  const timedOut = reason instanceof Error && reason.name === "TimeoutError";
  return new TeamworkError(timedOut ? "timeout" : "aborted", timedOut ? `${what}: timed out` : `${what}: aborted`, undefined, undefined, { cause: reason });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * The events of job `id`, from its current status (the stream's first event) to its final
 * status event, which is the last one yielded. Across a daemon restart the stream is opened
 * again where it stopped; a daemon gone for WATCH_LOST_MS ends the iteration with
 * daemon_unreachable, one that takes connections but does not answer is waited for.
 */
export async function* watchJobEvents(client: Client, id: number, opts: WatchOptions = {}): AsyncGenerator<StreamEvent, void, undefined> {
  const { signal } = opts;
  let resumeAt = opts.lastEventId ?? null;
  let job: JobHead | null = null;
  let lostErr: unknown = null;
  let lostSaid = false;
  for (;;) {
    if (signal?.aborted) throw abortError(signal, `watching job ${id}`);
    const lastConnect = Date.now();
    const queue: StreamEvent[] = [];
    let wake: (() => void) | null = null;
    let ended = false;
    let failed: { err: unknown } | null = null;
    const poke = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    const stream = client.stream(
      "jobsStream",
      { id },
      (e) => {
        queue.push(e);
        poke();
      },
      { lastEventId: resumeAt, onControl: opts.onControl },
    );
    stream.done.then(
      () => {
        ended = true;
        poke();
      },
      (err: unknown) => {
        ended = true;
        failed = { err };
        poke();
      },
    );
    signal?.addEventListener("abort", poke);
    try {
      for (;;) {
        const e = queue.shift();
        if (e) {
          if (e.type === "job:status") job = e.data.job;
          yield e;
          if (e.type === "job:status" && FINAL_STATUSES.has(e.data.job.status)) return;
          continue;
        }
        if (signal?.aborted) throw abortError(signal, `watching job ${id}`);
        if (ended) break;
        await new Promise<void>((r) => (wake = r));
      }
    } finally {
      signal?.removeEventListener("abort", poke);
      stream.close();
    }
    resumeAt = stream.lastEventId;
    if (failed) {
      const err = (failed as { err: unknown }).err;
      // 404 and the like are final; an unreachable daemon may be restarting.
      if (!(err instanceof TeamworkError) || err.code !== "daemon_unreachable" || opts.resume === false) throw err;
      lostErr = err;
    }
    if (opts.resume === false) return;
    // The stream dropped (daemon restarting, or frozen): reconnect. A daemon that is there
    // but does not answer (NotAnswering) is waited for as long as it takes, saying so once;
    // one that is gone, a minute.
    if (Date.now() - lastConnect > WATCH_LOST_MS && !job && !(lostErr instanceof NotAnswering)) throw new TeamworkError("daemon_unreachable", "lost the daemon while watching");
    await sleep(200, signal);
    let deadline = Date.now() + WATCH_LOST_MS;
    for (;;) {
      if (signal?.aborted) throw abortError(signal, `watching job ${id}`);
      if (lostErr instanceof NotAnswering) {
        deadline = Date.now() + WATCH_LOST_MS;
        if (!lostSaid) opts.onLost?.(lostErr);
        lostSaid = true;
      }
      try {
        await client.call("health", {});
        if (lostSaid) opts.onBack?.();
        lostSaid = false;
        lostErr = null;
        break;
      } catch (err) {
        lostErr = err;
        if (Date.now() > deadline && !(err instanceof NotAnswering)) throw new TeamworkError("daemon_unreachable", `lost the daemon while watching job ${id}`, "check `teamwork daemon status`");
        await sleep(200, signal);
      }
    }
  }
}

export interface WaitOptions {
  /** Stop waiting when this fires: rejects with a TeamworkError "aborted" (the job goes on). */
  signal?: AbortSignal;
  /** Stop waiting after this many ms: rejects with a TeamworkError "timeout" (the job goes on). */
  timeout?: number;
}

/**
 * The whole job, read once its final status was seen. The daemon may go away right then (it
 * was stopping: the job ended within its shutdown grace): a daemon that is gone is waited
 * for, as the watch waits for it (WATCH_LOST_MS), and one that does not answer for as long as
 * it takes.
 */
export async function finalJob(client: Client, id: number, signal?: AbortSignal): Promise<Job> {
  const deadline = Date.now() + WATCH_LOST_MS;
  for (;;) {
    if (signal?.aborted) throw abortError(signal, `watching job ${id}`);
    try {
      return (await client.call("jobsGet", { id })).job;
    } catch (err) {
      const gone = err instanceof TeamworkError && err.code === "daemon_unreachable";
      if (!(err instanceof NotAnswering) && (!gone || Date.now() > deadline)) throw err;
      await sleep(200, signal);
    }
  }
}

/**
 * Waits for job `id` to end: resolves with the whole job when it completed, rejects with
 * JobFailedError when it failed or was cancelled.
 */
export async function waitForJob(client: Client, id: number, opts: WaitOptions = {}): Promise<Job> {
  const controller = new AbortController();
  const stop = () => controller.abort(opts.signal?.reason);
  if (opts.signal?.aborted) stop();
  opts.signal?.addEventListener("abort", stop, { once: true });
  let status: JobStatus | null = null;
  const timer =
    opts.timeout === undefined
      ? undefined
      : setTimeout(() => {
          const now = status === null ? "" : ` (it is ${status})`;
          controller.abort(new TeamworkError("timeout", `job ${id} did not finish within ${formatDuration(opts.timeout!)}${now}`, `wait longer, or see why with client.jobs.why(${id})`));
        }, opts.timeout);
  try {
    for await (const e of watchJobEvents(client, id, { signal: controller.signal })) {
      if (e.type === "job:status") status = e.data.job.status;
    }
    const job = await finalJob(client, id, controller.signal);
    if (job.status !== "complete") throw new JobFailedError(job);
    return job;
  } catch (err) {
    if (controller.signal.aborted && !(err instanceof JobFailedError)) throw abortError(controller.signal, `waiting for job ${id}`);
    throw err;
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", stop);
  }
}
