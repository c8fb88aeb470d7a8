// Fan-out: what many event-stream watchers cost the daemon (issue 18 item 3). Drains N
// queued jobs (each with a 4 KiB payload, which events must not carry) with 0 watchers, then
// with W watchers each following /events and reading everything; and once with S stalled
// watchers that never read. Prints the drain time, the CPU time of the daemon's main thread
// during it (the steadier figure on a shared machine), the daemon's peak RSS and /health's
// worst.
//
//   npm run build && node bench/watchers.mjs [N=2000] [W=200] [S=3]
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { startTeamwork } from "./teamwork.mjs";
import { resolvePaths } from "../dist/config/paths.js";
import { peakMiB, resetPeak, rssMiB, sleep, until } from "./lib/util.mjs";

const N = Number(process.argv[2] ?? 2000);
const W = Number(process.argv[3] ?? 200);
const S = Number(process.argv[4] ?? 3);
const payload = { blob: "p".repeat(4096) };

/**
 * CPU time of the daemon's main thread so far, in ms (utime + stime of its task, in clock
 * ticks of 10 ms): steadier than the wall time of a drain on a machine that others share.
 */
function mainThreadCpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function watcher(socket, { stalled = false } = {}) {
  let bytes = 0;
  const req = request({ socketPath: socket, path: "/events", headers: { accept: "text/event-stream" } });
  const opened = new Promise((resolve) =>
    req.on("response", (res) => {
      if (stalled) res.pause();
      else res.on("data", (c) => (bytes += c.length));
      resolve();
    }),
  );
  req.on("error", () => {});
  req.end();
  return { opened, close: () => req.destroy(), get bytes() { return bytes; } };
}

async function run(label, { watchers = 0, stalled = 0 }) {
  const tw = await startTeamwork({ concurrency: 3, durability: "full" });
  try {
    await tw.client.call("queuePause", {});
    for (let i = 0; i < N; i += 1000) await tw.client.call("jobsEnqueueBatchIds", { jobs: Array.from({ length: Math.min(1000, N - i) }, () => ({ type: "bench-noop", payload })) });
    const socket = resolvePaths({ home: tw.home }).socket;
    const ws = [];
    for (let i = 0; i < watchers; i++) ws.push(watcher(socket));
    for (let i = 0; i < stalled; i++) ws.push(watcher(socket, { stalled: true }));
    await Promise.all(ws.map((w) => w.opened));
    const idle = rssMiB(tw.pid);
    resetPeak(tw.pid);
    let worstHealth = 0;
    let draining = true;
    const probe = (async () => {
      while (draining) {
        const t = performance.now();
        await tw.client.call("health", {});
        worstHealth = Math.max(worstHealth, performance.now() - t);
        await sleep(50);
      }
    })();
    const cpu0 = mainThreadCpuMs(tw.pid);
    const t0 = performance.now();
    await tw.client.call("queueResume", {});
    await until(async () => (await tw.client.call("jobsList", { status: "pending", limit: 1 })).jobs.length === 0 && (await tw.client.call("jobsList", { status: "running", limit: 1 })).jobs.length === 0, { intervalMs: 20 });
    const drainMs = performance.now() - t0;
    const cpuMs = mainThreadCpuMs(tw.pid) - cpu0;
    draining = false;
    await probe;
    const read = ws.reduce((a, w) => a + w.bytes, 0);
    console.log(`${label.padEnd(28)} drain ${drainMs.toFixed(0).padStart(6)} ms (main thread CPU ${cpuMs.toFixed(0).padStart(5)} ms), daemon RSS ${idle.toFixed(1)} → peak ${peakMiB(tw.pid).toFixed(1)} MiB, worst /health ${worstHealth.toFixed(1)} ms, watchers read ${(read / 1e6).toFixed(1)} MB`);
    ws.forEach((w) => w.close());
  } finally {
    await tw.stop();
  }
}

await run("no watchers", {});
await run(`${W} watchers`, { watchers: W });
await run(`${S} stalled watchers`, { stalled: S });
