import type { Clock } from "../lib/clock.js";
import type { Logger } from "../lib/logger.js";
import type { Config } from "../config/config.js";
import type { Paths } from "../config/paths.js";
import type { SseRequest } from "./sse.js";
import type { TaskBoard } from "../board/board.js";
import type { Engine } from "../queue/engine.js";
import type { Store } from "../store/types.js";
import type { EventBus } from "../queue/events/bus.js";
import type { Scheduler } from "../scheduler/scheduler.js";
import type { Housekeeping } from "../scheduler/housekeeping.js";
import type { Uploads } from "../board/uploads.js";
import type { DescriptorReport } from "./descriptors.js";
import type { RouteInput, RouteName, RouteOutput } from "../protocol/routes.js";

/** What route handlers may use. */
export interface AppContext {
  paths: Paths;
  config: Config;
  clock: Clock;
  log: Logger;
  board: TaskBoard;
  engine: Engine;
  store: Store;
  bus: EventBus;
  scheduler: Scheduler;
  housekeeping: Housekeeping;
  uploads: Uploads;
  startedAt: number;
  /** The limit of open files at start, and whether it was raised (./descriptors.ts). */
  openFiles: DescriptorReport;
  /** Which store the daemon serves and where it is, fit to show. */
  storeWhere: { kind: "sqlite" | "postgres"; where: string };
  /** Begins a graceful shutdown after the current response is sent. */
  requestStop(reason: string): void;
}

/**
 * A reply's body serialised already, as UTF-8 JSON: a long list is serialised and encoded
 * slice by slice as it is read (routes/slices.ts), so that no one task of the main thread
 * serialises or encodes all of it. The server writes the bytes as they are; `T` is the value
 * they are the JSON of.
 */
export class JsonText<T> {
  declare private readonly of?: T;
  /** Bytes in all. */
  readonly byteLength: number;

  /** The JSON's bytes in pieces, written one after the other (never joined: a copy of the whole). */
  constructor(readonly chunks: readonly Buffer[]) {
    this.byteLength = chunks.reduce((n, c) => n + c.length, 0);
  }

  /** Writes the pieces to `out` in one go (corked: one writev). */
  writeTo(out: { cork(): void; uncork(): void; write(chunk: Buffer): boolean }): void {
    out.cork();
    for (const c of this.chunks) out.write(c);
    out.uncork();
  }
}

export interface Reply<T> {
  status: number;
  body: T | JsonText<T>;
  /** Set for a body that is not JSON (the body is then a string). */
  contentType?: string;
}

export const ok = <T>(body: T): Reply<T> => ({ status: 200, body });


/** Routes served on the HTTP response itself: event streams (SSE), and files' bytes (BYTE_ROUTES). */
export type StreamRoute = "jobsStream" | "eventsStream" | "jobsArtifact" | "uploadsFile";
export type JsonRoute = Exclude<RouteName, StreamRoute>;

export type Handlers = { [K in JsonRoute]: (input: RouteInput<K>) => Promise<Reply<RouteOutput[K]>> };

export type StreamHandlers = { [K in StreamRoute]: (input: RouteInput<K>, sse: SseRequest) => Promise<void> };
