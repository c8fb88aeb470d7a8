// `cleanup`: deletes files older than a threshold from <home>/uploads/tmp, and nothing
// else. It walks with lstat and never follows a symbolic link: a link is an entry of the
// folder like any file (removed when old), its target is never touched.

import { lstat, readdir, rmdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { defineJob, type JobContext } from "./define.js";

export interface CleanupResult {
  folder: string;
  olderThanMs: number;
  files: number;
  bytes: number;
  kept: number;
}

function parsePayload(payload: unknown): { olderThanMs?: number } {
  const p = (payload ?? {}) as Record<string, unknown>;
  if (typeof p !== "object" || Array.isArray(p)) throw new Error('payload must be an object like {"olderThanMs": 86400000}');
  for (const k of Object.keys(p)) if (k !== "olderThanMs") throw new Error(`unknown field "${k}" (cleanup takes olderThanMs)`);
  if (p.olderThanMs !== undefined && (typeof p.olderThanMs !== "number" || !Number.isInteger(p.olderThanMs) || p.olderThanMs < 0)) {
    throw new Error("olderThanMs must be a whole number of milliseconds, 0 or more");
  }
  return p as { olderThanMs?: number };
}

export async function sweep(folder: string, cutoff: number, signal?: AbortSignal): Promise<{ files: number; bytes: number; kept: number }> {
  const out = { files: 0, bytes: 0, kept: 0 };
  let entries;
  try {
    entries = await readdir(folder, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return out;
    throw err;
  }
  for (const e of entries) {
    if (signal?.aborted) throw signal.reason;
    const path = join(folder, e.name);
    let st;
    try {
      st = await lstat(path);
    } catch {
      continue; // gone meanwhile
    }
    if (st.isDirectory()) {
      const inner = await sweep(path, cutoff, signal);
      out.files += inner.files;
      out.bytes += inner.bytes;
      out.kept += inner.kept;
      if (inner.kept === 0 && st.mtimeMs < cutoff) await rmdir(path).catch(() => {});
      else if (inner.kept > 0) out.kept++;
      continue;
    }
    if (st.mtimeMs < cutoff) {
      try {
        await unlink(path);
        out.files++;
        out.bytes += st.isSymbolicLink() ? 0 : st.size;
      } catch {
        out.kept++;
      }
    } else out.kept++;
  }
  return out;
}

async function run(payload: unknown, ctx: JobContext): Promise<CleanupResult> {
  const { olderThanMs = ctx.settings.cleanupMaxAgeMs } = parsePayload(payload);
  const folder = ctx.paths.uploadsTmp;
  ctx.progress(5, `sweeping ${folder}`);
  const r = await sweep(folder, Date.now() - olderThanMs, ctx.signal);
  ctx.progress(100, `removed ${r.files} ${r.files === 1 ? "file" : "files"} (${r.bytes} bytes)`);
  return { folder, olderThanMs, ...r };
}

export default defineJob({
  type: "cleanup",
  maxAttempts: 1,
  validate(payload) {
    parsePayload(payload);
  },
  run,
});
