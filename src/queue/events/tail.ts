// Following a shared store's job events (Store.events, PostgreSQL): what the daemon's event
// streams serve on such a store, where every daemon on the database and every process
// writing through the store is a source, instead of this daemon's bus.
//
// The tail watches while it runs (JobEventStore.watch: the store records events only while
// some process watches). It reads every event after its cursor, page by page, in the store's order (the same
// for every daemon: a cursor is a position any daemon can resume from). It reads while it
// runs: when the store hints that events were written (at once for this process's writes;
// by NOTIFY for others'), and at the latest every pollMs, so a lost hint costs a poll, never
// an event. A read that finds writes still in progress (not settled) is tried again soon,
// sooner the first times, because the events they hold back become readable when they end.

import type { Clock, TimerHandle } from "../../lib/clock.js";
import type { Logger } from "../../lib/logger.js";
import type { EventMap, EventName } from "../../protocol/events.js";
import type { JobHead } from "../../protocol/types.js";
import type { EventCursor, JobEventStore, JobHeadRecord, StoredJobEvent } from "../../store/types.js";

/** A stored event as a stream sends it: its name and data on the wire, and its position. */
export interface TailedEvent<K extends EventName = EventName> {
  cursor: EventCursor;
  name: K;
  jobId: number;
  data: EventMap[K];
}

const iso = (ms: number): string => new Date(ms).toISOString();
const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

/** A stored head on the wire (times as ISO strings). */
export function wireHead(j: JobHeadRecord): JobHead {
  return {
    id: j.id,
    type: j.type,
    status: j.status,
    progress: j.progress,
    progressMessage: j.progressMessage,
    attempts: j.attempts,
    maxAttempts: j.maxAttempts,
    runAt: iso(j.runAt),
    priority: j.priority,
    uniqueKey: j.uniqueKey,
    slot: j.slot,
    error: j.error,
    createdAt: iso(j.createdAt),
    startedAt: isoOrNull(j.startedAt),
    finishedAt: isoOrNull(j.finishedAt),
  };
}

/** The wire event of a stored one: the same names and data as the bus's (protocol/events.ts). */
export function toTailed(e: StoredJobEvent): TailedEvent {
  switch (e.kind) {
    case "status":
      return { cursor: e.cursor, name: "job:status", jobId: e.jobId, data: { job: wireHead(e.job) } };
    case "progress":
      return { cursor: e.cursor, name: "job:progress", jobId: e.jobId, data: { jobId: e.jobId, progress: e.progress, message: e.message, at: iso(e.at) } };
    case "log":
      return { cursor: e.cursor, name: "job:log", jobId: e.jobId, data: { id: e.line.id, jobId: e.jobId, attempt: e.line.attempt, at: iso(e.line.at), message: e.line.message } };
  }
}

export interface TailOptions {
  /** Read at least this often while running (ms): the wait when no hint comes. */
  pollMs: number;
  /** Two reads start at least this far apart (ms): hints in a burst make one read. */
  minGapMs: number;
  /** Events per read. */
  pageSize: number;
}

/** Where a tail's reads go: the events, in order; or word that some were not kept (the tail carries on from the head). */
export interface TailSink {
  deliver(events: TailedEvent[]): void;
  /** Events between what was delivered and what follows are missing (pruned, or not recorded): whoever follows must start over. */
  reset(reason: string): void;
}

export const TAIL_DEFAULTS: TailOptions = { pollMs: 250, minGapMs: 2, pageSize: 1000 };

/**
 * After a read that was not settled, the next is this soon, doubling up to UNSETTLED_MAX_MS
 * while a hint is outstanding (events were written and may not be readable yet), up to pollMs
 * otherwise. What holds a read back is any transaction in progress on the server (any
 * database, any process), most of them a few ms long: on a shared server, a first retry at
 * 10 ms made the median enqueue-to-watcher time 10 ms longer, and a backoff up to pollMs made
 * the 99th percentile 0.5 s.
 */
const UNSETTLED_RETRY_MS = 1;
const UNSETTLED_MAX_MS = 20;

export class StoreTail {
  private cursor: EventCursor | null = null;
  private running = false;
  private reading = false;
  private again = false;
  private timer: { at: number; handle: TimerHandle } | null = null;
  private lastReadAt = -Infinity;
  private unsettledWait = 0;
  /** A hint came and no read has come back settled since: what it announced may still be held back. */
  private hinted = false;
  private stopHints: (() => void) | null = null;
  private unwatch: (() => void) | null = null;
  /** Resolved at the end of the next read that starts after they were added. */
  private waiters: (() => void)[] = [];
  private failing = false;
  /** Bumped at every start and stop: a read of an earlier run delivers nothing. */
  private generation = 0;

  constructor(
    readonly events: JobEventStore,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly sink: TailSink,
    private readonly opts: TailOptions = TAIL_DEFAULTS,
  ) {}

  /** Where the tail is: every event up to it has been delivered. Null while stopped or starting. */
  get position(): EventCursor | null {
    return this.cursor;
  }

  /** Starts from the store's head (events written from now on); resolves with that position. */
  async start(): Promise<EventCursor> {
    const generation = ++this.generation;
    this.running = true;
    this.stopHints?.();
    this.stopHints = this.events.onWrite(() => this.poke());
    this.unwatch?.();
    this.unwatch = null;
    const unwatch = await this.events.watch();
    if (generation === this.generation) this.unwatch = unwatch;
    else unwatch();
    const head = await this.events.head();
    if (generation === this.generation) {
      this.cursor = head;
      this.schedule(this.opts.pollMs);
    }
    return head;
  }

  stop(): void {
    this.generation++;
    this.running = false;
    this.cursor = null;
    this.stopHints?.();
    this.stopHints = null;
    this.unwatch?.();
    this.unwatch = null;
    this.timer?.handle.cancel();
    this.timer = null;
    for (const w of this.waiters.splice(0)) w();
  }

  /** Read soon: events may have been written. */
  poke(): void {
    if (!this.running || this.cursor === null) return;
    this.unsettledWait = 0;
    this.hinted = true;
    if (this.reading) this.again = true;
    else this.schedule(this.lastReadAt + this.opts.minGapMs - this.clock.now());
  }

  /** Resolves once a read that began after this call has ended: what was readable then is delivered. */
  caughtUp(): Promise<void> {
    if (!this.running || this.cursor === null) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      if (this.reading) this.again = true;
      else this.schedule(0);
    });
  }

  private schedule(ms: number): void {
    const wait = Math.max(0, ms);
    const at = this.clock.now() + wait;
    if (this.timer && this.timer.at <= at) return;
    this.timer?.handle.cancel();
    this.timer = {
      at,
      handle: this.clock.setTimer(() => {
        this.timer = null;
        void this.read();
      }, wait),
    };
  }

  private async read(): Promise<void> {
    if (!this.running || this.cursor === null || this.reading) return;
    const generation = this.generation;
    this.reading = true;
    this.again = false;
    const waiters = this.waiters.splice(0);
    this.lastReadAt = this.clock.now();
    let settled = true;
    try {
      for (;;) {
        const page = await this.events.read(this.cursor, this.opts.pageSize);
        if (generation !== this.generation) return;
        if ("reset" in page) {
          // The tail fell behind what the store keeps (pruned under it), or events went
          // unrecorded under it (its watch lapsed while this process stalled, and nobody else
          // watched): it carries on from the head, and the streams behind it start over.
          this.log.warn("events.tail_reset", { reason: page.reset });
          const head = await this.events.head();
          if (generation !== this.generation) return;
          this.cursor = head;
          this.sink.reset(page.reset);
          continue;
        }
        if (page.events.length) this.sink.deliver(page.events.map(toTailed));
        this.cursor = page.next;
        settled = page.settled;
        if (settled && !this.again) this.hinted = false;
        if (page.events.length < this.opts.pageSize) break;
      }
      if (this.failing) this.log.info("events.tail_back", {});
      this.failing = false;
    } catch (err) {
      if (generation === this.generation) {
        if (!this.failing) this.log.warn("events.tail_failed", { error: err as Error });
        this.failing = true;
      }
    } finally {
      this.reading = false;
      for (const w of waiters) w();
      if (this.running) {
        if (generation !== this.generation || this.again || this.waiters.length) this.schedule(this.lastReadAt + this.opts.minGapMs - this.clock.now());
        else if (!settled && !this.failing) {
          this.unsettledWait = Math.min(this.hinted ? UNSETTLED_MAX_MS : this.opts.pollMs, this.unsettledWait ? this.unsettledWait * 2 : UNSETTLED_RETRY_MS);
          this.schedule(this.unsettledWait);
        } else this.schedule(this.opts.pollMs);
      }
    }
  }
}
