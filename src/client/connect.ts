// `connect()`: the package's entry for applications. Finds the daemon as the CLI does
// (options, then TEAMWORK_HOME, then the XDG folders; config/paths.ts), optionally starts
// it, and answers once the daemon has answered, so a wrong home fails here, not later.

import { resolvePaths, type Paths } from "../config/paths.js";
import { TeamworkError } from "../lib/errors.js";
import { connect as connectTransport } from "./autostart.js";
import { Client, DEFAULT_TIMEOUT_MS } from "./client.js";
import { TeamworkClient } from "./teamwork.js";

export interface ConnectOptions {
  /** The daemon's home folder, as --home (default: TEAMWORK_HOME, else the XDG folders). */
  home?: string;
  /** The daemon's socket, when it is not where the home puts it. */
  socket?: string;
  /** The environment read for TEAMWORK_HOME and XDG_* (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Start the daemon in the background when none answers (default false). */
  autostart?: boolean;
  /**
   * The PostgreSQL URL a daemon started by `autostart` serves (as TEAMWORK_DATABASE_URL);
   * without it, the daemon's configuration decides (SQLite in the home by default). A daemon
   * already running keeps its own store: `tw.daemon.status()` says which.
   */
  database?: string;
  /** How long one call may take before it fails with daemon_unreachable (default 60 s). */
  timeoutMs?: number;
  /** Called once when the daemon runs another version of teamwork. */
  onVersionMismatch?: (daemonVersion: string) => void;
  /** Things worth saying that are not errors (a crashed daemon replaced by auto-start). */
  onNotice?: (message: string) => void;
}

/**
 * The client of one daemon, without a first call (the CLI's: a command costs one round trip).
 * Applications use `connect`.
 */
export function openClient(opts: ConnectOptions & { paths?: Paths }): TeamworkClient {
  const paths = opts.paths ?? resolvePaths({ home: opts.home, env: opts.env });
  const common = { timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, onVersionMismatch: opts.onVersionMismatch };
  if (opts.socket !== undefined && opts.socket !== paths.socket) {
    // A socket of its own: nothing known about the daemon behind it, so nothing to start.
    if (opts.autostart) throw new TeamworkError("invalid_input", "autostart needs the daemon's home, not only its socket", "pass `home` instead of `socket`");
    return new TeamworkClient(new Client({ socket: opts.socket, ...common }));
  }
  // The environment an auto-started daemon gets: the one given (it found the home), and the database asked for.
  const daemonEnv =
    opts.env === undefined && opts.database === undefined
      ? undefined
      : { ...(opts.env ?? process.env), ...(opts.database === undefined ? {} : { TEAMWORK_DATABASE_URL: opts.database }) };
  return new TeamworkClient(connectTransport({ paths, autostart: opts.autostart ?? false, onNotice: opts.onNotice, daemonEnv, ...common }));
}

/**
 * Connects to the daemon: resolves once it answered (started first when `autostart`), and
 * rejects with a TeamworkError (daemon_unreachable when none answers). One connection is
 * reused for every call; `close()` ends it.
 */
export async function connect(opts: ConnectOptions = {}): Promise<TeamworkClient> {
  const client = openClient(opts);
  try {
    await client.daemon.health();
  } catch (err) {
    client.close();
    throw err;
  }
  return client;
}
