// A quick look at teamwork alone: enqueue rate, processing rate, enqueue-to-start latency.
// `node bench/quick.mjs [N]`. The full comparison with peers is bench/run.mjs.
import { startTeamwork, completions } from "./teamwork.mjs";

const N = Number(process.argv[2] ?? 5000);
const pct = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

for (const durability of ["full", "process"]) {
  const tw = await startTeamwork({ concurrency: 3, durability });
  let t = performance.now();
  for (let i = 0; i < 2000; i++) await tw.client.call("jobsEnqueue", { type: "bench-noop", delayMs: 3_600_000 });
  const oneByOne = 2000 / ((performance.now() - t) / 1000);
  await tw.client.call("jobsList", { limit: 1 });
  t = performance.now();
  const batch = 1000;
  for (let i = 0; i < N; i += batch) await tw.client.call("jobsEnqueueBatchIds", { jobs: Array.from({ length: batch }, () => ({ type: "bench-noop", delayMs: 3_600_000 })) });
  const bulk = N / ((performance.now() - t) / 1000);
  await tw.stop();

  const tw2 = await startTeamwork({ concurrency: 3, durability });
  const c = completions(tw2.client, N);
  await c.opened;
  t = performance.now();
  for (let i = 0; i < N; i += batch) await tw2.client.call("jobsEnqueueBatchIds", { jobs: Array.from({ length: batch }, () => ({ type: "bench-noop" })) });
  await c.finished;
  const process_ = N / ((performance.now() - t) / 1000);

  const lat = [];
  const starts = new Map();
  const stream = tw2.client.stream("eventsStream", {}, (e) => {
    if (e.type === "job:status" && e.data.job.status === "running" && starts.has(e.data.job.id)) lat.push(performance.now() - starts.get(e.data.job.id));
  });
  await stream.opened;
  for (let i = 0; i < 300; i++) {
    const t0 = performance.now();
    const { job } = await tw2.client.call("jobsEnqueue", { type: "bench-noop" });
    starts.set(job.id, t0);
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, 200));
  stream.close();
  await tw2.stop();
  console.log(
    `${durability.padEnd(8)} enqueue one-by-one ${oneByOne.toFixed(0)}/s, bulk ${bulk.toFixed(0)}/s; process ${N} no-ops ${process_.toFixed(0)}/s; enqueue→start p50 ${pct(lat, 50).toFixed(2)} ms p95 ${pct(lat, 95).toFixed(2)} ms p99 ${pct(lat, 99).toFixed(2)} ms (n=${lat.length})`,
  );
}
