// Reading a recorded event stream back: how many of some jobs were running at once.

import type { StreamEvent } from "../../src/protocol/events.js";

/** Replays job:status events of these jobs: the most running at once, the slots they ran in, and each one's last status. */
export function runningOverTime(events: StreamEvent[], ids: Set<number>): { peak: number; slots: Set<number>; last: Map<number, string> } {
  let running = 0;
  let peak = 0;
  const slots = new Set<number>();
  const last = new Map<number, string>();
  for (const e of events) {
    if (e.type !== "job:status" || !ids.has(e.data.job.id)) continue;
    const prev = last.get(e.data.job.id);
    const next = e.data.job.status;
    if (prev !== "running" && next === "running") running++;
    if (prev === "running" && next !== "running") running--;
    if (next === "running" && e.data.job.slot !== null) slots.add(e.data.job.slot);
    last.set(e.data.job.id, next);
    peak = Math.max(peak, running);
  }
  return { peak, slots, last };
}
