// The attempts this engine has in its workers' hands: handing a claimed job to its slot,
// learning when its turn begins (its timeout starts then), its progress, logs and checkpoints,
// stopping it (cancel, timeout, shutdown), and its end, which becomes a finish queued for the
// next tick (outcome.ts decides which).
//
// Invariants
// - Every claimed job is handed to the pool (or failed at once, for a type this build lacks;
//   or, finding no slot, handed back by the engine uncounted); the pool's list for a slot is
//   that slot's jobs, the running one first.
// - Every job handed to the pool produces exactly one end (pool.ts guarantees it), which
//   frees its slot and queues exactly one finish.
// - A message about an attempt that is no longer the job's current one here is dropped.

import type { Clock, TimerHandle } from "../lib/clock.js";
import { formatDuration } from "../lib/duration.js";
import type { Logger } from "../lib/logger.js";
import type { Json } from "../protocol/types.js";
import type { Finish, JobRecord } from "../store/types.js";
import type { Isolation } from "../jobs/define.js";
import type { EventBus } from "./events/bus.js";
import { WorkerPool, type JobEnd } from "./pool/pool.js";
import { kindKey } from "./pool/handle.js";
import type { WorkerData } from "./worker/protocol.js";
import type { Registry } from "./registry.js";
import { attemptOutcome, toFinish, type StopReason } from "./outcome.js";
import { AHEAD_FAST_MS, type PoolState, type SlotView } from "./placement.js";
import { RunTimes } from "./run-times.js";
import { toWire } from "./wire.js";
import type { WriteQueue } from "./write-queue.js";

/** Progress, logs and begins are written at most this often (coalesced). */
const PROGRESS_FLUSH_MS = 250;

/** One attempt of a job, from its claim to its end. */
export interface LiveAttempt {
  record: JobRecord;
  slot: number;
  attempt: number;
  progress: number;
  /** The latest progress message; once stopped, the reason it was stopped. */
  message: string | null;
  stop: StopReason | null;
  /** When its turn in its worker came (null while it waits behind another job). */
  begun: number | null;
  /** When it times out (set when its turn begins; the watchdog checks it). */
  deadline: number | null;
  timeoutMs: number;
  timers: TimerHandle[];
  /** Resolved with the stored job once this attempt's finish has committed (made when someone waits). */
  settled: Promise<JobRecord | null> | null;
  settle: ((job: JobRecord | null) => void) | null;
}

export interface AttemptsConfig {
  quarantineAfter: number;
  jobTimeout: number;
  jobMemoryMb: number;
  jobIsolation: Record<string, Isolation>;
  warmWorker: boolean;
  cancelGrace: number;
  backoff: { base: number; cap: number };
}

export class Attempts {
  private readonly live = new Map<number, LiveAttempt>();
  readonly runTimes = new RunTimes();
  readonly pool: WorkerPool;
  private progressTimer: TimerHandle | null = null;
  /**
   * One timer for every attempt's timeout, armed for the earliest deadline: a job that
   * takes microseconds costs no timer of its own.
   */
  private watchdog: { at: number; handle: TimerHandle } | null = null;

  constructor(
    private readonly deps: {
      registry: Registry;
      bus: EventBus;
      clock: Clock;
      log: Logger;
      config: AttemptsConfig;
      workerData: Omit<WorkerData, "modules">;
      rand?: () => number;
      writes: WriteQueue<LiveAttempt>;
      /** Asks for a tick soon (coalesced). */
      wake(): void;
      /** A run time was measured. */
      measured(): void;
    },
  ) {
    this.pool = new WorkerPool(
      { ...deps.workerData, modules: deps.registry.modules },
      {
        progress: (id, attempt, progress, message) => this.onProgress(id, attempt, progress, message),
        log: (id, attempt, message) => this.onLog(id, attempt, message),
        checkpoint: (id, attempt, state, ack) => this.onCheckpoint(id, attempt, state, ack),
        begin: (id, attempt) => this.onBegin(id, attempt),
        end: (id, attempt, end) => this.onEnd(id, attempt, end),
        workerLog: (slot, line, job) => {
          // What a handler prints belongs to the job running in that slot, if any.
          if (job && this.live.get(job.jobId)?.attempt === job.attempt) this.onLog(job.jobId, job.attempt, line);
          else deps.log.info("worker.output", { slot, line });
        },
      },
      undefined,
      // The kind most jobs run in (a thread at the default memory limit): kept warm.
      deps.config.warmWorker ? { isolation: "thread", memoryMb: deps.config.jobMemoryMb } : null,
    );
  }

  get size(): number {
    return this.live.size;
  }

  get(id: number): LiveAttempt | undefined {
    return this.live.get(id);
  }

  values(): IterableIterator<LiveAttempt> {
    return this.live.values();
  }

  /** The attempt this engine runs for a stored job, if the record is of that attempt. */
  of(r: { id: number; status: string; attempts: number }): LiveAttempt | undefined {
    const run = r.status === "running" ? this.live.get(r.id) : undefined;
    return run && run.attempt === r.attempts ? run : undefined;
  }

  /** The worker a job of this type needs; jobs wait behind each other only in the same kind. */
  workerKindOf(type: string): { isolation: Isolation; memoryMb: number } {
    const def = this.deps.registry.types.get(type)?.def;
    return { isolation: this.deps.config.jobIsolation[type] ?? def?.isolation ?? "thread", memoryMb: def?.memoryMb ?? this.deps.config.jobMemoryMb };
  }

  workerKeyOf(type: string): string {
    return kindKey(this.workerKindOf(type));
  }

  /** Slots 1..n as placement sees them now. */
  slotViews(n: number): SlotView[] {
    const views: SlotView[] = [];
    for (let s = 1; s <= n; s++) {
      const jobs = this.pool.jobsOf(s).map((j) => {
        const run = this.live.get(j.jobId);
        return run ? { type: run.record.type, begun: run.begun } : null;
      });
      views.push({ n: s, warm: jobs.length === 0 && this.pool.warm(s), jobs });
    }
    return views;
  }

  /** Slots 1..n as placement's choosePlan reads them, one by one (the same object each time). */
  poolState(n: number): PoolState {
    this.poolView.slots = n;
    return this.poolView;
  }

  private readonly poolView = ((attempts: Attempts) => ({
    slots: 0,
    busy: (n: number) => attempts.pool.jobsOf(n).length > 0,
    warm: (n: number) => attempts.pool.warm(n),
    get runTimesChanges() {
      return attempts.runTimes.changes;
    },
    anyFast() {
      for (const ms of attempts.runTimes.measured.values()) if (ms <= AHEAD_FAST_MS) return true;
      return false;
    },
  }))(this);

  hasEmptySlot(n: number): boolean {
    for (let s = 1; s <= n; s++) if (this.pool.jobsOf(s).length === 0) return true;
    return false;
  }

  /** Hands a claimed job to a slot (placement.ts chose it). */
  dispatch(job: JobRecord, slot: number): void {
    job.slot = slot;
    const run: LiveAttempt = { record: job, slot, attempt: job.attempts, progress: 0, message: null, stop: null, begun: null, deadline: null, timeoutMs: 0, timers: [], settled: null, settle: null };
    this.live.set(job.id, run);
    this.emitStatus(job);
    let type;
    try {
      type = this.deps.registry.get(job.type);
    } catch {
      // Enqueued by a build or config that had this type; it cannot run here.
      this.queueFinish(run, { id: job.id, attempt: run.attempt, outcome: "failed", error: `no handler for job type "${job.type}" (is its module still in jobModules?)`, permanent: true });
      return;
    }
    this.pool.run(slot, { jobId: job.id, attempt: run.attempt, type: type.def.type, payload: job.payload, state: job.state, ...this.workerKindOf(job.type) });
  }

  /** Asks the handler to stop (AbortSignal); past the grace period (cancelGrace unless given) its worker is terminated. */
  stop(run: LiveAttempt, reason: StopReason, message: string, graceMs: number = this.deps.config.cancelGrace): void {
    if (run.stop) return;
    run.stop = reason;
    run.message = message;
    this.pool.cancel(run.slot, run.record.id, message);
    // Past the grace period the worker is stopped, if this job is still the one running in it.
    run.timers.push(this.deps.clock.setTimer(() => this.pool.kill(run.slot, message, run.record.id), graceMs));
  }

  /** Shutdown: every attempt still here is stopped now and goes back to pending uncounted. */
  abandonAll(): void {
    for (const run of this.live.values()) {
      this.deps.log.warn("job.requeued", { job: run.record.id, reason: "shutdown grace elapsed" });
      run.stop = "shutdown";
      this.pool.kill(run.slot, "daemon shutting down");
    }
  }

  /** Stops the watchdog and the workers (after the last attempt ended). */
  async close(): Promise<void> {
    this.watchdog?.handle.cancel();
    this.watchdog = null;
    await this.pool.close();
  }

  /** The flush timer is the tick's to cancel: it writes everything queued anyway. */
  cancelFlushTimer(): void {
    this.progressTimer?.cancel();
    this.progressTimer = null;
  }

  private flushSoon(): void {
    this.progressTimer ??= this.deps.clock.setTimer(() => {
      this.progressTimer = null;
      this.deps.wake();
    }, PROGRESS_FLUSH_MS);
  }

  /** The job's turn in its worker has come: its timeout starts now. */
  private onBegin(id: number, attempt: number): void {
    const run = this.live.get(id);
    if (!run || run.attempt !== attempt) return;
    run.begun = this.deps.clock.now();
    if (run.record.startedAt === null) {
      // The store learns when and where its turn began with the next write (or its finish).
      run.record.startedAt = run.begun;
      this.deps.writes.begins.set(id, { id, attempt, at: run.begun, slot: run.slot });
      this.flushSoon();
    }
    run.timeoutMs = this.deps.registry.types.get(run.record.type)?.def.timeoutMs ?? this.deps.config.jobTimeout;
    run.deadline = run.begun + run.timeoutMs;
    this.armWatchdog(run.deadline);
  }

  private armWatchdog(at: number): void {
    if (this.watchdog && this.watchdog.at <= at) return;
    this.watchdog?.handle.cancel();
    const handle = this.deps.clock.setTimer(() => {
      this.watchdog = null;
      const now = this.deps.clock.now();
      let next = Infinity;
      for (const run of this.live.values()) {
        if (run.deadline === null || run.stop) continue;
        if (run.deadline <= now) this.stop(run, "timeout", `timed out after ${formatDuration(run.timeoutMs)}`);
        else next = Math.min(next, run.deadline);
      }
      if (next < Infinity) this.armWatchdog(next);
    }, Math.max(0, at - this.deps.clock.now()));
    this.watchdog = { at, handle };
  }

  private logSeq = 0;

  private onLog(id: number, attempt: number, message: string): void {
    const run = this.live.get(id);
    if (!run || run.attempt !== attempt) return;
    const at = this.deps.clock.now();
    this.deps.writes.logs.push({ id, attempt, at, message });
    if (this.deps.bus.wants("job:log")) this.deps.bus.emit("job:log", { id: ++this.logSeq, jobId: id, attempt, at: new Date(at).toISOString(), message });
    this.flushSoon();
  }

  private onProgress(id: number, attempt: number, progress: number, message: string | null): void {
    const run = this.live.get(id);
    if (!run || run.attempt !== attempt || run.stop) return;
    run.progress = progress;
    run.message = message;
    this.deps.writes.progress.set(id, { attempt, progress, message });
    if (this.deps.bus.wants("job:progress")) {
      this.deps.bus.emit("job:progress", { jobId: id, progress, message, at: new Date(this.deps.clock.now()).toISOString() });
    }
    // Persist coalesced: at most one progress write per job per PROGRESS_FLUSH_MS.
    this.flushSoon();
  }

  private onCheckpoint(id: number, attempt: number, state: Json, ack: (error: string | null) => void): void {
    this.deps.writes.checkpoints.push({ id, attempt, state, ack });
    this.deps.wake();
  }

  /** A checkpoint was committed: a later attempt here resumes from it. */
  checkpointed(id: number, attempt: number, state: Json): void {
    const run = this.live.get(id);
    if (run && run.attempt === attempt) run.record.state = state;
  }

  private onEnd(id: number, attempt: number, end: JobEnd): void {
    const run = this.live.get(id);
    if (!run || run.attempt !== attempt) return;
    if ("ms" in end && end.ms !== undefined) {
      this.runTimes.record(run.record.type, end.ms);
      this.deps.measured();
    }
    const own = this.deps.registry.types.get(run.record.type)?.def.backoff;
    const outcome = attemptOutcome(
      { job: run.record, attempt, end, stopped: run.stop ? { reason: run.stop, message: run.message! } : null },
      {
        now: this.deps.clock.now(),
        quarantineAfter: this.deps.config.quarantineAfter,
        backoff: { baseMs: own?.baseMs ?? this.deps.config.backoff.base, capMs: own?.capMs ?? this.deps.config.backoff.cap },
        ...(this.deps.rand ? { rand: this.deps.rand } : {}),
      },
    );
    const finish = toFinish(id, attempt, outcome);
    // The attempt as the engine knows it: the store builds the finished job from it.
    if (finish.outcome === "complete") finish.running = { ...run.record, progressMessage: run.message };
    if (outcome.outcome === "retry" || outcome.outcome === "failed") {
      this.deps.log.warn("job.attempt_failed", { job: id, type: run.record.type, attempt, error: outcome.error, next: outcome.outcome });
    }
    this.queueFinish(run, finish);
  }

  private queueFinish(run: LiveAttempt, finish: Finish): void {
    run.deadline = null;
    for (const t of run.timers) t.cancel();
    // Its begin is not written yet: the finish writes it.
    const writes = this.deps.writes;
    const begun = writes.begins.get(run.record.id);
    if (begun && begun.attempt === run.attempt) {
      writes.begins.delete(run.record.id);
      if (finish.outcome !== "requeue") finish.startedAt = begun.at;
    }
    this.live.delete(run.record.id);
    this.pool.released(run.slot);
    // Unwritten progress stays queued: the tick writes it (while the attempt still runs)
    // before the finish, so the last message is kept.
    writes.finishes.push({ finish, attempt: run });
    this.deps.wake();
  }

  emitStatus(r: JobRecord): void {
    if (this.deps.bus.wants("job:status")) this.deps.bus.emit("job:status", { job: toWire(r) });
  }
}
