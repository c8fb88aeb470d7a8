// A worker thread: microseconds per message, tens of milliseconds to start, and V8's heap
// limit for the thread turns a heap hog into ERR_WORKER_OUT_OF_MEMORY for that thread only.
// Native memory (Buffers, addons) and crashes in native code are the daemon's own.

import { Worker } from "node:worker_threads";
import type { FromWorker, WorkerData } from "../worker/protocol.js";
import type { WorkerHandle } from "./handle.js";

// From both src/queue/pool and dist/queue/pool this is the compiled worker.
const WORKER_URL = new URL("../../../dist/queue/worker/main.js", import.meta.url);

export function startThread(data: WorkerData, memoryMb: number): WorkerHandle {
  const worker = new Worker(WORKER_URL, {
    workerData: data,
    resourceLimits: { maxOldGenerationSizeMb: memoryMb },
    stdout: true,
    stderr: true,
  });
  let error: (Error & { code?: string }) | null = null;
  worker.on("error", (err) => (error = err));
  worker.unref();
  return {
    stdout: worker.stdout,
    stderr: worker.stderr,
    post: (m) => worker.postMessage(m),
    onMessage: (cb) => worker.on("message", (m: FromWorker) => cb(m)),
    onExit: (cb) =>
      worker.once("exit", (code) => {
        if (error?.code === "ERR_WORKER_OUT_OF_MEMORY") cb(`out of memory (heap limit ${memoryMb} MiB)`);
        else if (error) cb(`worker crashed: ${error.message}`);
        else cb(`worker exited with code ${code}`);
      }),
    stop: () => worker.terminate().then(() => undefined),
    explain: (message) => message,
  };
}
