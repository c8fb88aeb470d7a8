// Conformance: one firing per slot under a real race. Several processes (each its own store
// handle, as several daemons would be) fire the same slots of one schedule at the same time
// (tests/fixtures/store/fire-slots.mjs, on the built dist/): every slot is handled by exactly
// one of them, and the store records each slot once.

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { forEachStore, T0 } from "./suite.js";

const FIRE_SLOTS = fileURLToPath(new URL("../fixtures/store/fire-slots.mjs", import.meta.url));

interface Fired {
  slot: number;
  outcome: "enqueued" | "skipped" | "already-fired";
  job: number | null;
  busy: number;
}

forEachStore("one firing per slot, across processes", (fx) => {
  it("4 processes fire the same 150 slots at once: each slot is handled exactly once", async () => {
    const { store, location } = fx();
    await store.schedules.upsert({ name: "race", cron: "* * * * * *", timezone: null, jobType: "noop", payload: {} }, T0);
    const slots = Array.from({ length: 150 }, (_, i) => T0 + (i + 1) * 1000);
    const procs = Array.from({ length: 4 }, () => {
      const child = spawn(process.execPath, [FIRE_SLOTS, JSON.stringify(location), "race", String(slots[0]), String(slots.length), "1000"], { stdio: ["pipe", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const ready = new Promise<void>((resolve, reject) => {
        child.stdout.on("data", () => out.startsWith("ready\n") && resolve());
        child.once("exit", (code) => reject(new Error(`fire-slots exited ${code} before ready: ${err}`)));
      });
      const done = new Promise<Fired[]>((resolve, reject) =>
        child.once("exit", (code) => {
          if (code !== 0) return reject(new Error(`fire-slots exited ${code}: ${err}`));
          resolve(out.slice("ready\n".length).trim().split("\n").map((l) => JSON.parse(l) as Fired));
        }),
      );
      return { child, ready, done };
    });
    // Every process has opened the store before any fires: they start together.
    await Promise.all(procs.map((p) => p.ready));
    for (const p of procs) p.child.stdin.end("go\n");
    const results = await Promise.all(procs.map((p) => p.done));

    for (const r of results) expect(r.map((f) => f.slot)).toEqual(slots);
    for (const slot of slots) {
      const handled = results.map((r) => r.find((f) => f.slot === slot)!).filter((f) => f.outcome !== "already-fired");
      expect(handled, `slot ${new Date(slot).toISOString()}`).toHaveLength(1);
    }
    const runs = await store.schedules.runs("race", 1000);
    expect(runs.map((r) => r.slot).sort((a, b) => a - b)).toEqual(slots);
    const enqueued = results.flat().filter((f) => f.outcome === "enqueued");
    expect((await store.jobs.list({ type: "noop", limit: 1000 })).map((j) => j.id).sort((a, b) => a - b)).toEqual(enqueued.map((f) => f.job).sort((a, b) => a! - b!));
    expect((await store.schedules.get("race"))!.lastSlot).toBe(slots.at(-1));
    const winners = results.map((r) => r.filter((f) => f.outcome !== "already-fired").length);
    const busy = results.flat().reduce((n, f) => n + f.busy, 0);
    console.log(`slots won per process: ${winners.join(", ")}; busy retries: ${busy}`);
  });
});
