// The daemons serving the store (nodes): `teamwork nodes`.

import type { NodeInfo } from "../../protocol/types.js";
import type { AppContext, Handlers } from "../context.js";
import { ok } from "../context.js";

const iso = (ms: number) => new Date(ms).toISOString();

export function nodeRoutes(app: AppContext): Pick<Handlers, "nodesList"> {
  return {
    async nodesList() {
      const self = app.engine.owner;
      const nodes = (await app.store.nodes.list()).map(
        (n): NodeInfo => ({
          id: n.id,
          host: n.host,
          pid: n.pid,
          startedAt: iso(n.startedAt),
          heartbeatAt: iso(n.heartbeatAt),
          heartbeatAgeMs: n.heartbeatAgeMs,
          leaseUntil: iso(n.leaseUntil),
          stopping: n.stopping,
          running: n.running,
          self: n.id === self,
        }),
      );
      return ok({ nodes });
    },
  };
}
