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
// Why threads, not processes: a message to a thread costs microseconds, a spawn is cheap
// enough to replace a dead worker at once, and V8's per-thread heap limit turns a memory
// hog into ERR_WORKER_OUT_OF_MEMORY for that thread only. What threads cannot contain is a
// crash inside native code (a segfault in an addon), which would take the daemon down.

import { Worker } from "node:worker_threads";
import type { Json } from "../../protocol/types.js";
import type { FromWorker, StartMessage, ToWorker, WorkerData } from "../worker/protocol.js";

// From both src/queue/pool and dist/queue/pool this is the compiled worker.
const WORKER_URL = new URL("../../../dist/queue/worker/main.js", import.meta.url);

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
  state: Json | null;
}

/** How long a new worker may take to load its job modules before its first job's turn counts as begun. */
const READY_WAIT_MS = 10_000;

class Slot {
  worker: Worker | null = null;
  memoryMb = 0;
  /** Jobs handed to this slot's worker, in order; the first is running (once the worker is ready). */
  readonly jobs: { jobId: number; attempt: number }[] = [];
  /** The worker has loaded its job modules: the first job's turn begins then, not at the spawn. */
  private ready = false;
  /** Jobs handed over in this turn of the event loop: sent as one message. */
  private outbox: StartMessage[] = [];
  private exitError: Error | null = null;
  private killMessage: string | null = null;
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly n: number,
    private readonly pool: WorkerPool,
  ) {}

  ensureWorker(memoryMb: number): Worker {
    if (this.worker && this.memoryMb === memoryMb) return this.worker;
    if (this.worker) this.retire();
    const worker = new Worker(WORKER_URL, {
      workerData: this.pool.workerData,
      resourceLimits: { maxOldGenerationSizeMb: memoryMb },
      stdout: true,
      stderr: true,
    });
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
    this.memoryMb = memoryMb;
    this.exitError = null;
    this.killMessage = null;
    worker.on("message", (m: FromWorker) => this.onMessage(worker, m));
    worker.on("error", (err) => {
      if (this.worker === worker) this.exitError = err;
    });
    worker.on("exit", (code) => this.onExit(worker, code));
    const forward = (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) if (line.trim()) this.pool.events.workerLog?.(this.n, line.slice(0, 2000), this.jobs[0] ?? null);
    };
    worker.stdout.on("data", forward);
    worker.stderr.on("data", forward);
    worker.unref();
    return worker;
  }

  get head(): { jobId: number; attempt: number } | null {
    return this.jobs[0] ?? null;
  }

  /** Whether a job needing memoryMb can wait behind the jobs this slot has (same worker limits). */
  accepts(memoryMb: number): boolean {
    return this.jobs.length === 0 || this.memoryMb === memoryMb;
  }

  start(job: StartJob): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (this.jobs.length > 0 && this.memoryMb !== job.memoryMb) throw new Error(`slot ${this.n}: a job needing ${job.memoryMb} MiB cannot wait behind jobs of ${this.memoryMb} MiB`);
    const worker = this.ensureWorker(job.memoryMb);
    this.jobs.push({ jobId: job.jobId, attempt: job.attempt });
    if (this.outbox.length === 0) queueMicrotask(() => this.flush(worker));
    this.outbox.push({ jobId: job.jobId, attempt: job.attempt, type: job.type, payload: job.payload, state: job.state });
    if (this.jobs.length === 1 && this.ready) this.pool.events.begin(job.jobId, job.attempt);
  }

  private flush(worker: Worker): void {
    if (this.outbox.length === 0) return;
    const jobs = this.outbox;
    this.outbox = [];
    if (this.worker === worker) worker.postMessage({ t: "start", jobs } satisfies ToWorker);
  }

  cancel(jobId: number, reason: string): void {
    if (!this.worker || !this.jobs.some((j) => j.jobId === jobId)) return;
    this.flush(this.worker); // the job must reach the worker before its cancel
    this.worker.postMessage({ t: "cancel", jobId, reason } satisfies ToWorker);
  }

  /**
   * Terminates the worker; the running job ends as a crash with this message, the ones
   * behind it as not started. With onlyJob, only if that job is the one running.
   */
  kill(message: string, onlyJob?: number): void {
    const worker = this.worker;
    if (!worker) return;
    if (onlyJob !== undefined && this.jobs[0]?.jobId !== onlyJob) return;
    this.killMessage = message;
    void worker.terminate();
  }

  private retire(): void {
    const w = this.worker;
    this.worker = null;
    if (w) void w.terminate();
  }

  /** Ends the running job (the first of the list); the next one's turn begins. */
  private finish(end: JobEnd): void {
    const job = this.jobs.shift();
    if (!job) return;
    const next = this.jobs[0];
    if (!next) {
      // An idle worker costs memory (a V8 isolate each): retire it after a quiet spell; the
      // next job starts a fresh one (tens of milliseconds).
      this.idleTimer = setTimeout(() => {
        this.idleTimer = null;
        if (this.jobs.length === 0) this.retire();
      }, this.pool.idleMs);
      this.idleTimer.unref();
    }
    this.pool.events.end(job.jobId, job.attempt, end);
    if (next && this.jobs[0] === next) this.pool.events.begin(next.jobId, next.attempt);
  }

  private onMessage(worker: Worker, m: FromWorker): void {
    if (worker !== this.worker) return;
    const job = this.jobs[0];
    switch (m.t) {
      case "ready": {
        this.ready = true;
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
            if (this.worker === worker) worker.postMessage({ t: "checkpointed", jobId: m.jobId, seq: m.seq, error } satisfies ToWorker);
          });
        }
        return;
      case "done":
        if (job && job.jobId === m.jobId && job.attempt === m.attempt) this.finish({ ok: true, result: m.result, ms: m.ms });
        return;
      case "failed":
        if (job && job.jobId === m.jobId && job.attempt === m.attempt) {
          this.finish({ ok: false, message: m.message, permanent: m.permanent, crashed: false, ms: m.ms });
        }
        return;
    }
  }

  private onExit(worker: Worker, code: number): void {
    if (worker !== this.worker) return;
    this.worker = null;
    this.outbox = [];
    const err = this.exitError as (Error & { code?: string }) | null;
    let message: string;
    if (this.killMessage) message = this.killMessage;
    else if (err?.code === "ERR_WORKER_OUT_OF_MEMORY") message = `out of memory (heap limit ${this.memoryMb} MiB)`;
    else if (err) message = `worker crashed: ${err.message}`;
    else message = `worker exited with code ${code}`;
    const waiting = this.jobs.splice(1);
    this.finish({ ok: false, message, permanent: false, crashed: true });
    for (const j of waiting) this.pool.events.end(j.jobId, j.attempt, { ok: false, notStarted: true, message: `its worker stopped before its turn (${message})` });
    // Replace the worker at once so the next job does not pay for the start.
    if (!this.pool.closing && this.n <= this.pool.size) this.ensureWorker(this.memoryMb);
  }

  close(): Promise<number> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const w = this.worker;
    this.worker = null;
    return w ? w.terminate() : Promise.resolve(0);
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
    // Workers start with their slot's first job (and retire when idle), not here.
    for (const slot of this.slots) if (slot.n > n && slot.jobs.length === 0) void slot.close();
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

  accepts(slot: number, memoryMb: number): boolean {
    return this.slots[slot - 1]?.accepts(memoryMb) ?? true;
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
