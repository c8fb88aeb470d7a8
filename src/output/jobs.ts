// How jobs look to people: status words and colours, one-line summaries, progress bars.

import type { ChalkInstance } from "chalk";
import type { Job, JobStatus } from "../protocol/types.js";

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

/** One line that says where a job stands, for watchers and `jobs status`. */
export function jobLine(job: Job): string {
  const head = `job ${job.id} (${job.type})`;
  switch (job.status) {
    case "pending":
      if (job.attempts > 0 && job.error) return `${head} pending: retry ${job.attempts + 1}/${job.maxAttempts} after error: ${job.error}`;
      return Date.parse(job.runAt) > Date.now() ? `${head} pending: scheduled for ${job.runAt}` : `${head} pending`;
    case "running":
      return `${head} running ${job.progress}%${job.progressMessage ? `: ${job.progressMessage}` : ""} (slot ${job.slot}, attempt ${job.attempts}/${job.maxAttempts})`;
    case "complete":
      return `${head} complete${job.result !== null ? `: ${summariseResult(job.result)}` : ""}`;
    case "failed":
      return `${head} failed after ${job.attempts} attempt${job.attempts === 1 ? "" : "s"}: ${job.error ?? "unknown error"}`;
    case "cancelled":
      return `${head} Cancelled by user`;
  }
}

export function summariseResult(result: unknown): string {
  if (result && typeof result === "object" && !Array.isArray(result) && "path" in result) return String((result as { path: unknown }).path);
  const text = JSON.stringify(result);
  return text.length > 200 ? text.slice(0, 199) + "…" : text;
}
