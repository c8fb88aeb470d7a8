// The `notify` and `assignment-email` handlers, called directly with a small fake ctx on
// a real temp home: a real SQLite store holding the task, a real SMTP server (smtp-server)
// on 127.0.0.1, real .eml files in the outbox, messages parsed back with mailparser.

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SMTPServer } from "smtp-server";
import { simpleParser, type ParsedMail } from "mailparser";
import notify from "../../src/jobs/notify.js";
import assignmentEmail from "../../src/jobs/assignment-email.js";
import { PermanentJobError, type JobContext, type Lookup } from "../../src/jobs/define.js";
import { openSqliteStore } from "../../src/store/sqlite/index.js";
import type { Store } from "../../src/store/types.js";
import type { Json } from "../../src/protocol/types.js";
import { boardPortAt } from "../../src/store/index.js";
import { taskEventPolicy } from "../../src/board/task-events.js";

// ---------------------------------------------------------------------------------------
// Helpers: a fake ctx, a real SMTP server.

interface FakeCtx extends JobContext {
  progressCalls: { percent: number; message: string | undefined }[];
  logs: string[];
  checkpoints: Json[];
  controller: AbortController;
}

function fakeCtx(opts: { smtpUrl?: string | null; attempt?: number; state?: Json | null } = {}): FakeCtx {
  const controller = new AbortController();
  const ctx: FakeCtx = {
    jobId: 42,
    attempt: opts.attempt ?? 1,
    controller,
    signal: controller.signal,
    progressCalls: [],
    logs: [],
    checkpoints: [],
    progress(percent, message) {
      ctx.progressCalls.push({ percent, message });
    },
    log(message) {
      ctx.logs.push(message);
    },
    state: opts.state ?? null,
    async checkpoint(state: Json) {
      const copy = JSON.parse(JSON.stringify(state)) as Json;
      ctx.checkpoints.push(copy);
      ctx.state = copy;
    },
    board: boardPortAt({ kind: "sqlite", path: join(home, "teamwork.db") }),
    // notify stores no files: any use of them is a bug.
    files: {
      maxBytes: 0,
      upload: () => Promise.reject(new Error("notify reads no uploads")),
      putArtifact: () => Promise.reject(new Error("notify stores no artifacts")),
    },
    paths: {
      home,
      reports: join(home, "reports"),
      uploads: join(home, "uploads"),
      uploadsTmp: join(home, "uploads", "tmp"),
      thumbs: join(home, "thumbs"),
      outbox: join(home, "outbox"),
    } as JobContext["paths"],
    settings: { smtpUrl: opts.smtpUrl ?? null, mailFrom: "teamwork@localhost" } as JobContext["settings"],
  };
  return ctx;
}

interface TestSmtp {
  url: string;
  /** One entry per accepted message, in order: its single envelope recipient and the message, parsed. */
  received: Promise<{ to: string; mail: ParsedMail }>[];
  connections: number;
  close(): Promise<void>;
}

const smtpError = (responseCode: number, message: string) => Object.assign(new Error(message), { responseCode });

async function startSmtp(hooks: { onConnect?: (n: number) => Error | null; onRcpt?: (address: string) => Error | null; auth?: { user: string; pass: string } } = {}): Promise<TestSmtp> {
  const state: TestSmtp = { url: "", received: [], connections: 0, close: async () => {} };
  const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    disabledCommands: hooks.auth ? [] : ["STARTTLS", "AUTH"],
    authOptional: !hooks.auth,
    onConnect(_s, cb) {
      state.connections++;
      cb(hooks.onConnect?.(state.connections) ?? null);
    },
    onAuth(auth, _s, cb) {
      if (hooks.auth && auth.username === hooks.auth.user && auth.password === hooks.auth.pass) cb(null, { user: auth.username });
      else cb(smtpError(535, "5.7.8 Authentication credentials invalid"));
    },
    onRcptTo(address, _s, cb) {
      cb(hooks.onRcpt?.(address.address) ?? null);
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const to = session.envelope.rcptTo.map((r) => r.address);
        expect(to).toHaveLength(1); // one message per recipient
        // Registered before the 250 reply, so before the client's send resolves.
        state.received.push(simpleParser(Buffer.concat(chunks)).then((mail) => ({ to: to[0]!, mail })));
        cb(null);
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  state.url = hooks.auth ? `smtp://${hooks.auth.user}:WRONG-${hooks.auth.pass}@127.0.0.1:${port}?tls.rejectUnauthorized=false` : `smtp://127.0.0.1:${port}`;
  state.close = async () => {
    await Promise.all(state.received);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  servers.push(state);
  return state;
}

/** Every message the server accepted so far, parsed. */
const settled = (s: TestSmtp) => Promise.all(s.received);

const servers: TestSmtp[] = [];
afterEach(async () => {
  while (servers.length) await servers.pop()!.close();
});

async function outcome<T>(p: Promise<T> | T): Promise<{ ok: true; value: T } | { ok: false; error: Error & { permanent?: boolean } }> {
  try {
    return { ok: true, value: await p };
  } catch (error) {
    return { ok: false, error: error as Error };
  }
}

// ---------------------------------------------------------------------------------------
// A real store holding the tasks.

let home: string;
let store: Store;
let lookup: Lookup;
let taskId: number;
let goneTaskId: number;
let evilTaskId: number;

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), "tw-notify-"));
  store = await openSqliteStore(join(home, "teamwork.db"), { durability: "process", taskEvents: taskEventPolicy });
  lookup = {
    boardExists: async (name) => (await store.boards.get(name)) !== null,
    taskExists: async (id) => (await store.tasks.get(id)) !== null,
  };
  const now = Date.now();
  await store.boards.create("web", now);
  taskId = (await store.tasks.create({ title: "Write spec — v2", board: "web", description: "Cover the queue.\nAnd the CLI.", assignee: "ana@example.com", dueDate: "2099-12-01", status: "doing" }, now)).id;
  goneTaskId = (await store.tasks.create({ title: "Doomed", board: "web", description: "", assignee: null, dueDate: null, status: "todo" }, now)).id;
  evilTaskId = (await store.tasks.create({ title: "Evil\r\nBcc: spy@attacker.org", board: "web", description: "", assignee: null, dueDate: null, status: "todo" }, now)).id;
});

afterAll(async () => {
  await store?.close();
  rmSync(home, { recursive: true, force: true });
});

const runNotify = (payload: Record<string, unknown>, ctx: FakeCtx) => outcome(notify.run(payload, ctx));

// ---------------------------------------------------------------------------------------

describe("notify: validate", () => {
  it("accepts a good payload and refuses bad ones with invalid_input", async () => {
    await expect(notify.validate!({ taskId, to: ["a@example.com", "b@example.org"], message: "hi" }, lookup)).resolves.toBeUndefined();
    const bad: [unknown, RegExp][] = [
      [{ taskId, to: [] }, /at least one recipient/],
      [{ taskId, to: "a@example.com" }, /must be a list/],
      [{ taskId, to: Array.from({ length: 101 }, (_, i) => `u${i}@example.com`) }, /101 recipients; at most 100/],
      [{ taskId, to: ["a@example.com", "A@Example.com"] }, /A@Example\.com is listed twice/],
      [{ taskId, to: ["not-an-email"] }, /"not-an-email" is not a valid email address/],
      [{ taskId, to: ["a@example.com\r\nBcc: spy@attacker.org"] }, /is not a valid email address/],
      [{ taskId, to: ["Ana <a@example.com>"] }, /is not a valid email address/],
      [{ taskId, to: ["a@example.com"], message: "x".repeat(5001) }, /5001 characters long; at most 5000/],
      [{ taskId, to: ["a@example.com"], message: 7 }, /message must be text/],
      [{ taskId: "12", to: ["a@example.com"] }, /taskId must be a task id/],
      [{ taskId: 0, to: ["a@example.com"] }, /taskId must be a task id/],
      [{ taskId, to: ["a@example.com"], cc: ["b@example.com"] }, /unknown field "cc"/],
      [null, /must be an object/],
    ];
    for (const [payload, message] of bad) {
      const r = await outcome(notify.validate!(payload, lookup));
      expect(r.ok, JSON.stringify(payload)).toBe(false);
      if (!r.ok) {
        expect(r.error).toMatchObject({ code: "invalid_input" });
        expect(r.error.message).toMatch(message);
      }
    }
  });

  it("refuses an unknown task with not_found", async () => {
    await expect(notify.validate!({ taskId: 99_999, to: ["a@example.com"] }, lookup)).rejects.toMatchObject({ code: "not_found", message: "task 99999 not found" });
  });
});

describe("notify: delivery", () => {
  it("sends one email per recipient about the task, with progress and a checkpoint after each", async () => {
    const smtp = await startSmtp();
    const ctx = fakeCtx({ smtpUrl: smtp.url });
    const to = ["a@example.com", "b@example.org", "c@example.net"];
    const r = await runNotify({ taskId, to, message: "Please review before Friday." }, ctx);
    expect(r).toEqual({ ok: true, value: { sent: to, skipped: [], rejected: [] } });

    const received = await settled(smtp);
    expect(received.map((m) => m.to).sort()).toEqual([...to].sort());
    for (const { to: rcpt, mail } of received) {
      expect(mail.to && !Array.isArray(mail.to) ? mail.to.value.map((a) => a.address) : null).toEqual([rcpt]);
      expect(mail.subject).toBe(`[teamwork] Task #${taskId}: Write spec — v2`);
      expect(mail.text).toContain("Please review before Friday.");
      expect(mail.text).toContain(`Task:      #${taskId} Write spec — v2`);
      expect(mail.text).toContain("Board:     web");
      expect(mail.text).toContain("Status:    doing");
      expect(mail.text).toContain("Assignee:  ana@example.com");
      expect(mail.text).toContain("Due:       2099-12-01");
      expect(mail.text).toContain("Cover the queue.\nAnd the CLI.");
    }
    expect(ctx.checkpoints).toEqual([
      { sent: ["a@example.com"], rejected: [] },
      { sent: ["a@example.com", "b@example.org"], rejected: [] },
      { sent: to, rejected: [] },
    ]);
    const messages = ctx.progressCalls.map((c) => c.message);
    expect(messages).toContain("sent to a@example.com (1/3)");
    expect(messages).toContain("sent to b@example.org (2/3)");
    expect(messages).toContain("sent to c@example.net (3/3)");
    expect(ctx.progressCalls.at(-1)!.percent).toBe(100);
  });

  it("retry: a recipient refused for now (451) makes the attempt fail after the others are recorded; the retry mails only that one", async () => {
    let refusals = 0;
    const smtp = await startSmtp({ onRcpt: (a) => (a === "b@example.org" && refusals++ === 0 ? smtpError(451, "4.7.1 Greylisted, try again later") : null) });
    const to = ["a@example.com", "b@example.org", "c@example.net"];

    const first = fakeCtx({ smtpUrl: smtp.url, attempt: 1 });
    const r1 = await runNotify({ taskId, to }, first);
    expect(r1.ok).toBe(false);
    if (!r1.ok) {
      expect(r1.error.permanent).not.toBe(true);
      expect(r1.error).not.toBeInstanceOf(PermanentJobError);
      expect(r1.error.message).toMatch(/1 of 3 recipients could not be reached yet.*b@example\.org: 451 4\.7\.1 Greylisted/);
    }
    expect(first.state).toEqual({ sent: ["a@example.com", "c@example.net"], rejected: [] });
    expect(first.progressCalls.map((c) => c.message)).toContain("could not send to b@example.org yet (2/3)");
    expect((await settled(smtp)).map((m) => m.to)).toEqual(["a@example.com", "c@example.net"]);

    // The engine hands the next attempt the last checkpoint as ctx.state.
    const second = fakeCtx({ smtpUrl: smtp.url, attempt: 2, state: first.state });
    const r2 = await runNotify({ taskId, to }, second);
    expect(r2).toEqual({ ok: true, value: { sent: ["b@example.org"], skipped: ["a@example.com", "c@example.net"], rejected: [] } });
    expect((await settled(smtp)).map((m) => m.to)).toEqual(["a@example.com", "c@example.net", "b@example.org"]);
    expect(second.state).toEqual({ sent: ["a@example.com", "c@example.net", "b@example.org"], rejected: [] });
    expect(second.progressCalls.map((c) => c.message)).toContain("already sent to a@example.com (1/3)");
  });

  it("a recipient rejected with 550 is recorded as rejected and never tried again; the others are sent", async () => {
    let attemptsForGone = 0;
    const smtp = await startSmtp({ onRcpt: (a) => (a === "gone@example.com" && ++attemptsForGone ? smtpError(550, "5.1.1 No such user here") : null) });
    const to = ["a@example.com", "gone@example.com", "c@example.net"];
    const ctx = fakeCtx({ smtpUrl: smtp.url });
    const r = await runNotify({ taskId, to }, ctx);
    expect(r).toEqual({ ok: true, value: { sent: ["a@example.com", "c@example.net"], skipped: [], rejected: ["gone@example.com"] } });
    expect(ctx.state).toEqual({ sent: ["a@example.com", "c@example.net"], rejected: ["gone@example.com"] });
    expect(ctx.logs.join("\n")).toMatch(/rejected gone@example\.com: 550 5\.1\.1 No such user here/);
    expect(attemptsForGone).toBe(1);

    // Even if the job ran again (at least once), neither the sent nor the rejected are mailed.
    const again = fakeCtx({ smtpUrl: smtp.url, attempt: 2, state: ctx.state });
    const r2 = await runNotify({ taskId, to }, again);
    expect(r2).toEqual({ ok: true, value: { sent: [], skipped: ["a@example.com", "c@example.net"], rejected: ["gone@example.com"] } });
    expect(attemptsForGone).toBe(1);
    expect((await settled(smtp)).map((m) => m.to)).toEqual(["a@example.com", "c@example.net"]);
  });

  it("fails permanently when every recipient is rejected", async () => {
    const smtp = await startSmtp({ onRcpt: () => smtpError(550, "5.1.1 No such user") });
    const r = await runNotify({ taskId, to: ["x@example.com", "y@example.com"] }, fakeCtx({ smtpUrl: smtp.url }));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toBeInstanceOf(PermanentJobError);
      expect(r.error.message).toBe("every recipient was rejected: x@example.com, y@example.com");
    }
  });

  it("a server that refuses the first connection (421): the attempt stops at once and is retried; the retry sends everything", async () => {
    const smtp = await startSmtp({ onConnect: (n) => (n === 1 ? smtpError(421, "4.3.2 Service busy") : null) });
    const to = ["a@example.com", "b@example.org"];
    const first = fakeCtx({ smtpUrl: smtp.url });
    const r1 = await runNotify({ taskId, to }, first);
    expect(r1.ok).toBe(false);
    if (!r1.ok) {
      expect(r1.error.permanent).not.toBe(true);
      expect(r1.error.message).toMatch(/421 4\.3\.2 Service busy .*0 of 2 recipients reached so far; the others will be tried again/);
    }
    expect(smtp.connections).toBe(1); // did not hammer the server with the second recipient
    expect(first.state).toBeNull();
    const second = fakeCtx({ smtpUrl: smtp.url, attempt: 2, state: first.state });
    expect(await runNotify({ taskId, to }, second)).toEqual({ ok: true, value: { sent: to, skipped: [], rejected: [] } });
  });

  it("connection refused: retryable", async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const r = await runNotify({ taskId, to: ["a@example.com"] }, fakeCtx({ smtpUrl: `smtp://127.0.0.1:${port}` }));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.permanent).not.toBe(true);
      expect(r.error.message).toMatch(/ECONNREFUSED/);
    }
  });

  it("a refused login fails permanently without showing the password", async () => {
    const smtp = await startSmtp({ auth: { user: "ana", pass: "s3cret" } });
    const r = await runNotify({ taskId, to: ["a@example.com"] }, fakeCtx({ smtpUrl: smtp.url }));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toBeInstanceOf(PermanentJobError);
      expect(r.error.message).toMatch(/login refused: 535/);
      expect(r.error.message).not.toContain("WRONG-s3cret");
      expect(r.error.message).toContain("ana:***@");
    }
  });

  it("stops between recipients when cancelled, keeping what was sent", async () => {
    let ctx!: FakeCtx;
    const smtp = await startSmtp({
      onRcpt: (a) => {
        if (a === "a@example.com") ctx.controller.abort(new Error("cancelled by user"));
        return null;
      },
    });
    ctx = fakeCtx({ smtpUrl: smtp.url });
    const r = await runNotify({ taskId, to: ["a@example.com", "b@example.org"] }, ctx);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toBe("cancelled by user");
    expect(ctx.state).toEqual({ sent: ["a@example.com"], rejected: [] });
    expect((await settled(smtp)).map((m) => m.to)).toEqual(["a@example.com"]);
  });

  it("without smtpUrl, writes one .eml per recipient into the outbox", async () => {
    const ctx = fakeCtx({ smtpUrl: null });
    const to = ["a@example.com", "b@example.org"];
    const r = await runNotify({ taskId, to, message: "Outbox please." }, ctx);
    expect(r).toEqual({ ok: true, value: { sent: to, skipped: [], rejected: [] } });
    const files = readdirSync(join(home, "outbox")).filter((f) => f.endsWith(".eml")).sort();
    expect(files.length).toBeGreaterThanOrEqual(2);
    const mails = await Promise.all(files.slice(-2).map((f) => simpleParser(readFileSync(join(home, "outbox", f)))));
    expect(mails.map((m) => (m.to && !Array.isArray(m.to) ? m.to.text : ""))).toEqual(to);
    for (const m of mails) {
      expect(m.subject).toBe(`[teamwork] Task #${taskId}: Write spec — v2`);
      expect(m.text).toContain("Outbox please.");
    }
  });

  it("a task title cannot inject a header", async () => {
    const smtp = await startSmtp();
    const r = await runNotify({ taskId: evilTaskId, to: ["a@example.com"] }, fakeCtx({ smtpUrl: smtp.url }));
    expect(r.ok).toBe(true);
    const [m] = await settled(smtp);
    expect(m!.to).toBe("a@example.com");
    expect(m!.mail.headers.has("bcc")).toBe(false);
    expect(m!.mail.subject).toBe(`[teamwork] Task #${evilTaskId}: Evil Bcc: spy@attacker.org`);
  });

  it("a task deleted before the job runs fails permanently", async () => {
    await store.tasks.remove(goneTaskId, Date.now());
    const r = await runNotify({ taskId: goneTaskId, to: ["a@example.com"] }, fakeCtx());
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toBeInstanceOf(PermanentJobError);
      expect(r.error.message).toBe(`task #${goneTaskId} no longer exists`);
    }
  });
});

describe("assignment-email", () => {
  const runAssign = (payload: Record<string, unknown>, ctx: FakeCtx) => outcome(assignmentEmail.run(payload, ctx));

  it("validates its payload", async () => {
    await expect(assignmentEmail.validate!({ taskId, assignee: "ana@example.com" }, lookup)).resolves.toBeUndefined();
    await expect(assignmentEmail.validate!({ taskId, assignee: "ana@example.com\nBcc: x@y.org" }, lookup)).rejects.toMatchObject({ code: "invalid_input" });
    await expect(assignmentEmail.validate!({ taskId }, lookup)).rejects.toThrow(/assignee undefined is not a valid email address/);
    await expect(assignmentEmail.validate!({ taskId: 99_999, assignee: "ana@example.com" }, lookup)).rejects.toMatchObject({ code: "not_found" });
  });

  it("mails the assignee 'You were assigned: <title>' with board, due date and description (outbox)", async () => {
    const ctx = fakeCtx();
    const r = await runAssign({ taskId, assignee: "ana@example.com" }, ctx);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toMatchObject({ sent: ["ana@example.com"] });
    expect(r.value.path).toMatch(/outbox\/\d{8}T\d{9}Z-\d{6}-[0-9a-f]{8}\.eml$/);
    const mail = await simpleParser(readFileSync(r.value.path!));
    expect(mail.messageId).toBe(r.value.messageId);
    expect(mail.to && !Array.isArray(mail.to) ? mail.to.text : "").toBe("ana@example.com");
    expect(mail.subject).toBe("You were assigned: Write spec — v2");
    expect(mail.text).toContain(`you were assigned task #${taskId} on the board "web"`);
    expect(mail.text).toContain("Due:       2099-12-01");
    expect(mail.text).toContain("Cover the queue.\nAnd the CLI.");
    expect(ctx.state).toEqual(r.value);
    expect(ctx.progressCalls.at(-1)).toEqual({ percent: 100, message: "sent to ana@example.com" });

    // A retry after the send was recorded does not mail again.
    const before = readdirSync(join(home, "outbox")).length;
    const again = await runAssign({ taskId, assignee: "ana@example.com" }, fakeCtx({ attempt: 2, state: ctx.state }));
    expect(again).toEqual({ ok: true, value: r.value });
    expect(readdirSync(join(home, "outbox")).length).toBe(before);
  });

  it("over SMTP: 550 fails permanently, 451 is retried, then it goes through", async () => {
    let bobs = 0;
    const smtp = await startSmtp({
      onRcpt: (a) => (a === "nobody@example.com" ? smtpError(550, "5.1.1 No such user") : a === "bob@example.com" && bobs++ === 0 ? smtpError(451, "4.7.1 Try later") : null),
    });
    const rejected = await runAssign({ taskId, assignee: "nobody@example.com" }, fakeCtx({ smtpUrl: smtp.url }));
    expect(rejected.ok).toBe(false);
    if (!rejected.ok) {
      expect(rejected.error.permanent).toBe(true);
      expect(rejected.error.message).toMatch(/rejected nobody@example\.com: 550 5\.1\.1 No such user/);
    }
    const later = await runAssign({ taskId, assignee: "bob@example.com" }, fakeCtx({ smtpUrl: smtp.url }));
    expect(later.ok).toBe(false);
    if (!later.ok) {
      expect(later.error.permanent).toBe(false);
      expect(later.error.message).toMatch(/451 4\.7\.1 Try later/);
    }
    const ok = await runAssign({ taskId, assignee: "bob@example.com" }, fakeCtx({ smtpUrl: smtp.url, attempt: 2 }));
    expect(ok).toMatchObject({ ok: true, value: { sent: ["bob@example.com"] } });
    const received = await settled(smtp);
    expect(received.map((m) => [m.to, m.mail.subject])).toEqual([["bob@example.com", "You were assigned: Write spec — v2"]]);
    if (ok.ok) expect(received[0]!.mail.messageId).toBe(ok.value.messageId);
  });

  it("a task deleted before the job runs fails permanently", async () => {
    const r = await runAssign({ taskId: goneTaskId, assignee: "ana@example.com" }, fakeCtx());
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toBeInstanceOf(PermanentJobError);
  });
});
