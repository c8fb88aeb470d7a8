// Runs jobs inside a worker, a thread (main.ts) or a child process (process.ts) alike: loads
// the job modules, then runs the jobs the pool hands over one at a time, in the order they
// came, reporting through the typed messages in protocol.ts. The pool may hand over several
// short jobs at once: they wait here, so the next one starts without a round trip to the
// daemon. Anything that goes wrong in a handler becomes a "failed" message; anything worse
// (exit, OOM, a signal, a hang) is seen by the pool from outside.

import type { Json } from "../../protocol/types.js";
import type { JobContext } from "../../jobs/define.js";
import { loadRegistry } from "../registry.js";
import { boardPortAt, filesPortAt } from "../../store/index.js";
import { jobFiles } from "./files.js";
import type { FromWorker, StartMessage, ToWorker, WorkerData } from "./protocol.js";
import { depthOf, MAX_JSON_DEPTH } from "../../protocol/validate.js";
import { MAX_RESULT_BYTES, resultTooLarge } from "../../protocol/routes.js";

type Start = StartMessage;

/** Starts loading the job modules; returns what to do with each message from the pool. */
export function startRunner(data: WorkerData, post: (m: FromWorker) => void): (msg: Exclude<ToWorker, { t: "init" }>) => void {
  let current: { jobId: number; controller: AbortController } | null = null;
  const queue: Start[] = [];
  /** Jobs cancelled while they waited here: they end at their turn without running. */
  const cancelled = new Map<number, string>();
  let draining = false;
  const pendingCheckpoints = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  let checkpointSeq = 0;
  /** One port for every job this worker runs: its connection is opened once, on first use. */
  const board = boardPortAt(data.store);
  /** Likewise for the files kept in the store (ctx.files). */
  const files = filesPortAt(data.store);

  const registryReady = loadRegistry(data.modules).then(
    (r) => {
      post({ t: "ready" });
      return r;
    },
    (err: Error) => {
      post({ t: "broken", message: err.message });
      return null;
    },
  );

  const onMessage = (msg: Exclude<ToWorker, { t: "init" }>): void => {
    if (msg.t === "cancel") {
      if (current?.jobId === msg.jobId) current.controller.abort(new Error(msg.reason));
      else if (queue.some((q) => q.jobId === msg.jobId)) cancelled.set(msg.jobId, msg.reason);
      return;
    }
    if (msg.t === "checkpointed") {
      const p = pendingCheckpoints.get(msg.seq);
      pendingCheckpoints.delete(msg.seq);
      if (msg.error === null) p?.resolve();
      else p?.reject(new Error(`checkpoint not stored: ${msg.error}`));
      return;
    }
    for (const job of msg.jobs) queue.push(job);
    if (!draining) void drain();
  };

  async function drain(): Promise<void> {
    draining = true;
    try {
      for (let next = queue.shift(); next; next = queue.shift()) await run(next);
    } finally {
      draining = false;
    }
  }

  async function run(msg: Start): Promise<void> {
    const { jobId, attempt } = msg;
    let t0 = performance.now();
    const controller = new AbortController();
    const early = cancelled.get(jobId);
    if (early !== undefined) {
      cancelled.delete(jobId);
      controller.abort(new Error(early));
    }
    current = { jobId, controller };
    let last: { progress: number; message: string | null } | null = null;
    const ctx: JobContext = {
      jobId,
      attempt,
      signal: controller.signal,
      progress(percent, message) {
        const p = Math.max(0, Math.min(100, Math.round(Number(percent) || 0)));
        const m = message === undefined ? (last?.message ?? null) : String(message).slice(0, 500);
        if (last && last.progress === p && last.message === m) return;
        last = { progress: p, message: m };
        post({ t: "progress", jobId, attempt, progress: p, message: m });
      },
      log(message) {
        post({ t: "log", jobId, attempt, message: String(message).slice(0, 4000) });
      },
      board,
      files: jobFiles(files, { jobId, attempt }, data.settings.fileMaxBytes),
      paths: data.paths,
      settings: data.settings,
      state: msg.state,
      checkpoint(state) {
        const seq = ++checkpointSeq;
        let json: Json;
        try {
          if (depthOf(state, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) throw new Error(`it nests deeper than ${MAX_JSON_DEPTH} levels`);
          json = JSON.parse(JSON.stringify(state ?? null)) as Json;
        } catch (err) {
          return Promise.reject(new Error(`checkpoint is not JSON: ${(err as Error).message}`));
        }
        ctx.state = json;
        return new Promise<void>((resolve, reject) => {
          pendingCheckpoints.set(seq, { resolve, reject });
          post({ t: "checkpoint", jobId, attempt, seq, state: json });
        });
      },
    };
    try {
      const registry = await registryReady;
      if (!registry) throw Object.assign(new Error("job modules failed to load"), { permanent: true });
      const type = registry.types.get(msg.type);
      if (!type) throw Object.assign(new Error(`no handler for job type "${msg.type}"`), { permanent: true });
      // Cancelled before the handler could even listen: do not start it.
      if (controller.signal.aborted) throw controller.signal.reason;
      t0 = performance.now(); // the handler's own time, without the modules' first load
      const result = await type.def.run(msg.payload, ctx);
      post({ t: "done", jobId, attempt, result: storable(result), ms: performance.now() - t0 });
    } catch (err) {
      const e = err as { message?: unknown; permanent?: unknown } | null;
      const message = e && typeof e.message === "string" && e.message ? e.message : String(err);
      post({ t: "failed", jobId, attempt, message: message.slice(0, 4000), permanent: e?.permanent === true, ms: performance.now() - t0 });
    } finally {
      if (current?.jobId === jobId) current = null;
    }
  }

  return onMessage;
}

/**
 * The handler's result as the daemon will store it, or a permanent error: not JSON, nested
 * deeper than a payload may be (it would not survive there), or over MAX_RESULT_BYTES.
 * Measured here, on the JSON text, so a huge result is never posted to the daemon.
 */
function storable(result: unknown): Json {
  if (result === undefined) return null;
  let text: string;
  try {
    if (depthOf(result, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) throw new Error(`it nests deeper than ${MAX_JSON_DEPTH} levels`);
    const out: string | undefined = JSON.stringify(result);
    // A function or a symbol serialises to nothing.
    if (out === undefined) throw new Error(`a ${typeof result} is not a value`);
    text = out;
  } catch (err) {
    throw Object.assign(new Error(`the job's result is not JSON: ${(err as Error).message}`), { permanent: true });
  }
  // A UTF-16 length of n is at most 3n bytes: short texts are not measured.
  const bytes = text.length * 3 > MAX_RESULT_BYTES ? Buffer.byteLength(text) : 0;
  if (bytes > MAX_RESULT_BYTES) throw Object.assign(new Error(resultTooLarge(bytes)), { permanent: true });
  return JSON.parse(text) as Json;
}
