// Protocol fuzz: thousands of generated malformed requests (seeded, so a failure can be
// replayed with FUZZ_SEED) against a real daemon. Each gets a 4xx or a clean close, never
// a 5xx; the daemon keeps its pid and its data.

import { connect } from "node:net";
import { request } from "node:http";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prng } from "../helpers/random.js";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";

const SEED = Number(process.env.FUZZ_SEED ?? 5_28_2026);
const COUNT = 3000;


let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon();
  await d.client.call("tasksAdd", { title: "keep me" });
  await d.client.call("jobsEnqueue", { type: "noop", delayMs: 3_600_000 });
});
afterAll(async () => {
  await d?.cleanup();
});

type Req = { method: string; path: string; headers?: Record<string, string>; body?: string | Buffer };

function generator(rand: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const junk = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
  const str = (n: number) => Array.from({ length: n }, () => pick(["a", "é", "\u0000", "\n", '"', "\\", "%", "/", "..", "💥", "<", " "])).join("");
  const deep = (n: number): unknown => (n === 0 ? 1 : rand() < 0.5 ? [deep(n - 1)] : { a: deep(n - 1) });
  const paths = ["/tasks", "/tasks/1", "/tasks/abc", "/tasks/-1", "/tasks/99999999999999999999", "/tasks/1/done", "/tasks/..%2f..%2fetc%2fpasswd", "//jobs", "/jobs/%ff", "/jobs/1/cancel", "/jobs/batch", "/jobs/prune", "/boards", "/schedules/x/run", "/uploads", "/queue/pause", "/nope", "/" + "a".repeat(5000), "/tasks/1/../../jobs", "/jobs?status=running&status=failed", "/jobs?limit=-5", "/jobs?limit=abc", "/task-events?afterId=x", "/digest/preview?x=1"];
  const bodies: (() => string | Buffer)[] = [
    () => "{",
    () => "[]",
    () => "null",
    () => "42",
    () => JSON.stringify({ title: pick([123, null, true, [], {}, "", " ", "x".repeat(501)]) }),
    () => JSON.stringify({ titel: "typo" }),
    () => JSON.stringify({ type: pick(["", "nope", "noop;drop", str(10), 5]), payload: pick([undefined, "x", deep(40)]) }),
    () => JSON.stringify({ type: "noop", maxAttempts: pick([0, -1, 1e9, 1.5, "3"]) }),
    () => JSON.stringify({ type: "noop", runAt: pick(["yesterday", "2026-02-30T09:00:00Z", "9999-12-31T23:59:59Z", 17]) }),
    () => JSON.stringify({ jobs: pick([[], "x", Array.from({ length: 3 }, () => ({ type: 1 }))]) }),
    () => JSON.stringify(deep(200)),
    () => junk(1 + Math.floor(rand() * 300)),
    () => `{"title": "${"x".repeat(600)}"}`,
    () => JSON.stringify({ name: pick(["../etc", "a b", "", "../" + str(80)]), cron: pick(["* * *", "nope", "99 * * * * *"]) }),
    () => JSON.stringify({ path: pick(["relative.png", "/etc/shadow/x", "/dev/null", "/", str(30)]) }),
  ];
  return (): Req => {
    const kind = rand();
    if (kind < 0.05) return { method: "POST", path: "/tasks", headers: { "content-type": "application/json" }, body: JSON.stringify({ title: `fuzz ${Math.floor(rand() * 1e6)}`, board: "no-such-board" }) };
    const method = pick(["GET", "POST", "PATCH", "DELETE", "PUT", "OPTIONS", "HEAD", "TRACE"]);
    const headers: Record<string, string> = {};
    const r = rand();
    if (r < 0.7) headers["content-type"] = "application/json";
    else if (r < 0.8) headers["content-type"] = pick(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]);
    // Deleting needs no body, so a DELETE only ever names things that do not exist.
    const path = method === "DELETE" ? pick(["/tasks/99999", "/tasks/abc", "/schedules/nope", "/jobs/1", "/schedules/..%2f"]) : pick(paths);
    return { method, path, headers, body: method === "GET" || method === "HEAD" ? undefined : pick(bodies)() };
  };
}

function send(socket: string, req: Req): Promise<number> {
  // Node's client sends a DELETE or OPTIONS body without a length, which a server must then
  // read as a second (garbage) request; give every body its length so each request is one
  // well-framed HTTP message with malformed content. Raw framing abuse is tested below.
  if (req.body !== undefined) req.headers = { ...req.headers, "content-length": String(Buffer.byteLength(req.body)) };
  return new Promise((resolve) => {
    // A fresh connection per request: each malformed request stands alone.
    const r = request({ socketPath: socket, method: req.method, path: req.path, headers: req.headers, timeout: 10_000, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
      res.on("error", () => resolve(res.statusCode ?? -1));
    });
    r.on("timeout", () => r.destroy(new Error("timeout")));
    r.on("error", (err) => { if (process.env.FUZZ_DEBUG) console.log(req.method, req.path.slice(0, 60), (err as NodeJS.ErrnoException).code, err.message); resolve((err as NodeJS.ErrnoException).code === "EPIPE" || (err as NodeJS.ErrnoException).code === "ECONNRESET" ? 499 : err.message === "timeout" ? -2 : -1); });
    r.end(req.body);
  });
}

function raw(socket: string, bytes: Buffer | string, opts: { halfClose?: boolean; abortAfterMs?: number } = {}): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(socket);
    let out = "";
    s.on("data", (c) => (out += c.toString()));
    s.on("close", () => resolve(out));
    s.on("error", () => resolve(out));
    s.write(bytes);
    if (opts.halfClose) s.end();
    if (opts.abortAfterMs !== undefined) setTimeout(() => s.destroy(), opts.abortAfterMs);
    setTimeout(() => s.destroy(), 3000).unref();
  });
}

async function snapshot() {
  const tasks = await d.client.call("tasksList", {});
  const jobs = await d.client.call("jobsList", { limit: 10_000 });
  const boards = await d.client.call("boardsList", {});
  const schedules = await d.client.call("schedulesList", {});
  return createHash("sha256").update(JSON.stringify([tasks, jobs.jobs.map((j) => [j.id, j.status, j.payload]), boards, schedules.schedules.map((s) => [s.name, s.cron, s.enabled])])).digest("hex");
}

describe(`protocol fuzz (seed ${SEED})`, () => {
  it(`answers ${COUNT} malformed requests with 4xx, never crashes, changes nothing`, async () => {
    const pid = d.pid;
    const before = await snapshot();
    const next = generator(prng(SEED));
    const statuses = new Map<number, number>();
    for (let i = 0; i < COUNT; i += 10) {
      const batch = Array.from({ length: 10 }, () => next());
      const codes = await Promise.all(batch.map((r) => send(d.paths.socket, r)));
      codes.forEach((code, k) => {
        statuses.set(code, (statuses.get(code) ?? 0) + 1);
        // A read of a real route may succeed (paths like /tasks/1/../../jobs normalise to one);
        // everything else must be refused with a 4xx. The snapshot below proves nothing changed.
        const ok = (code >= 400 && code < 500) || (batch[k]!.method === "GET" && code >= 200 && code < 300);
        if (!ok) {
          const r = batch[k]!;
          throw new Error(`seed ${SEED}, request ${i + k}: ${r.method} ${r.path.slice(0, 80)} body ${String(r.body).slice(0, 80)} → ${code}`);
        }
      });
    }
    // Connection-level abuse: garbage, half a request then close, slow partial headers.
    const garbage = await raw(d.paths.socket, Buffer.from([0, 1, 2, 255, 10, 13, 10, 13]));
    expect(garbage).toMatch(/^HTTP\/1\.1 400/);
    await raw(d.paths.socket, "POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"title\":", { halfClose: true });
    await raw(d.paths.socket, "GET /tasks HTTP/1.1\r\nHo", { abortAfterMs: 200 });
    await raw(d.paths.socket, "POST /jobs HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n", { halfClose: true });

    expect(d.pid).toBe(pid);
    expect((await d.client.call("health", {})).pid).toBe(pid);
    expect(await snapshot()).toBe(before);
    const bad = d.log().split("\n").filter((l) => /request\.failed|request\.crashed|daemon\.uncaught_exception|daemon\.unhandled_rejection/.test(l));
    expect(bad).toEqual([]);
    // Valid requests still work after all that.
    const { task } = await d.client.call("tasksAdd", { title: "still works" });
    expect(task.title).toBe("still works");
    expect([...statuses.keys()].every((c) => c >= 200 && c < 500)).toBe(true);
    expect([...statuses.entries()].filter(([c]) => c >= 400).reduce((n, [, v]) => n + v, 0)).toBeGreaterThan(COUNT / 2);
  }, 120_000);
});
