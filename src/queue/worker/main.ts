// The entry of a worker thread: the pool's messages arrive on parentPort, the job modules
// and settings in workerData. The jobs run in runner.ts.

import { parentPort, workerData } from "node:worker_threads";
import type { FromWorker, ToWorker, WorkerData } from "./protocol.js";
import { startRunner } from "./runner.js";

const port = parentPort!;
const onMessage = startRunner(workerData as WorkerData, (m: FromWorker) => port.postMessage(m));
port.on("message", (msg: ToWorker) => {
  if (msg.t !== "init") onMessage(msg);
});
