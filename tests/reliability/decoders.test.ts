// Every stream decoder, with every chunk boundary: a character cut across two reads must
// arrive whole. Each test splits multi-byte text ("é日本🎉", 4-byte emoji, long lines) at
// every byte offset, on real sockets, pipes and files. Where the split must land in two
// separate reads, the first piece goes out with a small call (or event) whose answer proves
// the reader consumed that piece before the rest is written: no timing is assumed.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, renameSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import { createServer as createHttpServer, type ServerResponse } from "node:http";
import { createConnection, createServer as createNetServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "../../src/client/client.js";
import { RpcConnection } from "../../src/client/rpc.js";
import { resolvePaths } from "../../src/config/paths.js";
import { allJobs } from "../helpers/jobs.js";
import { BIN } from "../helpers/cli.js";
import { FIXTURE_JOBS, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { prng } from "../helpers/random.js";
import { waitFor } from "../helpers/wait.js";

/** Two-, three- and four-byte characters, a joined emoji and a line separator. */
const TEXT = "é日本🎉 😀 🧑‍💻 ü\u2028ß";

/** Multi-byte text of about `bytes` bytes from a seeded mix (JSON-safe, no newline). */
function mixedText(bytes: number, seed: number): string {
  const rand = prng(seed);
  const pieces = ["é", "日本", "🎉", "😀", "a", " ", "ß", "🧑‍💻", "\u2028", "€"];
  let s = "";
  for (let n = 0; n < bytes; ) {
    const piece = pieces[Math.floor(rand() * pieces.length)]!;
    s += piece;
    n += Buffer.byteLength(piece);
  }
  return s;
}

/** The byte offsets of `text`'s UTF-8 inside `line`'s: [start, end]. */
function byteRange(line: string, text: string): [number, number] {
  const start = Buffer.from(line).indexOf(Buffer.from(text));
  if (start < 0) throw new Error("text not in line");
  return [start, start + Buffer.byteLength(text)];
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/** A raw RPC connection that sends bytes and waits for replies by id (decoded whole, by line). */
interface RawRpc {
  socket: Socket;
  send(bytes: Buffer | string): Promise<void>;
  reply(id: number | string | null): Promise<{ id: unknown; status: number; body: unknown }>;
  closed: Promise<void>;
}

function openRpc(socketPath: string): Promise<RawRpc> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const got = new Map<string, { id: unknown; status: number; body: unknown }>();
    const waiting = new Map<string, (r: { id: unknown; status: number; body: unknown }) => void>();
    const key = (id: unknown) => JSON.stringify(id);
    const rpc: RawRpc = {
      socket,
      send: (bytes) => new Promise((r) => socket.write(bytes, () => r())),
      reply: (id) =>
        new Promise((r) => {
          const have = got.get(key(id));
          if (have) {
            got.delete(key(id));
            r(have);
          } else waiting.set(key(id), r);
        }),
      closed: new Promise((r) => socket.on("close", () => r())),
    };
    socket.on("error", reject);
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!upgraded) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        if (!buf.subarray(0, end).toString("latin1").startsWith("HTTP/1.1 101 ")) return reject(new Error(buf.toString()));
        upgraded = true;
        buf = buf.subarray(end + 4);
        resolve(rpc);
      }
      let nl: number;
      while ((nl = buf.indexOf(0x0a)) >= 0) {
        const msg = JSON.parse(buf.subarray(0, nl).toString("utf8")) as { id: unknown; status: number; body: unknown };
        buf = buf.subarray(nl + 1);
        const w = waiting.get(key(msg.id));
        if (w) {
          waiting.delete(key(msg.id));
          w(msg);
        } else got.set(key(msg.id), msg);
      }
    });
    socket.on("connect", () => socket.write("GET /rpc HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: teamwork-rpc\r\n\r\n"));
  });
}

/**
 * Sends `line` cut at byte `at`: the first piece goes out behind a health call, and the rest
 * only once that call is answered, so the daemon has read the first piece on its own.
 */
async function sendSplit(rpc: RawRpc, line: Buffer, at: number, pingId: string): Promise<void> {
  await rpc.send(Buffer.concat([Buffer.from(JSON.stringify({ id: pingId, call: "health" }) + "\n"), line.subarray(0, at)]));
  expect((await rpc.reply(pingId)).status).toBe(200);
  await rpc.send(line.subarray(at));
}

/** Runs the CLI binary and keeps its output as bytes (decoded once, at the end). */
function runBin(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; stdout: () => Buffer; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: "1", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on("data", (c: Buffer) => out.push(c));
  child.stderr!.on("data", (c: Buffer) => err.push(c));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((r) =>
    child.on("close", (code) => r({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") })),
  );
  return { child, stdout: () => Buffer.concat(out), done };
}

describe("the daemon's RPC reader", () => {
  let d: TestDaemon;
  let jobsDir: string;
  beforeAll(async () => {
    jobsDir = mkdtempSync(join(tmpdir(), "tw-decoders-jobs-"));
    // Writes each piece (base64) to stdout or stderr and waits until the daemon took it, so
    // every piece reaches the pool as a chunk of its own.
    writeFileSync(
      join(jobsDir, "pieces.mjs"),
      `export default [{ type: "print-pieces", maxAttempts: 1, run: async (payload) => {
        for (const p of payload.pieces) {
          const out = p.stream === "stderr" ? process.stderr : process.stdout;
          await new Promise((r) => out.write(Buffer.from(p.b64, "base64"), r));
        }
        return { ok: true };
      } }];\n`,
    );
    d = await startDaemon({ config: { concurrency: 1, jobModules: [FIXTURE_JOBS, join(jobsDir, "pieces.mjs")] } });
  });
  afterAll(async () => {
    await d?.cleanup();
    rmSync(jobsDir, { recursive: true, force: true });
  });

  it("stores a call's text intact when the line is cut at every byte offset inside it", async () => {
    const rpc = await openRpc(d.paths.socket);
    const line = JSON.stringify({ id: 1, call: "jobsEnqueue", input: { type: "noop", payload: { text: TEXT }, delayMs: 3_600_000 } }) + "\n";
    const [from, to] = byteRange(line, JSON.stringify(TEXT).slice(1, -1));
    for (let at = from; at <= to; at++) {
      const id = 1000 + at;
      const bytes = Buffer.from(line.replace('"id":1,', `"id":${id},`));
      await sendSplit(rpc, bytes, at + String(id).length - 1, `p${at}`);
      const r = (await rpc.reply(id)) as { status: number; body: { job: { id: number; payload: { text: string } } } };
      expect(r.status, `cut at byte ${at}`).toBe(202);
      expect(r.body.job.payload.text, `cut at byte ${at}`).toBe(TEXT);
      const stored = await d.client.call("jobsGet", { id: r.body.job.id });
      expect(stored.job.payload, `cut at byte ${at}`).toEqual({ text: TEXT });
    }
    rpc.socket.destroy();
  });

  it("stores every payload of a batch intact when the line is cut at every byte offset of one", async () => {
    const rpc = await openRpc(d.paths.socket);
    const texts = Array.from({ length: 5 }, (_, i) => `${i} ${TEXT} ${mixedText(200, i)}`);
    const batch = (id: number) => JSON.stringify({ id, call: "jobsEnqueueBatch", input: { jobs: texts.map((text) => ({ type: "noop", payload: { text }, delayMs: 3_600_000 })) } }) + "\n";
    const [from, to] = byteRange(batch(1), TEXT);
    for (let at = from; at <= to; at++) {
      const id = 2000 + at;
      await sendSplit(rpc, Buffer.from(batch(id)), at + String(id).length - 1, `b${at}`);
      const r = (await rpc.reply(id)) as { status: number; body: { jobs: { job: { id: number; payload: { text: string } } }[] } };
      expect(r.status, `cut at byte ${at}`).toBe(202);
      expect(r.body.jobs.map((j) => j.job.payload.text), `cut at byte ${at}`).toEqual(texts);
    }
    rpc.socket.destroy();
  });

  it("stores 2,000 payloads of one batch intact when it arrives in 7-byte pieces", async () => {
    const rpc = await openRpc(d.paths.socket);
    const texts = Array.from({ length: 2000 }, (_, i) => `${i} ${TEXT}`);
    const line = Buffer.from(JSON.stringify({ id: 1, call: "jobsEnqueueBatchIds", input: { jobs: texts.map((text) => ({ type: "noop", payload: { text }, delayMs: 3_600_000 })) } }) + "\n");
    for (let at = 0; at < line.length; at += 7) {
      await rpc.send(line.subarray(at, at + 7));
      await tick();
    }
    const r = (await rpc.reply(1)) as { status: number; body: { ids: number[] } };
    expect(r.status).toBe(202);
    const stored = new Map((await allJobs(d.client, { type: "noop", status: "pending" })).map((j) => [j.id, j.payload as { text: string }]));
    const broken = r.body.ids.filter((id, i) => stored.get(id)?.text !== texts[i]);
    expect(broken).toEqual([]);
    rpc.socket.destroy();
  });

  it("counts the line limit in bytes: a line of 3-byte characters over it is refused", async () => {
    const rpc = await openRpc(d.paths.socket);
    // 2.9 million characters, 8.7 MB: under the limit in characters, over it in bytes.
    await rpc.send('{"id":1,"call":"jobsEnqueue","input":{"type":"noop","payload":"' + "日".repeat(2_900_000));
    expect(await rpc.reply(null)).toMatchObject({ status: 413, body: { error: { code: "payload_too_large" } } });
    await rpc.closed;
  });

  it("round-trips `teamwork enqueue TYPE --data` with 100 KB of multi-byte text (both ways)", async () => {
    // Four runs shift the text by one byte each, so the socket's read boundaries fall at
    // every position inside a 4-byte character in one of them.
    for (let pad = 0; pad < 4; pad++) {
      const text = "a".repeat(pad) + mixedText(100_000, pad);
      const r = await runBin(["enqueue", "noop", "--data", JSON.stringify({ text }), "--in", "1h", "--json"], { TEAMWORK_HOME: d.home }).done;
      expect(r.code, r.stderr).toBe(0);
      const job = JSON.parse(r.stdout) as { id: number; payload: { text: string } };
      expect(job.payload.text === text, `pad ${pad}: the reply differs`).toBe(true);
      const stored = await d.client.call("jobsGet", { id: job.id });
      expect((stored.job.payload as { text: string }).text === text, `pad ${pad}: the stored payload differs`).toBe(true);
    }
  });

  it("reads an HTTP body that arrives one byte at a time intact", async () => {
    const body = Buffer.from(JSON.stringify({ type: "noop", payload: { text: TEXT }, delayMs: 3_600_000 }));
    const socket = createConnection(d.paths.socket);
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    const closed = new Promise<void>((r) => socket.on("close", () => r()));
    await new Promise<void>((r) => socket.on("connect", () => r()));
    socket.write(`POST /jobs HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`);
    for (let i = 0; i < body.length; i++) {
      await new Promise<void>((r) => socket.write(body.subarray(i, i + 1), () => r()));
      await tick();
    }
    await closed;
    const reply = Buffer.concat(chunks).toString("utf8");
    expect(reply).toMatch(/^HTTP\/1\.1 202 /);
    expect((JSON.parse(reply.slice(reply.indexOf("\r\n\r\n") + 4)) as { job: { payload: unknown } }).job.payload).toEqual({ text: TEXT });
  });

  it("keeps a worker's multi-byte output lines whole when they are written in pieces", async () => {
    const short = `short ${TEXT}\n`;
    const long = `long ${mixedText(6000, 9)}\n`;
    const huge = `huge ${mixedText(20_000, 10)}\n`;
    const pieces: { stream?: string; b64: string }[] = [];
    const bytes = (s: string) => Buffer.from(s);
    // The short line one byte at a time: a cut at every offset.
    for (const b of bytes(short)) pieces.push({ b64: Buffer.from([b]).toString("base64") });
    // The long line in 997-byte pieces, the huge one in 4093-byte pieces on stderr.
    for (let i = 0; i < bytes(long).length; i += 997) pieces.push({ b64: bytes(long).subarray(i, i + 997).toString("base64") });
    for (let i = 0; i < bytes(huge).length; i += 4093) pieces.push({ stream: "stderr", b64: bytes(huge).subarray(i, i + 4093).toString("base64") });
    const { job } = await d.client.call("jobsEnqueue", { type: "print-pieces", payload: { pieces } });
    const logs = await waitFor(
      async () => {
        const got = (await d.client.call("jobsLogs", { id: job.id })).logs.map((l) => l.message);
        return got.some((m) => m.startsWith("huge")) && got.some((m) => m.startsWith("long")) && got.some((m) => m.startsWith("short")) ? got : null;
      },
      { what: "the worker's lines in the job's log" },
    );
    expect(logs).toContain(short.trimEnd());
    expect(logs).toContain(long.trimEnd());
    expect(logs.filter((m) => m.includes("\uFFFD"))).toEqual([]);
    expect(logs).toHaveLength(3); // no line cut in two
    const cut = logs.find((m) => m.startsWith("huge"))!;
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(8192);
    expect(huge.startsWith(cut)).toBe(true); // cut between two characters
  });
});

describe("the client's decoders", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tw-decoders-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A server on a Unix socket in `dir`, closed (with its connections) at the end of the test. */
  async function listen<S extends Server>(server: S, name: string): Promise<{ path: string; close(): Promise<void> }> {
    const path = join(dir, name);
    await new Promise<void>((r) => server.listen(path, () => r()));
    return {
      path,
      close: () =>
        new Promise<void>((r) => {
          (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
          server.close(() => r());
        }),
    };
  }

  it("RPC replies: text intact when the upgrade answer and a reply are cut at every byte offset", async () => {
    const conns: Socket[] = [];
    const calls: { id: number; socket: Socket }[] = [];
    const server = createNetServer((s) => {
      conns.push(s);
      let buf = Buffer.alloc(0);
      let upgraded = false;
      s.on("data", (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (!upgraded) {
          const end = buf.indexOf("\r\n\r\n");
          if (end < 0) return;
          upgraded = true;
          buf = buf.subarray(end + 4);
        }
        let nl: number;
        while ((nl = buf.indexOf(0x0a)) >= 0) {
          calls.push({ id: (JSON.parse(buf.subarray(0, nl).toString("utf8")) as { id: number }).id, socket: s });
          buf = buf.subarray(nl + 1);
        }
      });
    });
    const srv = await listen(server, "rpc.sock");
    const head = Buffer.from("HTTP/1.1 101 Switching Protocols\r\nupgrade: teamwork-rpc\r\nconnection: Upgrade\r\nx-teamwork-version: 9.9.9\r\n\r\n");
    const reply = (id: number) => Buffer.from(JSON.stringify({ id, status: 200, body: { text: TEXT } }) + "\n");
    // The upgrade answer cut at every offset: the version it names arrives whole.
    for (let at = 1; at < head.length; at++) {
      let version: string | undefined;
      const rpc = new RpcConnection(srv.path, { timeoutMs: 10_000, onVersion: (v) => (version = v), connectError: (e) => e });
      const answered = rpc.call("health", {});
      const s = await waitFor(() => conns.at(-1), { what: "a connection" });
      await new Promise<void>((r) => s.write(head.subarray(0, at), () => r()));
      await tick();
      s.write(head.subarray(at));
      const call = await waitFor(() => calls.find((c) => c.socket === s), { what: "the call" });
      s.write(reply(call.id));
      expect(((await answered).body as { text: string }).text).toBe(TEXT);
      expect(version, `head cut at ${at}`).toBe("9.9.9");
      rpc.close();
      conns.length = 0;
      calls.length = 0;
    }
    // A reply cut at every offset, behind a whole reply that proves the first piece was read.
    const rpc = new RpcConnection(srv.path, { timeoutMs: 10_000, onVersion: () => {}, connectError: (e) => e });
    const first = rpc.call("health", {});
    const s = await waitFor(() => conns.at(-1), { what: "a connection" });
    s.write(head);
    await waitFor(() => calls.length === 1, { what: "the first call" });
    s.write(reply(calls[0]!.id));
    await first;
    const line = reply(0);
    const [from, to] = byteRange(line.toString("utf8"), TEXT);
    for (let at = from; at <= to; at++) {
      calls.length = 0;
      const a = rpc.call("health", {});
      const b = rpc.call("health", {});
      await waitFor(() => calls.length === 2, { what: "two calls" });
      const [ca, cb] = [calls[0]!, calls[1]!];
      const bLine = reply(cb.id);
      const cutAt = at + String(cb.id).length - 1;
      s.write(Buffer.concat([reply(ca.id), bLine.subarray(0, cutAt)]));
      await a;
      s.write(bLine.subarray(cutAt));
      expect(((await b).body as { text: string }).text, `reply cut at ${at}`).toBe(TEXT);
    }
    rpc.close();
    await srv.close();
  }, 60_000);

  it("SSE: events intact when cut at every byte offset, and a long event in many pieces", async () => {
    let res!: ServerResponse;
    const opened = new Promise<void>((resolveOpen) => {
      const server = createHttpServer((_req, r) => {
        res = r;
        r.writeHead(200, { "content-type": "text/event-stream" });
        r.write(": hello\n\n");
        resolveOpen();
      });
      void listen(server, "sse.sock").then((s) => (sse = s));
    });
    let sse!: { path: string; close(): Promise<void> };
    await waitFor(() => sse, { what: "the SSE server" });
    const client = new Client({ socket: sse.path, keepAlive: false });
    const got: { type: string; data: unknown }[] = [];
    const stream = client.stream("eventsStream", {}, (e) => got.push(e as { type: string; data: unknown }));
    await opened;
    const event = (n: number, text: string) => Buffer.from(`event: job:log\ndata: ${JSON.stringify({ n, text })}\n\n`);
    const [from, to] = byteRange(event(0, TEXT).toString("utf8"), TEXT);
    for (let at = from; at <= to; at++) {
      const ev = event(at, TEXT);
      got.length = 0;
      res.write(Buffer.concat([event(-1, "ping"), ev.subarray(0, at)]));
      await waitFor(() => got.length === 1, { what: "the ping event" });
      res.write(ev.subarray(at));
      await waitFor(() => got.length === 2, { what: `the event cut at ${at}` });
      expect(got[1]!.data, `cut at ${at}`).toEqual({ n: at, text: TEXT });
    }
    const long = mixedText(300_000, 3);
    const ev = event(1, long);
    got.length = 0;
    for (let i = 0; i < ev.length; i += 1021) res.write(ev.subarray(i, i + 1021));
    await waitFor(() => got.length === 1, { what: "the long event" });
    expect((got[0]!.data as { text: string }).text === long).toBe(true);
    res.end();
    await stream.done;
    await sse.close();
  });

  it("`daemon logs --follow` prints lines written one byte at a time intact", async () => {
    const home = mkdtempSync(join(dir, "home-"));
    const logFile = resolvePaths({ home }).logFile;
    writeFileSync(logFile, "first line\n");
    const f = runBin(["daemon", "logs", "--follow", "-n", "5"], { TEAMWORK_HOME: home });
    try {
      await waitFor(() => f.stdout().toString().includes("first line"), { what: "the tail" });
      const line = Buffer.from(`${TEXT} the end\n`);
      for (let i = 0; i < line.length; i++) {
        appendFileSync(logFile, line.subarray(i, i + 1));
        const want = Buffer.concat([Buffer.from("first line\n"), line.subarray(0, i + 1)]);
        await waitFor(() => f.stdout().equals(want), { what: `byte ${i} printed`, timeoutMs: 10_000 });
      }
      expect(f.stdout().toString("utf8")).toBe(`first line\n${TEXT} the end\n`);
    } finally {
      f.child.kill("SIGTERM");
      await f.done;
    }
  }, 60_000);

  it("`daemon logs --follow` follows a rotated log from the new file's first byte", async () => {
    const home = mkdtempSync(join(dir, "home-"));
    const logFile = resolvePaths({ home }).logFile;
    writeFileSync(logFile, "old 1\n");
    const f = runBin(["daemon", "logs", "--follow", "-n", "5"], { TEAMWORK_HOME: home });
    try {
      await waitFor(() => f.stdout().toString().includes("old 1"), { what: "the tail" });
      // Rotated (renamed away) and the new file already longer than the old one when next read.
      renameSync(logFile, `${logFile}.1`);
      writeFileSync(`${logFile}.tmp`, `${TEXT} new 1\n${TEXT} new 2\n`);
      renameSync(`${logFile}.tmp`, logFile);
      await waitFor(() => f.stdout().toString("utf8").includes("new 2"), { what: "the new file's lines" });
      expect(f.stdout().toString("utf8")).toBe(`old 1\n${TEXT} new 1\n${TEXT} new 2\n`);
    } finally {
      f.child.kill("SIGTERM");
      await f.done;
    }
  });
});
