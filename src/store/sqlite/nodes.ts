// Nodes on SQLite: one at a time. The database is in the daemon's home and the home lock lets
// one daemon run there, so the node is the daemon itself: registered in memory, with a lease
// that cannot be lost (nobody else could take its jobs) and no control connection to lose.
// Dead nodes are the daemon runs before this one; their jobs are rescued at start
// (rescueDead: every owner but this run's).

import { EventEmitter } from "node:events";
import { conflict } from "../../lib/errors.js";
import type { JobStore, NodeRecord, NodeSession, NodeSessionEvents, NodeStore } from "../types.js";
import type { Db } from "./open.js";

export function sqliteNodes(db: Db, jobs: JobStore): NodeStore {
  const nodes = new Map<string, Omit<NodeRecord, "running" | "heartbeatAgeMs">>();
  const running = db.prepare<[string], { n: number }>(`SELECT count(*) AS n FROM jobs WHERE status = 'running' AND owner = ?`);

  return {
    shared: false,
    async register(who, leaseMs) {
      if (nodes.has(who.id)) throw conflict(`a node with id ${who.id} is already registered`);
      const now = Date.now();
      const node = { ...who, startedAt: now, heartbeatAt: now, leaseUntil: now + leaseMs, stopping: false };
      nodes.set(who.id, node);
      const events = new EventEmitter();
      const session: NodeSession = {
        id: who.id,
        async heartbeat(ms) {
          const at = Date.now();
          node.heartbeatAt = at;
          node.leaseUntil = at + ms;
          // Nothing to hear, no cancel to deliver: the one daemon's engine knows them first hand.
          return { leaseUntil: node.leaseUntil, storeNow: at, cancels: [], listening: false };
        },
        async markStopping() {
          node.stopping = true;
        },
        // What still runs for it is rescued when the next daemon starts on this home.
        async leave() {
          nodes.delete(who.id);
        },
        abandon() {
          nodes.delete(who.id);
        },
        on<E extends keyof NodeSessionEvents>(event: E, listener: NodeSessionEvents[E]) {
          events.on(event, listener);
        },
      };
      return session;
    },
    async list() {
      const now = Date.now();
      return [...nodes.values()].map((n) => ({ ...n, heartbeatAgeMs: Math.max(0, now - n.heartbeatAt), running: running.get(n.id)!.n }));
    },
    async rescueDead({ now, self }) {
      // Every running job is this daemon's own or a gone run's: no live node to reap from.
      const { interrupted, cancelled } = await jobs.rescue({ now, liveOwners: [self] });
      return { nodes: [], interrupted, cancelled };
    },
  };
}
