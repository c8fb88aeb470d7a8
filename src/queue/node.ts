// This daemon as a node of the store (store/types.ts, Nodes): it registers, keeps its lease,
// fences itself when it can no longer trust it, registers again under a new id, rescues dead
// nodes, and leaves when it stops. The decisions are node-lease.ts's (pure); this module wires
// them to timers, the store and the engine.
//
// On a store one daemon serves at a time (SQLite) there is no lease to keep: the node is
// registered and left, nothing else.
//
// Invariants
// - The engine claims and writes under a node id only while this node trusts that id's lease:
//   the lease is checked before every engine write (Engine.guardWrites), so a process that was
//   frozen past SELF_FENCE_MS fences before it writes anything, whatever event wakes it first.
// - An id is never used again after a fence: the next registration draws a new one, so every
//   write of an attempt begun under the old id is refused by the store.
// - Heartbeats, the fence check, rescue and the claim poll each have at most one timer armed.

import { randomUUID } from "node:crypto";
import type { Clock, TimerHandle } from "../lib/clock.js";
import { errorMessage } from "../lib/errors.js";
import type { Logger } from "../lib/logger.js";
import type { CancelNotice, NodeSession, Store } from "../store/types.js";
import { CLAIM_POLL_MS, FENCE_GRACE_MS, fenceAt, fenceReason, HEARTBEAT_MS, LEASE_MS, REJOIN_RETRY_MS, RESCUE_EVERY_MS, RESCUE_SILENT_MS, type LeaseState } from "./node-lease.js";

/** What a node needs of the engine. */
export interface FenceableEngine {
  fence(reason: string, graceMs: number): void;
  resumeAs(owner: string): void;
  wake(): void;
  guardWrites(check: () => void): void;
  /** A cancel was requested, through another daemon, for a job this node runs. */
  cancelRequested(notice: CancelNotice, via: "notify" | "heartbeat"): void;
}

export interface NodeTimings {
  heartbeatMs: number;
  leaseMs: number;
  rescueEveryMs: number;
  rescueSilentMs: number;
  claimPollMs: number;
  rejoinRetryMs: number;
}

const DEFAULT_TIMINGS: NodeTimings = {
  heartbeatMs: HEARTBEAT_MS,
  leaseMs: LEASE_MS,
  rescueEveryMs: RESCUE_EVERY_MS,
  rescueSilentMs: RESCUE_SILENT_MS,
  claimPollMs: CLAIM_POLL_MS,
  rejoinRetryMs: REJOIN_RETRY_MS,
};

/** A monotonic clock in milliseconds (performance.now: it counts a frozen process's pause, and never steps). */
const monotonicNow = () => performance.now();

type State = { kind: "idle" } | { kind: "serving"; session: NodeSession; lease: LeaseState } | { kind: "fenced"; since: number } | { kind: "left" };

export class StoreNode {
  private state: State = { kind: "idle" };
  private readonly timings: NodeTimings;
  private readonly mono: () => number;
  private heartbeatTimer: TimerHandle | null = null;
  private fenceTimer: TimerHandle | null = null;
  private rescueTimer: TimerHandle | null = null;
  private pollTimer: TimerHandle | null = null;
  private rejoinTimer: TimerHandle | null = null;
  private currentId = "";
  private fenceCount = 0;
  /** The last heartbeat found the session LISTENing (other daemons' wake-ups reach it). */
  private listening = false;
  /** The last failure of each loop, logged once until it recovers. */
  private failing = { heartbeat: false, rescue: false };

  constructor(
    private readonly deps: {
      store: Store;
      engine: FenceableEngine;
      clock: Clock;
      log: Logger;
      host: string;
      pid: number;
      /** Monotonic milliseconds for the self-fence bound (performance.now by default). */
      monotonic?: () => number;
      /** A fresh node id (a random UUID by default). */
      newId?: () => string;
      timings?: Partial<NodeTimings>;
      /** Told the store's clock at each heartbeat, read between sentAt and receivedAt on deps.clock (a FollowingClock on a shared store). */
      followStoreClock?: (storeNow: number, sentAt: number, receivedAt: number) => void;
    },
  ) {
    this.timings = { ...DEFAULT_TIMINGS, ...deps.timings };
    this.mono = deps.monotonic ?? monotonicNow;
  }

  /** The id this node serves under now (the last one while fenced). */
  get id(): string {
    return this.currentId;
  }

  /** How many times this node fenced itself. */
  get fences(): number {
    return this.fenceCount;
  }

  get serving(): boolean {
    return this.state.kind === "serving";
  }

  /**
   * Registers the node under `id` (the engine's owner) and starts keeping its lease. Throws
   * what the store says if it cannot register (the daemon cannot serve then).
   */
  async join(id: string): Promise<void> {
    const at = this.mono();
    const session = await this.deps.store.nodes.register({ id, host: this.deps.host, pid: this.deps.pid }, this.timings.leaseMs);
    this.currentId = id;
    this.serve(session, at);
    if (!this.deps.store.nodes.shared) return;
    // One heartbeat at once: the store's clock is followed before anything is claimed or stamped.
    await this.heartbeat(session);
    this.deps.engine.guardWrites(() => this.check());
    this.armRescue(0);
    this.armPoll();
  }

  /** A graceful stop begins: claim nothing more; the lease is kept while the engine drains. */
  async markStopping(): Promise<void> {
    if (this.state.kind !== "serving") return;
    try {
      await this.state.session.markStopping();
    } catch (err) {
      this.deps.log.warn("node.mark_stopping_failed", { node: this.currentId, error: errorMessage(err) });
    }
  }

  /** The end of a graceful stop: the node leaves the store (after the engine stopped). */
  async leave(): Promise<void> {
    const state = this.state;
    this.state = { kind: "left" };
    for (const t of [this.heartbeatTimer, this.fenceTimer, this.rescueTimer, this.pollTimer, this.rejoinTimer]) t?.cancel();
    if (state.kind !== "serving") return;
    try {
      await state.session.leave(this.deps.clock.now());
      this.deps.log.info("node.left", { node: this.currentId });
    } catch (err) {
      state.session.abandon();
      this.deps.log.warn("node.leave_failed", { node: this.currentId, error: errorMessage(err), note: "the node's row is left for rescue to find dead" });
    }
  }

  /** Fences now if the lease is no longer to be trusted (the engine calls it before each write). */
  check(): void {
    if (this.state.kind !== "serving") return;
    const reason = fenceReason(this.state.lease, this.mono());
    if (reason !== null) this.fence(reason);
  }

  /** One rescue pass (the timer's; callable from tests): dead nodes' jobs go back to pending. */
  async rescueOnce(): Promise<{ nodes: string[]; interrupted: number; cancelled: number }> {
    const r = await this.deps.store.nodes.rescueDead({ now: this.deps.clock.now(), self: this.currentId, silentMs: this.timings.rescueSilentMs, leaseMs: this.timings.leaseMs });
    if (r.cancelled > 0) this.deps.log.warn("nodes.cancelled", { jobs: r.cancelled, by: this.currentId, note: "jobs whose cancel was requested and whose node died, or did not stop them by their deadline + lease: ended cancelled" });
    if (r.nodes.length > 0 || r.interrupted > 0) {
      this.deps.log.warn("nodes.rescued", { nodes: r.nodes.join(",") || "none", jobs: r.interrupted, by: this.currentId, note: "their running jobs go back to the queue as interrupted attempts" });
      // Claim them at once rather than at the next poll.
      if (r.interrupted > 0) this.deps.engine.wake();
    }
    return r;
  }

  private serve(session: NodeSession, renewedAt: number): void {
    const lease: LeaseState = { renewedAt, lost: null, refused: false };
    this.state = { kind: "serving", session, lease };
    this.deps.log.info("node.registered", { node: session.id, host: this.deps.host, pid: this.deps.pid });
    if (!this.deps.store.nodes.shared) return;
    const current = () => this.state.kind === "serving" && this.state.session === session;
    session.on("lost", (why) => {
      if (!current()) return;
      lease.lost = why;
      this.check();
    });
    // What other daemons tell this one (LISTEN): hints; the poll and the heartbeat cover a lost one.
    session.on("jobs", () => {
      if (current()) this.deps.engine.wake();
    });
    session.on("cancel", (notice) => {
      if (current()) this.deps.engine.cancelRequested(notice, "notify");
    });
    this.armHeartbeat(session, this.timings.heartbeatMs);
    this.armFenceCheck(lease);
  }

  private armHeartbeat(session: NodeSession, ms: number): void {
    this.heartbeatTimer?.cancel();
    this.heartbeatTimer = this.deps.clock.setTimer(() => void this.heartbeat(session), ms);
  }

  private async heartbeat(session: NodeSession): Promise<void> {
    const current = () => (this.state.kind === "serving" && this.state.session === session ? this.state : null);
    if (!current()) return;
    // A heartbeat that finds the lease gone, late after a pause: fence first, write nothing.
    this.check();
    if (!current()) return;
    const startedAt = this.mono();
    const sentAt = this.deps.clock.now();
    try {
      const beat = await session.heartbeat(this.timings.leaseMs);
      this.deps.followStoreClock?.(beat.storeNow, sentAt, this.deps.clock.now());
      const s = current();
      if (!s) return;
      if (this.failing.heartbeat) this.deps.log.info("node.heartbeat_recovered", { node: session.id });
      this.failing.heartbeat = false;
      if (beat.leaseUntil === null) s.lease.refused = true;
      else s.lease.renewedAt = Math.max(s.lease.renewedAt, startedAt);
      this.check();
      if (current()) {
        this.armFenceCheck(s.lease);
        // The control session stopped LISTENing (never seen: it LISTENs before it is handed
        // out, and a broken socket fails the heartbeat too): said, as the poll carries on.
        if (this.listening && !beat.listening) this.deps.log.warn("node.not_listening", { node: session.id, note: "wake-ups from other daemons are not heard; claims poll every second" });
        this.listening = beat.listening;
        // Cancels asked for through other daemons, whether or not their NOTIFY came.
        for (const c of beat.cancels) this.deps.engine.cancelRequested(c, "heartbeat");
      }
    } catch (err) {
      if (!current()) return;
      if (!this.failing.heartbeat) this.deps.log.warn("node.heartbeat_failed", { node: session.id, error: errorMessage(err), note: "the node fences itself if none succeeds in time" });
      this.failing.heartbeat = true;
    }
    if (current()) this.armHeartbeat(session, Math.max(0, startedAt + this.timings.heartbeatMs - this.mono()));
  }

  /** The timer that fences the node once SELF_FENCE_MS pass without a heartbeat succeeding. */
  private armFenceCheck(lease: LeaseState): void {
    this.fenceTimer?.cancel();
    this.fenceTimer = this.deps.clock.setTimer(
      () => {
        this.fenceTimer = null;
        if (this.state.kind !== "serving" || this.state.lease !== lease) return;
        this.check();
        // Woken early (timers may be): look again when it is due.
        if (this.state.kind === "serving" && this.state.lease === lease) this.armFenceCheck(lease);
      },
      Math.max(1, fenceAt(lease.renewedAt) - this.mono()),
    );
  }

  /**
   * Stops trusting this id: the engine stops every attempt and claims nothing, the control
   * connection is dropped (the lock goes with it), and the node registers again under a new id.
   */
  private fence(reason: string): void {
    if (this.state.kind !== "serving") return;
    const { session } = this.state;
    this.state = { kind: "fenced", since: this.mono() };
    this.fenceCount++;
    this.heartbeatTimer?.cancel();
    this.fenceTimer?.cancel();
    this.deps.log.warn("node.fenced", { node: session.id, reason, note: "running jobs stopped; their late writes are refused; registering again under a new id" });
    this.deps.engine.fence(reason, FENCE_GRACE_MS);
    session.abandon();
    this.armRejoin(0);
  }

  private armRejoin(ms: number): void {
    this.rejoinTimer?.cancel();
    this.rejoinTimer = this.deps.clock.setTimer(() => void this.rejoin(), ms);
  }

  private async rejoin(): Promise<void> {
    if (this.state.kind !== "fenced") return;
    const id = (this.deps.newId ?? randomUUID)();
    const previous = this.currentId;
    const at = this.mono();
    let session: NodeSession;
    try {
      session = await this.deps.store.nodes.register({ id, host: this.deps.host, pid: this.deps.pid }, this.timings.leaseMs);
    } catch (err) {
      this.deps.log.warn("node.register_failed", { error: errorMessage(err), retryInMs: this.timings.rejoinRetryMs });
      if (this.state.kind === "fenced") this.armRejoin(this.timings.rejoinRetryMs);
      return;
    }
    if (this.state.kind !== "fenced") {
      // Stopped meanwhile: leave at once.
      await session.leave(this.deps.clock.now()).catch(() => session.abandon());
      return;
    }
    this.currentId = id;
    this.deps.log.info("node.rejoined", { node: id, previous, fencedForMs: Math.round(this.mono() - this.state.since) });
    this.serve(session, at);
    this.deps.engine.resumeAs(id);
  }

  private armRescue(ms: number): void {
    this.rescueTimer = this.deps.clock.setTimer(() => {
      if (this.state.kind === "left") return;
      this.rescueOnce()
        .then(
          () => {
            if (this.failing.rescue) this.deps.log.info("nodes.rescue_recovered", {});
            this.failing.rescue = false;
          },
          (err: unknown) => {
            if (!this.failing.rescue) this.deps.log.warn("nodes.rescue_failed", { error: errorMessage(err) });
            this.failing.rescue = true;
          },
        )
        .finally(() => {
          if (this.state.kind !== "left") this.armRescue(this.timings.rescueEveryMs);
        });
    }, ms);
  }

  private armPoll(): void {
    this.pollTimer = this.deps.clock.setTimer(() => {
      if (this.state.kind === "left") return;
      if (this.state.kind === "serving") this.deps.engine.wake();
      this.armPoll();
    }, this.timings.claimPollMs);
  }
}
