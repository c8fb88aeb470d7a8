// Recovery at start: jobs a daemon run that stopped left running go back to pending, their
// attempt counted (it may have run). Called once, before this run claims anything: on SQLite
// one daemon runs at a time, so every owner but this run is gone.

import type { Logger } from "../lib/logger.js";
import type { JobStore } from "../store/types.js";

export async function recoverInterrupted(jobs: JobStore, owner: string, now: number, log: Logger): Promise<number> {
  const rescued = await jobs.rescue({ now, liveOwners: [owner] });
  if (rescued.interrupted > 0) log.warn("jobs.rescued", { count: rescued.interrupted, note: "interrupted by a daemon that stopped; they run again" });
  return rescued.interrupted;
}
