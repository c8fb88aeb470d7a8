// The job type of bench/scale-out.mjs's latency workload, loaded by its daemons beside noop.mjs:
// so-stamp returns the wall-clock moment its handler started (as bench-stamp) and the process
// it ran in, so that a job enqueued on one daemon and run on another is seen as such.
export default [{ type: "so-stamp", run: () => ({ at: performance.timeOrigin + performance.now(), pid: process.pid }) }];
