// Conformance: meta, the small key/value state that is not a job (cleanup totals, the
// digest cursor). Values are JSON, kept as given; the last write wins, from any handle.

import { expect, it } from "vitest";
import { forEachStore } from "./suite.js";
import type { Json } from "../../src/protocol/types.js";

forEachStore("meta", (fx) => {
  it("an unknown key: null", async () => {
    expect(await fx().store.meta.get("nope")).toBeNull();
  });

  it("keeps any JSON value as given", async () => {
    const { store } = fx();
    const values: Json[] = [{ lastEventId: 42, sentAt: "2026-05-04T09:00:00.000Z" }, [1, "two", { three: [3] }], "text with \"quotes\" and\nlines", 0, -1.5, true, false, { nested: { deep: { null: null } } }];
    for (const [i, v] of values.entries()) await store.meta.set(`k${i}`, v);
    for (const [i, v] of values.entries()) expect(await store.meta.get(`k${i}`)).toEqual(v);
  });

  it("a second set replaces the value; keys are separate", async () => {
    const { store } = fx();
    await store.meta.set("a", { n: 1 });
    await store.meta.set("b", { n: 2 });
    await store.meta.set("a", { n: 3 });
    expect([await store.meta.get("a"), await store.meta.get("b")]).toEqual([{ n: 3 }, { n: 2 }]);
  });

  it("two handles: each sees the other's writes, the last one wins", async () => {
    const { store, openAnother } = fx();
    const other = await openAnother();
    await store.meta.set("cursor", { lastEventId: 1 });
    expect(await other.meta.get("cursor")).toEqual({ lastEventId: 1 });
    await other.meta.set("cursor", { lastEventId: 2 });
    expect(await store.meta.get("cursor")).toEqual({ lastEventId: 2 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? store : other).meta.set(`k${i}`, i)));
    for (let i = 0; i < 20; i++) expect(await store.meta.get(`k${i}`)).toBe(i);
  });
});
