// One error type travels from wherever input is judged to wherever it is shown. The code
// decides the HTTP status on the socket and the exit code in the CLI (see protocol/errors.ts).

export type ErrorCode =
  | "invalid_input" // 400: the request or its body does not fit
  | "not_found" // 404: no such task, board, job, route
  | "method_not_allowed" // 405
  | "conflict" // 409: the thing exists already or is in the wrong state
  | "payload_too_large" // 413
  | "unsupported_media_type" // 415
  | "daemon_unreachable" // CLI only: no daemon answered
  | "version_mismatch"
  | "schema_too_new" // the database was written by a newer teamwork
  | "unavailable" // 503: shutting down, store failing
  | "database_unreachable" // 503: the database cannot be reached (its network or server is down); exit 3
  | "internal" // 500: a bug
  // Client only (never sent by the daemon): what waiting on a job can end in.
  | "job_failed" // the job ended failed or cancelled
  | "timeout" // the client stopped waiting after the time it was given
  | "aborted"; // the caller's AbortSignal fired

/**
 * The HTTP status each code travels with on the socket (protocol/errors.ts re-exports it as
 * HTTP_STATUS); client-only codes have the status the daemon would give them.
 */
export const ERROR_STATUS: Record<ErrorCode, number> = {
  invalid_input: 400,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  version_mismatch: 400,
  daemon_unreachable: 503,
  schema_too_new: 500,
  unavailable: 503,
  database_unreachable: 503,
  internal: 500,
  job_failed: 500,
  timeout: 408,
  aborted: 499,
};

export class TeamworkError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly hint?: string,
    readonly details?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "TeamworkError";
  }

  /** The HTTP status of this code (ERROR_STATUS). */
  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

export const invalid = (message: string, hint?: string) =>
  new TeamworkError("invalid_input", message, hint);
export const notFound = (message: string) => new TeamworkError("not_found", message);
export const conflict = (message: string) => new TeamworkError("conflict", message);

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
