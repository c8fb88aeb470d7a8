// The socket API over raw HTTP on the Unix socket: the version header, JSON errors for
// every kind of bad request, and a daemon that keeps serving afterwards with nothing changed.

import { execFile, execFileSync } from "node:child_process";
import { request, type IncomingHttpHeaders } from "node:http";
import { connect } from "node:net";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";

const VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

let d: TestDaemon;
let tasksBefore: number;
beforeAll(async () => {
  d = await startDaemon();
  await d.client.call("tasksAdd", { title: "already here" });
  tasksBefore = (await d.client.call("tasksList", {})).tasks.length;
});
afterAll(async () => {
  await d?.cleanup();
});

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: unknown;
}

/** One HTTP request on the daemon's socket. */
function http(method: string, path: string, opts: { headers?: Record<string, string | number>; body?: string | Buffer; chunks?: Buffer[]; headersOnly?: boolean } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const req = request({ socketPath: d.paths.socket, method, path, headers: opts.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("close", () => {
        if (!settled) reject(new Error(`the response to ${method} ${path} was cut off`));
      });
      res.on("end", () => {
        settled = true;
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown = undefined;
        try {
          json = JSON.parse(text);
        } catch {
          // not JSON; the test decides whether that is wrong
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        if (opts.headersOnly) req.destroy();
      });
    });
    // A refused body is read to its end (lingering close), so sending all of it is no error.
    req.on("error", (err) => {
      if (!settled) reject(err);
    });
    if (opts.headersOnly) {
      // Send the headers and wait for the answer without sending the body they announce.
      req.flushHeaders();
    } else if (opts.chunks) {
      // One chunk at a time, all of them, answered or not (as curl sends a file).
      const chunks = [...opts.chunks];
      const next = () => {
        const c = chunks.shift();
        if (c) req.write(c, next);
        else req.end();
      };
      next();
    } else req.end(opts.body);
  });
}

const jsonHeaders = (body: string) => ({ "content-type": "application/json", "content-length": Buffer.byteLength(body) });
const post = (path: string, body: string, headers: Record<string, string | number> = jsonHeaders(body)) => http("POST", path, { body, headers });

/** Asserts a JSON error reply: status, code, the version header; returns the message. */
function expectError(r: Reply, status: number, code: string): string {
  expect(r.status, r.text).toBe(status);
  expect(r.headers["content-type"]).toMatch(/^application\/json/);
  expect(r.headers["x-teamwork-version"]).toBe(VERSION);
  const body = r.json as { error: { code: string; message: string } };
  expect(body).toEqual({ error: expect.objectContaining({ code, message: expect.any(String) }) });
  expect(Object.keys(body)).toEqual(["error"]);
  return body.error.message;
}

async function taskCount(): Promise<number> {
  return (await d.client.call("tasksList", {})).tasks.length;
}

describe("well-formed requests", () => {
  it("every response carries x-teamwork-version", async () => {
    const replies = await Promise.all([
      http("GET", "/health"),
      http("GET", "/daemon/status"),
      http("GET", "/tasks"),
      http("GET", "/boards"),
      http("GET", "/nope"),
      post("/tasks", "{}"),
    ]);
    for (const r of replies) expect(r.headers["x-teamwork-version"], `${r.status} ${r.text}`).toBe(VERSION);
    expect(replies[0]!.json).toEqual({ ok: true, version: VERSION, pid: d.pid });
  });

  it("POST /tasks answers 201 with the task; GET /tasks/:id reads it back", async () => {
    const body = JSON.stringify({ title: "over the socket", assignee: "Raw@Example.com", dueDate: "2026-05-05" });
    const created = await post("/tasks", body);
    expect(created.status).toBe(201);
    const { task } = created.json as { task: { id: number; title: string; assignee: string; dueDate: string } };
    try {
      expect(task).toMatchObject({ title: "over the socket", assignee: "raw@example.com", dueDate: "2026-05-05", board: "default" });
      const got = await http("GET", `/tasks/${task.id}`);
      expect(got.status).toBe(200);
      expect((got.json as { task: unknown }).task).toEqual(task);
    } finally {
      await d.client.call("tasksRemove", { id: task.id });
    }
  });
});

describe("bad requests get JSON errors", () => {
  it("unknown route: 404", async () => {
    expect(expectError(await http("GET", "/nope"), 404, "not_found")).toMatch(/unknown route GET \/nope/);
    expectError(await http("POST", "/tasks/1/explode", { body: "{}" }), 404, "not_found");
  });

  it("wrong method: 405 with an Allow header", async () => {
    const r = await http("PUT", "/tasks", { body: "{}", headers: jsonHeaders("{}") });
    expect(expectError(r, 405, "method_not_allowed")).toMatch(/PUT is not allowed on \/tasks/);
    expect(r.headers.allow).toBe("GET, POST");
    const del = await http("DELETE", "/boards");
    expectError(del, 405, "method_not_allowed");
    expect(del.headers.allow).toMatch(/GET/);
  });

  it("a target is read by the URL rules (dot segments resolved, an empty query is none), and a route's answer is the same on every request", async () => {
    const health = await http("GET", "/jobs/../health");
    expect(health.status, health.text).toBe(200);
    expect((await http("GET", "/%2e%2e/jobs/%2E/../health?")).status).toBe(200);
    expect(expectError(await http("GET", "/jobs/./nope/.."), 404, "not_found")).toMatch(/unknown route GET \/jobs\/$/);
    // "/tasks" is answered from what the first request matched: the same 405 and Allow each time.
    for (let i = 0; i < 3; i++) {
      const r = await http("PUT", "/tasks", { body: "{}", headers: jsonHeaders("{}") });
      expect(expectError(r, 405, "method_not_allowed")).toMatch(/PUT is not allowed on \/tasks/);
      expect(r.headers.allow).toBe("GET, POST");
    }
    // An empty query on a POST is no query string (the body is read and judged); a non-empty one is refused.
    expect(expectError(await post("/tasks?", "{}"), 400, "invalid_input")).not.toMatch(/query string/);
    expect(expectError(await post("/tasks?x", "{}"), 400, "invalid_input")).toMatch(/not a query string/);
  });

  it("malformed JSON body: 400", async () => {
    expect(expectError(await post("/tasks", '{"title": "x",'), 400, "invalid_input")).toMatch(/not valid JSON/);
    expectError(await post("/tasks", "title=x"), 400, "invalid_input");
  });

  it("a body that is a JSON array (or another non-object): 400", async () => {
    expect(expectError(await post("/tasks", '[{"title":"x"}]'), 400, "invalid_input")).toMatch(/must be a JSON object/);
    expectError(await post("/tasks", '"x"'), 400, "invalid_input");
    expectError(await post("/tasks", "null"), 400, "invalid_input");
  });

  it("unknown field: 400 with a did-you-mean", async () => {
    const message = expectError(await post("/tasks", JSON.stringify({ titel: "x" })), 400, "invalid_input");
    expect(message).toBe('titel: unknown field, did you mean "title"?');
    const patch = expectError(await http("PATCH", "/tasks/1", { body: '{"stauts":"done"}', headers: jsonHeaders('{"stauts":"done"}') }), 400, "invalid_input");
    expect(patch).toMatch(/did you mean "status"/);
  });

  it("wrong types and bad values: 400 naming the field", async () => {
    expect(expectError(await post("/tasks", JSON.stringify({ title: 5 })), 400, "invalid_input")).toMatch(/^title: expected a string/);
    expect(expectError(await post("/tasks", JSON.stringify({ title: "x", dueDate: "2026-02-30" })), 400, "invalid_input")).toMatch(/dueDate: "2026-02-30" is not a real date/);
    expect(expectError(await post("/tasks", JSON.stringify({ title: "" })), 400, "invalid_input")).toMatch(/title: must not be empty/);
    expect(expectError(await post("/tasks", JSON.stringify({ title: "x", assignee: "nope" })), 400, "invalid_input")).toMatch(/assignee: "nope" is not a valid email/);
    expect(expectError(await post("/tasks", JSON.stringify({ title: "x", board: "nope" })), 404, "not_found")).toMatch(/board "nope" not found/);
  });

  it("non-JSON content type: 415", async () => {
    const body = JSON.stringify({ title: "x" });
    const r = await post("/tasks", body, { "content-type": "text/plain", "content-length": Buffer.byteLength(body) });
    expect(expectError(r, 415, "unsupported_media_type")).toMatch(/must be application\/json, got text\/plain/);
    expectError(await post("/tasks", "title=x", { "content-type": "application/x-www-form-urlencoded" }), 415, "unsupported_media_type");
    // A charset parameter is fine.
    const ok = await post("/boards", JSON.stringify({ name: "charset" }), { "content-type": "application/json; charset=utf-8" });
    expect(ok.status).toBe(201);
  });

  it("an oversized body with a Content-Length: 413", async () => {
    // Judged on the declared length alone, before any of the body is read.
    const r = await http("POST", "/tasks", { headersOnly: true, headers: { "content-type": "application/json", "content-length": 8 * 1024 * 1024 + 1 } });
    expect(expectError(r, 413, "payload_too_large")).toMatch(/larger than 8388608 bytes/);
  });

  it("a body of exactly 8 MiB is read (and judged on its content)", async () => {
    const body = Buffer.alloc(8 * 1024 * 1024, 0x20);
    body.write('{"title":"x","titel":1}', 0);
    const r = await http("POST", "/tasks", { body, headers: jsonHeaders(body.toString()) });
    expect(expectError(r, 400, "invalid_input")).toMatch(/titel: unknown field/);
  });

  it("__proto__ is an unknown field like any other, in a query and in a body", async () => {
    expect(expectError(await http("GET", "/tasks?__proto__=1"), 400, "invalid_input")).toMatch(/__proto__: unknown field/);
    const body = '{"title":"x","__proto__":{"admin":true}}';
    expect(expectError(await http("POST", "/tasks", { body, headers: jsonHeaders(body) }), 400, "invalid_input")).toMatch(/__proto__: unknown field/);
  });

  it("an oversized chunked body: 413, and the client sending all of it gets the answer, not a reset", async () => {
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    const r = await http("POST", "/tasks", { chunks: Array.from({ length: 9 }, () => chunk), headers: { "content-type": "application/json", "transfer-encoding": "chunked" } });
    expectError(r, 413, "payload_too_large");
  });

  it("an oversized body with a Content-Length, sent whole: 413, not a reset", async () => {
    const body = Buffer.alloc(9 * 1024 * 1024, 0x20);
    const r = await http("POST", "/tasks", { chunks: [body], headers: { "content-type": "application/json", "content-length": body.length } });
    expect(expectError(r, 413, "payload_too_large")).toMatch(/larger than 8388608 bytes/);
  });

  it("after a 413 the daemon still reads the rest of the body, and the connection serves the next request", async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const s = connect(d.paths.socket);
      let text = "";
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      const framed = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]);
      let phase: "body" | "more" | "next" = "body";
      s.on("data", (c: Buffer) => {
        text += c.toString();
        if (phase === "body" && /\r\n\r\n\{.*\}$/s.test(text)) {
          // The 413 is here; the client, as one that had not looked, goes on sending.
          phase = "more";
          s.write(framed);
          s.write(framed, () => {
            phase = "next";
            s.write("0\r\n\r\nGET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
          });
        }
      });
      s.on("error", reject);
      s.on("close", () => resolve(text));
      s.on("connect", () => {
        s.write("POST /tasks HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n");
        for (let i = 0; i < 9; i++) s.write(framed);
      });
    });
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
    expect(text).toMatch(/HTTP\/1\.1 200 OK[^]*"ok":true/);
  });

  it("a refused body that never ends is dropped up to a bound, then its connection is cut", async () => {
    const { answer, sent } = await new Promise<{ answer: string; sent: number }>((resolve, reject) => {
      const s = connect(d.paths.socket);
      let answer = "";
      let sent = 0;
      let closed = false;
      const chunk = Buffer.alloc(256 * 1024, 0x20);
      const framed = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]);
      const pump = () => {
        while (!closed && sent < 256 * 1024 * 1024) {
          sent += chunk.length;
          if (!s.write(framed)) return void s.once("drain", pump);
        }
      };
      s.on("data", (c: Buffer) => (answer += c.toString()));
      s.on("error", () => {}); // the cut shows as EPIPE or ECONNRESET on our writes
      s.on("close", () => {
        closed = true;
        resolve({ answer, sent });
      });
      s.on("connect", () => {
        s.write("POST /tasks HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n");
        pump();
      });
      setTimeout(() => reject(new Error(`still open after sending ${sent} bytes`)), 60_000).unref();
    });
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    // Cut once 16 MiB past the 8 MiB limit were dropped (plus what the socket buffers held),
    // long before the 256 MiB this client would send.
    expect(sent).toBeGreaterThan(8 * 1024 * 1024);
    expect(sent).toBeLessThan(40 * 1024 * 1024);
    expect((await http("GET", "/health")).status).toBe(200);
  });

  it("a query parameter given twice: 400", async () => {
    expect(expectError(await http("GET", "/tasks?status=todo&status=done"), 400, "invalid_input")).toMatch(/query parameter "status" is given more than once/);
  });

  it("bad query values: 400", async () => {
    expect(expectError(await http("GET", "/tasks?status=dnoe"), 400, "invalid_input")).toMatch(/did you mean "done"/);
    expect(expectError(await http("GET", "/tasks?limit=abc"), 400, "invalid_input")).toMatch(/limit: expected a whole number/);
    expect(expectError(await http("GET", "/tasks?colour=red"), 400, "invalid_input")).toMatch(/colour: unknown field/);
  });

  it("invalid id in the path: 400; a well-formed unknown id: 404", async () => {
    expect(expectError(await http("GET", "/tasks/abc"), 400, "invalid_input")).toMatch(/id: expected a whole number, got "abc"/);
    expect(expectError(await http("GET", "/tasks/0"), 400, "invalid_input")).toMatch(/id: must be between 1 and/);
    expectError(await http("GET", "/tasks/1.5"), 400, "invalid_input");
    expectError(await http("DELETE", "/tasks/-1"), 400, "invalid_input");
    expectError(await http("GET", "/tasks/%E0%A4%A"), 400, "invalid_input");
    expect(expectError(await http("GET", "/tasks/999999"), 404, "not_found")).toMatch(/task 999999 not found/);
  });

  it("the path id repeated in the body: 400", async () => {
    const body = JSON.stringify({ id: 1 });
    expect(expectError(await post("/tasks/1/done", body), 400, "invalid_input")).toMatch(/"id" is given in the path/);
  });

  it("a query string on a POST is refused with 400 (docs/protocol.md, Requests)", async () => {
    const body = JSON.stringify({ title: "query on a post" });
    const r = await post("/tasks?board=web", body);
    expectError(r, 400, "invalid_input");
  });

  it("a garbage line on a raw socket gets a 400 and the daemon keeps serving", async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const s = connect(d.paths.socket);
      let text = "";
      s.on("data", (c: Buffer) => (text += c.toString()));
      s.on("end", () => resolve(text));
      s.on("close", () => resolve(text));
      s.on("error", reject);
      s.write("THIS IS NOT HTTP AT ALL\r\n\r\n");
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    const body = answer.slice(answer.indexOf("\r\n\r\n") + 4);
    expect(JSON.parse(body)).toEqual({ error: { code: "invalid_input", message: "malformed HTTP request" } });
    const health = await http("GET", "/health");
    expect(health.status).toBe(200);
  });

  it("a connection dropped mid-request does not hurt the daemon", async () => {
    await new Promise<void>((resolve, reject) => {
      const s = connect(d.paths.socket, () => {
        s.write('POST /tasks HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"title":');
        s.destroy();
        resolve();
      });
      s.on("error", reject);
    });
    expect((await http("GET", "/health")).status).toBe(200);
  });

  it("after all of these the daemon answers and no task was created", async () => {
    const health = await http("GET", "/health");
    expect(health.status).toBe(200);
    expect(health.json).toEqual({ ok: true, version: VERSION, pid: d.pid });
    expect(await taskCount()).toBe(tasksBefore);
    expect(d.process.exitCode).toBeNull();
  });
});

describe("SSE", () => {
  it("GET /jobs/:id/events for an unknown id answers 404 JSON", async () => {
    const r = await http("GET", "/jobs/999999/events", { headers: { accept: "text/event-stream" } });
    expect(expectError(r, 404, "not_found")).toMatch(/job 999999 not found/);
    expectError(await http("GET", "/jobs/abc/events"), 400, "invalid_input");
  });

  it("GET /jobs/:id/events for a job streams its status first", async () => {
    const { job } = await d.client.call("jobsEnqueue", { type: "noop" });
    const first = await new Promise<{ headers: IncomingHttpHeaders; block: string }>((resolve, reject) => {
      const req = request({ socketPath: d.paths.socket, path: `/jobs/${job.id}/events`, headers: { accept: "text/event-stream" } }, (res) => {
        let buf = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          buf += c;
          const m = /(event: job:status\ndata: .*)\n\n/.exec(buf);
          if (m) {
            resolve({ headers: res.headers, block: m[1]! });
            req.destroy();
          }
        });
      });
      req.on("error", (err) => (err.message === "aborted" ? undefined : reject(err)));
      req.end();
    });
    expect(first.headers["content-type"]).toBe("text/event-stream");
    expect(first.headers["x-teamwork-version"]).toBe(VERSION);
    const data = JSON.parse(first.block.split("\ndata: ")[1]!) as { job: { id: number } };
    expect(data.job.id).toBe(job.id);
  });
});

const hasCurl = (() => {
  try {
    execFileSync("which", ["curl"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

function curl(...args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile("curl", ["-sS", "--unix-socket", d.paths.socket, "-w", "\n%{http_code}", ...args], (err, stdout) => {
      const lines = stdout.trimEnd().split("\n");
      const code = Number(lines.pop());
      resolve({ code: err && !code ? -1 : code, stdout: lines.join("\n") });
    });
  });
}

describe.skipIf(!hasCurl)("curl --unix-socket", () => {
  it("GET /health", async () => {
    const r = await curl("http://localhost/health");
    expect(r.code).toBe(200);
    expect(JSON.parse(r.stdout)).toEqual({ ok: true, version: VERSION, pid: d.pid });
  });

  it("POST /tasks with a JSON content type creates a task; curl -d alone gets 415", async () => {
    const refused = await curl("-d", '{"title":"from curl"}', "http://localhost/tasks");
    expect(refused.code).toBe(415);
    const r = await curl("-H", "content-type: application/json", "-d", '{"title":"from curl"}', "http://localhost/tasks");
    expect(r.code).toBe(201);
    const { task } = JSON.parse(r.stdout) as { task: { id: number; title: string } };
    expect(task.title).toBe("from curl");
    expect((await d.client.call("tasksGet", { id: task.id })).task.title).toBe("from curl");
  });
});

// Plain requests are answered without node's HTTP server (src/daemon/plain-request.ts), the
// rest by it; a connection moves to node's server at its first request that is not plain.
// Either way a client sees the same: replies in order, keep-alive, and the connection
// closed after an error once the request was read, kept after one refused before.
describe("one keep-alive connection", () => {
  /** A raw connection: send(bytes) then replies(n) for the next n replies (read by content-length); closed() once the daemon closes it. */
  function connection() {
    const s = connect(d.paths.socket);
    let buffered = "";
    let closed = false;
    const waiters: (() => void)[] = [];
    const wake = () => waiters.splice(0).forEach((w) => w());
    s.on("data", (c: Buffer) => {
      buffered += c.toString("latin1");
      wake();
    });
    s.on("close", () => {
      closed = true;
      wake();
    });
    const take = (): { status: number; head: string; body: string } | null => {
      const end = buffered.indexOf("\r\n\r\n");
      if (end < 0) return null;
      const head = buffered.slice(0, end);
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
      if (buffered.length < end + 4 + length) return null;
      const body = buffered.slice(end + 4, end + 4 + length);
      buffered = buffered.slice(end + 4 + length);
      return { status: Number(head.slice(9, 12)), head, body };
    };
    return {
      send: (text: string) => s.write(text),
      async replies(n: number) {
        const out: { status: number; head: string; body: string }[] = [];
        while (out.length < n) {
          const r = take();
          if (r) out.push(r);
          else if (closed) throw new Error(`closed after ${out.length} of ${n} replies: ${JSON.stringify(out.map((o) => o.status))}`);
          else await new Promise<void>((w) => waiters.push(w));
        }
        return out;
      },
      async closed() {
        while (!closed) await new Promise<void>((w) => waiters.push(w));
      },
      isClosed: () => closed,
      destroy: () => s.destroy(),
    };
  }
  const get = (path: string) => `GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`;
  const postTask = (title: string) => {
    const body = JSON.stringify({ title });
    return `POST /tasks HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
  };

  it("answers one by one and pipelined, in order, before and after a request that node's server takes (a chunked body)", async () => {
    const c = connection();
    c.send(postTask("one"));
    const [created] = await c.replies(1);
    expect(created!.status).toBe(201);
    expect(created!.head).toMatch(/\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5$/);
    const { task } = JSON.parse(created!.body) as { task: { id: number } };
    c.send(get(`/tasks/${task.id}`) + get("/health") + postTask("two"));
    expect((await c.replies(3)).map((r) => r.status)).toEqual([200, 200, 201]);
    const chunked = '{"title":"three"}';
    c.send(`POST /tasks HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n${chunked.length.toString(16)}\r\n${chunked}\r\n0\r\n\r\n`);
    c.send(get("/health"));
    const after = await c.replies(2);
    expect(after.map((r) => r.status)).toEqual([201, 200]);
    expect(JSON.parse(after[0]!.body)).toMatchObject({ task: { title: "three" } });
    c.send(postTask("four"));
    expect((await c.replies(1))[0]!.status).toBe(201);
    expect(c.isClosed()).toBe(false);
    c.destroy();
  });

  it("keeps the connection after a GET refused on its input, and closes it after an error once the request was read", async () => {
    const c = connection();
    c.send(get("/jobs/abc"));
    const [refused] = await c.replies(1);
    expect(refused!.status).toBe(400);
    expect(refused!.head).toMatch(/\r\nConnection: keep-alive\r\n/);
    c.send(get("/jobs/999999"));
    const [missing] = await c.replies(1);
    expect(missing!.status).toBe(404);
    expect(missing!.head).toMatch(/\r\nconnection: close\r\n/);
    await c.closed();
  });

  it("closes after a request that asks it to (Connection: close)", async () => {
    const c = connection();
    c.send("GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    const [r] = await c.replies(1);
    expect(r!.status).toBe(200);
    expect(r!.head).toMatch(/\r\nConnection: close$/);
    await c.closed();
  });
});
