// A worker process, for job types with isolation "process": a child running
// dist/queue/worker/process.js, speaking the thread's protocol over its IPC channel.
//
// Memory cap: RLIMIT_DATA, set by `sh -c 'ulimit -d'` before node starts. Since Linux 4.7
// it counts every private writable mapping (malloc, Buffers, V8's heap pages) but not
// address space merely reserved, which V8 does by the gigabyte: node starts with 48 MiB of
// it, whereas under RLIMIT_AS (`ulimit -v`) of 256 or 512 MiB node dies at start. Past the
// cap an allocation fails: a Buffer throws in the handler ("Array buffer allocation failed"),
// native code usually aborts (SIGABRT). A cgroup v2 memory.max would count page cache too
// and let the OOM killer decide; it needs a delegated cgroup, which this host lacks (its
// cgroup v2 hierarchy has no memory controller), so it is not used.
//
// Orphans: the child exits when its IPC channel closes (the daemon stopped or died), and
// where util-linux's setpriv exists it also gets SIGKILL from the kernel when the daemon
// dies (PR_SET_PDEATHSIG), which reaches a job stuck in a synchronous loop too.

import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FromWorker, WorkerData } from "../worker/protocol.js";
import type { WorkerHandle } from "./handle.js";

// From both src/queue/pool and dist/queue/pool this is the compiled entry.
const ENTRY = fileURLToPath(new URL("../../../dist/queue/worker/process.js", import.meta.url));

/** How long a worker process has to exit after SIGTERM before it gets SIGKILL. */
export const TERM_GRACE_MS = 2_000;

/** `sh -c` script: the cap (KiB, soft and hard), then node in the same process. */
const CAP_SCRIPT = 'ulimit -d "$1" && shift && exec "$@"';

export interface ProcessIsolationInfo {
  /** How the memory cap is enforced. */
  memoryCap: "RLIMIT_DATA";
  /** What ends a worker process whose daemon died. */
  orphanGuard: "pdeathsig+ipc" | "ipc";
}

function onPath(command: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return join(dir, command);
    } catch {
      // not here
    }
  }
  return null;
}

let setpriv: string | null | undefined;
const setprivPath = () => (setpriv === undefined ? (setpriv = onPath("setpriv")) : setpriv);

export function processIsolationInfo(): ProcessIsolationInfo {
  return { memoryCap: "RLIMIT_DATA", orphanGuard: setprivPath() ? "pdeathsig+ipc" : "ipc" };
}

/** Why a worker process ended, for the job that was in it. */
export function describeExit(code: number | null, signal: NodeJS.Signals | null, capMb: number): string {
  if (signal === "SIGKILL" || signal === "SIGABRT" || signal === "SIGTRAP") return `worker process killed by ${signal} (memory cap ${capMb} MiB?)`;
  if (signal === "SIGSEGV" || signal === "SIGBUS" || signal === "SIGILL") return `worker process killed by ${signal} (a crash in native code)`;
  if (signal) return `worker process killed by ${signal}`;
  return `worker process exited with code ${code}`;
}

const MEMORY_ERROR = /Array buffer allocation failed|out of memory|Cannot allocate memory|ENOMEM/i;

export function startProcess(data: WorkerData, memoryMb: number): WorkerHandle {
  const node = [process.execPath, `--max-old-space-size=${memoryMb}`, ENTRY];
  const capped = ["sh", "-c", CAP_SCRIPT, "teamwork-worker", String(memoryMb * 1024), ...node];
  const guard = setprivPath();
  const argv = guard ? [guard, "--pdeathsig", "KILL", "--", ...capped] : capped;
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe", "ipc"] });
  child.unref();
  child.channel?.unref();
  // One end however it ends: an exit, or a spawn that failed (no pid, and maybe no exit).
  const exited = new Promise<string>((resolve) => {
    child.once("exit", (code, signal) => resolve(describeExit(code, signal, memoryMb)));
    child.on("error", (err) => {
      if (child.pid === undefined) resolve(`worker process could not start: ${err.message}`);
    });
  });
  child.send({ t: "init", data });
  let stopping: Promise<void> | null = null;
  return {
    stdout: child.stdout!,
    stderr: child.stderr!,
    post: (m) => {
      if (child.connected) child.send(m);
    },
    onMessage: (cb) => child.on("message", (m: FromWorker) => cb(m)),
    onExit: (cb) => void exited.then(cb),
    stop() {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
      stopping ??= (async () => {
        child.kill("SIGTERM");
        const kill = setTimeout(() => child.kill("SIGKILL"), TERM_GRACE_MS);
        await exited;
        clearTimeout(kill);
      })();
      return stopping;
    },
    explain: (message) => (MEMORY_ERROR.test(message) ? `${message} (memory cap ${memoryMb} MiB)` : message),
  };
}
