// Worker slots. Each slot owns one worker thread that runs one job at a time, so a handler
// that burns CPU, blocks, or hangs never touches the daemon's event loop. Every way a worker
// can die (throw at top level, process.exit, out of memory, terminate) ends the job that was
// in it with a message, and the slot gets a fresh worker.
//
// A slot may be handed several jobs at once (the engine does so for job types that take
// well under a millisecond): they wait in the worker, in order, and the next one starts
// without a round trip to the daemon. The first job of a slot's list is the one running.
// When a worker dies, only that job takes the blame; the ones behind it end as not started.
//
// Threads by default: a message to a thread costs microseconds, a spawn is cheap enough to
// replace a dead worker at once, and V8's per-thread heap limit turns a heap hog into
// ERR_WORKER_OUT_OF_MEMORY for that thread only. What a thread cannot contain is native
// memory or a crash in native code: a job type with isolation "process" gets a child
// process under a memory cap instead (process.ts), at the cost of a process start and a
// slower message (docs/jobs.md gives both).

import type { Readable } from "node:stream";
import { LineDecoder } from "../../lib/line-decoder.js";
import type { Isolation } from "../../jobs/define.js";
import type { Json } from "../../protocol/types.js";
import type { FromWorker, StartMessage, ToWorker, WorkerData } from "../worker/protocol.js";
import { kindKey, type WorkerHandle, type WorkerKind } from "./handle.js";
import { startProcess } from "./process.js";
import { startThread } from "./thread.js";

/** A line a worker prints is kept up to this many bytes (cut between two characters). */
export const MAX_WORKER_LINE_BYTES = 8192;

export type JobEnd =
  | { ok: true; result: Json; ms: number }
  | { ok: false; message: string; permanent: boolean; crashed: boolean; ms?: number }
  /** Handed to a worker that died (or was stopped) before this job's turn came: it never ran. */
  | { ok: false; notStarted: true; message: string };

export interface PoolEvents {
  progress(jobId: number, attempt: number, progress: number, message: string | null): void;
  log(jobId: number, attempt: number, message: string): void;
  checkpoint(jobId: number, attempt: number, state: Json, ack: (error: string | null) => void): void;
  /** A job's turn has come: it is the one its worker runs now. Called once per job, before its end. */
  begin(jobId: number, attempt: number): void;
  /** Called exactly once for every job handed to run(). */
  end(jobId: number, attempt: number, end: JobEnd): void;
  /** A line a worker printed; `job` is the job running in it then, if any. */
  workerLog?(slot: number, line: string, job: { jobId: number; attempt: number } | null): void;
}

export interface StartJob {
  jobId: number;
  attempt: number;
  type: string;
  payload: Json;
  memoryMb: number;
  isolation: Isolation;
  state: Json | null;
}

/** How long a new worker may take to load its job modules before its first job's turn counts as begun. */
const READY_WAIT_MS = 10_000;

class Slot {
  worker: WorkerHandle | null = null;
  kind: WorkerKind = { isolation: "thread", memoryMb: 0 };
  /** Jobs handed to this slot's worker, in order; the first is running (once the worker is ready). */
  readonly jobs: { jobId: number; attempt: number }[] = [];
  /** The worker has loaded its job modules: the first job's turn begins then, not at the spawn. */
  private ready = false;
  /** Jobs handed over in this turn of the event loop: sent as one message. */
  private outbox: StartMessage[] = [];
  private killMessage: string | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  /** Called once this slot's current worker has loaded its job modules. */
  private readyWaiters: (() => void)[] = [];

  constructor(
    readonly n: number,
    private readonly pool: WorkerPool,
  ) {}

  ensureWorker(kind: WorkerKind): WorkerHandle {
    if (this.worker && kindKey(this.kind) === kindKey(kind)) return this.worker;
    if (this.worker) this.retire();
    const start = kind.isolation === "process" ? startProcess : startThread;
    const worker = start(this.pool.workerData, kind.memoryMb);
    this.worker = worker;
    this.ready = false;
    // A worker whose modules never finish loading: its first job's clock (the timeout) starts
    // anyway after a while, so the job cannot wait forever.
    setTimeout(() => {
      if (this.worker !== worker || this.ready) return;
      this.ready = true;
      const head = this.jobs[0];
      if (head) this.pool.events.begin(head.jobId, head.attempt);
    }, READY_WAIT_MS).unref();
    this.kind = kind;
    this.killMessage = null;
    worker.onMessage((m) => this.onMessage(worker, m));
    worker.onExit((why) => this.onExit(worker, why));
    this.forwardLines(worker.stdout);
    this.forwardLines(worker.stderr);
    return worker;
  }

  /**
   * Each stream its own decoder: a line written in several pieces (or with a character cut
   * between two writes) is one whole line, and stdout and stderr never mix inside one.
   */
  private forwardLines(stream: Readable): void {
    const lines = new LineDecoder(MAX_WORKER_LINE_BYTES, "truncate");
    const forward = (text: string[]) => {
      for (const line of text) if (line.trim()) this.pool.events.workerLog?.(this.n, line, this.jobs[0] ?? null);
    };
    stream.on("data", (chunk: Buffer) => forward(lines.push(chunk)));
    stream.on("end", () => forward(lines.end()));
  }

  get head(): { jobId: number; attempt: number } | null {
    return this.jobs[0] ?? null;
  }

  /** This slot's worker is the one the pool keeps warm. */
  private keptWarm(): boolean {
    const warm = this.pool.keepWarm;
    return this.n === 1 && warm !== null && this.worker !== null && kindKey(this.kind) === kindKey(warm);
  }

  /** Resolves once this slot has a worker that has loaded its job modules. */
  whenReady(): Promise<void> {
    if (this.worker && this.ready) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** Slot 1 of a pool that keeps a worker warm: start it now if it has none. */
  warmUp(): void {
    const warm = this.pool.keepWarm;
    if (this.n !== 1 || warm === null || this.pool.closing || this.worker !== null || this.n > this.pool.size) return;
    this.ensureWorker(warm);
  }

  /** Whether a job of this kind can wait behind the jobs this slot has (same worker). */
  accepts(kind: WorkerKind): boolean {
    return this.jobs.length === 0 || kindKey(this.kind) === kindKey(kind);
  }

  start(job: StartJob): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const kind: WorkerKind = { isolation: job.isolation, memoryMb: job.memoryMb };
    if (!this.accepts(kind)) throw new Error(`slot ${this.n}: a job for a ${kindKey(kind)} worker cannot wait behind jobs of a ${kindKey(this.kind)} one`);
    const worker = this.ensureWorker(kind);
    this.jobs.push({ jobId: job.jobId, attempt: job.attempt });
    if (this.outbox.length === 0) queueMicrotask(() => this.flush(worker));
    this.outbox.push({ jobId: job.jobId, attempt: job.attempt, type: job.type, payload: job.payload, state: job.state });
    if (this.jobs.length === 1 && this.ready) this.pool.events.begin(job.jobId, job.attempt);
  }

  private flush(worker: WorkerHandle): void {
    if (this.outbox.length === 0) return;
    const jobs = this.outbox;
    this.outbox = [];
    if (this.worker === worker) worker.post({ t: "start", jobs } satisfies ToWorker);
  }

  cancel(jobId: number, reason: string): void {
    if (!this.worker || !this.jobs.some((j) => j.jobId === jobId)) return;
    this.flush(this.worker); // the job must reach the worker before its cancel
    this.worker.post({ t: "cancel", jobId, reason } satisfies ToWorker);
  }

  /**
   * Stops the worker; the running job ends as a crash with this message, the ones
   * behind it as not started. With onlyJob, only if that job is the one running.
   */
  kill(message: string, onlyJob?: number): void {
    const worker = this.worker;
    if (!worker) return;
    if (onlyJob !== undefined && this.jobs[0]?.jobId !== onlyJob) return;
    this.killMessage = message;
    void worker.stop();
  }

  private retire(): void {
    const w = this.worker;
    this.worker = null;
    if (w) void w.stop();
  }

  /** Ends the running job (the first of the list); the next one's turn begins. */
  private finish(end: JobEnd): void {
    const job = this.jobs.shift();
    if (!job) return;
    const next = this.jobs[0];
    if (!next) {
      // An idle worker costs memory (a V8 isolate each, a whole node for a process): retire it
      // after a quiet spell; the next job starts a fresh one (tens of milliseconds).
      this.idleTimer = setTimeout(() => {
        this.idleTimer = null;
        if (this.jobs.length !== 0 || this.keptWarm()) return;
        this.retire();
        this.warmUp();
      }, this.pool.idleMs);
      this.idleTimer.unref();
    }
    this.pool.events.end(job.jobId, job.attempt, end);
    if (next && this.jobs[0] === next) this.pool.events.begin(next.jobId, next.attempt);
  }

  private onMessage(worker: WorkerHandle, m: FromWorker): void {
    if (worker !== this.worker) return;
    const job = this.jobs[0];
    switch (m.t) {
      case "ready": {
        this.ready = true;
        for (const w of this.readyWaiters.splice(0)) w();
        const head = this.jobs[0];
        if (head) this.pool.events.begin(head.jobId, head.attempt);
        return;
      }
      case "broken": {
        const waiting = this.jobs.splice(1);
        this.retire();
        this.finish({ ok: false, message: `worker could not start: ${m.message}`, permanent: true, crashed: false });
        for (const j of waiting) this.pool.events.end(j.jobId, j.attempt, { ok: false, notStarted: true, message: "its worker could not start" });
        return;
      }
      case "progress":
        if (job && job.jobId === m.jobId && job.attempt === m.attempt) this.pool.events.progress(m.jobId, m.attempt, m.progress, m.message);
        return;
      case "log":
        if (job && job.jobId === m.jobId && job.attempt === m.attempt) this.pool.events.log(m.jobId, m.attempt, m.message);
        return;
      case "checkpoint":
        if (job && job.jobId === m.jobId && job.attempt === m.attempt) {
          this.pool.events.checkpoint(m.jobId, m.attempt, m.state, (error) => {
            if (this.worker === worker) worker.post({ t: "checkpointed", jobId: m.jobId, seq: m.seq, error } satisfies ToWorker);
          });
        }
        return;
      case "done":
        if (job && job.jobId === m.jobId && job.attempt === m.attempt) this.finish({ ok: true, result: m.result, ms: m.ms });
        return;
      case "failed":
        if (job && job.jobId === m.jobId && job.attempt === m.attempt) {
          this.finish({ ok: false, message: worker.explain(m.message), permanent: m.permanent, crashed: false, ms: m.ms });
        }
        return;
    }
  }

  private onExit(worker: WorkerHandle, why: string): void {
    if (worker !== this.worker) return;
    this.worker = null;
    this.outbox = [];
    const message = this.killMessage ?? why;
    const waiting = this.jobs.splice(1);
    this.finish({ ok: false, message, permanent: false, crashed: true });
    for (const j of waiting) this.pool.events.end(j.jobId, j.attempt, { ok: false, notStarted: true, message: `its worker stopped before its turn (${message})` });
    // Replace the worker at once so the next job does not pay for the start.
    if (!this.pool.closing && this.n <= this.pool.size) this.ensureWorker(this.kind);
  }

  close(): Promise<void> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const w = this.worker;
    this.worker = null;
    return w ? w.stop() : Promise.resolve();
  }
}

export class WorkerPool {
  closing = false;
  private readonly slots: Slot[] = [];

  constructor(
    readonly workerData: WorkerData,
    readonly events: PoolEvents,
    /** How long a worker may sit idle before it is retired. */
    readonly idleMs = 30_000,
    /**
     * A worker of this kind is kept in slot 1 at all times (started with the pool, never
     * retired for idleness, replaced when it dies): a job that comes after a quiet spell
     * starts without waiting for a thread to start and load the job modules.
     */
    readonly keepWarm: WorkerKind | null = null,
  ) {}

  private wanted = 0;

  /**
   * Grows or shrinks to n slots. A slot past n that still runs a job keeps its worker until
   * that job ends (the engine gives it no new job), then it is closed.
   */
  resize(n: number): void {
    this.wanted = n;
    while (this.slots.length < n) {
      const slot = new Slot(this.slots.length + 1, this);
      this.slots.push(slot);
    }
    // Workers start with their slot's first job (and retire when idle), not here; except
    // the warm one.
    for (const slot of this.slots) if (slot.n > n && slot.jobs.length === 0) void slot.close();
    if (n >= 1) this.slots[0]!.warmUp();
  }

  /** Called by the engine when a slot's job has ended. */
  released(n: number): void {
    const slot = this.slots[n - 1];
    if (slot && n > this.wanted && slot.jobs.length === 0) void slot.close();
  }

  get size(): number {
    return this.wanted;
  }

  private slot(n: number): Slot {
    const s = this.slots[n - 1];
    if (!s) throw new Error(`no slot ${n}`);
    return s;
  }

  run(slot: number, job: StartJob): void {
    this.slot(slot).start(job);
  }

  /** The jobs handed to a slot and not ended yet, the running one first. */
  jobsOf(slot: number): readonly { jobId: number; attempt: number }[] {
    return this.slots[slot - 1]?.jobs ?? [];
  }

  /** Whether the slot has a live worker (busy, or idle and not retired yet). */
  warm(slot: number): boolean {
    return this.slots[slot - 1]?.worker != null;
  }

  /**
   * Resolves true once the warm worker has loaded the job modules (at once for a pool that
   * keeps none), false if that takes longer than maxWaitMs.
   */
  async warmReady(maxWaitMs: number): Promise<boolean> {
    const slot = this.slots[0];
    if (!this.keepWarm || !slot) return true;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), maxWaitMs)));
    try {
      return await Promise.race([slot.whenReady().then(() => true), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The kind of the slot's live worker ("thread:512", "process:1024"), or null without one. */
  workerKind(slot: number): string | null {
    const s = this.slots[slot - 1];
    return s?.worker ? kindKey(s.kind) : null;
  }

  accepts(slot: number, kind: WorkerKind): boolean {
    return this.slots[slot - 1]?.accepts(kind) ?? true;
  }

  cancel(slot: number, jobId: number, reason: string): void {
    this.slot(slot).cancel(jobId, reason);
  }

  /** Stops the slot's worker; with onlyJob, only while that job is the one running. */
  kill(slot: number, message: string, onlyJob?: number): void {
    this.slot(slot).kill(message, onlyJob);
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((s) => s.close()));
  }
}
