// Heavy calls take turns (src/daemon/gate.ts): at most `permits` at once, the others in the
// order they came, each let in through `later` (a later turn of the event loop).

import { describe, expect, it } from "vitest";
import { Gate } from "../../src/daemon/gate.js";

/** A `later` that holds what it is given until the test lets it go. */
function manualLater() {
  const held: (() => void)[] = [];
  return {
    later: (fn: () => void) => void held.push(fn),
    release: () => held.splice(0).forEach((fn) => fn()),
    get held() {
      return held.length;
    },
  };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

describe("Gate", () => {
  it("runs one task at a time, in order, each next one only through later()", async () => {
    const m = manualLater();
    const gate = new Gate(1, m.later);
    const log: string[] = [];
    const ends: (() => void)[] = [];
    const task = (name: string) =>
      gate.run(
        () =>
          new Promise<string>((resolve) => {
            log.push(`start ${name}`);
            ends.push(() => {
              log.push(`end ${name}`);
              resolve(name);
            });
          }),
      );
    const a = task("a");
    const b = task("b");
    const c = task("c");
    await tick();
    expect(log).toEqual(["start a"]);
    expect(gate.queued).toBe(2);
    ends.shift()!();
    expect(await a).toBe("a");
    await tick();
    expect(log).toEqual(["start a", "end a"]); // b waits for later()
    expect(m.held).toBe(1);
    m.release();
    await tick();
    expect(log).toEqual(["start a", "end a", "start b"]);
    ends.shift()!();
    await b;
    m.release();
    await tick();
    ends.shift()!();
    expect(await c).toBe("c");
    expect(log).toEqual(["start a", "end a", "start b", "end b", "start c", "end c"]);
    expect(gate.active).toBe(0);
    expect(gate.queued).toBe(0);
  });

  it("lets a failed task's turn pass to the next, and the failure reach its caller", async () => {
    const gate = new Gate(1);
    const failed = gate.run(async () => {
      throw new Error("boom");
    });
    const next = gate.run(async () => "next");
    await expect(failed).rejects.toThrow("boom");
    expect(await next).toBe("next");
    expect(gate.active).toBe(0);
  });

  it("runs up to `permits` at once, and no newcomer overtakes one that waits", async () => {
    const gate = new Gate(2);
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const work = (i: number) =>
      gate.run(async () => {
        running++;
        most = Math.max(most, running);
        order.push(i);
        await tick();
        running--;
      });
    await Promise.all(Array.from({ length: 10 }, (_, i) => work(i)));
    expect(most).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});
