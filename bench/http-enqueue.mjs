// One-by-one enqueue, each call awaiting its reply before the next (issue 16, item 4):
// teamwork over RPC (the client's one connection), teamwork over HTTP (POST /jobs on one
// keep-alive connection over the Unix socket) with two clients, and BullMQ's add() on the
// local Redis. "HTTP" is the lean client of lib/http-post.mjs (a prebuilt request written on
// a net socket, as wrk does: HTTP's client at its best, as each peer is measured with its
// own); "HTTP node" is node:http's request() with a keep-alive Agent, kept for what a plain
// node program gets. The ratios are taken with the lean client.
//
//   node bench/http-enqueue.mjs [--n 3000] [--rounds 3] [--durability process|full]
//
// Rounds alternate the four (RPC, HTTP, HTTP node, BullMQ, RPC, ...) on a fresh daemon per
// round, as the machine is shared; each line is one round, then the medians and the ratios,
// and the CPU each side spent per call (the daemon's from /proc, 10 ms ticks; this process's
// own).
import { startTeamwork } from "./teamwork.mjs";
import * as bullmq from "./peers/bullmq.mjs";
import { median } from "./lib/util.mjs";
import { cpuSeconds } from "./lib/procstat.mjs";
import { httpPoster } from "./lib/http-post.mjs";

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const N = Number(opt("n", 3000));
const ROUNDS = Number(opt("rounds", 3));
const durability = opt("durability", "process");
const WARM = 300;

async function teamwork(way) {
  const tw = await startTeamwork({ durability });
  const http = way === "rpc" ? null : httpPoster(tw.socket, { client: way === "httpNode" ? "node" : "lean" });
  try {
    await tw.client.call("queuePause", {});
    const one = way === "rpc" ? (i) => tw.client.call("jobsEnqueue", { type: "bench-noop", payload: { i } }) : (i) => http.post({ type: "bench-noop", payload: { i } });
    for (let i = 0; i < WARM; i++) await one(i);
    const d0 = cpuSeconds(tw.pid);
    const c0 = process.cpuUsage();
    const t = performance.now();
    for (let i = 0; i < N; i++) await one(i);
    const rate = N / ((performance.now() - t) / 1000);
    const c = process.cpuUsage(c0);
    cpu[way].daemon.push(((cpuSeconds(tw.pid) - d0) * 1e6) / N);
    cpu[way].client.push((c.user + c.system) / N);
    return rate;
  } finally {
    http?.close();
    await tw.stop();
  }
}

async function bull() {
  const q = await bullmq.openQueue();
  try {
    for (let i = 0; i < WARM; i++) await q.add(i);
    const t = performance.now();
    for (let i = 0; i < N; i++) await q.add(i);
    return N / ((performance.now() - t) / 1000);
  } finally {
    await q.close();
  }
}

const redisDown = await bullmq.probe();
const rates = { rpc: [], http: [], httpNode: [], bullmq: [] };
/** CPU µs per call of the daemon (all its threads) and of this client process. */
const cpu = { rpc: { daemon: [], client: [] }, http: { daemon: [], client: [] }, httpNode: { daemon: [], client: [] } };
for (let r = 0; r < ROUNDS; r++) {
  rates.rpc.push(await teamwork("rpc"));
  rates.http.push(await teamwork("http"));
  rates.httpNode.push(await teamwork("httpNode"));
  if (!redisDown) rates.bullmq.push(await bull());
  console.log(`round ${r + 1}: RPC ${rates.rpc.at(-1).toFixed(0)}/s, HTTP ${rates.http.at(-1).toFixed(0)}/s, HTTP node ${rates.httpNode.at(-1).toFixed(0)}/s${redisDown ? "" : `, BullMQ add ${rates.bullmq.at(-1).toFixed(0)}/s`}`);
}
const m = Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, v.length ? median(v) : NaN]));
console.log(
  `median of ${ROUNDS} (n=${N}, durability ${durability}): RPC ${m.rpc.toFixed(0)}/s, HTTP ${m.http.toFixed(0)}/s (RPC/HTTP ${(m.rpc / m.http).toFixed(2)}x), HTTP node ${m.httpNode.toFixed(0)}/s (RPC/HTTP node ${(m.rpc / m.httpNode).toFixed(2)}x)` +
    (redisDown ? `; BullMQ skipped: ${redisDown}` : `, BullMQ ${m.bullmq.toFixed(0)}/s (HTTP/BullMQ ${(m.http / m.bullmq).toFixed(2)}x)`),
);
console.log(
  `CPU µs per call, median: daemon RPC ${median(cpu.rpc.daemon).toFixed(0)}, HTTP ${median(cpu.http.daemon).toFixed(0)}, HTTP node ${median(cpu.httpNode.daemon).toFixed(0)}; ` +
    `client RPC ${median(cpu.rpc.client).toFixed(0)}, HTTP ${median(cpu.http.client).toFixed(0)}, HTTP node ${median(cpu.httpNode.client).toFixed(0)}`,
);
