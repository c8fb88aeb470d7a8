// Small pieces shared by the reliability suites (chaos, fuzz, faults, security): a seeded
// PRNG, a raw request over the daemon's socket, a bounded raw-socket exchange, and a
// daemon process spawned directly (for starts that are meant to fail or to be killed).

import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { request } from "node:http";
import { fileURLToPath } from "node:url";
import { afterEach } from "vitest";
import type { Client } from "../../src/client/client.js";
import { waitFor } from "../helpers/wait.js";
import { DAEMON, type TestDaemon } from "../helpers/daemon.js";

/** Job types for these suites (journal). */
export const RELIABILITY_JOBS = fileURLToPath(new URL("../fixtures/reliability/jobs.mjs", import.meta.url));

/** The one seeded PRNG of the test suites (mulberry32). */
export { prng } from "../helpers/random.js";

/** A seed from the environment (to replay a run) or the default. */
export function seedFrom(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got ${raw}`);
  return n;
}

export interface RawReply {
  /** HTTP status, or null when the connection ended without one. */
  status: number | null;
  body: string;
  headers: Record<string, string | string[] | undefined>;
  /** Set when no reply came within the bound. */
  timedOut: boolean;
  error?: string;
}

/** One HTTP request on a fresh connection, bounded in time. The body's length is always declared. */
export function httpRequest(socket: string, req: { method: string; path: string; headers?: Record<string, string>; body?: string | Buffer }, timeoutMs = 10_000): Promise<RawReply> {
  const headers: Record<string, string> = { ...req.headers };
  if (req.body !== undefined && headers["transfer-encoding"] === undefined) headers["content-length"] = String(Buffer.byteLength(req.body));
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: RawReply) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    let r: ReturnType<typeof request>;
    try {
      r = request({ socketPath: socket, method: req.method, path: req.path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => done({ status: res.statusCode ?? null, body: Buffer.concat(chunks).toString("utf8"), headers: res.headers, timedOut: false }));
      res.on("error", (err) => done({ status: res.statusCode ?? null, body: Buffer.concat(chunks).toString("utf8"), headers: res.headers, timedOut: false, error: err.message }));
      });
    } catch {
      // Node's client refuses to send some of what we want to send (unescaped characters in
      // the path): write the same request by hand.
      const head = `${req.method} ${req.path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`;
      void rawExchange(socket, [Buffer.concat([Buffer.from(head, "latin1"), Buffer.from(req.body ?? "")])], { timeoutMs }).then((x) => {
        const split = x.data.indexOf("\r\n\r\n");
        resolve({ status: x.status, body: split >= 0 ? x.data.slice(split + 4) : "", headers: {}, timedOut: x.timedOut, error: x.status === null ? "closed" : undefined });
      });
      return;
    }
    const timer = setTimeout(() => {
      r.destroy();
      done({ status: null, body: "", headers: {}, timedOut: true });
    }, timeoutMs);
    r.on("error", (err: NodeJS.ErrnoException) => done({ status: null, body: "", headers: {}, timedOut: false, error: err.code ?? err.message }));
    r.end(req.body);
  });
}

export interface RawExchange {
  /** Everything the daemon wrote back. */
  data: string;
  /** The status of the first reply, if one came. */
  status: number | null;
  /** The daemon closed the connection (rather than us at the bound). */
  closedByPeer: boolean;
  timedOut: boolean;
}

/**
 * Writes `parts` on a raw connection (each after `gapMs`), then ends it (`finish: "end"`,
 * a half-close), destroys it (`"destroy"`), or keeps it open (`"keep"`) until the daemon
 * answers and closes, `timeoutMs` passes, or `signal` aborts.
 */
export function rawExchange(socket: string, parts: (string | Buffer)[], opts: { gapMs?: number; finish?: "end" | "destroy" | "keep"; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<RawExchange> {
  const { gapMs = 0, finish = "keep", timeoutMs = 5_000 } = opts;
  return new Promise((resolve) => {
    const s = connect(socket);
    const chunks: Buffer[] = [];
    let settled = false;
    let peerClosed = false;
    const done = (timedOut: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      const data = Buffer.concat(chunks).toString("latin1");
      // The first final reply (an interim "100 Continue" is skipped).
      const m = /^HTTP\/1\.[01] (?!1\d\d)(\d{3})/m.exec(data);
      resolve({ data, status: m ? Number(m[1]) : null, closedByPeer: peerClosed, timedOut });
    };
    const timer = setTimeout(() => done(true), timeoutMs);
    opts.signal?.addEventListener("abort", () => done(false), { once: true });
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("end", () => {
      peerClosed = true;
      done(false);
    });
    s.on("close", () => done(false));
    s.on("error", () => done(false));
    s.on("connect", async () => {
      for (const [i, part] of parts.entries()) {
        if (settled) return;
        if (i > 0 && gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
        if (settled || s.destroyed) return;
        s.write(part);
      }
      if (finish === "end") s.end();
      else if (finish === "destroy") done(false);
    });
  });
}

export interface SpawnedDaemon {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs dist/daemon/main.js on a home directly, its output appended to <home>/daemon.log. */
export function spawnDaemon(home: string, opts: { args?: string[]; env?: NodeJS.ProcessEnv; logFile?: string } = {}): SpawnedDaemon {
  const fd = openSync(opts.logFile ?? `${home}/daemon.log`, "a");
  const child = spawn(process.execPath, [DAEMON, "--home", home, ...(opts.args ?? [])], { stdio: ["ignore", fd, fd], env: { ...process.env, ...opts.env } });
  closeSync(fd);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on("exit", (code, signal) => r({ code, signal })));
  return { child, exited };
}

/** Resolves with the value, or rejects after ms (a bound on something that must end). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]);
}

/** True if a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Pids of every daemon process running on this home (from /proc; empty elsewhere). */
export function daemonsFor(home: string): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const args = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0");
      const at = args.indexOf("--home");
      if (args.some((a) => /daemon\/main\.js$/.test(a)) && at >= 0 && args[at + 1] === home) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** SIGKILLs every daemon on this home and waits (bounded) until they are gone. */
export async function killDaemonsFor(home: string): Promise<void> {
  for (const pid of daemonsFor(home)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  for (let i = 0; i < 200 && daemonsFor(home).length > 0; i++) await new Promise((r) => setTimeout(r, 25));
}

/**
 * A test file's daemon and its other cleanups: after each test, the daemon `get()` returns is
 * cleaned up, then whatever the test pushed onto `cleanups`, newest first.
 */
export function cleanupAfterEach(get: () => TestDaemon | undefined, reset: () => void): (() => Promise<void> | void)[] {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    try {
      await get()?.cleanup();
    } finally {
      reset();
      for (const c of cleanups.splice(0).reverse()) await c();
    }
  });
  return cleanups;
}

/** Waits for a job to reach complete, failed or cancelled, and returns it. */
export const finished = (client: Client, id: number, timeoutMs = 15_000) =>
  waitFor(
    async () => {
      const j = (await client.call("jobsGet", { id })).job;
      return ["complete", "failed", "cancelled"].includes(j.status) ? j : null;
    },
    { timeoutMs, what: `job ${id} to finish` },
  );
