// How long each job type's jobs run, as the workers measure them: an exponential moving
// average per type. Placement (placement.ts) uses it to tell fast types from slow ones.
// A type counts as measured after its second run: the first, in a cold worker (code not
// compiled yet), says little.

import type { Json } from "../protocol/types.js";

/** The weight of the newest run in the moving average. */
const NEWEST_WEIGHT = 0.2;

export class RunTimes {
  private readonly byType = new Map<string, { ms: number; runs: number }>();
  /** The measured types' means, kept in step with byType (placement reads it every tick). */
  private readonly measuredMeans = new Map<string, number>();
  /** Counts the changes of the measured means: a plan made before the last change is out of date. */
  private changeCount = 0;

  get changes(): number {
    return this.changeCount;
  }

  /** Records one run of a job of this type. */
  record(type: string, ms: number): void {
    const t = this.byType.get(type);
    // The second run replaces the first (cold) one; from then on, a moving average.
    const next = !t || t.runs < 2 ? { ms, runs: (t?.runs ?? 0) + 1 } : { ms: t.ms * (1 - NEWEST_WEIGHT) + ms * NEWEST_WEIGHT, runs: t.runs + 1 };
    this.byType.set(type, next);
    if (next.runs >= 2) {
      this.measuredMeans.set(type, next.ms);
      this.changeCount++;
    }
  }

  /** The mean run time of a measured type (ms), undefined until it has run twice. */
  mean(type: string): number | undefined {
    return this.measuredMeans.get(type);
  }

  /** Every measured type's mean run time. */
  get measured(): ReadonlyMap<string, number> {
    return this.measuredMeans;
  }

  /** The measured means, to be kept across restarts (ms, to the µs). */
  toJson(): Record<string, number> {
    return Object.fromEntries([...this.measuredMeans].map(([type, ms]) => [type, Math.round(ms * 1000) / 1000]));
  }

  /** Takes back what toJson saved, for the types that still exist; anything else is ignored. */
  load(saved: Json | null, knownType: (type: string) => boolean): void {
    if (saved === null || typeof saved !== "object" || Array.isArray(saved)) return;
    for (const [type, ms] of Object.entries(saved)) {
      if (knownType(type) && typeof ms === "number" && Number.isFinite(ms) && ms >= 0) {
        this.byType.set(type, { ms, runs: 2 });
        this.measuredMeans.set(type, ms);
        this.changeCount++;
      }
    }
  }
}
