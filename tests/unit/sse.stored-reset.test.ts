// An EventLog on a shared store whose tail meets a reset (events under it were pruned, or not
// recorded: its watch lapsed while the process stalled and nobody else watched). The streams
// in the window must not carry on as if nothing was missed: the window is emptied, so each is
// behind it and is dropped (to resume with its Last-Event-ID, and be told reset by the store),
// and the window starts again at the tail's new position. The store here is a fake: pages are
// handed out by the test.

import { describe, expect, it } from "vitest";
import { EVENT_LOG_DEFAULTS, EventLog } from "../../src/daemon/sse.js";
import { EventBus } from "../../src/queue/events/bus.js";
import { systemClock } from "../../src/lib/clock.js";
import { createLogger } from "../../src/lib/logger.js";
import type { EventCursor, EventPage, JobEventStore, StoredJobEvent } from "../../src/store/types.js";

const c = (n: number) => `abcdef01.${n}.0` as EventCursor;
const num = (x: EventCursor) => Number(x.split(".")[1]);

function fakeStore() {
  let head = 10;
  const pages: EventPage[] = [];
  let watches = 0;
  const store: JobEventStore = {
    async watch() {
      watches++;
      return () => void watches--;
    },
    async head() {
      return c(head);
    },
    async read(after) {
      return pages.shift() ?? { events: [], next: after, settled: true };
    },
    parse: (t) => (/^abcdef01\.\d+\.0$/.test(t) ? (t as EventCursor) : null),
    compare: (a, b) => num(a) - num(b),
    onWrite: () => () => {},
  };
  return { store, pages, setHead: (n: number) => (head = n), watches: () => watches };
}

const progress = (n: number): StoredJobEvent => ({ cursor: c(n), jobId: 1, at: 0, kind: "progress", attempt: 1, progress: n, message: null });

describe("EventLog on a shared store: the tail meets a reset", () => {
  it("empties the window (its streams are behind it and are dropped), and starts again at the tail's new position", async () => {
    const fake = fakeStore();
    const log = new EventLog(new EventBus(), systemClock, { ...EVENT_LOG_DEFAULTS, keepRecordingMs: 0 }, { events: fake.store, log: createLogger(() => {}) });
    let woken = 0;
    const reader = { wake: () => woken++ };
    log.attach(reader);
    await log.ready();
    expect(fake.watches()).toBe(1);

    fake.pages.push({ events: [progress(11), progress(12)], next: c(12), settled: true });
    await log.caughtUp();
    expect(log.size.events).toBe(2);
    const readerAt = log.first; // a stream that has been sent nothing yet
    expect(log.idBefore(log.next)).toBe(c(12));

    fake.pages.push({ reset: "the events after that id were not all recorded" });
    fake.setHead(40);
    await log.caughtUp();
    await Promise.resolve();
    expect(log.size.events).toBe(0);
    // Every stream in the window is now behind it: pump() drops it.
    expect(readerAt).toBeLessThan(log.first);
    expect(log.first).toBe(log.next);
    expect(log.idBefore(log.next)).toBe(c(40));
    expect(woken).toBeGreaterThan(0);

    // It carries on from there.
    fake.pages.push({ events: [progress(41)], next: c(41), settled: true });
    await log.caughtUp();
    expect(log.size.events).toBe(1);
    expect(log.idBefore(log.next)).toBe(c(41));

    // The last stream gone, recording stops, and the watch is given up.
    log.detach(reader);
    await new Promise((r) => setTimeout(r, 0));
    expect(log.recording).toBe(false);
    expect(fake.watches()).toBe(0);
  });
});
