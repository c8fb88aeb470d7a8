// Error codes ↔ HTTP status ↔ CLI exit code: the one table both sides read.

import type { ErrorCode } from "../lib/errors.js";

export interface ErrorBody {
  error: { code: ErrorCode; message: string; hint?: string; details?: Record<string, unknown> };
}

export const HTTP_STATUS: Record<ErrorCode, number> = {
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
  internal: 500,
};

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
      return EXIT.unreachable;
    case "schema_too_new":
      return EXIT.schemaTooNew;
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
