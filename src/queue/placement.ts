// Placement: which worker slot a claimed job goes to, as a pure function of what the slots
// hold at the start of a tick. The engine builds one Placement per tick and asks it, job by
// job in claim order, where each goes.
//
// - A job of a type known to be fast (mean run time ≤ AHEAD_FAST_MS) goes behind the jobs of
//   the busy slot of its worker kind with the least expected work, within AHEAD_BUDGET_MS
//   of expected work and AHEAD_MAX jobs per slot: it is "handed over ahead" of its turn and
//   starts back to back with them, with no round trip to the daemon.
// - Any other job, or a fast one with no such room, goes to an empty slot (one whose worker is
//   still warm first, then the lowest number); a fast one only while fewer than fastWorkers
//   workers hold fast jobs (on a small machine a woken thread takes a core from the daemon).
// - A type not measured yet: its first job is a probe, sent to an empty slot; the next ones
//   wait for it a few ms (a quick probe makes them fast jobs, a slow one releases them).
// - Nothing waits behind a slow job, or behind one taking longer than it should.
//
// The claim itself is data (ClaimLimits, store/types.ts): before the tick, placement says how
// many jobs of each type it could take, as budgets each type draws on (empty slots, room
// behind the busy workers of a kind, one probe per claim for the types not measured yet, none
// for a type whose probe is under way); the store claims due jobs in order within them, and
// the claimed jobs are then placed one by one. The budgets are exact for one type at a time;
// when types compete for the same empty slots the claim may take a job that then finds no
// slot, which the engine hands back (not counted). Only measured and probing types are
// listed: every other type (not measured, or unknown here) draws on the empty slots and the
// one probe, so a tick's claim costs the same however many types are registered.

import type { ClaimLimits } from "../store/types.js";

/** A type whose mean run time is under this may be handed to a slot ahead of its turn. */
export const AHEAD_FAST_MS = 1;
/** At most this much expected work waits in one slot. */
export const AHEAD_BUDGET_MS = 4;
/** At most this many jobs are handed to one slot at once. */
export const AHEAD_MAX = 256;
/** A worker whose fast job has run this long counts as stuck: the cap lets another one be woken. */
export const FAST_STUCK_MS = 25;

/** A slot as placement sees it when the tick begins. */
export interface SlotView {
  n: number;
  /** Its worker is up and has loaded its code: preferred among empty slots. */
  warm: boolean;
  /**
   * The jobs handed to it, the one running first: each job's type and when its turn began
   * (null while it waits). null: a job whose end the engine has seen but the slot not yet.
   */
  jobs: ({ type: string; begun: number | null } | null)[];
}

export interface PlacementInput {
  now: number;
  slots: SlotView[];
  /** Mean run time (ms) of each type measured so far. */
  runTimes: ReadonlyMap<string, number>;
  /** The worker kind a type's jobs need: jobs wait behind each other only in the same kind. */
  kindOf(type: string): string;
  /** How many workers fast jobs may keep busy at once. */
  fastWorkers: number;
}

/**
 * Where a job goes: a slot, and whether it waits there behind other jobs (ahead); waitMs:
 * nowhere yet, a probe of its type is under way and ends within that long; null: nowhere
 * this tick. The claim stops at the first job that cannot be placed, so no job overtakes it.
 */
export type Place = { slot: number; ahead: boolean } | { waitMs: number } | null;

export interface Placement {
  /** The most jobs this tick could place: the claim reads no more due jobs than this. */
  readonly limit: number;
  /** What the claim may take, per type, for the jobs to fit (the paused types left to the caller). */
  readonly claim: Omit<ClaimLimits, "pausedTypes">;
  /** Set when a probe is under way: claim again in this many ms (its type waits for it). */
  readonly probeWaitMs: number | null;
  place(type: string): Place;
}

/**
 * The pool as a tick finds it, read slot by slot: most ticks read it only to decide whether
 * they need a plan at all, so no list is built for that.
 */
export interface PoolState {
  /** Slots 1..slots. */
  readonly slots: number;
  busy(n: number): boolean;
  warm(n: number): boolean;
  /** Changes whenever a measured run time does (RunTimes.changes). */
  readonly runTimesChanges: number;
  /** Some measured type is fast (≤ AHEAD_FAST_MS): its jobs may wait behind a busy slot's. */
  anyFast(): boolean;
}

/** What a plan made while every slot was empty read from the pool. */
export interface IdlePool {
  slots: number;
  warm: boolean[];
  runTimesChanges: number;
}

/** The pool, if every slot is empty (what a plan made now would read); null otherwise. */
export function idlePool(pool: PoolState): IdlePool | null {
  const warm: boolean[] = [];
  for (let n = 1; n <= pool.slots; n++) {
    if (pool.busy(n)) return null;
    warm.push(pool.warm(n));
  }
  return { slots: pool.slots, warm, runTimesChanges: pool.runTimesChanges };
}

/**
 * Whether a tick needs a new placement plan (planPlacement), before it makes one:
 * - "none": every slot is busy and no measured type is fast. Nothing could be placed (nothing
 *   waits behind a job of a slow or unmeasured type): the claim would take nothing.
 * - "last": the last plan serves again. It was made while every slot was empty (`last`), so
 *   it read neither the time nor any job; every slot is still empty, the same ones are warm
 *   and no run time changed since. The caller keeps it only while it has placed no job.
 * - "new": otherwise.
 * An idle queue fed one job at a time (each tick: one insert, a claim that finds nothing due)
 * plans once, not once per tick.
 */
export function choosePlan(pool: PoolState, last: IdlePool | null): "none" | "last" | "new" {
  let empty = 0;
  let sameAsLast = last !== null && last.slots === pool.slots && last.runTimesChanges === pool.runTimesChanges;
  for (let n = 1; n <= pool.slots; n++) {
    if (pool.busy(n)) sameAsLast = false;
    else {
      empty++;
      if (sameAsLast && last!.warm[n - 1] !== pool.warm(n)) sameAsLast = false;
    }
  }
  if (sameAsLast) return "last";
  if (empty === 0 && !pool.anyFast()) return "none";
  return "new";
}

/** Budget names (a kind is prefixed, so none can collide with the fixed ones). */
const EMPTY = "empty-slots";
const PROBES = "probes";
/** Never given: a type that draws on it is not claimed. */
const NONE = "none";
// The draws, shared from tick to tick (the store only reads them).
const SLOW_DRAWS = [EMPTY];
const UNMEASURED_DRAWS = [EMPTY, PROBES];
const WAIT_DRAWS = [NONE];
const fastDraws = new Map<string, string[]>();
const fastBudget = (kind: string) => `fast:${kind}`;
const fastDrawsOf = (kind: string): string[] => {
  let d = fastDraws.get(kind);
  if (!d) fastDraws.set(kind, (d = [fastBudget(kind)]));
  return d;
};

/** How many more jobs of this run time fit behind a slot's, counted as place() counts them. */
function jobsThatFit(count: number, backlog: number, runTime: number): number {
  let n = 0;
  while (count + n < AHEAD_MAX && backlog + runTime <= AHEAD_BUDGET_MS) {
    backlog += runTime;
    n++;
  }
  return n;
}

interface SlotPlan {
  n: number;
  warm: boolean;
  count: number;
  /** Expected work (ms) it holds. */
  backlog: number;
  /** The expected work it held when the tick began (was its worker keeping up?). */
  initial: number;
  /** Nothing may wait behind its running job. */
  blocked: boolean;
  kind: string | null;
}

export function planPlacement(input: PlacementInput): Placement {
  const { now, runTimes, kindOf, fastWorkers } = input;
  const slots: SlotPlan[] = [];
  /** Workers busy with fast jobs (the fastWorkers cap counts them). */
  let fastBusy = 0;
  /** Types not measured yet with a job on its way (the probe), and since when. */
  const probing = new Map<string, number>();
  let limit = 0;
  for (const view of input.slots) {
    const jobs = view.jobs;
    let backlog = 0;
    let blocked = false;
    let kind: string | null = null;
    for (const [i, j] of jobs.entries()) {
      if (!j) continue;
      const runTime = runTimes.get(j.type);
      if (runTime === undefined) probing.set(j.type, Math.min(probing.get(j.type) ?? Infinity, j.begun ?? now));
      backlog += runTime ?? AHEAD_BUDGET_MS;
      kind = kindOf(j.type);
      if (i !== 0) continue;
      const isFast = runTime !== undefined && runTime <= AHEAD_FAST_MS;
      // Nothing waits behind a slow job, or one that is taking longer than it should.
      if (!isFast || (j.begun !== null && now - j.begun > AHEAD_BUDGET_MS)) blocked = true;
      // Busy with fast work unless its running job has been at it for a long while: the time
      // a job began is only learnt when the daemon reads the worker's messages, which lag
      // when the daemon itself is the bottleneck, so "overdue by a few ms" would wake more
      // workers exactly when they cannot help.
      if (isFast && (j.begun === null || now - j.begun <= FAST_STUCK_MS)) fastBusy++;
    }
    slots.push({ n: view.n, warm: view.warm, count: jobs.length, backlog, initial: backlog, blocked, kind });
    if (jobs.length === 0) limit += 1;
  }
  // Room behind busy slots, counted in jobs of the fastest measured type (a bound: the
  // claim reads no more due jobs than could possibly be placed). An empty slot takes one
  // (counted above); fast jobs then go behind it rather than into the next empty one.
  let fastest = Infinity;
  for (const ms of runTimes.values()) if (ms <= AHEAD_FAST_MS) fastest = Math.min(fastest, ms);
  if (fastest < Infinity) {
    let roomBehindEmpty = 0;
    for (const s of slots) {
      if (s.blocked) continue;
      const byTime = Math.floor((AHEAD_BUDGET_MS - (s.count === 0 ? 0 : s.backlog)) / Math.max(fastest, 0.001));
      const room = Math.max(0, Math.min(AHEAD_MAX - Math.max(1, s.count), byTime));
      if (s.count > 0) limit += room;
      else roomBehindEmpty = Math.max(roomBehindEmpty, room);
    }
    // No fast job goes to an empty slot while fastWorkers workers are busy with fast jobs.
    if (fastBusy < fastWorkers) limit += roomBehindEmpty;
  }

  // The claim's budgets, from the same view.
  const emptySlots = slots.filter((s) => s.count === 0).length;
  const budgets: Record<string, number> = { [EMPTY]: emptySlots, [PROBES]: 1 };
  const draws: Record<string, string[]> = {};
  let probeWaitMs: number | null = null;
  for (const [type, since] of probing) {
    if (now - since >= AHEAD_BUDGET_MS) continue;
    draws[type] = WAIT_DRAWS;
    probeWaitMs = Math.min(probeWaitMs ?? Infinity, since + AHEAD_BUDGET_MS - now);
  }
  /** Per worker kind, the slowest fast type (room is counted in its jobs: a bound that holds for all). */
  const slowestFast = new Map<string, number>();
  for (const [type, runTime] of runTimes) {
    if (runTime > AHEAD_FAST_MS) draws[type] = SLOW_DRAWS;
    else {
      const kind = kindOf(type);
      draws[type] = fastDrawsOf(kind);
      slowestFast.set(kind, Math.max(slowestFast.get(kind) ?? 0, runTime));
    }
  }
  for (const [kind, cost] of slowestFast) {
    let room = 0;
    let keepingUp = false;
    for (const s of slots) {
      if (s.count === 0 || s.blocked || s.kind !== kind) continue;
      room += jobsThatFit(s.count, s.backlog, cost);
      if (s.initial < AHEAD_BUDGET_MS / 2) keepingUp = true;
    }
    // Once the busy workers are full, one empty slot may be woken (unless they keep up, or
    // the fastWorkers cap is reached), and filled: it then keeps up itself, so only one.
    if (!keepingUp && fastBusy < fastWorkers && emptySlots > 0) room += 1 + jobsThatFit(1, cost, cost);
    budgets[fastBudget(kind)] = room;
  }

  return {
    limit,
    claim: { limit, budgets, draws, otherTypes: UNMEASURED_DRAWS },
    probeWaitMs,
    place(type) {
      const runTime = runTimes.get(type);
      const kind = kindOf(type);
      const isFast = runTime !== undefined && runTime <= AHEAD_FAST_MS;
      // A type not measured yet: its first job is a probe. The next ones wait for it a few
      // ms; a quick probe makes them fast jobs (no thread woken for each), a slow one
      // releases them to the empty slots.
      const probeSince = runTime === undefined ? probing.get(type) : undefined;
      if (probeSince !== undefined && now - probeSince < AHEAD_BUDGET_MS) return { waitMs: probeSince + AHEAD_BUDGET_MS - now };
      // A fast job waits behind others in a busy worker rather than waking another one:
      // a thread costs memory and, on a small machine, a core the daemon needs.
      if (isFast) {
        let best: SlotPlan | null = null;
        let keepingUp = false;
        for (const s of slots) {
          if (s.count === 0 || s.blocked || s.kind !== kind) continue;
          if (s.count >= AHEAD_MAX || s.backlog + runTime > AHEAD_BUDGET_MS) {
            // Full now, but it had drained most of what it held since the last tick: its
            // worker keeps up, and will take more at the next one.
            if (s.initial < AHEAD_BUDGET_MS / 2) keepingUp = true;
            continue;
          }
          if (!best || s.backlog < best.backlog) best = s;
        }
        if (best) {
          best.count += 1;
          best.backlog += runTime;
          return { slot: best.n, ahead: true };
        }
        // The busy workers hold all they may and will want more at the next tick: no need
        // to wake another one.
        if (keepingUp) return null;
        // An empty slot for a fast job only while fewer workers than the cap hold fast jobs.
        if (fastBusy >= fastWorkers) return null;
      }
      // Otherwise an empty slot, one whose worker is still warm first.
      const empty = slots.find((s) => s.count === 0 && s.warm) ?? slots.find((s) => s.count === 0);
      if (!empty) return null;
      empty.count = 1;
      empty.backlog = runTime ?? AHEAD_BUDGET_MS;
      empty.blocked = !isFast;
      if (!empty.blocked) fastBusy++;
      empty.kind = kind;
      if (runTime === undefined) probing.set(type, now);
      return { slot: empty.n, ahead: false };
    },
  };
}
