// The lease a node holds on a shared store, as numbers and one pure decision (SCALE-OUT.md
// §9.4, §9.5). The store's clock decides leases (node rows, rescue); this side only bounds how
// long a node trusts its last successful heartbeat, on its own monotonic clock, which no clock
// step or skew can move.
//
// Why these figures, together:
// - a node stops trusting its lease SELF_FENCE_MS after the start of its last heartbeat that
//   succeeded, which is before the lease (LEASE_MS from that heartbeat, on the store's clock)
//   can lapse: a node that can still run stops its jobs before anyone else may take them; only
//   a frozen process (SIGSTOP, a VM pause) can overrun, and then its writes are fenced;
// - rescue may act on a node whose lock is gone once it has been silent RESCUE_SILENT_MS: that
//   gives a node whose control connection broke the time to see it and fence first (it fences
//   at once on a lost connection, and within HEARTBEAT_MS otherwise);
// - every node runs rescue every RESCUE_EVERY_MS: a node killed with -9 (its lock released as
//   the server sees its connection close) is rescued within about RESCUE_SILENT_MS + one tick;
//   one cut off or frozen within LEASE_MS (or the control session's idle timeout, 3 s) + one
//   tick.

/** How often a node renews its lease. */
export const HEARTBEAT_MS = 1000;
/** How long a renewed lease holds, from the heartbeat, on the store's clock. */
export const LEASE_MS = 3000;
/** A node that has not renewed its lease for this long (monotonic, from the start of its last good heartbeat) fences itself. */
export const SELF_FENCE_MS = 2000;
/** How long a node whose lock is gone must have been silent before rescue takes its jobs. */
export const RESCUE_SILENT_MS = 1500;
/** How often every node looks for dead nodes. */
export const RESCUE_EVERY_MS = 500;
/**
 * How often an idle node claims anyway, on a shared store. Other daemons' new jobs wake it at
 * once by NOTIFY (store/postgres/wakeups.ts); this poll is the fallback that correctness rests
 * on (a NOTIFY lost, or databaseNotify off): a job waits at most this long for an idle node.
 * The same whether or not the node LISTENs: measured (bench/idle-nodes.mjs, 2 idle nodes,
 * 2026-12-03), a 5 s poll saved ~1 statement/s per node and < 1 ms/s of CPU per daemon, not
 * worth five times the wait after a lost NOTIFY.
 */
export const CLAIM_POLL_MS = 1000;
/**
 * How long a fenced node's handlers have to stop on their AbortSignal before their workers are
 * terminated: what is left of the lease when the node fences (a handler that ignores its
 * signal still stops before anyone else may take its job, unless the node was frozen).
 */
export const FENCE_GRACE_MS = LEASE_MS - SELF_FENCE_MS;
/** How long a node waits between attempts to register again after a fence. */
export const REJOIN_RETRY_MS = 1000;

/** What a node knows about its lease, for the decision to fence. */
export interface LeaseState {
  /** Monotonic time of the start of the last heartbeat (or registration) that succeeded. */
  renewedAt: number;
  /** Set when the control connection was reported lost (its lock is gone with it): why. */
  lost: string | null;
  /** The last heartbeat was answered, saying the lease is no longer held (lapsed, or found dead). */
  refused: boolean;
}

/**
 * Why the node must fence itself now (monotonic time `now`), or null while it may go on:
 * its control connection is lost, the store refused its lease, or SELF_FENCE_MS have passed
 * without a heartbeat succeeding. A monotonic clock that went backwards (a test clock might)
 * counts as no time passed.
 */
export function fenceReason(s: LeaseState, now: number, selfFenceMs: number = SELF_FENCE_MS): string | null {
  if (s.lost !== null) return `the control connection was lost (${s.lost})`;
  if (s.refused) return "the store no longer holds this node's lease (it lapsed, or the node was found dead)";
  const silent = now - s.renewedAt;
  if (silent >= selfFenceMs) return `no heartbeat succeeded for ${(silent / 1000).toFixed(1)} s (the lease may lapse at ${LEASE_MS / 1000} s)`;
  return null;
}

/** When, on the monotonic clock, a node renewed at `renewedAt` stops trusting its lease. */
export function fenceAt(renewedAt: number, selfFenceMs: number = SELF_FENCE_MS): number {
  return renewedAt + selfFenceMs;
}
