// Finds each peer's best concurrency for workload B (process N queued no-ops): runs B at
// several concurrencies, one worker process each time, and prints the rates and the best.
// The figure it finds is kept as BEST_CONCURRENCY in peers/<id>.mjs (with the run that found
// it in a comment), and run.mjs measures B at it beside concurrency 1 and 3.
//
//   node bench/concurrency.mjs [--n 2000] [--runs 1] [--levels 1,3,10,50] [--only bullmq,graphile-worker]
//
// Needs the bench's own dependencies (`npm install --prefix bench`) and the peers' services,
// as run.mjs does.
import { parseArgs } from "node:util";
import { peerSystem, liveWorkers } from "./lib/peers.mjs";
import { fmt, median } from "./lib/util.mjs";

const PEERS = ["plainjob", "liteque", "bullmq", "graphile-worker"];
const { values } = parseArgs({
  options: {
    n: { type: "string", default: "2000" },
    runs: { type: "string", default: "1" },
    levels: { type: "string", default: "1,3,10,50" },
    only: { type: "string", default: PEERS.join(",") },
  },
});
const n = Number(values.n);
const runs = Number(values.runs);
const levels = values.levels.split(",").map(Number);
const only = values.only.split(",").map((s) => s.trim());
for (const id of only) if (!PEERS.includes(id)) throw new Error(`--only: unknown peer "${id}" (known: ${PEERS.join(", ")})`);

const mods = [];
try {
  for (const id of only) {
    const mod = await import(`./peers/${id}.mjs`);
    const why = await mod.probe();
    if (why) {
      console.error(`${mod.label} skipped: ${why}`);
      continue;
    }
    mods.push(mod);
    const sys = peerSystem(mod, 3);
    const rates = {};
    for (let r = 0; r < runs; r++) {
      for (const c of levels) {
        const { rate } = await sys.process(n, c);
        (rates[c] ??= []).push(rate);
        console.error(`${mod.label.padEnd(16)} concurrency ${String(c).padStart(3)}: ${fmt(rate)}/s`);
      }
    }
    const best = levels.reduce((a, c) => (median(rates[c]) > median(rates[a]) ? c : a), levels[0]);
    console.log(`${mod.label}: ${levels.map((c) => `${c} → ${fmt(median(rates[c]))}/s`).join(", ")}; best ${best} (BEST_CONCURRENCY in peers/${mod.id}.mjs is ${mod.BEST_CONCURRENCY ?? "not set"})`);
  }
} finally {
  for (const w of liveWorkers) w.kill("SIGKILL");
  for (const mod of mods) {
    if (mod.sweep) await mod.sweep();
    if (mod.dropSchema) await mod.dropSchema();
  }
}
process.exit(0);
