// Recovery at start: jobs that nodes now gone left running go back to pending, their attempt
// counted (it may have run). Called once, before this run claims anything. What "gone" means
// is the store's (NodeStore.rescueDead): on SQLite one daemon runs at a time, so every owner
// but this run is gone; on a shared store (PostgreSQL) only dead nodes are (a live daemon's
// jobs are its own), and every node keeps rescuing them while it runs (queue/node.ts).

import type { Logger } from "../lib/logger.js";
import type { Store } from "../store/types.js";
import { LEASE_MS, RESCUE_SILENT_MS } from "./node-lease.js";

export async function recoverInterrupted(store: Store, owner: string, now: number, log: Logger): Promise<number> {
  const rescued = await store.nodes.rescueDead({ now, self: owner, silentMs: RESCUE_SILENT_MS, leaseMs: LEASE_MS });
  if (rescued.interrupted > 0 || rescued.nodes.length > 0) {
    log.warn("jobs.rescued", { count: rescued.interrupted, nodes: rescued.nodes.join(",") || "none", note: "interrupted by a daemon that stopped or a node found dead; they run again" });
  }
  if (rescued.cancelled > 0) log.warn("jobs.rescued_cancelled", { count: rescued.cancelled, note: "interrupted, or past their cancel deadline, after a cancel was requested: ended cancelled" });
  return rescued.interrupted;
}
