// WriteQueue.take hands out one shared frozen list for each kind of write that is empty.
import { describe, expect, it } from "vitest";
import { WriteQueue } from "../../src/queue/write-queue.js";

describe("WriteQueue.take", () => {
  it("takes what is queued, leaves the queue empty, and hands out empty kinds as lists nothing can add to", () => {
    const q = new WriteQueue<null>();
    q.logs.push({ id: 1, attempt: 1, at: 5, message: "hi" });
    const t = q.take();
    expect(t.logs).toEqual([{ id: 1, attempt: 1, at: 5, message: "hi" }]);
    expect(q.empty).toBe(true);
    expect(t.inserts).toEqual([]);
    expect(() => t.inserts.push({ jobs: [], resolve: () => {}, reject: () => {} })).toThrow(TypeError);
    // A second take shares nothing with the queue's own lists.
    q.logs.push({ id: 2, attempt: 1, at: 6, message: "again" });
    expect(q.take().logs).toHaveLength(1);
    expect(t.logs).toHaveLength(1);
  });

  it("takes each kind's list as it is and gives the queue a new one; the coalesced maps come out as lists and are emptied", () => {
    const q = new WriteQueue<null>();
    const group = { jobs: [], resolve: () => {}, reject: () => {} };
    q.inserts.push(group);
    q.progress.set(7, { attempt: 1, progress: 50, message: "half" });
    q.begins.set(7, { id: 7, attempt: 1, at: 3, slot: 0 });
    const t = q.take();
    expect(t.inserts).toEqual([group]);
    expect(t.progress).toEqual([{ id: 7, attempt: 1, progress: 50, message: "half" }]);
    expect(t.begins).toEqual([{ id: 7, attempt: 1, at: 3, slot: 0 }]);
    expect(q.empty).toBe(true);
    q.inserts.push(group);
    expect(t.inserts).toHaveLength(1);
    expect(q.take().inserts).toHaveLength(1);
  });

  it("after a failed write, what can be written later goes back, the empty kinds included", () => {
    const q = new WriteQueue<null>();
    q.finishes.push({ finish: { id: 1, attempt: 1, outcome: "requeue" }, attempt: null });
    const t = q.take();
    q.putBack(t, new Error("disk"), new Error("refused"));
    expect(q.finishes).toHaveLength(1);
    expect(q.logs).toEqual([]);
    q.logs.push({ id: 1, attempt: 1, at: 1, message: "still a list of its own" });
    expect(q.logs).toHaveLength(1);
  });
});
