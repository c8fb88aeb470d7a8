// Event streams (SSE) with bounded memory and resumption.
//
// One EventLog per daemon listens to the bus and serialises each event once, into a frame
// with an id ("<run>-<seq>"), kept in a ring of the newest events (a count and a byte bound:
// the resume window). Every open stream is a cursor into that ring: it writes frames while
// its socket takes them and stops when the socket's buffer is full, carrying on at 'drain'.
// So a reader that does not read costs the daemon a socket buffer, never a queue of its own;
// one that falls so far behind that its next event has left the ring is told ("dropped") and
// closed, and may come back with Last-Event-ID.
//
// A stream opened with Last-Event-ID (the header, or ?lastEventId= where a header cannot be
// set) gets every event after that id that it would have seen, with no gap and no duplicate,
// as long as the id is still in the window; otherwise it is told to start over ("reset",
// with the reason) and gets the current state, then the live events.
//
// Events are what a watcher needs: a job's head (id, type, status, progress, attempts,
// error, times), never its payload or result; a watcher that wants the result reads the job.
//
// On a shared store (Store.events: PostgreSQL) the source is the store, not the bus: every
// daemon on the database, and every process writing through the store, makes job events, and
// this daemon's bus hears only its own engine. The log then follows the store's events
// (queue/events/tail.ts) and each frame's id is the store's cursor, one order for every
// daemon: a stream that resumes with Last-Event-ID, on this daemon or any other, gets every
// event after it with no gap and no duplicate. An id inside the window is served from it;
// one before the window is served from the store (catching up, page by page, then from the
// window); only an id older than the store keeps (events are pruned with finished jobs), one
// from before a spell when no daemon watched (the store then records no events: Store.events
// watch), or one not of this database is answered reset. The window's bounds then only say
// how much is kept in memory. The store records events while this log records (its tail
// holds a watch): from the first stream until keepRecordingMs after the last.

import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Clock, TimerHandle } from "../lib/clock.js";
import type { EventBus } from "../queue/events/bus.js";
import type { EventMap, EventName } from "../protocol/events.js";
import type { Logger } from "../lib/logger.js";
import type { EventCursor, JobEventStore } from "../store/types.js";
import { StoreTail, toTailed, type TailedEvent, type TailOptions } from "../queue/events/tail.js";
import type { Job, JobHead } from "../protocol/types.js";
import { VERSION, VERSION_HEADER } from "../protocol/version.js";

export interface EventLogOptions {
  /** The resume window: at most this many events... */
  maxEvents: number;
  /** ...and this many bytes of frames. */
  maxBytes: number;
  /** The log records while no stream is open for this long, so a reconnecting watcher misses nothing. */
  keepRecordingMs: number;
  /**
   * Streams are woken at most once per this many ms: the first event after a quiet spell is
   * sent at once, those that follow it closely together with the next wake-up. Each wake-up
   * costs a write per open stream, so a busy daemon with 200 watchers paid 200 writes per
   * turn of its event loop (issue 18: a 2,000-job drain 7.8 times slower with them).
   */
  wakeEveryMs: number;
}

export const EVENT_LOG_DEFAULTS: EventLogOptions = { maxEvents: 10_000, maxBytes: 8 * 1024 * 1024, keepRecordingMs: 60_000, wakeEveryMs: 10 };

/**
 * A stream is written in chunks of consecutive frames, at most this many bytes (or one
 * frame): one write per wake-up rather than one per event, and a full socket holds at most
 * one chunk past its high-water mark.
 */
export const SSE_CHUNK_BYTES = 64 * 1024;

interface Frame {
  seq: number;
  /** The job the event is about: a job's stream shows only its own. */
  jobId: number;
  text: string;
  /** On a shared store: the event's cursor (its id). */
  pos?: EventCursor;
}

/** One event as a stream frame. */
const frameText = (id: string, name: EventName, data: unknown): string => `id: ${id}\nevent: ${name}\ndata: ${JSON.stringify(data)}\n\n`;

/** Events per read when a stream catches up from the store. */
export const CATCH_UP_PAGE = 500;

/** Where the log's events come from on a shared store. */
export interface StoredEvents {
  events: JobEventStore;
  log: Logger;
  tail?: TailOptions;
}

/** A page of stored events as frames: the text, and where the next page starts. */
export type StoredPage = { buf: Buffer | null; next: EventCursor } | { reset: string };

/** What an event stream is sent of a job: its head, not its payload, result or errors. */
export function jobHead(job: JobHead | Job): JobHead {
  return {
    id: job.id,
    type: job.type,
    status: job.status,
    progress: job.progress,
    progressMessage: job.progressMessage,
    attempts: job.attempts,
    maxAttempts: job.maxAttempts,
    runAt: job.runAt,
    priority: job.priority,
    uniqueKey: job.uniqueKey,
    slot: job.slot,
    error: job.error,
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
  };
}

const ID = /^([0-9a-f]{8})-(\d{1,15})$/;

export type Resume = { from: number } | { reset: string };
/** On a shared store, a resume may also start before the window: from the store, after `after`. */
export type StoredResume = Resume | { catchUp: EventCursor };

/**
 * Readers woken per turn of the event loop. Each writes up to a chunk (64 KiB) to its socket;
 * fifty of them in one task held the main thread for 60-70 ms under the hostile-clients run
 * (`node bench/hostile.mjs --profile`), and /health, the engine and the socket waited behind
 * them. In groups, the other work gets a turn between groups.
 */
export const WAKE_GROUP = 8;

/** Wakes `readers` WAKE_GROUP at a time, the next group on the next turn; one detached meanwhile is skipped. */
function wakeInGroups(readers: { wake(): void }[], stillAttached: (r: { wake(): void }) => boolean, from = 0): void {
  const end = Math.min(from + WAKE_GROUP, readers.length);
  for (let i = from; i < end; i++) if (stillAttached(readers[i]!)) readers[i]!.wake();
  if (end < readers.length) setImmediate(() => wakeInGroups(readers, stillAttached, end));
}

export class EventLog {
  /** This daemon run's part of every id: an id from another run cannot be resumed. */
  readonly run = randomBytes(4).toString("hex");
  private frames: Frame[] = [];
  /** Index in `frames` of the oldest frame still in the window. */
  private head = 0;
  private bytes = 0;
  /** The seq the next event gets; the window is [first, next). */
  next = 1;
  first = 1;
  private readonly readers = new Set<{ wake(): void }>();
  private unsubscribe: (() => void) | null = null;
  private idleTimer: TimerHandle | null = null;
  private wakeQueued = false;
  private lastWakeAt = -Infinity;
  /**
   * Chunks built since the last wake-up, by the seq they start at: the readers that are at the
   * same place (most of them, when they keep up) share one Buffer, encoded once.
   */
  private chunks = new Map<number, { to: number; buf: Buffer }>();
  /** On a shared store: what follows its events, the position before the window's first frame, and the start. */
  private readonly tail: StoreTail | null;
  private basePos: EventCursor | null = null;
  private starting: Promise<void> | null = null;

  constructor(
    private readonly bus: EventBus,
    private readonly clock: Clock,
    private readonly opts: EventLogOptions = EVENT_LOG_DEFAULTS,
    stored?: StoredEvents,
  ) {
    this.tail = stored ? new StoreTail(stored.events, clock, stored.log, { deliver: (es) => this.recordStored(es), reset: () => this.lostStored() }, stored.tail) : null;
  }

  /** True on a shared store: ids are the store's cursors, and resuming is asynchronous (resumeStored). */
  get stored(): boolean {
    return this.tail !== null;
  }

  /** Starts recording (if it was not) and wakes `reader` on every new event. */
  attach(reader: { wake(): void }): void {
    this.idleTimer?.cancel();
    this.idleTimer = null;
    this.readers.add(reader);
    if (!this.unsubscribe) this.subscribe();
  }

  detach(reader: { wake(): void }): void {
    this.readers.delete(reader);
    if (this.readers.size > 0 || !this.unsubscribe || this.idleTimer) return;
    this.idleTimer = this.clock.setTimer(() => {
      this.idleTimer = null;
      if (this.readers.size === 0) this.stopRecording();
    }, this.opts.keepRecordingMs);
  }

  private subscribe(): void {
    const tail = this.tail;
    if (tail) {
      this.unsubscribe = () => tail.stop();
      const starting = tail.start().then(
        (pos) => {
          if (this.starting === starting) this.basePos = pos;
        },
        (err: unknown) => {
          // Not recording after all: the next stream tries again.
          if (this.starting === starting) this.stopRecording();
          throw err;
        },
      );
      // A failed start is the stream's to report; nobody else waits for it.
      starting.catch(() => {});
      this.starting = starting;
      return;
    }
    const offs = [
      this.bus.on("job:status", (e) => this.record("job:status", e.job.id, { job: jobHead(e.job) })),
      this.bus.on("job:progress", (e) => this.record("job:progress", e.jobId, e)),
      this.bus.on("job:log", (e) => this.record("job:log", e.jobId, e)),
    ];
    this.unsubscribe = () => offs.forEach((off) => off());
  }

  /**
   * Stops listening (nobody reads: the engine then skips building events) and empties the
   * window. A seq is skipped, so an id from before can never look like "nothing missed".
   */
  private stopRecording(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.starting = null;
    this.basePos = null;
    this.frames = [];
    this.head = 0;
    this.bytes = 0;
    this.next += 1;
    this.first = this.next;
  }

  /**
   * On a shared store: the tail skipped events it could not read (not kept, or not recorded).
   * The window is emptied, as when recording stops, and a seq skipped: every open stream is
   * behind it and is dropped (it may resume with its Last-Event-ID, and is told to reset if
   * what it missed cannot be served). The window starts again at the tail's new position.
   */
  private lostStored(): void {
    this.frames = [];
    this.head = 0;
    this.bytes = 0;
    this.next += 1;
    this.first = this.next;
    this.basePos = this.tail!.position;
    this.chunks.clear();
    this.queueWake();
  }

  get recording(): boolean {
    return this.unsubscribe !== null;
  }

  /** Frames and bytes in the window now (for tests and /metrics). */
  get size(): { events: number; bytes: number } {
    return { events: this.frames.length - this.head, bytes: this.bytes };
  }

  /** Resolves once recording has started (a shared store's tail has its first position); rejects if it could not. */
  ready(): Promise<void> {
    return this.starting ?? Promise.resolve();
  }

  private recordStored(events: TailedEvent[]): void {
    for (const e of events) this.record(e.name, e.jobId, e.data, e.cursor);
  }

  private record<K extends EventName>(name: K, jobId: number, data: EventMap[K], pos?: EventCursor): void {
    const seq = this.next++;
    const text = frameText(pos ?? `${this.run}-${seq}`, name, data);
    this.frames.push(pos === undefined ? { seq, jobId, text } : { seq, jobId, text, pos });
    this.bytes += text.length; // UTF-16 units: bytes for the ASCII that JSON mostly is
    while (this.frames.length - this.head > this.opts.maxEvents || (this.bytes > this.opts.maxBytes && this.frames.length - this.head > 1)) {
      if (pos !== undefined) this.basePos = this.frames[this.head]!.pos ?? this.basePos;
      this.bytes -= this.frames[this.head]!.text.length;
      this.frames[this.head] = undefined as unknown as Frame;
      this.head++;
      this.first++;
    }
    if (this.head > 1024 && this.head * 2 > this.frames.length) {
      this.frames = this.frames.slice(this.head);
      this.head = 0;
    }
    this.queueWake();
  }

  /**
   * One wake-up of every reader for however many events came: right after the current task,
   * or, within wakeEveryMs of the last wake-up, when that time is up.
   */
  private queueWake(): void {
    if (this.wakeQueued) return;
    this.wakeQueued = true;
    const wake = () => {
      this.wakeQueued = false;
      this.lastWakeAt = this.clock.now();
      this.chunks.clear();
      wakeInGroups([...this.readers], (r) => this.readers.has(r));
    };
    const wait = this.lastWakeAt + this.opts.wakeEveryMs - this.clock.now();
    if (wait <= 0) queueMicrotask(wake);
    else this.clock.setTimer(wake, wait);
  }

  frame(seq: number): Frame | undefined {
    return seq >= this.first && seq < this.next ? this.frames[this.head + (seq - this.first)] : undefined;
  }

  /**
   * The frames from `from` on (it must be in the window) that a stream of `jobId` (or of every
   * job) shows, as one Buffer of at most SSE_CHUNK_BYTES (or one frame), and the seq after
   * the last frame looked at. `buf` is null when none of those frames is the stream's. An
   * unfiltered chunk is built once per wake-up and shared by every reader at `from`.
   */
  chunk(from: number, jobId?: number): { to: number; buf: Buffer | null } {
    if (jobId === undefined) {
      const cached = this.chunks.get(from);
      if (cached) return cached;
    }
    const texts: string[] = [];
    let bytes = 0;
    let seq = from;
    while (seq < this.next) {
      const f = this.frames[this.head + (seq - this.first)]!;
      if (jobId === undefined || f.jobId === jobId) {
        if (texts.length > 0 && bytes + f.text.length > SSE_CHUNK_BYTES) break;
        texts.push(f.text);
        bytes += f.text.length;
      }
      seq++;
    }
    const out = { to: seq, buf: texts.length > 0 ? Buffer.from(texts.join("")) : null };
    if (jobId === undefined) {
      // Readers far behind start from many places: the cache holds a wake-up's worth at most.
      if (this.chunks.size >= 256) this.chunks.clear();
      this.chunks.set(from, out as { to: number; buf: Buffer });
    }
    return out;
  }

  /**
   * The id of the event before `seq` ("<run>-<seq>", or on a shared store its cursor): what
   * a stream that was sent everything before `seq` has seen.
   */
  idBefore(seq: number): string {
    if (!this.tail) return `${this.run}-${seq - 1}`;
    // Every event up to the tail's position is in the window (or left it): none lies between.
    if (seq >= this.next) return this.tail.position ?? this.basePos ?? "";
    if (seq <= this.first) return this.basePos ?? "";
    return this.frames[this.head + (seq - 1 - this.first)]!.pos!;
  }

  /** On a shared store: the seq of the first frame in the window after `c` (next if none yet). */
  private seqAfter(c: EventCursor): number {
    const events = this.tail!.events;
    let lo = this.first;
    let hi = this.next;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (events.compare(this.frames[this.head + (mid - this.first)]!.pos!, c) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * On a shared store: where a stream that has seen every event up to `c` carries on in the
   * window, or null if `c` is before it (the stream reads on from the store). A position past
   * the tail (another daemon read further) waits for the tail to get there.
   */
  async placeStored(c: EventCursor): Promise<number | null> {
    const tail = this.tail!;
    const past = () => tail.position === null || tail.events.compare(c, tail.position) > 0;
    for (let i = 0; i < 5 && past(); i++) await tail.caughtUp();
    if (past() || this.basePos === null || tail.events.compare(c, this.basePos) < 0) return null;
    return this.seqAfter(c);
  }

  /** On a shared store: where a stream that last saw `lastEventId` carries on, or why it must start over. */
  async resumeStored(lastEventId: string): Promise<StoredResume> {
    const tail = this.tail!;
    const c = tail.events.parse(lastEventId);
    if (c === null) return { reset: `"${lastEventId.slice(0, 40)}" is not an event id of this database` };
    for (let i = 0; i < 5 && tail.position !== null && tail.events.compare(c, tail.position) > 0; i++) await tail.caughtUp();
    if (tail.position !== null && tail.events.compare(c, tail.position) > 0) return { reset: "that event id was never sent" };
    const from = await this.placeStored(c);
    return from === null ? { catchUp: c } : { from };
  }

  /** On a shared store: the events after `after` (of one job, or all) read from the store, as frames. */
  async readStored(after: EventCursor, jobId?: number): Promise<StoredPage> {
    const page = await this.tail!.events.read(after, CATCH_UP_PAGE, jobId);
    if ("reset" in page) return page;
    const text = page.events.map((e) => {
      const t = toTailed(e);
      return frameText(t.cursor, t.name, t.data);
    });
    return { buf: text.length ? Buffer.from(text.join("")) : null, next: page.next };
  }

  /** On a shared store: resolves once the tail has read what was readable at the call (a fresh stream's snapshot is then no older than the window). */
  caughtUp(): Promise<void> {
    return this.tail ? this.tail.caughtUp() : Promise.resolve();
  }

  /** Where a stream that last saw `lastEventId` carries on, or why it must start over. */
  resume(lastEventId: string): Resume {
    const m = ID.exec(lastEventId.trim());
    if (!m) return { reset: `"${lastEventId.slice(0, 40)}" is not an event id of this daemon` };
    if (m[1] !== this.run) return { reset: "the daemon restarted since that event" };
    const seq = Number(m[2]);
    if (seq >= this.next) return { reset: "that event id was never sent" };
    if (seq + 1 < this.first) return { reset: "that event is older than the resume window" };
    return { from: seq + 1 };
  }
}

/** What the server hands a stream handler: the request, and where to register for shutdown. */
export interface SseRequest {
  req: IncomingMessage;
  res: ServerResponse;
  /** From the Last-Event-ID header, or the lastEventId query field. */
  lastEventId: string | null;
  /** The server closes every open stream at shutdown through the function given here. */
  track(close: () => void): () => void;
}

export interface StreamOptions {
  /** Only this job's events (a job's stream); otherwise every event. */
  jobId?: number;
  /**
   * The current state, sent first on a fresh stream or after a reset. May throw (not found):
   * that is answered as an error, before the stream starts.
   */
  snapshot?: () => Promise<{ event: EventName; data: unknown }[]>;
  /** Told to clients as `retry:` (ms before reconnecting). */
  retryMs?: number;
  heartbeatMs?: number;
  /** How long a dropped reader's last words may take to leave before its socket is destroyed. */
  dropGraceMs?: number;
}

/**
 * Serves one event stream until the client goes away or the daemon closes it. Memory per
 * stream: the socket's buffer (a frame past its high-water mark at most), whatever the reader.
 */
export async function serveStream(log: EventLog, r: SseRequest, opts: StreamOptions = {}): Promise<void> {
  const { res } = r;
  const retryMs = opts.retryMs ?? 1000;
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  let done = false;
  let waitingDrain = false;
  let heartbeat: NodeJS.Timeout | null = null;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  // Woken only once the head is written: an event that comes while the snapshot is read
  // (awaits below) would otherwise be written first, and the head after it would throw
  // (ERR_HTTP_HEADERS_SENT: the stream ended before its first frame). Its turn comes after.
  let started = false;
  const reader = { wake: () => started && pump() };
  /** Ends the stream; without `end`, leaves the response to the caller (an error reply). */
  const finish = (end = true) => {
    if (done) return;
    done = true;
    if (heartbeat) clearInterval(heartbeat);
    log.detach(reader);
    untrack();
    resolveClosed();
    if (end && !res.writableEnded) res.end();
  };
  const untrack = r.track(() => finish());
  r.req.on("close", () => finish());
  res.on("error", () => finish());

  // Recording first, then the cursor, then the state: an event in between is sent after the
  // snapshot (a newer state), never lost.
  log.attach(reader);
  let cursor = log.next;
  let reset: string | null = null;
  let resumed = false;
  /** On a shared store: a stream that resumes before the window reads from the store first (its first page read here). */
  let stored: { page: Exclude<StoredPage, { reset: string }> } | null = null;
  /** On a shared store: the id of the last event this stream was sent (for `dropped`). */
  let sentId = "";
  let snapshot: { event: EventName; data: unknown }[] = [];
  try {
    if (log.stored) {
      await log.ready();
      if (r.lastEventId !== null) {
        const at = await log.resumeStored(r.lastEventId);
        if ("from" in at) {
          cursor = at.from;
          resumed = true;
          sentId = r.lastEventId.trim();
        } else if ("catchUp" in at) {
          const page = await log.readStored(at.catchUp, opts.jobId);
          if ("reset" in page) reset = page.reset;
          else {
            stored = { page };
            resumed = true;
            sentId = at.catchUp;
          }
        } else reset = at.reset;
      }
      if (!resumed) {
        // The snapshot is read once the tail has what was written before: it is then no
        // older than the events that follow it.
        await log.caughtUp();
        cursor = log.next;
      }
    } else if (r.lastEventId !== null) {
      const at = log.resume(r.lastEventId);
      if ("from" in at) {
        cursor = at.from;
        resumed = true;
      } else reset = at.reset;
    }
    if (!resumed && opts.snapshot) snapshot = await opts.snapshot();
  } catch (err) {
    finish(false);
    throw err;
  }
  if (done) return;

  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive", [VERSION_HEADER]: VERSION });
  res.write(`retry: ${retryMs}\n: teamwork event stream\n\n`);
  if (reset !== null) res.write(`event: reset\ndata: ${JSON.stringify({ reason: reset })}\n\n`);
  if (!resumed) sentId = log.idBefore(cursor);
  for (const s of snapshot) res.write(`id: ${sentId}\nevent: ${s.event}\ndata: ${JSON.stringify(s.data)}\n\n`);
  started = true;
  heartbeat = setInterval(() => {
    if (!waitingDrain && !done) res.write(": keep-alive\n\n");
  }, heartbeatMs);
  heartbeat.unref();

  function pump(): void {
    if (done || stored) return;
    // A reader whose socket stays full is checked at every wake-up: once its next event has
    // left the window, it is dropped (a stalled reader does not hold a stream for ever).
    if (cursor < log.first) return drop();
    if (waitingDrain) return;
    while (cursor < log.next) {
      if (cursor < log.first) return drop();
      const { to, buf } = log.chunk(cursor, opts.jobId);
      cursor = to;
      if (log.stored) sentId = log.idBefore(to);
      if (buf !== null && !res.write(buf)) {
        waitingDrain = true;
        res.once("drain", () => {
          waitingDrain = false;
          pump();
        });
        return;
      }
    }
  }

  function drop(): void {
    const lastEventId = log.stored ? sentId : log.idBefore(cursor);
    res.write(`event: dropped\ndata: ${JSON.stringify({ reason: `this stream fell more than ${log.size.events} events behind; reconnect with Last-Event-ID to resume or start over`, lastEventId })}\n\n`);
    // Its last words may never leave a reader that does not read: its socket goes after a while.
    const sock = res.socket;
    finish();
    setTimeout(() => sock?.destroy(), opts.dropGraceMs ?? 30_000).unref();
  }

  /**
   * On a shared store, a stream resumed before the window: pages from the store, at the
   * reader's pace, until it reaches the window; then from the window, as every stream.
   */
  async function catchUp(first: { buf: Buffer | null; next: EventCursor }): Promise<void> {
    let page = first;
    for (;;) {
      if (done) return;
      if (page.buf !== null && !res.write(page.buf)) {
        waitingDrain = true;
        await Promise.race([new Promise((resolve) => res.once("drain", resolve)), closed]);
        waitingDrain = false;
        if (done) return;
      }
      sentId = page.next;
      const from = await log.placeStored(page.next);
      if (from !== null) {
        cursor = from;
        stored = null;
        return pump();
      }
      const nextPage = await log.readStored(page.next, opts.jobId);
      if ("reset" in nextPage) return drop();
      page = nextPage;
    }
  }

  if (stored) {
    catchUp(stored.page).catch(() => {
      // The store failed while catching up: the stream ends, and the client resumes from what it has.
      if (!done) finish();
    });
  } else pump();
  await closed;
}
