// CPU time of processes and of the machine, from /proc (Linux), for the scale-out bench's
// profile: where the time of a throughput run went (each daemon, the server's backends, idle).

import { readFileSync } from "node:fs";

/** Clock ticks per second of /proc's times (USER_HZ: 100 on Linux). */
const HZ = 100;

/** CPU seconds (user + system) a process has used, or null if it is gone. */
export function cpuSeconds(pid) {
  try {
    // Fields after the command (which may hold spaces) start after the last ")".
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / HZ; // utime, stime (fields 14 and 15)
  } catch {
    return null;
  }
}

/** The machine's CPU counters: busy and total seconds summed over every CPU. */
export function machineCpu() {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0) / HZ;
  const idle = (f[3] + (f[4] ?? 0)) / HZ; // idle + iowait
  return { busy: total - idle, total };
}

/** Sums cpuSeconds over pids (missing ones count 0). */
export const cpuOfAll = (pids) => pids.reduce((s, p) => s + (cpuSeconds(p) ?? 0), 0);
