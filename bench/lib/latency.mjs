// The latency histogram of one run of a latency workload (C, C cold, sporadic): percentiles,
// counts per bucket, and the slowest jobs with their index in the run, so that an outlier's
// cause can be seen (the first jobs after a start or an idle period, a checkpoint, a GC…).
import { pct } from "./util.mjs";

/** Upper bounds of the buckets, in ms; a last bucket holds everything above the last bound. */
export const BUCKETS_MS = [0.5, 1, 2, 5, 10, 50, 100];
export const SLOWEST = 10;

/**
 * lat[k] and ack[k]: the k-th measured job (k = 0 is the first job measured in the run), ms
 * from the enqueue call to the handler's first line, and to the enqueue's reply.
 */
export function histogram(lat, ack = []) {
  const n = lat.length;
  const buckets = new Array(BUCKETS_MS.length + 1).fill(0);
  for (const v of lat) {
    const b = BUCKETS_MS.findIndex((bound) => v <= bound);
    buckets[b === -1 ? BUCKETS_MS.length : b]++;
  }
  const slowest = lat
    .map((ms, i) => ({ i, ms: round(ms), ackMs: Number.isFinite(ack[i]) ? round(ack[i]) : null }))
    .sort((a, b) => b.ms - a.ms || a.i - b.i)
    .slice(0, SLOWEST);
  return {
    n,
    p50: pct(lat, 50),
    p90: pct(lat, 90),
    p95: pct(lat, 95),
    p99: pct(lat, 99),
    max: n ? Math.max(...lat) : NaN,
    mean: n ? lat.reduce((a, b) => a + b, 0) / n : NaN,
    ackP50: pct(ack, 50),
    ackP99: pct(ack, 99),
    buckets,
    slowest,
  };
}

const round = (v) => Math.round(v * 1000) / 1000;

/** "≤0.5", "≤1", …, ">100": the bucket headers. */
export const bucketLabels = () => [...BUCKETS_MS.map((b) => `≤${b}`), `>${BUCKETS_MS.at(-1)}`];
