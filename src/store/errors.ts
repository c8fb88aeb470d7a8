// What a store says when it cannot do what it was asked: one neutral error, whatever the
// database. Each store turns its driver's errors into a StoreError at its boundary (every
// public method, and opening); nothing above the store knows a driver's codes. What a kind
// means to a client (error code, HTTP status, exit codes, the words) is protocol/errors.ts's
// STORE_FAILURES, the one table for it.

import type { StoreFailureKind } from "../protocol/errors.js";

/**
 * - `unavailable`: the database cannot be reached, opened, read or written (a missing folder,
 *   a refused connection, an I/O error), or refused for a reason no other kind names.
 * - `busy`: another process holds the lock, or a transaction lost a serialization race;
 *   nothing was changed, trying again later may work.
 * - `full`: the disk or the quota is full.
 * - `corrupt`: the file or database is damaged; the store never repairs or rewrites it.
 * - `readonly`: the database may be read but not written.
 * - `too_new`: the schema was written by a newer teamwork; refused at open, left untouched.
 * - `unreachable`: the database server cannot be reached or did not answer in time (refused
 *   connection, unknown host, a partition, a frozen server); the reason names the server. A
 *   write may have been applied if its last statement was sent (see `outcome`).
 */
export type StoreErrorKind = StoreFailureKind;
export type StoreOutcome = "none" | "unknown";

export class StoreError extends Error {
  override readonly name = "StoreError";
  /** The driver's own code for what happened: for logs only, never for decisions. */
  readonly driverCode: string | undefined;
  /**
   * Whether what was asked was done: "none", nothing was changed (every kind but unreachable,
   * always); "unknown", a write's commit (or its only statement) was sent and never answered,
   * so it may have been applied.
   */
  readonly outcome: StoreOutcome;

  constructor(
    readonly kind: StoreErrorKind,
    /** What the driver said, as text ("database is locked"); also the error's message. */
    readonly reason: string,
    opts: { driverCode?: string; cause?: unknown; outcome?: StoreOutcome } = {},
  ) {
    super(reason, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.driverCode = opts.driverCode;
    this.outcome = opts.outcome ?? "none";
  }
}
