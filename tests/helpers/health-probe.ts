// Asks a daemon for health every `everyMs` from a worker thread of its own, over one RPC
// connection: what it measures is the daemon's answer time, not the wait of a busy client
// thread (one that also reads event streams and parses big lists, as the benches do).
//
// One implementation for the reliability suite (tests/reliability/hostile-clients.test.ts) and
// the bench (bench/hostile.mjs loads this file through bench/lib/load-ts.mjs).
//
// Given the daemon's pid (Linux), each answer is also split by what the daemon's main thread
// did meanwhile (its /proc schedstat, read as the call is sent and as its answer is read):
// ran on a core (the daemon's own work, /health's included), waited for a core (the
// machine's other threads had them), or neither (blocked: a disk write's sync, a page fault).
// On a shared machine the first is what the daemon's code decides; the wall time is not.
import { Worker } from "node:worker_threads";

const PROBE = `
const { connect } = require("node:net");
const { parentPort, workerData } = require("node:worker_threads");
const { readFileSync } = require("node:fs");
const { socket: path, everyMs, pid } = workerData;
const times = [];
const splits = [];
const stat = pid ? \`/proc/\${pid}/task/\${pid}/schedstat\` : null;
/** [ms on a core, ms waiting for one] of the daemon's main thread so far, or null. */
const sched = () => {
  if (!stat) return null;
  try {
    const [run, wait] = readFileSync(stat, "utf8").split(" ");
    return [Number(run) / 1e6, Number(wait) / 1e6];
  } catch {
    return null;
  }
};
let schedAt = null;
let stopping = false;
parentPort.on("message", () => { stopping = true; });
const s = connect(path);
let buf = "";
let upgraded = false;
let sentAt = 0;
let id = 0;
const ask = () => {
  if (stopping) { s.destroy(); parentPort.postMessage({ times, splits }); return; }
  schedAt = sched();
  sentAt = performance.now();
  s.write(JSON.stringify({ id: ++id, call: "health" }) + "\\n");
};
s.on("connect", () => s.write("GET /rpc HTTP/1.1\\r\\nhost: x\\r\\nconnection: Upgrade\\r\\nupgrade: teamwork-rpc\\r\\n\\r\\n"));
s.on("data", (chunk) => {
  buf += chunk.toString("utf8");
  if (!upgraded) {
    const end = buf.indexOf("\\r\\n\\r\\n");
    if (end < 0) return;
    buf = buf.slice(end + 4);
    upgraded = true;
    ask();
  }
  let nl;
  while ((nl = buf.indexOf("\\n")) >= 0) {
    const line = buf.slice(0, nl);
    buf = buf.slice(nl + 1);
    if (JSON.parse(line).id === id) {
      const ms = performance.now() - sentAt;
      times.push(ms);
      const now = schedAt && sched();
      if (now) splits.push({ ms, cpuMs: now[0] - schedAt[0], waitMs: now[1] - schedAt[1] });
      setTimeout(ask, everyMs);
    }
  }
});
s.on("error", (err) => { parentPort.postMessage({ error: String(err) }); });
`;

/** One answer's time, and what the daemon's main thread did meanwhile (healthProbe's `pid`). */
export interface ProbeSplit {
  /** The answer's time, as `stop()` gives it. */
  ms: number;
  /** On a core: the daemon's own work (and the answer's). */
  cpuMs: number;
  /** Runnable, waiting for a core. The rest of `ms` the thread was blocked (or the probe's own thread waited). */
  waitMs: number;
}

export interface HealthProbe {
  /** Stops probing; resolves to the answer times in ms. */
  stop(): Promise<number[]>;
  /** After stop(): each answer split by what the daemon's main thread did (empty without a pid). */
  splits(): ProbeSplit[];
  /** Ends the probe's thread at once (a cleanup after a failure). */
  terminate(): Promise<void>;
}

/** Starts probing the daemon on `socket` every `everyMs`; `pid`: the daemon's, to split each answer's time (ProbeSplit). */
export function healthProbe(socket: string, everyMs = 50, pid?: number): HealthProbe {
  const w = new Worker(PROBE, { eval: true, workerData: { socket, everyMs, pid: pid ?? null } });
  let splits: ProbeSplit[] = [];
  const done = new Promise<number[]>((resolve, reject) => {
    w.once("message", (m: { times: number[]; splits: ProbeSplit[] } | { error: string }) => {
      if ("error" in m) return reject(new Error(m.error));
      splits = m.splits;
      resolve(m.times);
    });
    w.once("error", reject);
  });
  return {
    async stop() {
      w.postMessage("stop");
      const times = await done;
      await w.terminate();
      return times;
    },
    splits: () => splits,
    async terminate() {
      await w.terminate();
    },
  };
}
