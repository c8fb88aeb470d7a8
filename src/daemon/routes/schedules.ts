import { conflict } from "../../lib/errors.js";
import type { Schedule } from "../../protocol/types.js";
import type { ScheduleView } from "../../scheduler/scheduler.js";
import { BUILTIN_SCHEDULES } from "../../scheduler/housekeeping.js";
import { toWire } from "../../queue/engine.js";
import type { AppContext, Handlers } from "../context.js";
import { ok } from "../context.js";

type ScheduleRoutes = "schedulesList" | "schedulesSet" | "schedulesPause" | "schedulesResume" | "schedulesRun" | "schedulesRemove" | "cleanupStats" | "digestPreview";

export function scheduleRoutes(app: AppContext): Pick<Handlers, ScheduleRoutes> {
  const { scheduler, housekeeping, engine } = app;
  const wire = async (s: ScheduleView): Promise<Schedule> => {
    const job = s.lastJobId === null ? null : await engine.get(s.lastJobId).catch(() => null);
    return {
      name: s.name,
      cron: s.cron,
      timezone: s.timezone,
      type: s.jobType,
      payload: s.payload,
      enabled: s.enabled,
      lastRunAt: s.lastFiredAt === null ? null : new Date(s.lastFiredAt).toISOString(),
      lastOutcome: s.lastOutcome,
      lastJob: job ? { id: job.id, status: job.status, error: job.error } : null,
      nextRunAt: s.nextRunAt === null ? null : new Date(s.nextRunAt).toISOString(),
    };
  };
  return {
    async schedulesList() {
      return ok({ schedules: await Promise.all((await scheduler.list()).map(wire)) });
    },
    async schedulesSet({ name, cron, timezone, type, payload }) {
      return ok({ schedule: await wire(await scheduler.set({ name, cron, timezone, jobType: type, payload })) });
    },
    async schedulesPause({ name }) {
      return ok({ schedule: await wire(await scheduler.pause(name)) });
    },
    async schedulesResume({ name }) {
      return ok({ schedule: await wire(await scheduler.resume(name)) });
    },
    async schedulesRun({ name }) {
      const r = await scheduler.runNow(name);
      if (r.outcome === "already-fired") throw conflict(`schedule "${name}" just fired`);
      return { status: r.outcome === "enqueued" ? 202 : 200, body: { outcome: r.outcome, job: toWire(r.job) } };
    },
    async schedulesRemove({ name }) {
      if (BUILTIN_SCHEDULES.some((b) => b.name === name)) throw conflict(`"${name}" is built in and cannot be removed; pause it with \`teamwork schedules pause ${name}\``);
      const s = await wire(await scheduler.get(name));
      await scheduler.remove(name);
      return ok({ schedule: s });
    },
    async cleanupStats() {
      return ok(await housekeeping.cleanupStats());
    },
    async digestPreview() {
      return ok(await housekeeping.digestPreview());
    },
  };
}
