// Time is injected: everything that reads the time or waits takes a Clock, so tests can be
// fast and exact. The system clock is the only implementation used in production.

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Calls fn after ms milliseconds (clamped to >= 0). The timer does not keep the process alive. */
  setTimer(fn: () => void, ms: number): TimerHandle;
}

/** setTimeout overflows past 2^31-1 ms (~24.8 days); longer waits re-arm in steps. */
const MAX_TIMER_MS = 2_147_483_647;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    let handle: NodeJS.Timeout;
    const arm = (remaining: number) => {
      const step = Math.min(Math.max(0, remaining), MAX_TIMER_MS);
      handle = setTimeout(() => (remaining > MAX_TIMER_MS ? arm(remaining - step) : fn()), step);
      handle.unref();
    };
    arm(ms);
    return { cancel: () => clearTimeout(handle) };
  },
};

/** A clock that only moves when told to; timers fire in due order as time advances. */
export class ManualClock implements Clock {
  private timers: { at: number; fn: () => void; seq: number; live: boolean }[] = [];
  private seq = 0;
  constructor(private current: number = 0) {}

  now(): number {
    return this.current;
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const timer = { at: this.current + Math.max(0, ms), fn, seq: this.seq++, live: true };
    this.timers.push(timer);
    return { cancel: () => void (timer.live = false) };
  }

  /** Moves time forward (or backward, with a negative ms) and fires every timer now due. */
  advance(ms: number): void {
    this.current += ms;
    for (;;) {
      const due = this.timers
        .filter((t) => t.live && t.at <= this.current)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      due.live = false;
      due.fn();
    }
    this.timers = this.timers.filter((t) => t.live);
  }

  set(epochMs: number): void {
    this.advance(epochMs - this.current);
  }
}

/**
 * The offset that puts a local reading on another clock, from one exchange: `remoteNow` was
 * read between `sentAt` and `receivedAt` (local), so it is taken as read at their midpoint
 * (the error is at most half the round trip).
 */
export function offsetFrom(remoteNow: number, sentAt: number, receivedAt: number): number {
  return remoteNow - (sentAt + receivedAt) / 2;
}

/** An answer slower than this round trip says little about the other clock: not followed. */
export const FOLLOW_MAX_ROUND_TRIP_MS = 500;

/**
 * A clock that follows another one it can only ask (the database's, for daemons sharing it):
 * its own clock plus an offset, corrected by each answer it is given. Timers are the base
 * clock's (durations do not depend on the offset). Every time a daemon on a shared store
 * stamps or compares (a job's run time, a claim's due time, a schedule's slot) is then on the
 * database's clock, within half a round trip, whatever the host's clock says.
 */
export class FollowingClock implements Clock {
  private offset = 0;
  constructor(private readonly base: Clock) {}

  now(): number {
    return this.base.now() + this.offset;
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    return this.base.setTimer(fn, ms);
  }

  /** How far this clock is set from its base (ms). */
  get offsetMs(): number {
    return this.offset;
  }

  /**
   * Takes one reading of the other clock, made between `sentAt` and `receivedAt` as read on
   * this clock; a slow exchange (over FOLLOW_MAX_ROUND_TRIP_MS) is ignored. Returns whether it
   * was followed.
   */
  follow(remoteNow: number, sentAt: number, receivedAt: number): boolean {
    if (receivedAt - sentAt > FOLLOW_MAX_ROUND_TRIP_MS || receivedAt < sentAt) return false;
    this.offset += offsetFrom(remoteNow, sentAt, receivedAt);
    return true;
  }
}
