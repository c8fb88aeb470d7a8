// Terminology
// - schedule: a named cron expression (with seconds, in a time zone) bound to a job type
//   and payload; stored, listable, pausable.
// - slot: one instant the expression names. Each slot fires at most once, ever.
// - firing: handling a slot: enqueue the schedule's job, or record it as skipped when the
//   previous run is still pending or running (no overlap).
//
// croner does the calendar math (scheduler/slots.ts); timers come from the injected Clock,
// so tests can drive time. After downtime, the latest missed slot fires once at start.
//
// Several daemons sharing one store (PostgreSQL) each arm every schedule and race for each
// slot; the store lets one win (one row per slot). With `resyncMs`, each re-reads the
// schedules that often, so one created, changed, paused or removed through another daemon
// is followed here; a slot of a schedule paused elsewhere is refused by the store even
// before that. Slots are compared with the store's clock: a daemon whose clock runs fast is
// told "early" and waits for the slot (a slow one fires late, after the others did).

import type { Clock, TimerHandle } from "../lib/clock.js";
import type { Logger } from "../lib/logger.js";
import { TeamworkError, invalid, notFound } from "../lib/errors.js";
import { didYouMean } from "../lib/suggest.js";
import type { Json } from "../protocol/types.js";
import type { FireResult, ScheduleRecord, Store } from "../store/types.js";
import type { Engine } from "../queue/engine.js";
import { earlyRetryIn, latestSlot, nextSlot, parseCron, slotToCatchUp } from "./slots.js";
import { scheduledJob } from "./policy.js";

export interface ScheduleView extends ScheduleRecord {
  nextRunAt: number | null;
}

/** What a manual run (`schedules run`) can come to. */
export type ManualRun = Exclude<FireResult, { outcome: "paused" } | { outcome: "early" }>;

export interface BuiltinSchedule {
  name: string;
  cron: string;
  timezone: string | null;
  jobType: string;
  payload: Json;
}

/** What a schedule is armed with: a change through another daemon re-arms it. */
function armedAs(s: ScheduleRecord): string {
  return `${s.cron}\u0000${s.timezone ?? ""}`;
}

export class Scheduler {
  private readonly timers = new Map<string, TimerHandle>();
  /** The expression and time zone each armed schedule was armed with (armedAs). */
  private readonly armedWith = new Map<string, string>();
  private resyncTimer: TimerHandle | null = null;
  private resyncing: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly opts: {
      store: Store;
      engine: Engine;
      clock: Clock;
      log: Logger;
      builtins: BuiltinSchedule[];
      /** Re-read the schedules this often (ms), for changes made through other daemons sharing the store; 0 or absent: never. */
      resyncMs?: number;
    },
  ) {}

  async start(): Promise<void> {
    const now = this.opts.clock.now();
    for (const b of this.opts.builtins) {
      if (this.opts.engine.registry.has(b.jobType)) await this.opts.store.schedules.ensure(b, now);
    }
    for (const s of await this.opts.store.schedules.list()) {
      if (s.enabled) await this.catchUpAndArm(s, now);
    }
    this.scheduleResync();
  }

  stop(): void {
    this.stopped = true;
    this.resyncTimer?.cancel();
    this.resyncTimer = null;
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
    this.armedWith.clear();
  }

  /**
   * Follows the stored schedules: arms those enabled and not armed here (catching up a missed
   * slot once, as at start), re-arms those whose expression or time zone changed, disarms
   * those paused or removed. Called every `resyncMs`; public so tests can call it directly.
   */
  async resync(): Promise<void> {
    if (this.resyncing) return this.resyncing;
    this.resyncing = (async () => {
      const now = this.opts.clock.now();
      const stored = await this.opts.store.schedules.list();
      const seen = new Set<string>();
      for (const s of stored) {
        seen.add(s.name);
        if (!s.enabled) {
          if (this.armedWith.has(s.name)) this.disarm(s.name);
          continue;
        }
        if (this.armedWith.get(s.name) === armedAs(s)) continue;
        this.disarm(s.name);
        await this.catchUpAndArm(s, now);
      }
      for (const name of [...this.armedWith.keys()]) if (!seen.has(name)) this.disarm(name);
    })().finally(() => (this.resyncing = null));
    return this.resyncing;
  }

  /** The schedules this scheduler has timers for, by name (for status and tests). */
  armedSchedules(): string[] {
    return [...this.armedWith.keys()].sort();
  }

  private scheduleResync(): void {
    const every = this.opts.resyncMs ?? 0;
    if (this.stopped || every <= 0) return;
    this.resyncTimer = this.opts.clock.setTimer(() => {
      void this.resync()
        .catch((err: Error) => this.opts.log.warn("schedule.resync_failed", { error: err.message }))
        .finally(() => this.scheduleResync());
    }, every);
  }

  private async catchUpAndArm(s: ScheduleRecord, now: number): Promise<void> {
    let cron;
    try {
      cron = parseCron(s.cron, s.timezone);
    } catch (err) {
      this.opts.log.error("schedule.invalid", { schedule: s.name, error: (err as Error).message });
      return;
    }
    const missed = slotToCatchUp(cron, s.lastSlot, s.createdAt, now);
    if (missed !== null) {
      this.opts.log.info("schedule.catch_up", { schedule: s.name, slot: new Date(missed).toISOString() });
      await this.fire(s.name, missed);
    }
    if (this.stopped) return;
    this.armedWith.set(s.name, armedAs(s));
    this.arm(s.name, cron, Math.max(now, missed ?? 0));
  }

  async list(): Promise<ScheduleView[]> {
    const now = this.opts.clock.now();
    return (await this.opts.store.schedules.list()).map((s) => ({ ...s, nextRunAt: s.enabled ? this.safeNext(s, now) : null }));
  }

  async get(name: string): Promise<ScheduleView> {
    const s = await this.opts.store.schedules.get(name);
    if (!s) throw await this.unknown(name);
    return { ...s, nextRunAt: s.enabled ? this.safeNext(s, this.opts.clock.now()) : null };
  }

  /** Creates or changes a schedule; a field left out (timezone, type, payload) keeps its value. */
  async set(input: { name: string; cron: string; timezone?: string | null; jobType?: string; payload?: Json }): Promise<ScheduleView> {
    const existing = await this.opts.store.schedules.get(input.name);
    const timezone = input.timezone === undefined ? (existing?.timezone ?? null) : input.timezone;
    let cron;
    try {
      cron = parseCron(input.cron, timezone);
    } catch (err) {
      const message = (err as Error).message;
      throw invalid(message, message.startsWith("invalid cron") ? 'six fields with seconds first, e.g. "0 */15 * * * *" (every 15 minutes)' : undefined);
    }
    const jobType = input.jobType ?? existing?.jobType ?? input.name;
    const payload = input.payload ?? existing?.payload ?? {};
    await this.opts.engine.prepare({ type: jobType, payload }); // the job must be valid now, not at 3 a.m.
    const now = this.opts.clock.now();
    const saved = await this.opts.store.schedules.upsert({ name: input.name, cron: input.cron, timezone, jobType, payload }, now);
    if (!existing) {
      // A new schedule starts counting now: no catch-up for slots before it existed.
      await this.opts.store.schedules.setEnabled(saved.name, true, now, latestSlot(cron, now));
    }
    this.disarm(saved.name);
    if (saved.enabled) {
      this.armedWith.set(saved.name, armedAs(saved));
      this.arm(saved.name, cron, now);
    }
    this.opts.log.info("schedule.set", { schedule: saved.name, cron: saved.cron, timezone: saved.timezone ?? "local", type: jobType });
    return this.get(saved.name);
  }

  async pause(name: string): Promise<ScheduleView> {
    const s = await this.opts.store.schedules.setEnabled(name, false, this.opts.clock.now(), null);
    if (!s) throw await this.unknown(name);
    this.disarm(name);
    return this.get(name);
  }

  /** Slots that passed while paused are skipped, not caught up. */
  async resume(name: string): Promise<ScheduleView> {
    const current = await this.opts.store.schedules.get(name);
    if (!current) throw await this.unknown(name);
    const now = this.opts.clock.now();
    const cron = parseCron(current.cron, current.timezone);
    await this.opts.store.schedules.setEnabled(name, true, now, current.enabled ? null : latestSlot(cron, now));
    this.disarm(name);
    this.armedWith.set(name, armedAs(current));
    this.arm(name, cron, now);
    return this.get(name);
  }

  async remove(name: string): Promise<void> {
    this.disarm(name);
    await this.opts.store.schedules.remove(name);
  }

  /** Runs the schedule's job now (still never overlapping a live run). */
  async runNow(name: string): Promise<ManualRun> {
    if (!(await this.opts.store.schedules.get(name))) throw await this.unknown(name);
    const r = await this.fire(name, null);
    if (!r) throw await this.unknown(name);
    // A manual run is never refused as paused or early (the store's contract for slot null).
    if (r.outcome === "paused" || r.outcome === "early") throw new Error(`schedule ${name}: a manual run was refused as ${r.outcome}`);
    return r;
  }

  /** Handles one slot (null: a manual run). Public so tests can tick it directly. */
  async fire(name: string, slot: number | null): Promise<FireResult | null> {
    const s = await this.opts.store.schedules.get(name);
    if (!s) return null;
    let job;
    try {
      job = await this.opts.engine.prepare({ type: s.jobType, payload: s.payload });
    } catch (err) {
      this.opts.log.error("schedule.job_invalid", { schedule: name, error: (err as Error).message });
      if (slot === null) throw err;
      return null;
    }
    const r = await this.opts.store.schedules.fire(name, slot, this.opts.clock.now(), scheduledJob(name, job));
    if (!r) return null;
    if (r.outcome === "enqueued") this.opts.engine.adopt(r.job);
    if (r.outcome === "early") {
      this.opts.log.warn("schedule.early", { schedule: name, slot: new Date(slot!).toISOString(), storeNow: new Date(r.storeNow).toISOString(), note: "this host's clock runs ahead of the database's" });
      return r;
    }
    if (r.outcome === "paused") return r; // paused through another daemon; the next resync disarms it here
    const job_ = r.outcome === "enqueued" || r.outcome === "skipped" ? r.job.id : undefined;
    this.opts.log.info("schedule.fired", { schedule: name, slot: slot === null ? "manual" : new Date(slot).toISOString(), outcome: r.outcome, job: job_ });
    return r;
  }

  private arm(name: string, cron: ReturnType<typeof parseCron>, after: number): void {
    if (this.stopped) return;
    const next = nextSlot(cron, after);
    if (next === null) return;
    this.armSlot(name, cron, next, next - this.opts.clock.now());
  }

  /** Fires `slot` in `inMs`; then arms the next slot, or the same one again if the store said it was early. */
  private armSlot(name: string, cron: ReturnType<typeof parseCron>, slot: number, inMs: number): void {
    this.timers.set(
      name,
      this.opts.clock.setTimer(() => {
        this.timers.delete(name);
        void this.fire(name, slot)
          .then((r) => {
            if (this.stopped || this.timers.has(name) || !this.armedWith.has(name)) return;
            if (r?.outcome === "early") this.armSlot(name, cron, slot, earlyRetryIn(slot, r.storeNow));
            else this.arm(name, cron, Math.max(slot, this.opts.clock.now()));
          })
          .catch((err: Error) => {
            this.opts.log.error("schedule.fire_failed", { schedule: name, error: err.message });
            if (!this.stopped && !this.timers.has(name) && this.armedWith.has(name)) this.arm(name, cron, Math.max(slot, this.opts.clock.now()));
          });
      }, inMs),
    );
  }

  private disarm(name: string): void {
    this.timers.get(name)?.cancel();
    this.timers.delete(name);
    this.armedWith.delete(name);
  }

  private safeNext(s: ScheduleRecord, now: number): number | null {
    try {
      return nextSlot(parseCron(s.cron, s.timezone), now);
    } catch {
      return null;
    }
  }

  private async unknown(name: string): Promise<TeamworkError> {
    const names = (await this.opts.store.schedules.list()).map((s) => s.name);
    return notFound(`schedule "${name}" not found${didYouMean(name, names)}`);
  }
}
