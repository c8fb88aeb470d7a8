// Small helpers shared by the bench: waiting with a deadline, statistics, formatting, and
// reading a process's memory from /proc.
import { readFileSync, writeFileSync } from "node:fs";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Wall-clock time in ms with sub-ms precision, comparable across processes and threads. */
export const wallNow = () => performance.timeOrigin + performance.now();

/** Polls cond() every intervalMs until it is truthy; throws after timeoutMs. */
export async function until(cond, { timeoutMs = 120_000, intervalMs = 10, what = "a condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Waits until a daemon answers `health` on this client (a call that fails means not yet), up to 30 s. */
export async function untilHealthy(client) {
  for (let i = 0; ; i++) {
    try {
      return await client.call("health", {});
    } catch (err) {
      if (i > 3000) throw err;
      await sleep(10);
    }
  }
}

/** Rejects if p does not settle within ms. */
export function withTimeout(p, ms, what) {
  let timer;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms))),
  ]);
}

const sorted = (xs) => xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
/** Nearest-rank percentile. */
export function pct(xs, p) {
  const s = sorted(xs);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
export function median(xs) {
  const s = sorted(xs);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
export const min = (xs) => Math.min(...sorted(xs));
export const max = (xs) => Math.max(...sorted(xs));

/** 12,345 / 123 / 12.3 / 1.23 */
export function fmt(v) {
  if (v === undefined || v === null || !Number.isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString("en-US");
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** "median (min–max)" of a list of runs; just the value for one run. */
export function cell(xs) {
  if (!xs || xs.length === 0) return "–";
  if (xs.length === 1) return fmt(xs[0]);
  return `${fmt(median(xs))} (${fmt(min(xs))}–${fmt(max(xs))})`;
}

// ---- memory of a process, from /proc/<pid>/status ---------------------------------------

function statusField(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}
/** Resident set size now, in MiB. */
export const rssMiB = (pid) => statusField(pid, "VmRSS");
/** Peak resident set size since start (or since resetPeak), in MiB. */
export const peakMiB = (pid) => statusField(pid, "VmHWM");

/**
 * Resets the kernel's peak-RSS counter (VmHWM) of a process, so the next peakMiB() reads the
 * peak of what happens from now on (`echo 5 > /proc/<pid>/clear_refs`, Linux ≥ 4.0).
 */
export function resetPeak(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/**
 * Samples the summed VmRSS of some processes every intervalMs, as a cross-check of VmHWM and
 * as the fallback where clear_refs is refused.
 */
export function rssSampler(pids, intervalMs = 20) {
  let peak = 0;
  const sample = () => {
    const total = pids.reduce((sum, pid) => sum + (rssMiB(pid) || 0), 0);
    if (total > peak) peak = total;
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return peak;
    },
  };
}

/** The installed version of a package in bench/node_modules (or "?"). */
export function version(name) {
  try {
    return JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), "utf8")).version;
  } catch {
    return "?";
  }
}
