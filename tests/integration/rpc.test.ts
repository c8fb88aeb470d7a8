// The RPC protocol on the daemon's socket, spoken by hand over a raw connection: the
// upgrade, calls and replies by id (overlapping), errors that keep the connection, framing
// errors that close it, a seeded stream of malformed lines that never changes stored data.

import { createConnection, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { prng } from "../helpers/random.js";
import { VERSION } from "../../src/protocol/version.js";

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon({ config: { concurrency: 1 } });
});
afterAll(async () => {
  await d?.cleanup();
});

interface Raw {
  socket: Socket;
  head: string;
  /** Resolves with the next reply line, parsed. */
  next(): Promise<{ id: unknown; status: number; body: unknown; contentType?: string }>;
  send(text: string): void;
  closed: Promise<void>;
}

/** Connects and upgrades; `upgrade` replaces the request head (to test refusals). */
function open(upgrade = "GET /rpc HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: teamwork-rpc\r\n\r\n"): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(d.paths.socket);
    socket.setEncoding("utf8");
    let buf = "";
    let head: string | null = null;
    const lines: string[] = [];
    const waiting: ((l: string) => void)[] = [];
    const closed = new Promise<void>((r) => socket.on("close", () => r()));
    const raw: Raw = {
      socket,
      head: "",
      next: () =>
        new Promise((r) => {
          const give = (l: string) => r(JSON.parse(l));
          const l = lines.shift();
          if (l !== undefined) give(l);
          else waiting.push(give);
        }),
      send: (text) => socket.write(text),
      closed,
    };
    socket.on("error", reject);
    socket.on("data", (chunk: string) => {
      buf += chunk;
      if (head === null) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        raw.head = head;
        resolve(raw);
        if (!head.startsWith("HTTP/1.1 101")) return;
      }
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const w = waiting.shift();
        if (w) w(line);
        else lines.push(line);
      }
    });
    socket.on("connect", () => socket.write(upgrade));
  });
}

/** How many jobs and tasks are stored (whatever their status: jobs may finish meanwhile). */
const counts = async () => {
  const s = await d.client.call("daemonStatus", {});
  return { jobs: Object.values(s.counts.jobs).reduce((a, b) => a + b, 0), tasks: s.counts.tasks };
};

describe("RPC", () => {
  it("upgrades with the daemon's version, answers calls by id, and keeps the connection after a 4xx", async () => {
    const c = await open();
    expect(c.head).toMatch(/^HTTP\/1\.1 101 /);
    expect(c.head.toLowerCase()).toContain(`x-teamwork-version: ${VERSION}`);
    c.send(JSON.stringify({ id: 1, call: "health", input: {} }) + "\n");
    expect(await c.next()).toMatchObject({ id: 1, status: 200, body: { ok: true, pid: d.pid } });
    c.send(JSON.stringify({ id: "two", call: "jobsEnqueue", input: { type: "noop", payload: { via: "rpc" } } }) + "\n");
    const enq = await c.next();
    expect(enq).toMatchObject({ id: "two", status: 202, body: { created: true, job: { type: "noop", payload: { via: "rpc" } } } });
    c.send(JSON.stringify({ id: 3, call: "jobsEnqueue", input: { type: "nope" } }) + "\n");
    expect(await c.next()).toMatchObject({ id: 3, status: 400, body: { error: { code: "invalid_input" } } });
    c.send(JSON.stringify({ id: 4, call: "jobsGet", input: { id: 999_999 } }) + "\n");
    expect(await c.next()).toMatchObject({ id: 4, status: 404, body: { error: { code: "not_found" } } });
    c.send(JSON.stringify({ id: 5, call: "noSuchCall", input: {} }) + "\n");
    expect(await c.next()).toMatchObject({ id: 5, status: 404 });
    c.send(JSON.stringify({ id: 6, call: "eventsStream", input: {} }) + "\n");
    expect(await c.next()).toMatchObject({ id: 6, status: 400, body: { error: { message: expect.stringMatching(/stream/) } } });
    c.send(JSON.stringify({ id: 7, call: "metrics" }) + "\n");
    const m = await c.next();
    expect(m).toMatchObject({ id: 7, status: 200, contentType: expect.stringMatching(/^text\/plain/) });
    expect(String(m.body)).toMatch(/^# HELP teamwork_/m);
    // Still open and answering.
    c.send(JSON.stringify({ id: 8, call: "jobsGet", input: { id: (enq.body as { job: { id: number } }).job.id } }) + "\n");
    expect(await c.next()).toMatchObject({ id: 8, status: 200 });
    c.socket.destroy();
  });

  it("answers overlapping calls sent in one write, each by its id", async () => {
    const c = await open();
    const n = 200;
    c.send(Array.from({ length: n }, (_, i) => JSON.stringify({ id: i, call: "jobsEnqueue", input: { type: "noop", payload: { i }, delayMs: 3_600_000 } })).join("\n") + "\n");
    const replies = await Promise.all(Array.from({ length: n }, () => c.next()));
    const byId = new Map(replies.map((r) => [r.id as number, r]));
    expect(byId.size).toBe(n);
    for (let i = 0; i < n; i++) expect(byId.get(i)).toMatchObject({ status: 202, body: { job: { payload: { i } } } });
    c.socket.destroy();
  });

  it("answers what is in flight after the client half-closes, then closes", async () => {
    const c = await open();
    c.send(JSON.stringify({ id: 1, call: "health" }) + "\n");
    c.socket.end();
    expect(await c.next()).toMatchObject({ id: 1, status: 200 });
    await c.closed;
  });

  it("refuses a line that is not a call with a 400 (id null) and closes the connection", async () => {
    for (const bad of ["{not json", "[1,2]", '"text"', "42", '{"call":"health"}', '{"id":{"x":1},"call":"health"}', `{"id":"${"x".repeat(100)}","call":"health"}`]) {
      const c = await open();
      c.send(bad + "\n");
      const r = await c.next();
      expect(r, bad).toMatchObject({ id: null, status: 400, body: { error: { code: "invalid_input" } } });
      await c.closed;
    }
    expect((await d.client.call("health", {})).ok).toBe(true);
  });

  it("refuses a line longer than the body limit with a 413 and closes", async () => {
    const before = await counts();
    const c = await open();
    c.send('{"id":1,"call":"jobsEnqueue","input":{"type":"noop","payload":"' + "a".repeat(9 * 1024 * 1024));
    const r = await c.next();
    expect(r).toMatchObject({ id: null, status: 413, body: { error: { code: "payload_too_large" } } });
    await c.closed;
    expect(await counts()).toEqual(before);
  });

  it("refuses other upgrades with a 400", async () => {
    const c = await open("GET /rpc HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n");
    expect(c.head).toMatch(/^HTTP\/1\.1 400 /);
    await c.closed;
    const c2 = await open("GET /elsewhere HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: teamwork-rpc\r\n\r\n");
    expect(c2.head).toMatch(/^HTTP\/1\.1 400 /);
    await c2.closed;
  });

  it("answers 2,000 seeded malformed calls with a 4xx each, and stores nothing", async () => {
    const seed = Number(process.env.FUZZ_SEED ?? 7_2026);
    const rand = prng(seed);
    const pick = <T,>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const junk = (): unknown =>
      pick<() => unknown>([
        () => null,
        () => rand() * 1e6,
        () => "x".repeat(Math.floor(rand() * 300)),
        () => [1, "two", null],
        () => ({ type: pick(["", "nope", "../../etc/passwd", "noop\u0000", 7]) }),
        () => ({ id: pick([-1, 0, 1.5, "1; DROP TABLE jobs", "../1"]) }),
        () => ({ jobs: pick([[], [{}], "all", [{ type: "noop", runAt: "yesterday" }]]) }),
        () => ({ type: "noop", maxAttempts: pick([0, -1, 1e9, "3"]), priority: pick(["high", 1e12]) }),
        () => ({ title: pick(["", " ", "t".repeat(10_000)]), board: pick(["", "a/b", null]) }),
        () => ({ limit: pick([0, -5, "many", 1e9]), status: pick(["done", 5]) }),
      ])();
    const calls = ["jobsEnqueue", "jobsEnqueueBatch", "jobsGet", "jobsCancel", "jobsRetry", "tasksAdd", "tasksUpdate", "tasksDelete", "schedulesSet", "uploadsAdd", "nope", "__proto__", "constructor", "toString"];
    const before = await counts();
    const c = await open();
    const n = 2000;
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(JSON.stringify({ id: i, call: pick(calls), input: junk() }));
    c.send(lines.join("\n") + "\n");
    const replies = await Promise.all(Array.from({ length: n }, () => c.next()));
    for (const r of replies) {
      expect(r.status, `seed ${seed}: ${lines[r.id as number]}`).toBeGreaterThanOrEqual(400);
      expect(r.status, `seed ${seed}: ${lines[r.id as number]}`).toBeLessThan(500);
    }
    expect(new Set(replies.map((r) => r.id)).size).toBe(n);
    c.socket.destroy();
    expect(await counts()).toEqual(before);
  });
});
