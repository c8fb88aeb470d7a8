import { describe, expect, it } from "vitest";
import { EventLog, WAKE_GROUP } from "../../src/daemon/sse.js";
import { EventBus } from "../../src/queue/events/bus.js";
import { ManualClock } from "../../src/lib/clock.js";

const nextTurn = () => new Promise((r) => setImmediate(r));

describe("EventLog wake-ups in groups", () => {
  it(`wakes ${WAKE_GROUP} readers at once and the rest on the following turns; a reader gone meanwhile is skipped`, async () => {
    const bus = new EventBus();
    const log = new EventLog(bus, new ManualClock(0));
    const woken: number[] = [];
    const readers = Array.from({ length: 2 * WAKE_GROUP + 4 }, (_, i) => ({ wake: () => woken.push(i) }));
    for (const r of readers) log.attach(r);

    bus.emit("job:progress", { jobId: 1, progress: 5, message: null, at: new Date(0).toISOString() });
    expect(woken).toEqual([]); // not inside the emit: after the current task
    await Promise.resolve();
    expect(woken).toEqual([...Array(WAKE_GROUP).keys()]);

    log.detach(readers[WAKE_GROUP + 1]!); // leaves before its group's turn
    await nextTurn();
    expect(woken).toEqual([...Array(2 * WAKE_GROUP).keys()].filter((i) => i !== WAKE_GROUP + 1));
    await nextTurn();
    expect(woken).toEqual([...Array(2 * WAKE_GROUP + 4).keys()].filter((i) => i !== WAKE_GROUP + 1));
    await nextTurn();
    expect(woken).toHaveLength(2 * WAKE_GROUP + 3); // once each, nothing more
  });
});
