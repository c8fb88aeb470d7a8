// The client's own errors, in a module of their own: the package root exports them without
// loading the transport (a job module that imports defineJob from "teamwork" stays cheap).

import { formatDuration } from "../lib/duration.js";
import { TeamworkError } from "../lib/errors.js";
import type { Job, JobAttemptError } from "../protocol/types.js";

/**
 * A daemon took the connection but did not answer in time: stopped (SIGSTOP), wedged or
 * swamped. Exit 3 like an unreachable one, but never a reason to start another daemon, nor
 * to retry.
 */
export class NotAnswering extends TeamworkError {
  constructor(
    readonly pid: number | null,
    readonly timeoutMs: number,
    /** The call asked for a change, which may or may not have been made. */
    readonly write = false,
  ) {
    const who = pid === null ? "the daemon" : `the daemon (pid ${pid})`;
    super(
      "daemon_unreachable",
      `${who} is not answering (no reply within ${formatDuration(timeoutMs)})`,
      [
        write ? "the change asked for may or may not have been made; check before repeating it. " : "",
        "It may be stopped (kill -STOP) or overloaded: see `teamwork daemon status`, allow longer with --timeout (or TEAMWORK_TIMEOUT)",
        pid === null ? "" : `, or end it with \`kill ${pid}\``,
      ].join(""),
    );
  }
}

/** A job that ended failed or cancelled, as `wait` sees it: the job and its last error. */
export class JobFailedError extends TeamworkError {
  /** The last failed attempt's error, or null (cancelled before any attempt failed). */
  readonly lastError: JobAttemptError | null;
  constructor(readonly job: Job) {
    const lastError = job.errors.at(-1) ?? null;
    const why = job.status === "cancelled" ? "was cancelled" : `failed: ${job.error ?? lastError?.message ?? "no error recorded"}`;
    super("job_failed", `job ${job.id} (${job.type}) ${why}`, `see why with \`teamwork jobs why ${job.id}\` or client.jobs.why(${job.id})`, {
      jobId: job.id,
      status: job.status,
    });
    this.name = "JobFailedError";
    this.lastError = lastError;
  }
}

