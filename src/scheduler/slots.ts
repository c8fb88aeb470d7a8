// Schedule math, pure: croner computes the slots; nothing here reads a clock or arms a timer.

import { Cron } from "croner";

/** Parses a cron expression (5, 6 or 7 fields; seconds first when 6) in a time zone; throws a readable error. */
export function parseCron(expr: string, timezone?: string | null): Cron {
  let cron: Cron;
  try {
    cron = new Cron(expr, { paused: true, timezone: timezone ?? undefined });
  } catch (err) {
    throw new Error(`invalid cron expression "${expr}": ${(err as Error).message.replace(/^CronPattern: /, "")}`);
  }
  if (timezone) {
    try {
      new Intl.DateTimeFormat("en", { timeZone: timezone });
    } catch {
      throw new Error(`unknown time zone "${timezone}"; use an IANA name like Europe/Oslo or America/New_York`);
    }
  }
  return cron;
}

/** The first slot strictly after `after`, or null if the expression has no more. */
export function nextSlot(cron: Cron, after: number): number | null {
  const d = cron.nextRun(new Date(after));
  return d ? d.getTime() : null;
}

/** The latest slot at or before `now`, or null. */
export function latestSlot(cron: Cron, now: number): number | null {
  const [d] = cron.previousRuns(1, new Date(now + 1));
  return d ? d.getTime() : null;
}

/**
 * Catch-up after downtime: if one or more slots passed after `lastSlot` (exclusive) up to
 * `now` (inclusive), the latest of them runs once; otherwise nothing runs. A schedule never
 * handled before counts from its creation.
 */
export function slotToCatchUp(cron: Cron, lastSlot: number | null, createdAt: number, now: number): number | null {
  const latest = latestSlot(cron, now);
  if (latest === null) return null;
  const floor = lastSlot ?? createdAt;
  return latest > floor ? latest : null;
}

/**
 * How long to wait before firing `slot` again after the store said it had not come yet by its
 * clock (`storeNow`): the gap, and a little more so the retry lands after it (never under
 * 10 ms, never over a minute: the next answer corrects a wild one).
 */
export function earlyRetryIn(slot: number, storeNow: number): number {
  return Math.min(60_000, Math.max(10, slot - storeNow + 10));
}
