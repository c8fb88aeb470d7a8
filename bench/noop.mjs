// The job types every benchmark runs, loaded by the daemon through `jobModules`.
// bench-noop does nothing, so the queue's own cost is what is measured. bench-stamp returns
// the wall-clock moment its handler started (ms, sub-ms precision, comparable across
// processes), from which the bench computes enqueue-to-start latency.
export default [
  { type: "bench-noop", run: () => null },
  { type: "bench-stamp", run: () => ({ at: performance.timeOrigin + performance.now() }) },
];
