// An engine in this process on a real SQLite file and real worker threads, driven by a
// ManualClock: for exact timing tests (backoff, timeouts, delays) without waiting.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../../src/lib/clock.js";
import { createLogger } from "../../src/lib/logger.js";
import { DEFAULTS } from "../../src/config/config.js";
import { openSqliteStore } from "../../src/store/sqlite/index.js";
import { Engine, type EngineConfig } from "../../src/queue/engine.js";
import { EventBus } from "../../src/queue/events/bus.js";
import { loadRegistry } from "../../src/queue/registry.js";
import type { Store } from "../../src/store/types.js";
import { FIXTURE_JOBS } from "./daemon.js";
import { taskEventPolicy } from "../../src/board/task-events.js";

export interface TestEngine {
  engine: Engine;
  clock: ManualClock;
  store: Store;
  bus: EventBus;
  logs: string[];
  /** Lets queued ticks and worker messages run (real time passes; the clock does not). */
  settle(ms?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startEngine(
  config: Partial<EngineConfig> = {},
  opts: { rand?: () => number; start?: number; /** Runs on the store before the engine starts (e.g. state a previous run left). */ prepare?: (store: Store) => Promise<void> } = {},
): Promise<TestEngine> {
  const dir = mkdtempSync(join(tmpdir(), "tw-engine-"));
  const clock = new ManualClock(opts.start ?? Date.parse("2026-06-01T12:00:00Z"));
  const store = await openSqliteStore(join(dir, "teamwork.db"), { durability: "process", taskEvents: taskEventPolicy });
  await opts.prepare?.(store);
  const registry = await loadRegistry([FIXTURE_JOBS]);
  const bus = new EventBus();
  const logs: string[] = [];
  const engine = new Engine({
    store,
    registry,
    bus,
    clock,
    log: createLogger((l) => logs.push(l), () => clock.now()),
    config: { ...DEFAULTS, ...config },
    workerData: {
      store: { kind: "sqlite", path: join(dir, "teamwork.db") },
      paths: { home: dir, reports: dir, uploads: dir, uploadsTmp: dir, thumbs: dir, outbox: dir },
      settings: { smtpUrl: null, mailFrom: "t@example.com", cleanupMaxAgeMs: 86_400_000, digestRecipients: [], digestSendEmpty: false, fileMaxBytes: 32 * 1024 * 1024 },
    },
    rand: opts.rand ?? (() => 0),
  });
  await engine.start();
  return {
    engine,
    clock,
    store,
    bus,
    logs,
    settle: (ms = 30) => new Promise((r) => setTimeout(r, ms)),
    async close() {
      await engine.stop(0);
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
