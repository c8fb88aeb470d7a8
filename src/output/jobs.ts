// How jobs look to people: status words and colours, one-line summaries, progress bars.

import type { ChalkInstance } from "chalk";
import type { Job, JobHead, JobStatus, JobSummary } from "../protocol/types.js";
import { formatBytes } from "../protocol/files.js";
import { safe, toJson } from "./safe.js";
import { displayWidth, truncateToWidth } from "./width.js";

export function statusLabel(status: JobStatus): string {
  return status === "cancelled" ? "Cancelled by user" : status;
}

export function colorStatus(c: ChalkInstance, status: JobStatus, text: string = status): string {
  switch (status) {
    case "complete":
      return c.green(text);
    case "failed":
      return c.red(text);
    case "running":
      return c.cyan(text);
    case "pending":
      return c.yellow(text);
    case "cancelled":
      return c.dim(text);
  }
}

export function progressBar(percent: number, width = 20): string {
  const filled = Math.round((Math.max(0, Math.min(100, percent)) / 100) * width);
  return "█".repeat(filled) + "░".repeat(width - filled);
}

/** One line that says where a job stands, for watchers and `jobs status` (user text made safe). */
export function jobLine(job: Job | JobSummary | JobHead): string {
  const head = `job ${job.id} (${safe(job.type)})`;
  switch (job.status) {
    case "pending":
      if (job.attempts > 0 && job.error) return `${head} pending: retry ${job.attempts + 1}/${job.maxAttempts} after error: ${safe(job.error)}`;
      return Date.parse(job.runAt) > Date.now() ? `${head} pending: scheduled for ${job.runAt}` : `${head} pending`;
    case "running":
      return `${head} running ${job.progress}%${job.progressMessage ? `: ${safe(job.progressMessage)}` : ""} (slot ${job.slot}, attempt ${job.attempts}/${job.maxAttempts})`;
    case "complete": {
      const result = resultLine(job);
      return `${head} complete${result !== null ? `: ${result}` : ""}`;
    }
    case "failed":
      return `${head} failed after ${job.attempts} attempt${job.attempts === 1 ? "" : "s"}: ${safe(job.error ?? "unknown error")}`;
    case "cancelled":
      return `${head} Cancelled by user`;
  }
}

/** A job's result in one line, safe to print: its `path` if it has one, or its JSON cut short. */
export function summariseResult(result: unknown): string {
  if (result && typeof result === "object" && !Array.isArray(result) && typeof (result as { artifact?: unknown }).artifact === "string") {
    const r = result as { artifact: string; bytes?: unknown };
    return `artifact ${safe(r.artifact)}${typeof r.bytes === "number" ? ` (${formatBytes(r.bytes)})` : ""}`;
  }
  if (result && typeof result === "object" && !Array.isArray(result) && "path" in result) return safe(String((result as { path: unknown }).path));
  const text = safe(toJson(result));
  return displayWidth(text) > 200 ? truncateToWidth(text, 200) : text;
}

/**
 * A job's result in a few words, from the whole job or from a list's summary (whose preview,
 * when cut, is not JSON: it is shown as it is, marked with "…"). Null when there is none.
 */
export function resultLine(job: Job | JobSummary | JobHead): string | null {
  if ("result" in job) return job.result === null ? null : summariseResult(job.result);
  // An event's head carries no result: read the job for it.
  if (!("resultPreview" in job) || job.resultPreview === null) return null;
  if (job.resultTruncated) return safe(job.resultPreview) + "…";
  return summariseResult(JSON.parse(job.resultPreview));
}
