// What the package root exports of the client: `connect`, which loads the client on its first
// call. A job module imports defineJob from the same root inside a worker, where the
// transport, the route table and its validators would only cost start-up time (~60 ms).

import type { ConnectOptions } from "./connect.js";
import type { TeamworkClient } from "./teamwork.js";

/**
 * Connects to the daemon: resolves once it answered (started first when `autostart`), and
 * rejects with a TeamworkError (daemon_unreachable when none answers). One connection is
 * reused for every call; `close()` ends it. See docs/client.md.
 */
export async function connect(options: ConnectOptions = {}): Promise<TeamworkClient> {
  const { connect: open } = await import("./connect.js");
  return open(options);
}
