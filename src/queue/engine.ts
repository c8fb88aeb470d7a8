// The job engine: the public operations (enqueue, cancel, retry, pause, why, ...) and the
// tick loop. The policies it wires live in their own modules: placement.ts (which slot a
// claimed job goes to), outcome.ts (what an ended attempt becomes), why.ts, prepare.ts (a
// spec made into a job), pause.ts, recovery.ts; attempts.ts keeps the attempts in the
// workers' hands.
//
// Terminology (see also protocol/types.ts)
// - tick: one turn of the engine. Everything that happened since the last turn (new jobs,
//   finished attempts, progress) is written in ONE transaction together with the claim of
//   due jobs for the free slots; then the claimed jobs are handed to their slots. This is
//   the group commit: under load many state changes share one fsync.
// - claim: pending → running for a due job, for this owner, attempts + 1, committed before
//   the job starts, so a crash after the start always counts the attempt. The claim is data
//   (ClaimLimits: how many of each type fit, from placement.ts); the claimed jobs are then
//   placed in their slots, and slot and start time reach the store when their turn begins.
// - attempt: one run of a job, numbered from 1 (the job's `attempts` while it runs).
// - handing over ahead: a slot's worker runs one job at a time, but for job types that take
//   well under a millisecond the engine claims several for one slot; they wait in the worker
//   and start back to back, with no round trip to the daemon between them. The engine learns
//   each type's run time from the workers (run-times.ts); a type it has not seen run, or a
//   slow one, is only ever given to an empty slot. A job that waited and never ran (its
//   worker died, the daemon stopped) goes back to pending without counting an attempt. After
//   a crash nobody knows whether a job handed ahead had begun: it counts as interrupted.
// - owner: this daemon run (one Engine), a random id logged at start. A claim records it.
// - fence: every write of an attempt (finish, progress, checkpoint, log, begin) names the
//   job, the attempt and the owner; the store applies it only while that attempt is the job's
//   running one for this owner, so a late result can never win. A refused write is logged
//   (job.write_refused) and dropped.
//
// Invariants
// - Enqueue promises resolve only after the tick that inserted them has committed.
// - Every claimed job is dispatched to a slot or handed back (requeue, uncounted) by the
//   next write: none stays running for this owner without being in the engine's hands.

import { randomUUID } from "node:crypto";
import { availableParallelism } from "node:os";
import type { Clock, TimerHandle } from "../lib/clock.js";
import { TeamworkError, conflict, notFound } from "../lib/errors.js";
import type { Logger } from "../lib/logger.js";
import type { CancelElsewhere, Job, JobSummary, JobWhy } from "../protocol/types.js";
import type { JobSpec } from "../protocol/routes.js";
import type { CancelNotice, ClaimLimits, JobFilter, JobRecord, NewJob, RefusedWrite, Store, TickBatch } from "../store/types.js";
import { StoreError } from "../store/errors.js";
import type { Isolation, Lookup } from "../jobs/define.js";
import type { EventBus } from "./events/bus.js";
import { processIsolationInfo } from "./pool/process.js";
import type { Registry } from "./registry.js";
import type { WorkerData } from "./worker/protocol.js";
import { Attempts, type LiveAttempt } from "./attempts.js";
import { AHEAD_BUDGET_MS, choosePlan, idlePool, planPlacement, type IdlePool, type Placement } from "./placement.js";
import { LEASE_MS, RESCUE_EVERY_MS } from "./node-lease.js";
import { QueuePause } from "./pause.js";
import { prepareJob, prepareJobs } from "./prepare.js";
import { outcomeUnknown, unknownClaims } from "./reconcile.js";
import { recoverInterrupted } from "./recovery.js";
import { explain, explainWaiting } from "./why.js";
import { toWire, toWireSummary } from "./wire.js";
import { WriteQueue, type QueuedFinish } from "./write-queue.js";

export { toWire, toWireSummary } from "./wire.js";

export interface EngineConfig {
  concurrency: number;
  /** A job whose attempts killed their worker this many times is failed as quarantined. */
  quarantineAfter: number;
  /** How many workers fast jobs may keep busy at once; 0: the cores less one, at least 1. */
  fastWorkers: number;
  /** Keep one worker thread warm (pool.ts, keepWarm). */
  warmWorker: boolean;
  jobTimeout: number;
  jobMemoryMb: number;
  /** Per job type, where its jobs run, over what the type declares. */
  jobIsolation: Record<string, Isolation>;
  cancelGrace: number;
  backoff: { base: number; cap: number };
  retention: number;
}

/**
 * The run-time means, kept across restarts so the first burst after a start is placed well.
 * (The key keeps its first name, "costs", so a saved value is read after an upgrade.)
 */
const RUN_TIMES_KEY = "engine.costs";
const RUN_TIMES_SAVE_EVERY_MS = 60_000;
/**
 * Fast jobs keep at most this many workers busy unless configured (fastWorkers): a no-op job
 * costs the daemon's main thread more than its worker, so on a small machine more workers
 * only take cores from the thread that feeds them. One core is left to the main thread.
 */
const FAST_WORKERS_AUTO = Math.max(1, availableParallelism() - 1);
/** The owner a fenced engine writes under: no job ever runs for it, so each such write is refused. */
const FENCED_OWNER = "";
/** A tick's batch when it has none of these (most ticks under one-by-one enqueues): nothing may add to them. */
const NO_FINISHES: TickBatch["finishes"] = Object.freeze([]) as unknown as TickBatch["finishes"];
const NO_CHECKPOINTS: TickBatch["checkpoints"] = Object.freeze([]) as unknown as TickBatch["checkpoints"];
/**
 * A tick's claim stops once it has held the main thread this long (ClaimLimits.budgetMs,
 * store/claim-budget.ts); the next tick claims the rest. Measured under `node
 * bench/hostile.mjs`: a tick of 256 finishes and 256 claims took 10-70 ms there, a few ms on
 * an idle machine (where the budget is never reached).
 */
export const TICK_CLAIM_BUDGET_MS = 8;
/** How often a cancel waiting for a job that runs on another node looks whether it has ended. */
const CANCEL_LOOK_EVERY_MS = 100;

export class Engine {
  private readonly attempts: Attempts;
  private readonly writes = new WriteQueue<LiveAttempt>();
  private readonly paused: QueuePause;
  private runTimesSavedAt = 0;
  private tickQueued = false;
  private ticking = false;
  private again = false;
  /** A claim's outcome is unknown (its answer lost): the next tick asks the store what runs for this daemon (reconcileClaims). */
  private claimsUnsure = false;
  private dueTimer: { at: number; handle: TimerHandle } | null = null;
  private probeTimer: TimerHandle | null = null;
  /** The last plan, and the idle pool it was made for (null: not made for an idle pool). */
  private lastPlan: { placement: Placement; claim: ClaimLimits; idle: IdlePool | null } | null = null;
  private pruneTimer: TimerHandle | null = null;
  private accepting = true;
  private concurrencyNow = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly lookup: Lookup;
  private readonly now = (): number => this.opts.clock.now();
  private readonly finishHooks = new Map<string, ((job: JobRecord) => Promise<void> | void)[]>();
  /** This daemon run's node: the owner its claims record and its writes are fenced on. */
  private nodeId: string;

  constructor(
    private readonly opts: {
      store: Store;
      registry: Registry;
      bus: EventBus;
      clock: Clock;
      log: Logger;
      config: EngineConfig;
      workerData: Omit<WorkerData, "modules">;
      rand?: () => number;
      /** The owner id (a fresh random one by default). */
      owner?: string;
    },
  ) {
    this.nodeId = opts.owner ?? randomUUID();
    this.lookup = {
      boardExists: async (name) => (await opts.store.boards.get(name)) !== null,
      taskExists: async (id) => (await opts.store.tasks.get(id)) !== null,
    };
    this.paused = new QueuePause(opts.store.meta, opts.log);
    this.attempts = new Attempts({
      registry: opts.registry,
      bus: opts.bus,
      clock: opts.clock,
      log: opts.log,
      config: opts.config,
      workerData: opts.workerData,
      ...(opts.rand ? { rand: opts.rand } : {}),
      writes: this.writes,
      wake: () => this.scheduleTick(),
      measured: () => {
        if (this.opts.clock.now() - this.runTimesSavedAt > RUN_TIMES_SAVE_EVERY_MS) {
          this.saveRunTimes().catch((err: Error) => this.opts.log.warn("engine.costs_not_saved", { error: err.message }));
        }
      },
    });
  }

  /** The owner its claims record and its writes are fenced on (the node's id; a new one after a fence). */
  get owner(): string {
    return this.nodeId;
  }

  get concurrency(): number {
    return this.concurrencyNow;
  }

  get runningCount(): number {
    return this.attempts.size;
  }

  get pausedState(): { all: boolean; types: string[] } {
    return this.paused.state;
  }

  get registry(): Registry {
    return this.opts.registry;
  }

  /** The job types whose jobs run in a worker process. */
  get processTypes(): string[] {
    return [...this.opts.registry.types.keys()].filter((t) => this.attempts.workerKindOf(t).isolation === "process").sort();
  }

  /** Pauses everything (no type) or one type; persisted, so it survives a restart. */
  async pause(type?: string): Promise<void> {
    if (type !== undefined) this.opts.registry.get(type);
    await this.paused.pause(type);
  }

  async resume(type?: string): Promise<void> {
    await this.paused.resume(type);
    this.scheduleTick();
  }

  /** Changes the number of slots at run time. Extra busy slots finish their job first. */
  setConcurrency(n: number): void {
    this.concurrencyNow = n;
    this.attempts.pool.resize(n);
    this.opts.log.info("queue.concurrency_changed", { concurrency: n });
    this.scheduleTick();
  }

  /** Recovers jobs a dead daemon left running, starts the pool and the first tick. */
  /**
   * Starts the worker slots (and the warm worker) before start(), and resolves once the warm
   * worker has loaded the job modules, or after maxWaitMs: the daemon waits for it before it
   * takes connections, so the first job does not wait for a thread.
   */
  async warmUp(maxWaitMs: number): Promise<boolean> {
    this.attempts.pool.resize(this.opts.config.concurrency);
    return this.attempts.pool.warmReady(maxWaitMs);
  }

  async start(): Promise<void> {
    this.opts.log.info("engine.started", { owner: this.owner });
    await recoverInterrupted(this.opts.store, this.owner, this.opts.clock.now(), this.opts.log);
    await this.paused.load();
    this.attempts.runTimes.load(await this.opts.store.meta.get(RUN_TIMES_KEY), (type) => this.opts.registry.types.has(type));
    this.runTimesSavedAt = this.opts.clock.now();
    this.logIsolation();
    this.setConcurrency(this.opts.config.concurrency);
    await this.pruneOnce();
    this.schedulePrune();
    this.scheduleTick();
  }

  // ---- public operations (called by the socket routes) ----

  async enqueue(spec: JobSpec): Promise<{ job: Job; created: boolean }> {
    const [r] = await this.insert([await this.prepare(spec)]);
    return { job: toWire(r!.job), created: r!.created };
  }

  /** All or nothing: every spec is validated before any is stored, and all share one commit. */
  async enqueueBatch(specs: JobSpec[]): Promise<{ job: Job; created: boolean }[]> {
    const results = await this.insert(await prepareJobs(specs, this.opts.registry, this.lookup, () => this.opts.clock.now()));
    return results.map((r) => ({ job: toWire(r.job), created: r.created }));
  }

  /** As enqueueBatch, answered with the ids (in input order) and how many jobs are new. */
  async enqueueBatchIds(specs: JobSpec[]): Promise<{ ids: number[]; created: number }> {
    const results = await this.insert(await prepareJobs(specs, this.opts.registry, this.lookup, () => this.opts.clock.now()));
    let created = 0;
    const ids = results.map((r) => {
      if (r.created) created++;
      return r.job.id;
    });
    return { ids, created };
  }

  /** Validates a job spec as enqueue would, without storing it. Not async: prepareJob's promise is the answer (one promise less per enqueue). */
  prepare(spec: JobSpec): Promise<NewJob> {
    return prepareJob(spec, this.opts.registry, this.lookup, this.now);
  }

  /**
   * Calls fn after a job of this type reached a final status (complete, failed, cancelled)
   * and that was committed. For bookkeeping outside the job (stats, cursors, attachments).
   */
  onFinish(type: string, fn: (job: JobRecord) => Promise<void> | void): void {
    const list = this.finishHooks.get(type) ?? [];
    list.push(fn);
    this.finishHooks.set(type, list);
  }

  /** A job stored outside the tick (a schedule's firing): announce it and start it if due. */
  adopt(job: JobRecord): void {
    this.attempts.emitStatus(job);
    this.scheduleTick();
  }

  async get(id: number): Promise<Job> {
    const r = await this.opts.store.jobs.get(id);
    if (!r) throw notFound(`job ${id} not found`);
    return toWire(r, this.attempts.of(r));
  }

  async list(filter: JobFilter): Promise<JobSummary[]> {
    return (await this.opts.store.jobs.list(filter)).map((r) => toWireSummary(r, this.attempts.of(r)));
  }

  async counts() {
    return this.opts.store.jobs.counts();
  }

  /** Why a job is (not) running, in one line and a code. */
  async why(id: number): Promise<JobWhy> {
    const r = await this.opts.store.jobs.get(id);
    if (!r) throw notFound(`job ${id} not found`);
    const now = this.opts.clock.now();
    const live = this.attempts.of(r);
    // The slot is the engine's to know first: the store learns it when the job's turn begins.
    if (live) r.slot = live.slot;
    const facts = {
      now,
      paused: { all: this.paused.everything, types: this.paused.pausedTypes },
      progress: live?.progress ?? r.progress,
      slotFree: this.attempts.hasEmptySlot(this.concurrencyNow) && this.accepting,
      busySlots: this.attempts.size,
      concurrency: this.concurrencyNow,
    };
    const answer = explain(r, facts);
    if (answer !== "ahead") return answer;
    return explainWaiting(r, facts, await this.opts.store.jobs.countAhead(r, now, [...this.paused.pausedTypes]));
  }

  /**
   * Cancels a job, whichever daemon runs it. The request is recorded in the store first (so
   * that a node that dies meanwhile leaves it cancelled, never pending): a pending job is
   * cancelled at once; a running one is told to stop (AbortSignal) and its worker terminated
   * past the cancel grace, here if this engine runs it, else by the node that does (told by
   * the store: NodeSessionEvents.cancel, or its next heartbeat). With `wait` (the default) the
   * answer comes once the job has stopped, as stored; `runsOn` names the other node.
   */
  async cancel(id: number, opts: { wait?: boolean } = {}): Promise<{ job: Job; runsOn: CancelElsewhere | null }> {
    const wait = opts.wait ?? true;
    const answer = await this.opts.store.jobs.requestCancel(id, this.opts.config.cancelGrace, this.opts.clock.now());
    if (!answer) throw notFound(`job ${id} not found`);
    if (answer.outcome === "ended") {
      const { status } = answer.job;
      throw conflict(`job ${id} already ${status}; only pending or running jobs can be cancelled`);
    }
    if (answer.outcome === "cancelled") {
      this.attempts.emitStatus(answer.job);
      return { job: toWire(answer.job), runsOn: null };
    }
    const run = this.attempts.get(id);
    if (run && run.attempt === answer.job.attempts && answer.owner === this.nodeId) {
      this.attempts.stop(run, "cancel", "cancelled by user");
      if (!wait) return { job: toWire(answer.job, run), runsOn: null };
      const settled = await (run.settled ??= new Promise<JobRecord | null>((r) => (run.settle = r)));
      return { job: settled ? toWire(settled) : await this.get(id), runsOn: null };
    }
    // Another node runs it (or this one, between its end and the write of it): that node stops
    // it; if it cannot, rescue or the reaper ends it cancelled (deadline + lease at the latest).
    const runsOn = answer.owner !== null && answer.owner !== this.nodeId ? await this.nodeRef(answer.owner, answer.deadline) : null;
    this.opts.log.info("job.cancel_requested", { job: id, attempt: answer.job.attempts, node: answer.owner ?? "none", deadline: new Date(answer.deadline).toISOString() });
    if (!wait) return { job: toWire(answer.job), runsOn };
    return { job: await this.untilStopped(answer.job, this.opts.config.cancelGrace + LEASE_MS + RESCUE_EVERY_MS + 1000), runsOn };
  }

  /**
   * A cancel was requested, through another daemon, for a job this engine runs (its node heard
   * it): the attempt is stopped as a cancel here would, within what is left of its grace.
   */
  cancelRequested(notice: CancelNotice, via: "notify" | "heartbeat"): void {
    const run = this.attempts.get(notice.id);
    if (!run || run.attempt !== notice.attempt || run.stop) return;
    this.opts.log.info("job.cancel_heard", { job: notice.id, attempt: notice.attempt, via, graceLeftMs: Math.round(notice.graceLeftMs) });
    this.attempts.stop(run, "cancel", "cancelled by user", notice.graceLeftMs);
  }

  /** The node a job runs on, for the answer to a cancel (host and pid null if no longer listed). */
  private async nodeRef(node: string, deadline: number): Promise<CancelElsewhere> {
    const listed = (await this.opts.store.nodes.list()).find((n) => n.id === node);
    return { node, host: listed?.host ?? null, pid: listed?.pid ?? null, deadline: new Date(deadline).toISOString() };
  }

  /** The job once this attempt has stopped (looked up every CANCEL_LOOK_EVERY_MS), or as it is after maxMs. */
  private async untilStopped(job: JobRecord, maxMs: number): Promise<Job> {
    const until = this.opts.clock.now() + maxMs;
    for (;;) {
      const now = await this.opts.store.jobs.get(job.id);
      if (!now) throw notFound(`job ${job.id} not found`);
      if (now.status !== "running" || now.attempts !== job.attempts || this.opts.clock.now() >= until) return toWire(now, this.attempts.of(now));
      await new Promise<void>((r) => this.opts.clock.setTimer(r, CANCEL_LOOK_EVERY_MS));
    }
  }

  async retry(id: number): Promise<Job> {
    const r = await this.opts.store.jobs.retry(id, this.opts.clock.now());
    if (r) {
      this.attempts.emitStatus(r);
      this.scheduleTick();
      return toWire(r);
    }
    const existing = await this.opts.store.jobs.get(id);
    if (!existing) throw notFound(`job ${id} not found`);
    throw conflict(`job ${id} is ${existing.status}; only failed or cancelled jobs can be retried`);
  }

  async logsOf(id: number, afterId = 0) {
    if (!(await this.opts.store.jobs.get(id))) throw notFound(`job ${id} not found`);
    return this.opts.store.jobs.logs(id, afterId);
  }

  async prune(olderThanMs: number = this.opts.config.retention): Promise<number> {
    return this.opts.store.jobs.prune(this.opts.clock.now() - olderThanMs);
  }

  async pruneOnce(): Promise<number> {
    const n = await this.prune();
    if (n > 0) this.opts.log.info("jobs.pruned", { count: n });
    return n;
  }

  /**
   * Graceful stop: claim nothing new, let running jobs finish within graceMs, then stop the
   * rest and put them back to pending without counting the attempt.
   */
  async stop(graceMs: number): Promise<void> {
    this.accepting = false;
    this.dueTimer?.handle.cancel();
    this.pruneTimer?.cancel();
    if (this.attempts.size > 0) {
      this.opts.log.info("jobs.draining", { running: this.attempts.size, graceMs });
      await Promise.race([this.idle(), new Promise<void>((r) => this.opts.clock.setTimer(r, graceMs))]);
    }
    this.attempts.abandonAll();
    await this.idle();
    await this.flush();
    await this.attempts.close();
    await this.saveRunTimes();
  }

  // ---- fencing, for a node on a shared store (queue/node.ts drives these) ----

  private fenced = false;
  private beforeWrite: (() => void) | null = null;

  /**
   * The node's lease is not to be trusted: claim nothing more, and stop every attempt running
   * now: its handler is aborted (AbortSignal) and its worker terminated after graceMs (the node
   * passes what is left of its lease). Until resumeAs, every write of an attempt goes out
   * under FENCED_OWNER, so the store refuses it: the stopped attempts write nothing more; their
   * jobs are handed back by rescue, counted as interrupted.
   */
  fence(reason: string, graceMs: number): void {
    if (this.fenced) return;
    this.fenced = true;
    this.dueTimer?.handle.cancel();
    this.dueTimer = null;
    const message = `stopped: ${reason}`;
    for (const run of this.attempts.values()) {
      this.opts.log.warn("job.fenced", { job: run.record.id, attempt: run.attempt, owner: this.nodeId, reason });
      if (run.stop === null) this.attempts.stop(run, "shutdown", message, graceMs);
      // Already stopping (a cancel, a timeout): its worker goes within graceMs all the same.
      else run.timers.push(this.opts.clock.setTimer(() => this.attempts.pool.kill(run.slot, message, run.record.id), graceMs));
    }
  }

  /** Claims again, as `owner` (the node registered anew). */
  resumeAs(owner: string): void {
    this.nodeId = owner;
    this.fenced = false;
    this.scheduleTick();
  }

  /** `check` runs before each write of the engine (a node checks its lease there, and may fence first). */
  guardWrites(check: () => void): void {
    this.beforeWrite = check;
  }

  /** Claims soon, as if woken by a write: for jobs another node enqueued or handed back. */
  wake(): void {
    if (this.accepting) this.scheduleTick();
  }

  // ---- the tick ----

  /** Stores the jobs with the next tick (one commit); resolves with them as stored, in order. */
  private insert(jobs: NewJob[]): Promise<{ job: JobRecord; created: boolean }[]> {
    if (!this.accepting) return Promise.reject(new TeamworkError("unavailable", "the daemon is shutting down; try again in a moment"));
    return new Promise((resolve, reject) => {
      this.writes.inserts.push({ jobs, resolve, reject });
      this.scheduleTick();
    });
  }

  private scheduleTick(): void {
    if (this.tickQueued) return;
    this.tickQueued = true;
    setImmediate(() => {
      this.tickQueued = false;
      void this.tick();
    });
  }

  /** Runs ticks until nothing is left to write. */
  private async flush(): Promise<void> {
    do await this.tick();
    while (!this.writes.empty);
  }

  private async tick(): Promise<void> {
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = true;
    this.beforeWrite?.();
    if (this.claimsUnsure && !this.fenced) await this.reconcileClaims();
    const w = this.writes.take();
    this.attempts.cancelFlushTimer();
    const plan = this.accepting && !this.fenced && !this.paused.everything ? this.plan() : null;
    const claim = plan?.claim ?? null;
    const batch: TickBatch = {
      now: this.opts.clock.now(),
      owner: this.fenced ? FENCED_OWNER : this.nodeId,
      inserts: w.inserts.length === 1 ? w.inserts[0]!.jobs : w.inserts.flatMap((i) => i.jobs),
      finishes: w.finishes.length ? w.finishes.map((f) => f.finish) : NO_FINISHES,
      progress: w.progress,
      checkpoints: w.checkpoints.length ? w.checkpoints.map(({ id, attempt, state }) => ({ id, attempt, state })) : NO_CHECKPOINTS,
      logs: w.logs,
      begins: w.begins,
      claim,
    };
    try {
      if (w.inserts.length || w.finishes.length || w.progress.length || w.checkpoints.length || w.logs.length || w.begins.length || (claim && claim.limit > 0)) {
        const result = await this.opts.store.jobs.tick(batch);
        const refusedCheckpoints = this.logRefused(result.refused);
        for (const c of w.checkpoints) {
          if (refusedCheckpoints?.has(`${c.id}:${c.attempt}`)) {
            c.ack("refused: this attempt no longer runs the job");
            continue;
          }
          this.attempts.checkpointed(c.id, c.attempt, c.state);
          c.ack(null);
        }
        if (w.inserts.length === 1) w.inserts[0]!.resolve(result.inserted);
        else {
          let at = 0;
          for (const group of w.inserts) {
            group.resolve(result.inserted.slice(at, at + group.jobs.length));
            at += group.jobs.length;
          }
        }
        if (this.opts.bus.wantsNewJobs()) for (const r of result.inserted) if (r.created) this.attempts.emitStatus(r.job);
        if (w.finishes.length) this.finished(w.finishes, result.finished);
        // A plan that placed a job has changed: the next tick makes its own.
        if (result.claimed.length > 0) this.lastPlan = null;
        for (const job of result.claimed) this.place(job, plan!.placement);
        if (result.claimError) {
          this.opts.log.error("store.claim_failed", { error: result.claimError, note: "the tick's other writes are stored; the claim is tried again" });
          if (outcomeUnknown(result.claimError)) this.claimsUnsure = true;
        }
        if (claim && claim.limit > 0) this.armDueTimer(result.nextDueAt);
      }
    } catch (err) {
      this.opts.log.error("store.write_failed", { error: err as Error, inserts: w.inserts.length, finishes: w.finishes.length });
      if (claim && claim.limit > 0 && outcomeUnknown(err)) this.claimsUnsure = true;
      // Finishes and progress are kept and written on the next try.
      // A store's own error goes to the enqueue's caller as it is: the daemon answers it with its
      // kind's words and code (a database unreachable: exit 3; a commit never answered: the
      // job may have been stored).
      this.writes.putBack(w, err as Error, err instanceof StoreError ? err : new TeamworkError("unavailable", `could not store the job: ${(err as Error).message}`));
      this.opts.clock.setTimer(() => this.scheduleTick(), 1000);
    } finally {
      this.ticking = false;
    }
    if (this.again) {
      this.again = false;
      this.scheduleTick();
    }
    if (this.attempts.size === 0 && this.writes.finishes.length === 0) for (const waiter of this.idleWaiters.splice(0)) waiter();
  }

  /**
   * After a claim whose outcome is unknown (its answer was lost: the store may have given this
   * daemon jobs it never received, running for a live owner that nobody would rescue): the
   * jobs the store says run for this daemon that no live attempt or queued write here knows go
   * back to pending, their attempt not counted (they never began: this daemon never had them).
   * The write is fenced like every other (id, attempt, owner). If the store cannot be asked,
   * the next tick asks again.
   */
  private async reconcileClaims(): Promise<void> {
    let held: { id: number; attempt: number }[];
    try {
      held = await this.opts.store.jobs.runningFor(this.nodeId);
    } catch {
      return;
    }
    this.claimsUnsure = false;
    const queued = new Set(this.writes.finishes.map((f) => f.finish.id));
    const lost = unknownClaims(held, (id, attempt) => this.attempts.of({ id, status: "running", attempts: attempt }) !== undefined || queued.has(id));
    if (lost.length === 0) return;
    for (const r of lost) this.writes.finishes.push({ finish: { id: r.id, attempt: r.attempt, outcome: "requeue" }, attempt: null });
    this.opts.log.warn("jobs.claim_reconciled", { jobs: lost.length, ids: lost.map((r) => r.id).join(","), note: "claimed for this daemon by a claim whose answer was lost: back to pending, the attempt not counted" });
  }

  /** Announces the finished jobs as stored, runs their hooks and answers whoever waits on them. */
  private finished(finishes: readonly QueuedFinish<LiveAttempt>[], stored: JobRecord[]): void {
    const byId = new Map(stored.map((j) => [j.id, j]));
    for (const f of finishes) {
      const job = byId.get(f.finish.id) ?? null;
      if (job) {
        this.attempts.emitStatus(job);
        if (job.status !== "pending") this.runFinishHooks(job);
      }
      f.attempt?.settle?.(job);
    }
  }

  /** Logs each refused write; returns the refused checkpoints ("id:attempt"), if any. */
  private logRefused(refused: RefusedWrite[]): Set<string> | null {
    if (refused.length === 0) return null;
    const checkpoints = new Set<string>();
    for (const r of refused) {
      this.opts.log.warn("job.write_refused", { job: r.id, attempt: r.attempt, owner: this.owner, write: r.write, note: "the job no longer runs this attempt for this daemon" });
      if (r.write === "checkpoint") checkpoints.add(`${r.id}:${r.attempt}`);
    }
    return checkpoints;
  }

  /**
   * This tick's placement: what the claim may take, then where each claimed job goes. The last
   * tick's when it still holds; null when nothing could be placed (placement.ts choosePlan).
   */
  private plan(): { placement: Placement; claim: ClaimLimits } | null {
    const choice = choosePlan(this.attempts.poolState(this.concurrencyNow), this.lastPlan?.idle ?? null);
    if (choice === "none") return null;
    const paused = this.paused.pausedTypeList as string[];
    if (choice === "last") {
      const last = this.lastPlan!;
      if (last.claim.pausedTypes !== paused) last.claim = { ...last.placement.claim, pausedTypes: paused, budgetMs: TICK_CLAIM_BUDGET_MS };
      return last;
    }
    const idle = idlePool(this.attempts.poolState(this.concurrencyNow));
    const placement = this.placement();
    this.lastPlan = { placement, claim: { ...placement.claim, pausedTypes: paused, budgetMs: TICK_CLAIM_BUDGET_MS }, idle };
    return this.lastPlan;
  }

  private placement(): Placement {
    const placement = planPlacement({
      now: this.opts.clock.now(),
      slots: this.attempts.slotViews(this.concurrencyNow),
      runTimes: this.attempts.runTimes.measured,
      kindOf: (type) => this.attempts.workerKeyOf(type),
      fastWorkers: this.opts.config.fastWorkers || FAST_WORKERS_AUTO,
    });
    if (placement.probeWaitMs !== null) this.armProbeTimer(placement.probeWaitMs);
    return placement;
  }

  /**
   * Hands a claimed job to the slot placement gives it. One that finds no slot (the claim's
   * budgets are exact for one type, not for types competing for the same empty slots) goes
   * back to pending with the next write, its attempt not counted: it never ran.
   */
  private place(job: JobRecord, placement: Placement): void {
    const place = placement.place(job.type);
    if (place !== null && "slot" in place) {
      // A probe of a type not measured yet: the next jobs of its type wait for it a few ms.
      if (this.attempts.runTimes.mean(job.type) === undefined) this.armProbeTimer(AHEAD_BUDGET_MS);
      return this.attempts.dispatch(job, place.slot);
    }
    if (place !== null) this.armProbeTimer(place.waitMs);
    this.writes.finishes.push({ finish: { id: job.id, attempt: job.attempts, outcome: "requeue" }, attempt: null });
    this.scheduleTick();
  }

  /** Claims again once a probe has had its few ms (if it has not finished by then). */
  private armProbeTimer(ms: number): void {
    if (this.probeTimer) return;
    this.probeTimer = this.opts.clock.setTimer(() => {
      this.probeTimer = null;
      this.scheduleTick();
    }, Math.max(1, Math.ceil(ms)));
  }

  private armDueTimer(next: number | null): void {
    if (next === null || !this.accepting) return;
    if (this.dueTimer && this.dueTimer.at <= next) return;
    this.dueTimer?.handle.cancel();
    const handle = this.opts.clock.setTimer(() => {
      this.dueTimer = null;
      this.scheduleTick();
    }, next - this.opts.clock.now());
    this.dueTimer = { at: next, handle };
  }

  private async saveRunTimes(): Promise<void> {
    this.runTimesSavedAt = this.opts.clock.now();
    await this.opts.store.meta.set(RUN_TIMES_KEY, this.attempts.runTimes.toJson());
  }

  private logIsolation(): void {
    for (const type of Object.keys(this.opts.config.jobIsolation)) {
      if (!this.opts.registry.has(type)) this.opts.log.warn("config.unknown_job_type", { key: "jobIsolation", type, note: "no such job type is loaded" });
    }
    const processTypes = this.processTypes;
    if (processTypes.length > 0) this.opts.log.info("jobs.isolation", { processTypes: processTypes.join(","), ...processIsolationInfo() });
  }

  private runFinishHooks(job: JobRecord): void {
    for (const fn of this.finishHooks.get(job.type) ?? []) {
      Promise.resolve()
        .then(() => fn(job))
        .catch((err: Error) => this.opts.log.error("job.finish_hook_failed", { job: job.id, type: job.type, error: err.message }));
    }
  }

  private idle(): Promise<void> {
    if (this.attempts.size === 0 && this.writes.finishes.length === 0 && !this.ticking) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private schedulePrune(): void {
    const every = Math.min(3_600_000, Math.max(60_000, this.opts.config.retention / 10));
    this.pruneTimer = this.opts.clock.setTimer(() => {
      void this.pruneOnce()
        .catch((err: Error) => this.opts.log.error("jobs.prune_failed", { error: err }))
        .finally(() => this.accepting && this.schedulePrune());
    }, every);
  }
}
