// The daemon's exit codes: what a starter (auto-start, `daemon start`, the systemd unit of
// `daemon install`) may conclude from how the daemon process ended. The one table:
// daemon/main.ts exits with them, client/autostart.ts and commands/daemon.ts read them.

import type { ErrorCode } from "../lib/errors.js";

export const DAEMON_EXIT = {
  ok: 0,
  /** Failed to start or crashed: worth a restart. */
  failed: 1,
  /** Bad configuration: a restart fails the same way until it is fixed. */
  config: 2,
  /** The database was written by a newer teamwork: the same. */
  schemaTooNew: 5,
  /** Another daemon already runs on this home: a restart would only find it again. */
  alreadyRunning: 10,
} as const;

/** Exit codes after which restarting the daemon cannot help. */
export const DAEMON_EXIT_NO_RESTART: readonly number[] = [DAEMON_EXIT.config, DAEMON_EXIT.schemaTooNew, DAEMON_EXIT.alreadyRunning];

/**
 * The error code a starter reports when the daemon it started exited with `exit` (null: a
 * signal): a bad configuration is the user's input, a newer database is its own case, and
 * anything else is `otherwise`.
 */
export function errorCodeForDaemonExit(exit: number | null, otherwise: ErrorCode): ErrorCode {
  if (exit === DAEMON_EXIT.config) return "invalid_input";
  if (exit === DAEMON_EXIT.schemaTooNew) return "schema_too_new";
  return otherwise;
}
