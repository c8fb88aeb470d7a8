// Terminology (see also protocol/types.ts)
// - tick: one turn of the engine. Everything that happened since the last turn (new jobs,
//   finished attempts, progress) is written in ONE transaction together with the claim of
//   due jobs for the free slots; then the claimed jobs are handed to their slots. This is
//   the group commit: under load many state changes share one fsync.
// - claim: pending → running for a due job, with a slot and attempts + 1, committed before
//   the job starts, so a crash after the start always counts the attempt.
// - handing over ahead: a slot's worker runs one job at a time, but for job types that take
//   well under a millisecond the engine claims several for one slot; they wait in the worker
//   and start back to back, with no round trip to the daemon between them. The engine learns
//   each type's run time from the workers (a moving average); a type it has not seen run, or
//   a slow one, is only ever given to an empty slot. A job that waited and never ran (its
//   worker died, the daemon stopped) goes back to pending without counting an attempt. After
//   a crash nobody knows whether a job handed ahead had begun: it counts as interrupted.
// - fence: a finish names the attempt it belongs to; the store applies it only while that
//   attempt is the job's current running one, so a late result can never win.
//
// Invariants
// - Every job in `running` was handed to the pool (or is being failed at dispatch); the
//   pool's list for a slot is that slot's jobs, the running one first.
// - Every job handed to the pool produces exactly one end (pool.ts guarantees it), which
//   frees its slot and queues exactly one finish.
// - Enqueue promises resolve only after the tick that inserted them has committed.

import { availableParallelism } from "node:os";
import type { Clock, TimerHandle } from "../lib/clock.js";
import { TeamworkError, conflict, invalid, notFound } from "../lib/errors.js";
import { formatDuration } from "../lib/duration.js";
import type { Job, JobWhy, Json } from "../protocol/types.js";
import type { JobSpec } from "../protocol/routes.js";
import type { Finish, JobFilter, JobRecord, NewJob, Store, TickBatch } from "../store/types.js";
import type { Logger } from "../lib/logger.js";
import { backoffMs } from "./backoff.js";
import type { EventBus } from "./events/bus.js";
import { WorkerPool, type JobEnd } from "./pool/pool.js";
import type { Registry } from "./registry.js";
import type { Lookup } from "../jobs/define.js";
import type { WorkerData } from "./worker/protocol.js";

export interface EngineConfig {
  concurrency: number;
  /** A job whose attempts killed their worker this many times is failed as quarantined. */
  quarantineAfter: number;
  /** How many workers fast jobs may keep busy at once; 0: the cores less one, at least 1. */
  fastWorkers: number;
  jobTimeout: number;
  jobMemoryMb: number;
  cancelGrace: number;
  backoff: { base: number; cap: number };
  retention: number;
}

type CancelReason = "cancel" | "timeout" | "shutdown";

interface Running {
  record: JobRecord;
  slot: number;
  attempt: number;
  progress: number;
  message: string | null;
  cancel: CancelReason | null;
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

const YEAR = 366 * 86_400_000;
const PAUSED_KEY = "queue.paused";
/** The run-time averages, kept across restarts so the first burst after a start is placed well. */
const COSTS_KEY = "engine.costs";
const COSTS_SAVE_EVERY_MS = 60_000;
const PROGRESS_FLUSH_MS = 250;
const BACKOFF_JITTER = 0.2;
/** A type whose mean run time is under this may be handed to a slot ahead of its turn. */
const AHEAD_FAST_MS = 1;
/** At most this much expected work waits in one slot. */
const AHEAD_BUDGET_MS = 4;
/** At most this many jobs are handed to one slot at once. */
const AHEAD_MAX = 256;
/**
 * Fast jobs keep at most this many workers busy unless configured (fastWorkers): a no-op job
 * costs the daemon's main thread more than its worker, so on a small machine more workers
 * only take cores from the thread that feeds them. One core is left to the main thread.
 */
const FAST_WORKERS_AUTO = Math.max(1, availableParallelism() - 1);
/** A worker whose fast job has run this long counts as stuck: the cap lets another one be woken. */
const FAST_STUCK_MS = 25;

// A batch's jobs share a few timestamps (created, runAt): the last conversions are kept.
const isoMs = [NaN, NaN, NaN, NaN];
const isoText = ["", "", "", ""];
let isoNext = 0;
const iso = (ms: number): string => {
  for (let i = 0; i < 4; i++) if (isoMs[i] === ms) return isoText[i]!;
  const text = new Date(ms).toISOString();
  isoMs[isoNext] = ms;
  isoText[isoNext] = text;
  isoNext = (isoNext + 1) % 4;
  return text;
};

export function toWire(r: JobRecord, live?: { progress: number; message: string | null }): Job {
  return {
    id: r.id,
    type: r.type,
    payload: r.payload,
    status: r.status,
    progress: live ? live.progress : r.progress,
    progressMessage: live ? live.message : r.progressMessage,
    attempts: r.attempts,
    maxAttempts: r.maxAttempts,
    runAt: iso(r.runAt),
    priority: r.priority,
    uniqueKey: r.uniqueKey,
    slot: r.slot,
    result: r.result,
    error: r.error,
    errors: r.errors.map((e) => ({ ...e, at: iso(e.at) })),
    createdAt: iso(r.createdAt),
    startedAt: r.startedAt === null ? null : iso(r.startedAt),
    finishedAt: r.finishedAt === null ? null : iso(r.finishedAt),
  };
}

export class Engine {
  private readonly running = new Map<number, Running>();
  /**
   * Mean run time of each job type (ms), as the workers measure it: an exponential moving
   * average. A type counts as measured after its second run: the first, in a cold worker
   * (code not compiled yet), says little.
   */
  private readonly runTimes = new Map<string, { ms: number; runs: number }>();
  private readonly costs = {
    get: (type: string): number | undefined => {
      const t = this.runTimes.get(type);
      return t && t.runs >= 2 ? t.ms : undefined;
    },
  };
  private costsSavedAt = 0;
  /** New jobs waiting for the next tick, in groups (one enqueue call each: a job, or a batch). */
  private inserts: { jobs: NewJob[]; resolve: (r: { job: JobRecord; created: boolean }[]) => void; reject: (e: unknown) => void }[] = [];
  private finishes: { finish: Finish; run: Running }[] = [];
  private progress = new Map<number, { attempt: number; progress: number; message: string | null }>();
  private checkpoints: { id: number; attempt: number; state: Json; ack: (error: string | null) => void }[] = [];
  private logs: { id: number; attempt: number; at: number; message: string }[] = [];
  /** Jobs claimed ahead whose turn began, to be marked started (unless their finish comes first). */
  private begins = new Map<number, { id: number; attempt: number; at: number }>();
  private logSeq = 0;
  private progressTimer: TimerHandle | null = null;
  private tickQueued = false;
  private ticking = false;
  private again = false;
  private dueTimer: { at: number; handle: TimerHandle } | null = null;
  private pruneTimer: TimerHandle | null = null;
  private accepting = true;
  private concurrencyNow = 0;
  /** Paused: everything, or these job types. Running jobs finish; nothing new starts. */
  private paused: { all: boolean; types: Set<string> } = { all: false, types: new Set() };
  private idleWaiters: (() => void)[] = [];
  private readonly pool: WorkerPool;
  private readonly lookup: Lookup;
  private readonly finishHooks = new Map<string, ((job: JobRecord) => Promise<void> | void)[]>();

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
    },
  ) {
    this.lookup = {
      boardExists: async (name) => (await opts.store.boards.get(name)) !== null,
      taskExists: async (id) => (await opts.store.tasks.get(id)) !== null,
    };
    this.pool = new WorkerPool(
      { ...opts.workerData, modules: opts.registry.modules },
      {
        progress: (id, attempt, progress, message) => this.onProgress(id, attempt, progress, message),
        log: (id, attempt, message) => this.onLog(id, attempt, message),
        checkpoint: (id, attempt, state, ack) => {
          this.checkpoints.push({ id, attempt, state, ack });
          this.scheduleTick();
        },
        begin: (id, attempt) => this.onBegin(id, attempt),
        end: (id, attempt, end) => this.onEnd(id, attempt, end),
        workerLog: (slot, line, job) => {
          // What a handler prints belongs to the job running in that slot, if any.
          if (job && this.running.get(job.jobId)?.attempt === job.attempt) this.onLog(job.jobId, job.attempt, line);
          else opts.log.info("worker.output", { slot, line });
        },
      },
    );
  }

  get concurrency(): number {
    return this.concurrencyNow;
  }

  get runningCount(): number {
    return this.running.size;
  }

  get pausedState(): { all: boolean; types: string[] } {
    return { all: this.paused.all, types: [...this.paused.types].sort() };
  }

  /** Pauses everything (no type) or one type; persisted, so it survives a restart. */
  async pause(type?: string): Promise<void> {
    if (type === undefined) this.paused.all = true;
    else {
      this.opts.registry.get(type);
      this.paused.types.add(type);
    }
    await this.savePaused();
  }

  async resume(type?: string): Promise<void> {
    if (type === undefined) {
      this.paused.all = false;
      this.paused.types.clear();
    } else this.paused.types.delete(type);
    await this.savePaused();
    this.scheduleTick();
  }

  private async savePaused(): Promise<void> {
    await this.opts.store.meta.set(PAUSED_KEY, this.pausedState);
    this.opts.log.info("queue.paused_changed", { all: this.paused.all, types: [...this.paused.types].join(",") || "none" });
  }

  /** Changes the number of slots at run time. Extra busy slots finish their job first. */
  setConcurrency(n: number): void {
    this.concurrencyNow = n;
    this.pool.resize(n);
    this.opts.log.info("queue.concurrency_changed", { concurrency: n });
    this.scheduleTick();
  }

  /** Recovers jobs a dead daemon left running, starts the pool and the first tick. */
  async start(): Promise<void> {
    const rescued = await this.opts.store.jobs.rescue(this.opts.clock.now());
    if (rescued.interrupted > 0) this.opts.log.warn("jobs.rescued", { count: rescued.interrupted, note: "interrupted by a daemon that stopped; they run again" });
    const saved = (await this.opts.store.meta.get(PAUSED_KEY)) as { all?: boolean; types?: string[] } | null;
    if (saved) this.paused = { all: Boolean(saved.all), types: new Set(saved.types ?? []) };
    const costs = (await this.opts.store.meta.get(COSTS_KEY)) as Record<string, unknown> | null;
    for (const [type, ms] of Object.entries(costs ?? {})) {
      if (this.opts.registry.types.has(type) && typeof ms === "number" && Number.isFinite(ms) && ms >= 0) this.runTimes.set(type, { ms, runs: 2 });
    }
    this.costsSavedAt = this.opts.clock.now();
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
    const results = await this.insert(await this.prepareAll(specs));
    return results.map((r) => ({ job: toWire(r.job), created: r.created }));
  }

  /** As enqueueBatch, answered with the ids (in input order) and how many jobs are new. */
  async enqueueBatchIds(specs: JobSpec[]): Promise<{ ids: number[]; created: number }> {
    const results = await this.insert(await this.prepareAll(specs));
    let created = 0;
    const ids = results.map((r) => {
      if (r.created) created++;
      return r.job.id;
    });
    return { ids, created };
  }

  private async prepareAll(specs: JobSpec[]): Promise<NewJob[]> {
    const prepared: NewJob[] = [];
    for (const [i, s] of specs.entries()) {
      try {
        prepared.push(await this.prepare(s));
      } catch (err) {
        if (err instanceof TeamworkError) throw new TeamworkError(err.code, `jobs[${i}]: ${err.message}`, err.hint);
        throw err;
      }
    }
    return prepared;
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
    this.emitStatus(job);
    this.scheduleTick();
  }

  get registry(): Registry {
    return this.opts.registry;
  }

  async get(id: number): Promise<Job> {
    const r = await this.opts.store.jobs.get(id);
    if (!r) throw notFound(`job ${id} not found`);
    return this.wire(r);
  }

  async list(filter: JobFilter): Promise<Job[]> {
    return (await this.opts.store.jobs.list(filter)).map((r) => this.wire(r));
  }

  async counts() {
    return this.opts.store.jobs.counts();
  }

  /** Why a job is (not) running, in one line and a code. */
  async why(id: number): Promise<JobWhy> {
    const r = await this.opts.store.jobs.get(id);
    if (!r) throw notFound(`job ${id} not found`);
    const now = this.opts.clock.now();
    const at = (ms: number) => new Date(ms).toISOString();
    const head = { jobId: id };
    switch (r.status) {
      case "running":
        return { ...head, code: "running", message: `running in slot ${r.slot} (attempt ${r.attempts}/${r.maxAttempts}), ${this.wire(r).progress}% done` };
      case "complete":
        return { ...head, code: "complete", message: `finished: complete at ${at(r.finishedAt!)}` };
      case "cancelled":
        return { ...head, code: "cancelled", message: `finished: cancelled by user at ${at(r.finishedAt!)}` };
      case "failed":
        return r.error?.startsWith("quarantined")
          ? { ...head, code: "quarantined", message: `finished: ${r.error}` }
          : { ...head, code: "failed", message: `finished: failed after ${r.attempts} attempt${r.attempts === 1 ? "" : "s"}: ${r.error}` };
      case "pending":
        break;
    }
    if (this.paused.all) return { ...head, code: "queue_paused", message: "queue paused: nothing starts until `teamwork queue resume`" };
    if (this.paused.types.has(r.type)) return { ...head, code: "type_paused", message: `queue paused for ${r.type}: resume with \`teamwork queue resume ${r.type}\`` };
    if (r.runAt > now) {
      const last = r.errors.at(-1);
      if (r.attempts > 0 && r.error && last) {
        return { ...head, code: "backing_off", until: at(r.runAt), message: `backing off until ${at(r.runAt)} after attempt ${last.attempt} failed: ${last.message}` };
      }
      return { ...head, code: "scheduled", until: at(r.runAt), message: `scheduled for ${at(r.runAt)}` };
    }
    const ahead = await this.opts.store.jobs.countAhead(r, now, [...this.paused.types]);
    if (this.hasEmptySlot() && this.accepting) return { ...head, code: "starting", ahead, message: "due, and a slot is free: starting now" };
    return { ...head, code: "waiting_for_slot", ahead, message: `waiting for a slot: ${ahead} ahead of it, ${this.running.size} of ${this.concurrencyNow} slots busy` };
  }

  async cancel(id: number): Promise<Job> {
    const run = this.running.get(id);
    if (run) {
      this.stopRunning(run, "cancel", "cancelled by user");
      const settled = await (run.settled ??= new Promise<JobRecord | null>((r) => (run.settle = r)));
      return settled ? toWire(settled) : this.get(id);
    }
    const r = await this.opts.store.jobs.cancelPending(id, this.opts.clock.now());
    if (r) {
      this.emitStatus(r);
      return toWire(r);
    }
    const existing = await this.opts.store.jobs.get(id);
    if (!existing) throw notFound(`job ${id} not found`);
    throw conflict(`job ${id} already ${existing.status === "complete" ? "complete" : existing.status}; only pending or running jobs can be cancelled`);
  }

  async retry(id: number): Promise<Job> {
    const r = await this.opts.store.jobs.retry(id, this.opts.clock.now());
    if (r) {
      this.emitStatus(r);
      this.scheduleTick();
      return toWire(r);
    }
    const existing = await this.opts.store.jobs.get(id);
    if (!existing) throw notFound(`job ${id} not found`);
    throw conflict(`job ${id} is ${existing.status}; only failed or cancelled jobs can be retried`);
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
    if (this.running.size > 0) {
      this.opts.log.info("jobs.draining", { running: this.running.size, graceMs });
      await Promise.race([this.idle(), new Promise<void>((r) => this.opts.clock.setTimer(r, graceMs))]);
    }
    for (const run of this.running.values()) {
      this.opts.log.warn("job.requeued", { job: run.record.id, reason: "shutdown grace elapsed" });
      run.cancel = "shutdown";
      this.pool.kill(run.slot, "daemon shutting down");
    }
    await this.idle();
    this.watchdog?.handle.cancel();
    this.watchdog = null;
    await this.flush();
    await this.pool.close();
    await this.saveCosts();
  }

  private async saveCosts(): Promise<void> {
    this.costsSavedAt = this.opts.clock.now();
    const measured = [...this.runTimes].filter(([, t]) => t.runs >= 2);
    await this.opts.store.meta.set(COSTS_KEY, Object.fromEntries(measured.map(([type, t]) => [type, Math.round(t.ms * 1000) / 1000])));
  }

  // ---- the tick ----

  /** Validates a job spec as enqueue would, without storing it. */
  async prepare(spec: JobSpec): Promise<NewJob> {
    const t = this.opts.registry.get(spec.type);
    const payload: Json = spec.payload ?? {};
    if (t.def.validate) {
      try {
        await t.def.validate(payload, this.lookup);
      } catch (err) {
        if (err instanceof TeamworkError) throw err;
        throw invalid(`invalid payload for job type "${spec.type}": ${(err as Error).message}`);
      }
    }
    if (spec.runAt !== undefined && spec.delayMs !== undefined) throw invalid("give runAt or delayMs, not both");
    const now = this.opts.clock.now();
    const runAt = spec.runAt !== undefined ? Date.parse(spec.runAt) : now + (spec.delayMs ?? 0);
    if (runAt > now + YEAR) throw invalid(`runAt ${new Date(runAt).toISOString()} is more than a year away`);
    if (runAt < now - YEAR) throw invalid(`runAt ${new Date(runAt).toISOString()} is more than a year in the past`);
    return {
      type: spec.type,
      payload,
      runAt,
      priority: spec.priority ?? 0,
      maxAttempts: spec.maxAttempts ?? t.def.maxAttempts ?? 3,
      uniqueKey: spec.uniqueKey ?? null,
    };
  }

  /** Stores the jobs with the next tick (one commit); resolves with them as stored, in order. */
  private insert(jobs: NewJob[]): Promise<{ job: JobRecord; created: boolean }[]> {
    if (!this.accepting) return Promise.reject(new TeamworkError("unavailable", "the daemon is shutting down; try again in a moment"));
    return new Promise((resolve, reject) => {
      this.inserts.push({ jobs, resolve, reject });
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
    while (this.inserts.length || this.finishes.length || this.progress.size || this.checkpoints.length || this.logs.length || this.begins.size);
  }

  private async tick(): Promise<void> {
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = true;
    const inserts = this.inserts.splice(0);
    const finishes = this.finishes.splice(0);
    const checkpoints = this.checkpoints.splice(0);
    const logs = this.logs.splice(0);
    const begins = [...this.begins.values()];
    this.begins.clear();
    const progress = [...this.progress].map(([id, p]) => ({ id, ...p }));
    this.progress.clear();
    this.progressTimer?.cancel();
    this.progressTimer = null;
    const claim = this.accepting && !this.paused.all ? this.claimPlan() : null;
    const batch: TickBatch = {
      now: this.opts.clock.now(),
      inserts: inserts.length === 1 ? inserts[0]!.jobs : inserts.flatMap((i) => i.jobs),
      finishes: finishes.map((f) => f.finish),
      progress,
      checkpoints: checkpoints.map(({ id, attempt, state }) => ({ id, attempt, state })),
      logs,
      begins,
      claim,
      excludeTypes: [...this.paused.types],
    };
    try {
      if (inserts.length || finishes.length || progress.length || checkpoints.length || logs.length || begins.length || (claim && claim.limit > 0)) {
        const result = await this.opts.store.jobs.tick(batch);
        for (const c of checkpoints) {
          const run = this.running.get(c.id);
          if (run && run.attempt === c.attempt) run.record.state = c.state;
          c.ack(null);
        }
        let at = 0;
        for (const group of inserts) {
          group.resolve(result.inserted.slice(at, at + group.jobs.length));
          at += group.jobs.length;
        }
        if (this.opts.bus.wants("job:status")) for (const r of result.inserted) if (r.created) this.emitStatus(r.job);
        const byId = new Map(result.finished.map((j) => [j.id, j]));
        for (const f of finishes) {
          const stored = byId.get(f.finish.id) ?? null;
          if (stored) {
            this.emitStatus(stored);
            if (stored.status !== "pending") this.runFinishHooks(stored);
          }
          f.run.settle?.(stored);
        }
        for (const job of result.claimed) this.dispatch(job);
        if (claim && claim.limit > 0) this.armDueTimer(result.nextDueAt);
      }
    } catch (err) {
      this.opts.log.error("store.write_failed", { error: err as Error, inserts: inserts.length, finishes: finishes.length });
      const failure = new TeamworkError("unavailable", `could not store the job: ${(err as Error).message}`);
      for (const i of inserts) i.reject(failure);
      for (const c of checkpoints) c.ack((err as Error).message);
      // Finishes and progress are kept and written on the next try.
      this.finishes.unshift(...finishes);
      for (const p of progress) if (!this.progress.has(p.id)) this.progress.set(p.id, p);
      this.logs.unshift(...logs);
      for (const g of begins) this.begins.set(g.id, g);
      this.opts.clock.setTimer(() => this.scheduleTick(), 1000);
    } finally {
      this.ticking = false;
    }
    if (this.again) {
      this.again = false;
      this.scheduleTick();
    }
    if (this.running.size === 0 && this.finishes.length === 0) for (const w of this.idleWaiters.splice(0)) w();
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

  private hasEmptySlot(): boolean {
    for (let s = 1; s <= this.concurrencyNow; s++) if (this.pool.jobsOf(s).length === 0) return true;
    return false;
  }

  /**
   * Where this tick's claims go: a job of a type known to be fast goes behind the jobs of the
   * busy slot with the least expected work, within the budget; any other job, or a fast one
   * with no such room, to an empty slot (a warm one first, then the lowest number).
   */
  private claimPlan(): TickBatch["claim"] {
    const now = this.opts.clock.now();
    /** initial: the expected work its worker still had when the tick began (was it keeping up?). */
    const slots: { n: number; count: number; backlog: number; initial: number; blocked: boolean; memoryMb: number | null }[] = [];
    /** Workers busy with fast jobs (the fastWorkers cap counts them). */
    let fastBusy = 0;
    /** Types not measured yet with a job on its way (the probe), and since when. */
    const probing = new Map<string, number>();
    let limit = 0;
    for (let n = 1; n <= this.concurrencyNow; n++) {
      const jobs = this.pool.jobsOf(n);
      let backlog = 0;
      let blocked = false;
      let memoryMb: number | null = null;
      for (const j of jobs) {
        const run = this.running.get(j.jobId);
        if (!run) continue;
        const cost = this.costs.get(run.record.type);
        if (cost === undefined) probing.set(run.record.type, Math.min(probing.get(run.record.type) ?? Infinity, run.begun ?? now));
        backlog += cost ?? AHEAD_BUDGET_MS;
        memoryMb = this.memoryOf(run.record.type);
        if (j !== jobs[0]) continue;
        const isFast = cost !== undefined && cost <= AHEAD_FAST_MS;
        // Nothing waits behind a slow job, or one that is taking longer than it should.
        if (!isFast || (run.begun !== null && now - run.begun > AHEAD_BUDGET_MS)) blocked = true;
        // Busy with fast work unless its running job has been at it for a long while: the time
        // a job began is only learnt when the daemon reads the worker's messages, which lag
        // when the daemon itself is the bottleneck, so "overdue by a few ms" would wake more
        // workers exactly when they cannot help.
        if (isFast && (run.begun === null || now - run.begun <= FAST_STUCK_MS)) fastBusy++;
      }
      slots.push({ n, count: jobs.length, backlog, initial: backlog, blocked, memoryMb });
      if (jobs.length === 0) limit += 1;
    }
    // Room behind busy slots, counted in jobs of the fastest measured type (a bound: the
    // claim reads no more due jobs than could possibly be placed). An empty slot takes one
    // (counted above); fast jobs then go behind it rather than into the next empty one.
    let fastest = Infinity;
    for (const t of this.runTimes.values()) if (t.runs >= 2 && t.ms <= AHEAD_FAST_MS) fastest = Math.min(fastest, t.ms);
    if (fastest < Infinity) {
      let roomBehindEmpty = 0;
      for (const s of slots) {
        if (s.blocked) continue;
        const byTime = Math.floor((AHEAD_BUDGET_MS - (s.count === 0 ? 0 : s.backlog)) / Math.max(fastest, 0.001));
        const room = Math.max(0, Math.min(AHEAD_MAX - Math.max(1, s.count), byTime));
        if (s.count > 0) limit += room;
        else roomBehindEmpty = Math.max(roomBehindEmpty, room);
      }
      // No fast job goes to an empty slot while fastWorkers workers are busy with fast jobs.
      if (fastBusy < this.fastWorkers) limit += roomBehindEmpty;
    }
    return {
      limit,
      assign: (type) => {
        const cost = this.costs.get(type);
        const memoryMb = this.memoryOf(type);
        // A type not measured yet: its first job is a probe. The next ones wait for it a few
        // ms; a quick probe makes them fast jobs (no thread woken for each), a slow one
        // releases them to the empty slots.
        const probeSince = cost === undefined ? probing.get(type) : undefined;
        if (probeSince !== undefined && now - probeSince < AHEAD_BUDGET_MS) {
          this.armProbeTimer(probeSince + AHEAD_BUDGET_MS - now);
          return null;
        }
        // A fast job waits behind others in a busy worker rather than waking another one:
        // a thread costs memory and, on a small machine, a core the daemon needs.
        if (cost !== undefined && cost <= AHEAD_FAST_MS) {
          let best: (typeof slots)[number] | null = null;
          let keepingUp = false;
          for (const s of slots) {
            if (s.count === 0 || s.blocked || s.memoryMb !== memoryMb) continue;
            if (s.count >= AHEAD_MAX || s.backlog + cost > AHEAD_BUDGET_MS) {
              // Full now, but it had drained most of what it held since the last tick: its
              // worker keeps up, and will take more at the next one.
              if (s.initial < AHEAD_BUDGET_MS / 2) keepingUp = true;
              continue;
            }
            if (!best || s.backlog < best.backlog) best = s;
          }
          if (best) {
            best.count += 1;
            best.backlog += cost;
            return { slot: best.n, ahead: true };
          }
          // The busy workers hold all they may and will want more at the next tick: no need
          // to wake another one.
          if (keepingUp) return null;
        }
        // Otherwise an empty slot, one whose worker is still warm first; for a fast job, only
        // while fewer workers than the cap hold fast jobs.
        if (cost !== undefined && cost <= AHEAD_FAST_MS && fastBusy >= this.fastWorkers) return null;
        const empty = slots.find((s) => s.count === 0 && this.pool.warm(s.n)) ?? slots.find((s) => s.count === 0);
        if (!empty) return null;
        empty.count = 1;
        empty.backlog = cost ?? AHEAD_BUDGET_MS;
        empty.blocked = cost === undefined || cost > AHEAD_FAST_MS;
        if (!empty.blocked) fastBusy++;
        empty.memoryMb = memoryMb;
        if (cost === undefined) probing.set(type, now);
        return { slot: empty.n, ahead: false };
      },
    };
  }

  /** How many workers fast jobs may keep busy at once. */
  private get fastWorkers(): number {
    return this.opts.config.fastWorkers || FAST_WORKERS_AUTO;
  }

  private probeTimer: TimerHandle | null = null;

  /** Claims again once a probe has had its few ms (if it has not finished by then). */
  private armProbeTimer(ms: number): void {
    if (this.probeTimer) return;
    this.probeTimer = this.opts.clock.setTimer(() => {
      this.probeTimer = null;
      this.scheduleTick();
    }, Math.max(1, Math.ceil(ms)));
  }

  private memoryOf(type: string): number {
    return this.opts.registry.types.get(type)?.def.memoryMb ?? this.opts.config.jobMemoryMb;
  }

  private dispatch(job: JobRecord): void {
    const slot = job.slot!;
    const run: Running = { record: job, slot, attempt: job.attempts, progress: 0, message: null, cancel: null, begun: null, deadline: null, timeoutMs: 0, timers: [], settled: null, settle: null };
    this.running.set(job.id, run);
    this.emitStatus(job);
    let type;
    try {
      type = this.opts.registry.get(job.type);
    } catch {
      // Enqueued by a build or config that had this type; it cannot run here.
      this.queueFinish(run, { id: job.id, attempt: run.attempt, outcome: "failed", error: `no handler for job type "${job.type}" (is its module still in jobModules?)`, permanent: true });
      return;
    }
    this.pool.run(slot, { jobId: job.id, attempt: run.attempt, type: job.type, payload: job.payload, state: job.state, memoryMb: type.def.memoryMb ?? this.opts.config.jobMemoryMb });
  }

  /** The job's turn in its worker has come: its timeout starts now. */
  private onBegin(id: number, attempt: number): void {
    const run = this.running.get(id);
    if (!run || run.attempt !== attempt) return;
    run.begun = this.opts.clock.now();
    if (run.record.startedAt === null) {
      // Claimed ahead: the store learns when its turn began with the next write.
      run.record.startedAt = run.begun;
      this.begins.set(id, { id, attempt, at: run.begun });
      this.progressTimer ??= this.opts.clock.setTimer(() => {
        this.progressTimer = null;
        this.scheduleTick();
      }, PROGRESS_FLUSH_MS);
    }
    run.timeoutMs = this.opts.registry.types.get(run.record.type)?.def.timeoutMs ?? this.opts.config.jobTimeout;
    run.deadline = run.begun + run.timeoutMs;
    this.armWatchdog(run.deadline);
  }

  /**
   * One timer for every running job's timeout, armed for the earliest deadline: a job that
   * takes microseconds costs no timer of its own.
   */
  private watchdog: { at: number; handle: TimerHandle } | null = null;

  private armWatchdog(at: number): void {
    if (this.watchdog && this.watchdog.at <= at) return;
    this.watchdog?.handle.cancel();
    const handle = this.opts.clock.setTimer(() => {
      this.watchdog = null;
      const now = this.opts.clock.now();
      let next = Infinity;
      for (const run of this.running.values()) {
        if (run.deadline === null || run.cancel) continue;
        if (run.deadline <= now) this.stopRunning(run, "timeout", `timed out after ${formatDuration(run.timeoutMs)}`);
        else next = Math.min(next, run.deadline);
      }
      if (next < Infinity) this.armWatchdog(next);
    }, Math.max(0, at - this.opts.clock.now()));
    this.watchdog = { at, handle };
  }

  /** Asks the handler to stop (AbortSignal); past the grace period its worker is terminated. */
  private stopRunning(run: Running, reason: CancelReason, message: string): void {
    if (run.cancel) return;
    run.cancel = reason;
    run.message = message;
    this.pool.cancel(run.slot, run.record.id, message);
    // Past the grace period the worker is stopped, if this job is still the one running in it.
    run.timers.push(this.opts.clock.setTimer(() => this.pool.kill(run.slot, message, run.record.id), this.opts.config.cancelGrace));
  }

  private onLog(id: number, attempt: number, message: string): void {
    const run = this.running.get(id);
    if (!run || run.attempt !== attempt) return;
    const at = this.opts.clock.now();
    this.logs.push({ id, attempt, at, message });
    if (this.opts.bus.wants("job:log")) this.opts.bus.emit("job:log", { id: ++this.logSeq, jobId: id, attempt, at: new Date(at).toISOString(), message });
    this.progressTimer ??= this.opts.clock.setTimer(() => {
      this.progressTimer = null;
      this.scheduleTick();
    }, PROGRESS_FLUSH_MS);
  }

  async logsOf(id: number, afterId = 0) {
    if (!(await this.opts.store.jobs.get(id))) throw notFound(`job ${id} not found`);
    return this.opts.store.jobs.logs(id, afterId);
  }

  private onProgress(id: number, attempt: number, progress: number, message: string | null): void {
    const run = this.running.get(id);
    if (!run || run.attempt !== attempt || run.cancel) return;
    run.progress = progress;
    run.message = message;
    this.progress.set(id, { attempt, progress, message });
    if (this.opts.bus.wants("job:progress")) {
      this.opts.bus.emit("job:progress", { jobId: id, progress, message, at: new Date(this.opts.clock.now()).toISOString() });
    }
    // Persist coalesced: at most one progress write per job per PROGRESS_FLUSH_MS.
    this.progressTimer ??= this.opts.clock.setTimer(() => {
      this.progressTimer = null;
      this.scheduleTick();
    }, PROGRESS_FLUSH_MS);
  }

  private onEnd(id: number, attempt: number, end: JobEnd): void {
    const run = this.running.get(id);
    if (!run || run.attempt !== attempt) return;
    const base = { id, attempt };
    if ("ms" in end && end.ms !== undefined) {
      const t = this.runTimes.get(run.record.type);
      // The second run replaces the first (cold) one; from then on, a moving average.
      if (!t || t.runs < 2) this.runTimes.set(run.record.type, { ms: end.ms, runs: (t?.runs ?? 0) + 1 });
      else this.runTimes.set(run.record.type, { ms: t.ms * 0.8 + end.ms * 0.2, runs: t.runs + 1 });
      if (this.opts.clock.now() - this.costsSavedAt > COSTS_SAVE_EVERY_MS) {
        this.saveCosts().catch((err: Error) => this.opts.log.warn("engine.costs_not_saved", { error: err.message }));
      }
    }
    let finish: Finish;
    if (run.cancel === "cancel") finish = { ...base, outcome: "cancelled" };
    else if (run.cancel === "shutdown" || (!end.ok && "notStarted" in end)) finish = { ...base, outcome: "requeue" };
    else if (end.ok && run.cancel === null) {
      finish = { ...base, outcome: "complete", result: end.result, running: { ...run.record, progressMessage: run.message } };
    }
    else {
      const failure = end.ok || "notStarted" in end ? null : end;
      let message = run.cancel === "timeout" ? run.message! : (failure?.message ?? "stopped");
      let permanent = failure !== null && failure.permanent && run.cancel === null;
      const crashed = failure !== null && failure.crashed && run.cancel === null;
      // A poison pill: an attempt that kills its worker again and again is stopped on purpose.
      const crashes = run.record.errors.filter((e) => e.crashed).length + (crashed ? 1 : 0);
      if (crashed && crashes >= this.opts.config.quarantineAfter) {
        message = `quarantined: killed its worker ${crashes} times (last: ${message}); \`teamwork jobs retry ${id}\` runs it again`;
        permanent = true;
      }
      if (permanent || attempt >= run.record.maxAttempts) finish = { ...base, outcome: "failed", error: message, permanent, crashed };
      else {
        const own = this.opts.registry.types.get(run.record.type)?.def.backoff;
        const delay = backoffMs(
          attempt,
          { baseMs: own?.baseMs ?? this.opts.config.backoff.base, capMs: own?.capMs ?? this.opts.config.backoff.cap, jitter: BACKOFF_JITTER },
          this.opts.rand,
        );
        finish = { ...base, outcome: "retry", error: message, runAt: this.opts.clock.now() + delay, crashed };
      }
      this.opts.log.warn("job.attempt_failed", { job: id, type: run.record.type, attempt, error: message, next: finish.outcome });
    }
    this.queueFinish(run, finish);
  }

  private queueFinish(run: Running, finish: Finish): void {
    run.deadline = null;
    for (const t of run.timers) t.cancel();
    // Its begin is not written yet: the finish writes it.
    const begun = this.begins.get(run.record.id);
    if (begun && begun.attempt === run.attempt) {
      this.begins.delete(run.record.id);
      if (finish.outcome !== "requeue") finish.startedAt = begun.at;
    }
    this.running.delete(run.record.id);
    this.pool.released(run.slot);
    // Unwritten progress stays queued: the tick writes it (while the attempt still runs)
    // before the finish, so the last message is kept.
    this.finishes.push({ finish, run });
    this.scheduleTick();
  }

  private runFinishHooks(job: JobRecord): void {
    for (const fn of this.finishHooks.get(job.type) ?? []) {
      Promise.resolve()
        .then(() => fn(job))
        .catch((err: Error) => this.opts.log.error("job.finish_hook_failed", { job: job.id, type: job.type, error: err.message }));
    }
  }

  private idle(): Promise<void> {
    if (this.running.size === 0 && this.finishes.length === 0 && !this.ticking) return Promise.resolve();
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

  private wire(r: JobRecord): Job {
    const run = r.status === "running" ? this.running.get(r.id) : undefined;
    return toWire(r, run && run.attempt === r.attempts ? run : undefined);
  }

  private emitStatus(r: JobRecord): void {
    if (this.opts.bus.wants("job:status")) this.opts.bus.emit("job:status", { job: toWire(r) });
  }
}
