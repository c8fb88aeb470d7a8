// Asks a daemon for health every `everyMs` from a worker thread of its own, over one RPC
// connection: what it measures is the daemon's answer time, not the wait of a busy client
// thread (one that also reads event streams and parses big lists, as the benches do).
//
// One implementation for the reliability suite (tests/reliability/hostile-clients.test.ts) and
// the bench (bench/hostile.mjs loads this file through bench/lib/load-ts.mjs).
import { Worker } from "node:worker_threads";

const PROBE = `
const { connect } = require("node:net");
const { parentPort, workerData } = require("node:worker_threads");
const { socket: path, everyMs } = workerData;
const times = [];
let stopping = false;
parentPort.on("message", () => { stopping = true; });
const s = connect(path);
let buf = "";
let upgraded = false;
let sentAt = 0;
let id = 0;
const ask = () => {
  if (stopping) { s.destroy(); parentPort.postMessage(times); return; }
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
      times.push(performance.now() - sentAt);
      setTimeout(ask, everyMs);
    }
  }
});
s.on("error", (err) => { parentPort.postMessage({ error: String(err) }); });
`;

export interface HealthProbe {
  /** Stops probing; resolves to the answer times in ms. */
  stop(): Promise<number[]>;
  /** Ends the probe's thread at once (a cleanup after a failure). */
  terminate(): Promise<void>;
}

/** Starts probing the daemon on `socket` every `everyMs`. */
export function healthProbe(socket: string, everyMs = 50): HealthProbe {
  const w = new Worker(PROBE, { eval: true, workerData: { socket, everyMs } });
  const done = new Promise<number[]>((resolve, reject) => {
    w.once("message", (m: number[] | { error: string }) => (Array.isArray(m) ? resolve(m) : reject(new Error(m.error))));
    w.once("error", reject);
  });
  return {
    async stop() {
      w.postMessage("stop");
      const times = await done;
      await w.terminate();
      return times;
    },
    async terminate() {
      await w.terminate();
    },
  };
}
