// After a claim whose answer was lost (PostgreSQL: the connection broke or went silent after
// the statement was sent), the store may have made jobs running for this daemon that it never
// received. Nobody else would take them back: rescue acts on dead owners, and this one is
// alive. The engine then asks the store what runs for it (JobStore.runningFor) and gives back
// what it does not hold (engine.ts reconcileClaims). Two pure decisions, tested on their own.

import { StoreError } from "../store/errors.js";

/** Whether a failed write may have been applied: anything but a store error that says "none". */
export function outcomeUnknown(err: unknown): boolean {
  return !(err instanceof StoreError) || err.outcome !== "none";
}

/**
 * The jobs the store says run for this daemon that it does not hold (`holds(id, attempt)`:
 * a live attempt of that number, or a write already queued for the job), in the store's order.
 */
export function unknownClaims<T extends { id: number; attempt: number }>(running: readonly T[], holds: (id: number, attempt: number) => boolean): T[] {
  return running.filter((r) => !holds(r.id, r.attempt));
}
