// The daemon's own periodic work: the built-in `cleanup` and `digest` schedules, the
// bookkeeping around their jobs (cleanup totals, the digest cursor), kept in `meta`, and
// pruning the record of fired slots (scheduler/policy.ts says how long it is kept).

import type { Clock, TimerHandle } from "../lib/clock.js";
import type { Logger } from "../lib/logger.js";
import type { Config } from "../config/config.js";
import type { Paths } from "../config/paths.js";
import type { CleanupStats, DigestPreview, Json } from "../protocol/types.js";
import type { Store } from "../store/types.js";
import type { Engine } from "../queue/engine.js";
import { buildDigest, DIGEST_CURSOR_KEY, type DigestCursor } from "../board/digest.js";
import type { BuiltinSchedule, Scheduler } from "./scheduler.js";
import { nextSlot, parseCron } from "./slots.js";
import { runsPruneCutoff, runsPruneEvery } from "./policy.js";

export const BUILTIN_SCHEDULES: BuiltinSchedule[] = [
  { name: "cleanup", cron: "0 0 * * * *", timezone: null, jobType: "cleanup", payload: {} },
  { name: "digest", cron: "0 0 8 * * *", timezone: null, jobType: "digest", payload: {} },
];

const CLEANUP_STATS_KEY = "cleanup.stats";
interface StoredCleanupStats {
  runs: number;
  files: number;
  bytes: number;
  last: { at: number; jobId: number; files: number; bytes: number } | null;
}

export class Housekeeping {
  private pruneTimer: TimerHandle | null = null;
  private stopped = false;

  constructor(private readonly opts: { store: Store; engine: Engine; scheduler: Scheduler; clock: Clock; log: Logger; paths: Paths; config: Config }) {}

  /**
   * Hooks the bookkeeping to job completion, repairs the digest cursor after a crash, and
   * prunes old fired slots now and then every runsPruneEvery(retention).
   */
  async start(): Promise<void> {
    const { engine, store } = this.opts;
    engine.onFinish("cleanup", async (job) => {
      if (job.status !== "complete") return;
      const r = job.result as { files?: number; bytes?: number } | null;
      const prev = ((await store.meta.get(CLEANUP_STATS_KEY)) as unknown as StoredCleanupStats | null) ?? { runs: 0, files: 0, bytes: 0, last: null };
      const files = r?.files ?? 0;
      const bytes = r?.bytes ?? 0;
      const next: StoredCleanupStats = { runs: prev.runs + 1, files: prev.files + files, bytes: prev.bytes + bytes, last: { at: job.finishedAt ?? this.opts.clock.now(), jobId: job.id, files, bytes } };
      await store.meta.set(CLEANUP_STATS_KEY, next as unknown as Json);
    });
    engine.onFinish("digest", (job) => this.advanceDigestCursor(job.result));
    // The cursor moves after the digest job's completion commits; a crash between the two
    // would leave it behind, so the completed digest jobs are read back once at start.
    for (const { id } of await store.jobs.list({ type: "digest", status: "complete", limit: 50 })) await this.advanceDigestCursor((await store.jobs.get(id))?.result ?? null);
    await this.pruneScheduleRuns();
    this.armPrune();
  }

  stop(): void {
    this.stopped = true;
    this.pruneTimer?.cancel();
    this.pruneTimer = null;
  }

  /** Forgets the slots fired longer ago than the retention (they stay refused: schedules keep their last slot). */
  async pruneScheduleRuns(): Promise<number> {
    const n = await this.opts.store.schedules.pruneRuns(runsPruneCutoff(this.opts.clock.now(), this.opts.config.retention));
    if (n > 0) this.opts.log.info("schedule.runs_pruned", { count: n });
    return n;
  }

  private armPrune(): void {
    if (this.stopped) return;
    this.pruneTimer = this.opts.clock.setTimer(() => {
      // The next one is armed first, so that the rhythm does not depend on how long this takes.
      this.armPrune();
      void this.pruneScheduleRuns().catch((err: Error) => this.opts.log.error("schedule.runs_prune_failed", { error: err.message }));
    }, runsPruneEvery(this.opts.config.retention));
  }


  private async advanceDigestCursor(result: Json | null): Promise<void> {
    const r = result as { sent?: boolean; toEventId?: number; sentAt?: string } | null;
    if (!r?.sent || typeof r.toEventId !== "number") return;
    const current = (await this.opts.store.meta.get(DIGEST_CURSOR_KEY)) as unknown as DigestCursor | null;
    if (current && current.lastEventId >= r.toEventId) return;
    const cursor: DigestCursor = { lastEventId: r.toEventId, sentAt: r.sentAt ?? new Date(this.opts.clock.now()).toISOString() };
    await this.opts.store.meta.set(DIGEST_CURSOR_KEY, cursor as unknown as Json);
    this.opts.log.info("digest.cursor_moved", { lastEventId: cursor.lastEventId });
  }

  async cleanupStats(): Promise<CleanupStats> {
    const s = ((await this.opts.store.meta.get(CLEANUP_STATS_KEY)) as unknown as StoredCleanupStats | null) ?? { runs: 0, files: 0, bytes: 0, last: null };
    const schedule = await this.opts.store.schedules.get("cleanup");
    let nextRunAt: string | null = null;
    if (schedule?.enabled) {
      const n = nextSlot(parseCron(schedule.cron, schedule.timezone), this.opts.clock.now());
      nextRunAt = n === null ? null : new Date(n).toISOString();
    }
    return {
      folder: this.opts.paths.uploadsTmp,
      maxAgeMs: this.opts.config.cleanup.maxAge,
      lastRun: s.last ? { at: new Date(s.last.at).toISOString(), jobId: s.last.jobId, files: s.last.files, bytes: s.last.bytes } : null,
      total: { runs: s.runs, files: s.files, bytes: s.bytes },
      schedule: schedule ? { cron: schedule.cron, enabled: schedule.enabled, nextRunAt } : null,
    };
  }

  async digestPreview(): Promise<DigestPreview> {
    const cursor = (await this.opts.store.meta.get(DIGEST_CURSOR_KEY)) as unknown as DigestCursor | null;
    const afterEventId = cursor?.lastEventId ?? 0;
    const events = await this.opts.store.taskEvents.list({ afterId: afterEventId, limit: 100_000 });
    const d = buildDigest(events, { afterEventId, since: cursor?.sentAt ?? null, now: this.opts.clock.now() });
    const recipients = this.opts.config.digest.recipients;
    return {
      subject: d.subject,
      text: d.text,
      empty: d.empty,
      wouldSend: recipients.length > 0 && (!d.empty || this.opts.config.digest.sendEmpty),
      recipients,
      since: d.since,
      afterEventId: d.afterEventId,
      toEventId: d.toEventId,
      counts: d.counts,
      boards: d.boards,
    };
  }
}
