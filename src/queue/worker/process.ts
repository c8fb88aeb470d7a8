// The entry of a worker process (a job type with isolation "process"): the pool's messages
// arrive on the IPC channel, the first one ("init") with the job modules and settings,
// which a thread gets as workerData. The jobs run in runner.ts, as in a thread.
//
// The process must not outlive the daemon: when the channel closes (the daemon stopped or
// died) it exits at once, whatever its job is doing. A job stuck in a synchronous loop never
// sees that event; for it the pool starts this process with a parent-death signal where
// the system offers one (pool/process.ts).

import type { FromWorker, ToWorker } from "./protocol.js";
import { startRunner } from "./runner.js";

if (!process.send) {
  console.error("teamwork worker process: started without an IPC channel (the daemon starts it)");
  process.exit(2);
}

const post = (m: FromWorker): void => {
  // A closed channel means the daemon is gone: the disconnect handler below ends us.
  if (process.connected) process.send!(m);
};
let onMessage: ReturnType<typeof startRunner> | null = null;

process.on("message", (msg: ToWorker) => {
  if (msg.t === "init") onMessage ??= startRunner(msg.data, post);
  else onMessage?.(msg);
});
process.on("disconnect", () => process.exit(0));
