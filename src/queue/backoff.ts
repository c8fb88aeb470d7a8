// Exponential backoff with jitter, as a pure function: attempt 1 failed → ~base, attempt 2
// → ~2×base, attempt 3 → ~4×base, … capped. Jitter spreads retries of many jobs that failed
// together (a mail server that was down) so they do not all come back at the same instant.

export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  /** Fraction of the delay added at random: 0.2 → up to +20%. */
  jitter: number;
}

export function backoffMs(failedAttempt: number, opts: BackoffOptions, rand: () => number = Math.random): number {
  const exp = Math.min(opts.capMs, opts.baseMs * 2 ** Math.max(0, failedAttempt - 1));
  return Math.round(Math.min(opts.capMs, exp * (1 + opts.jitter * rand())));
}
