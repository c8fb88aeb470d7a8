// Error codes ↔ HTTP status ↔ CLI exit code: the one table both sides read. And what each
// kind of store failure becomes (STORE_FAILURES).

import { ERROR_STATUS, TeamworkError, type ErrorCode } from "../lib/errors.js";
import { DAEMON_EXIT } from "./daemon-exit.js";

export interface ErrorBody {
  error: { code: ErrorCode; message: string; hint?: string; details?: Record<string, unknown> };
}

export const HTTP_STATUS: Record<ErrorCode, number> = ERROR_STATUS;

/** Documented in the README; cli/main.ts is the only place that exits with them. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  unreachable: 3,
  notFound: 4,
  schemaTooNew: 5,
  interrupted: 130,
} as const;

export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case "invalid_input":
    case "method_not_allowed":
    case "payload_too_large":
    case "unsupported_media_type":
      return EXIT.usage;
    case "not_found":
      return EXIT.notFound;
    case "daemon_unreachable":
    case "database_unreachable":
      return EXIT.unreachable;
    case "schema_too_new":
      return EXIT.schemaTooNew;
    case "aborted":
      return EXIT.interrupted;
    default:
      return EXIT.failed;
  }
}

export function errorCodeForStatus(status: number): ErrorCode {
  if (status === 404) return "not_found";
  if (status === 409) return "conflict";
  if (status === 413) return "payload_too_large";
  if (status === 405) return "method_not_allowed";
  if (status === 415) return "unsupported_media_type";
  if (status >= 400 && status < 500) return "invalid_input";
  if (status === 503) return "unavailable";
  return "internal";
}

/** The kinds of StoreError (store/errors.ts says what each means). */
export type StoreFailureKind = "unavailable" | "busy" | "full" | "corrupt" | "readonly" | "too_new" | "unreachable";

const TRY_AGAIN = "try again once the cause is gone; see `teamwork daemon logs`";

/**
 * What a store failure means to a client, by kind: the error code (which picks the HTTP status
 * and the CLI's exit code above), the daemon's exit code when it happens at start-up, and the
 * words that say what happened (null: the store's reason says it all). A store failure is not
 * a bug in the request or in us, and nothing was stored: a 503 with the reason, apart from a
 * newer schema, which no retry can fix.
 */
export const STORE_FAILURES: Record<StoreFailureKind, { code: ErrorCode; daemonExit: number; says: string | null; hint: string }> = {
  unavailable: { code: "unavailable", daemonExit: DAEMON_EXIT.failed, says: "the database failed", hint: TRY_AGAIN },
  busy: { code: "unavailable", daemonExit: DAEMON_EXIT.failed, says: "the database is locked by another process", hint: TRY_AGAIN },
  full: { code: "unavailable", daemonExit: DAEMON_EXIT.failed, says: "the disk is full", hint: "free some space on the disk that holds teamwork's home, then try again" },
  readonly: { code: "unavailable", daemonExit: DAEMON_EXIT.failed, says: "the database is read-only", hint: TRY_AGAIN },
  corrupt: {
    code: "unavailable",
    daemonExit: DAEMON_EXIT.failed,
    says: "the database is damaged",
    hint: "the file was left as it is; check it and restore a backup (see \"Backups\" in docs/operations.md)",
  },
  too_new: {
    code: "schema_too_new",
    daemonExit: DAEMON_EXIT.schemaTooNew,
    says: null,
    hint: "upgrade teamwork, or point --home at another folder; the database was left untouched",
  },
  // ---- database unreachable (PostgreSQL robustness)
  unreachable: {
    code: "database_unreachable",
    daemonExit: DAEMON_EXIT.failed,
    says: "database unreachable",
    hint: "check the database server and the network to it, then try again; see `teamwork daemon logs`",
  },
  // ---- end database unreachable
};

/** What a client is told when a write's outcome is not known (its commit was sent, and never answered). */
export const OUTCOME_UNKNOWN_HINT = "the database did not answer a commit: the change asked for may or may not have been made; check before repeating it";

/**
 * A StoreError as a client sees it. `unreachable`: "database unreachable: <server>: <reason>",
 * and, for a write whose outcome is not known (`read` false), a hint that says so.
 */
export function storeFailure(err: { kind: StoreFailureKind; reason: string; outcome?: "none" | "unknown" }, opts: { read?: boolean } = {}): TeamworkError {
  const f = STORE_FAILURES[err.kind];
  if (err.kind === "unreachable") {
    const unknown = err.outcome === "unknown" && !opts.read;
    return new TeamworkError(f.code, `${f.says}: ${err.reason}${unknown || opts.read ? "" : "; nothing was changed"}`, unknown ? `${OUTCOME_UNKNOWN_HINT}; ${f.hint}` : f.hint);
  }
  return new TeamworkError(f.code, f.says === null ? err.reason : `${f.says}; nothing was changed: ${err.reason}`, f.hint);
}
