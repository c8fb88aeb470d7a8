// The job type every benchmark runs: does nothing, so the queue's own cost is what is measured.
export default { type: "bench-noop", run: () => null };
