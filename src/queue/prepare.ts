// A job spec from the API made into a job to store: its type known, its payload validated by
// the type's own validator, its run time within a year of now, its defaults filled in.

import { TeamworkError, invalid } from "../lib/errors.js";
import type { JobSpec } from "../protocol/routes.js";
import type { Json } from "../protocol/types.js";
import type { NewJob } from "../store/types.js";
import type { Lookup } from "../jobs/define.js";
import type { Registry } from "./registry.js";

const YEAR = 366 * 86_400_000;

export async function prepareJob(spec: JobSpec, registry: Registry, lookup: Lookup, clock: () => number): Promise<NewJob> {
  const t = registry.get(spec.type);
  const payload: Json = spec.payload ?? {};
  if (t.def.validate) {
    try {
      await t.def.validate(payload, lookup);
    } catch (err) {
      if (err instanceof TeamworkError) throw err;
      throw invalid(`invalid payload for job type "${spec.type}": ${(err as Error).message}`);
    }
  }
  if (spec.runAt !== undefined && spec.delayMs !== undefined) throw invalid("give runAt or delayMs, not both");
  const now = clock();
  const runAt = spec.runAt !== undefined ? Date.parse(spec.runAt) : now + (spec.delayMs ?? 0);
  if (runAt > now + YEAR) throw invalid(`runAt ${new Date(runAt).toISOString()} is more than a year away`);
  if (runAt < now - YEAR) throw invalid(`runAt ${new Date(runAt).toISOString()} is more than a year in the past`);
  return {
    type: spec.type,
    payload,
    runAt,
    priority: spec.priority ?? 0,
    maxAttempts: spec.maxAttempts ?? t.def.maxAttempts ?? 3,
    uniqueKey: spec.uniqueKey ?? null,
  };
}

/** All or nothing: every spec is validated before any is stored; an error names the spec's index. */
export async function prepareJobs(specs: JobSpec[], registry: Registry, lookup: Lookup, now: () => number): Promise<NewJob[]> {
  const prepared: NewJob[] = [];
  for (const [i, s] of specs.entries()) {
    try {
      prepared.push(await prepareJob(s, registry, lookup, now));
    } catch (err) {
      if (err instanceof TeamworkError) throw new TeamworkError(err.code, `jobs[${i}]: ${err.message}`, err.hint);
      throw err;
    }
  }
  return prepared;
}
