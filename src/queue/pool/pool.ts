// Worker slots. Each slot owns one worker thread that runs one job at a time, so a handler
// that burns CPU, blocks, or hangs never touches the daemon's event loop. Every way a worker
// can die (throw at top level, process.exit, out of memory, terminate) ends the job that was
// in it with a message, and the slot gets a fresh worker.
//
// Why threads, not processes: a message to a thread costs microseconds, a spawn is cheap
// enough to replace a dead worker at once, and V8's per-thread heap limit turns a memory
// hog into ERR_WORKER_OUT_OF_MEMORY for that thread only. What threads cannot contain is a
// crash inside native code (a segfault in an addon), which would take the daemon down.

import { Worker } from "node:worker_threads";
import type { Json } from "../../protocol/types.js";
import type { FromWorker, ToWorker, WorkerData } from "../worker/protocol.js";

// From both src/queue/pool and dist/queue/pool this is the compiled worker.
const WORKER_URL = new URL("../../../dist/queue/worker/main.js", import.meta.url);

export type JobEnd =
  | { ok: true; result: Json }
  | { ok: false; message: string; permanent: boolean; crashed: boolean };

export interface PoolEvents {
  progress(jobId: number, attempt: number, progress: number, message: string | null): void;
  log(jobId: number, attempt: number, message: string): void;
  checkpoint(jobId: number, attempt: number, state: Json, ack: (error: string | null) => void): void;
  /** Called exactly once for every job handed to run(). */
  end(jobId: number, attempt: number, end: JobEnd): void;
  workerLog?(slot: number, line: string): void;
}

export interface StartJob {
  jobId: number;
  attempt: number;
  type: string;
  payload: Json;
  memoryMb: number;
  state: Json | null;
}

class Slot {
  worker: Worker | null = null;
  memoryMb = 0;
  job: { jobId: number; attempt: number } | null = null;
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
    this.memoryMb = memoryMb;
    this.exitError = null;
    this.killMessage = null;
    worker.on("message", (m: FromWorker) => this.onMessage(worker, m));
    worker.on("error", (err) => {
      if (this.worker === worker) this.exitError = err;
    });
    worker.on("exit", (code) => this.onExit(worker, code));
    const forward = (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) if (line.trim()) this.pool.events.workerLog?.(this.n, line.slice(0, 2000));
    };
    worker.stdout.on("data", forward);
    worker.stderr.on("data", forward);
    worker.unref();
    return worker;
  }

  start(job: StartJob): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const worker = this.ensureWorker(job.memoryMb);
    this.job = { jobId: job.jobId, attempt: job.attempt };
    const msg: ToWorker = { t: "start", jobId: job.jobId, attempt: job.attempt, type: job.type, payload: job.payload, state: job.state };
    worker.postMessage(msg);
  }

  cancel(reason: string): void {
    if (this.job && this.worker) this.worker.postMessage({ t: "cancel", jobId: this.job.jobId, reason } satisfies ToWorker);
  }

  /** Terminates the worker; the job in it (if any) ends as a crash with this message. */
  kill(message: string): void {
    const worker = this.worker;
    if (!worker) return;
    this.killMessage = message;
    void worker.terminate();
  }

  private retire(): void {
    const w = this.worker;
    this.worker = null;
    if (w) void w.terminate();
  }

  private finish(end: JobEnd): void {
    const job = this.job;
    if (!job) return;
    this.job = null;
    // An idle worker costs memory (a V8 isolate each): retire it after a quiet spell; the
    // next job starts a fresh one (tens of milliseconds).
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (!this.job) this.retire();
    }, this.pool.idleMs);
    this.idleTimer.unref();
    this.pool.events.end(job.jobId, job.attempt, end);
  }

  private onMessage(worker: Worker, m: FromWorker): void {
    if (worker !== this.worker) return;
    const job = this.job;
    switch (m.t) {
      case "ready":
        return;
      case "broken":
        this.finish({ ok: false, message: `worker could not start: ${m.message}`, permanent: true, crashed: false });
        this.retire();
        return;
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
        if (job && job.jobId === m.jobId && job.attempt === m.attempt) this.finish({ ok: true, result: m.result });
        return;
      case "failed":
        if (job && job.jobId === m.jobId && job.attempt === m.attempt) {
          this.finish({ ok: false, message: m.message, permanent: m.permanent, crashed: false });
        }
        return;
    }
  }

  private onExit(worker: Worker, code: number): void {
    if (worker !== this.worker) return;
    this.worker = null;
    const err = this.exitError as (Error & { code?: string }) | null;
    let message: string;
    if (this.killMessage) message = this.killMessage;
    else if (err?.code === "ERR_WORKER_OUT_OF_MEMORY") message = `out of memory (heap limit ${this.memoryMb} MiB)`;
    else if (err) message = `worker crashed: ${err.message}`;
    else message = `worker exited with code ${code}`;
    this.finish({ ok: false, message, permanent: false, crashed: true });
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
    for (const slot of this.slots) if (slot.n > n && !slot.job) void slot.close();
  }

  /** Called by the engine when a slot's job has ended. */
  released(n: number): void {
    const slot = this.slots[n - 1];
    if (slot && n > this.wanted && !slot.job) void slot.close();
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

  cancel(slot: number, reason: string): void {
    this.slot(slot).cancel(reason);
  }

  kill(slot: number, message: string): void {
    this.slot(slot).kill(message);
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((s) => s.close()));
  }
}
