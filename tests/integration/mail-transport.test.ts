// src/mail/transport.ts against a real SMTP server (smtp-server) on 127.0.0.1 started by
// the test, and the outbox transport on a real temp folder. Messages are parsed back with
// mailparser.

import { afterAll, afterEach, describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from "smtp-server";
import { simpleParser, type AddressObject } from "mailparser";
import { createTransport, maskSmtpUrl, MailSendError, parseSmtpUrl, scrub, type MailTransport } from "../../src/mail/transport.js";

interface Received {
  from: string;
  to: string[];
  raw: Buffer;
  secure: boolean;
  user: string | undefined;
}

interface TestSmtp {
  port: number;
  received: Received[];
  connections: number;
  close(): Promise<void>;
}

const smtpError = (responseCode: number, message: string) => Object.assign(new Error(message), { responseCode });

/** A real SMTP server on a free loopback port; the hooks decide what it refuses. */
async function startSmtp(
  opts: {
    secure?: boolean;
    starttls?: boolean;
    auth?: { user: string; pass: string };
    onConnect?: (n: number) => Error | null;
    onRcpt?: (address: string, session: SMTPServerSession) => Error | null;
    onData?: () => Error | null;
  } = {},
): Promise<TestSmtp> {
  const state: TestSmtp = { port: 0, received: [], connections: 0, close: async () => {} };
  const options: SMTPServerOptions = {
    secure: opts.secure ?? false,
    logger: false,
    disableReverseLookup: true,
    disabledCommands: [...(opts.starttls || opts.secure ? [] : ["STARTTLS"]), ...(opts.auth ? [] : ["AUTH"])],
    authOptional: !opts.auth,
    // AUTH only over TLS: a login that works proves STARTTLS (or smtps) was used.
    allowInsecureAuth: false,
    onConnect(_session, cb) {
      state.connections++;
      cb(opts.onConnect?.(state.connections) ?? null);
    },
    onAuth(auth, _session, cb) {
      if (opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass) cb(null, { user: auth.username });
      else cb(smtpError(535, "5.7.8 Authentication credentials invalid"));
    },
    onRcptTo(address, session, cb) {
      cb(opts.onRcpt?.(address.address, session) ?? null);
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const err = opts.onData?.() ?? null;
        if (!err) {
          const from = session.envelope.mailFrom;
          state.received.push({
            from: from ? from.address : "",
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks),
            secure: session.secure,
            user: typeof session.user === "string" ? session.user : undefined,
          });
        }
        cb(err);
      });
    },
  };
  const server = new SMTPServer(options);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  state.port = (server.server.address() as AddressInfo).port;
  state.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return state;
}

/** A port on which nothing listens: connecting is refused. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const FROM = "teamwork@localhost";
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function transport(smtpUrl: string | null, outbox = "/nonexistent-outbox"): MailTransport {
  const t = createTransport({ smtpUrl, mailFrom: FROM }, outbox);
  cleanups.push(() => t.close());
  return t;
}

async function server(opts: Parameters<typeof startSmtp>[0] = {}): Promise<TestSmtp> {
  const s = await startSmtp(opts);
  cleanups.push(() => s.close());
  return s;
}

const toOf = (p: { to?: AddressObject | AddressObject[] | undefined }) => (p.to && !Array.isArray(p.to) ? p.to.value.map((a) => a.address) : null);

async function failure(p: Promise<unknown>): Promise<MailSendError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MailSendError);
  return err as MailSendError;
}

describe("SMTP delivery", () => {
  it("delivers one message with the right envelope, To, Subject and body", async () => {
    const s = await server();
    const t = transport(`smtp://127.0.0.1:${s.port}`);
    const res = await t.send({ to: "ana@example.com", subject: "Task #3: Ship it — ünïcode", text: "Hello Ana,\n\nplease ship it.\n" });
    expect(res.path).toBeUndefined();
    expect(s.received).toHaveLength(1);
    const got = s.received[0]!;
    expect(got.from).toBe(FROM);
    expect(got.to).toEqual(["ana@example.com"]);
    const parsed = await simpleParser(got.raw);
    expect(toOf(parsed)).toEqual(["ana@example.com"]);
    expect(parsed.subject).toBe("Task #3: Ship it — ünïcode");
    expect(parsed.text).toBe("Hello Ana,\n\nplease ship it.\n");
    expect(parsed.messageId).toBe(res.messageId);
    expect(t.description).toBe(`smtp://127.0.0.1:${s.port}`);
  });

  it("upgrades with STARTTLS when offered and logs in with the URL's (decoded) credentials", async () => {
    const s = await server({ starttls: true, auth: { user: "ana", pass: "p@ss word/1" } });
    const t = transport(`smtp://ana:${encodeURIComponent("p@ss word/1")}@127.0.0.1:${s.port}?tls.rejectUnauthorized=false`);
    await t.send({ to: "bo@example.com", subject: "over TLS", text: "secret\n" });
    expect(s.received).toHaveLength(1);
    expect(s.received[0]).toMatchObject({ secure: true, user: "ana", to: ["bo@example.com"] });
    expect(t.description).toBe(`smtp://ana:***@127.0.0.1:${s.port}?tls.rejectUnauthorized=false`);
  });

  it("speaks TLS from the first byte with smtps://", async () => {
    const s = await server({ secure: true, auth: { user: "ana", pass: "pw" } });
    const t = transport(`smtps://ana:pw@127.0.0.1:${s.port}?tls.rejectUnauthorized=false`);
    await t.send({ to: "bo@example.com", subject: "smtps", text: "hi\n" });
    expect(s.received[0]).toMatchObject({ secure: true, user: "ana" });
  });

  it("refuses to send unencrypted when requireTLS is set and the server offers no STARTTLS", async () => {
    const s = await server();
    const err = await failure(transport(`smtp://127.0.0.1:${s.port}?requireTLS=true`).send({ to: "bo@example.com", subject: "x", text: "x" }));
    expect(err.scope).toBe("transport");
    expect(s.received).toHaveLength(0);
  });
});

describe("SMTP failures are classified", () => {
  it("connection refused: retryable, for every message (transport)", async () => {
    const port = await closedPort();
    const err = await failure(transport(`smtp://127.0.0.1:${port}`).send({ to: "ana@example.com", subject: "x", text: "x" }));
    expect(err).toMatchObject({ permanent: false, scope: "transport", recipient: "ana@example.com" });
    expect(err.code).toMatch(/^(ECONNECTION|ESOCKET)$/);
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it("a server that refuses the first connection with 421: retryable, and the next attempt goes through", async () => {
    const s = await server({ onConnect: (n) => (n === 1 ? smtpError(421, "4.3.2 Too busy, try again later") : null) });
    const t = transport(`smtp://127.0.0.1:${s.port}`);
    const err = await failure(t.send({ to: "ana@example.com", subject: "x", text: "x" }));
    expect(err).toMatchObject({ permanent: false, scope: "transport", responseCode: 421 });
    expect(err.message).toMatch(/421/);
    await t.send({ to: "ana@example.com", subject: "second try", text: "x" });
    expect(s.received.map((r) => r.to)).toEqual([["ana@example.com"]]);
    expect(s.connections).toBe(2);
  });

  it("451 for a recipient: retryable, about that recipient only", async () => {
    const s = await server({ onRcpt: (a) => (a === "busy@example.com" ? smtpError(451, "4.7.1 Greylisted, try again") : null) });
    const t = transport(`smtp://127.0.0.1:${s.port}`);
    const err = await failure(t.send({ to: "busy@example.com", subject: "x", text: "x" }));
    expect(err).toMatchObject({ permanent: false, scope: "recipient", responseCode: 451, recipient: "busy@example.com" });
    expect(err.message).toMatch(/temporarily refused busy@example\.com: 451 4\.7\.1 Greylisted/);
    await t.send({ to: "ok@example.com", subject: "x", text: "x" });
    expect(s.received.map((r) => r.to[0])).toEqual(["ok@example.com"]);
  });

  it("550 for a recipient: permanent, about that recipient only, reply code kept", async () => {
    const s = await server({ onRcpt: (a) => (a === "gone@example.com" ? smtpError(550, "5.1.1 No such user") : null) });
    const err = await failure(transport(`smtp://127.0.0.1:${s.port}`).send({ to: "gone@example.com", subject: "x", text: "x" }));
    expect(err).toMatchObject({ permanent: true, scope: "recipient", responseCode: 550, recipient: "gone@example.com" });
    expect(err.code).toBeTruthy();
    expect(err.message).toMatch(/rejected gone@example\.com: 550 5\.1\.1 No such user/);
    expect(s.received).toHaveLength(0);
  });

  it("554 after DATA: permanent for that message", async () => {
    const s = await server({ onData: () => smtpError(554, "5.6.0 Message refused") });
    const err = await failure(transport(`smtp://127.0.0.1:${s.port}`).send({ to: "ana@example.com", subject: "x", text: "x" }));
    expect(err).toMatchObject({ permanent: true, scope: "recipient", responseCode: 554 });
  });

  it("a refused login is permanent for the transport and never shows the password", async () => {
    const s = await server({ starttls: true, auth: { user: "ana", pass: "right" } });
    const password = "Wr0ng p@ss";
    const url = `smtp://ana:${encodeURIComponent(password)}@127.0.0.1:${s.port}?tls.rejectUnauthorized=false`;
    const err = await failure(transport(url).send({ to: "bo@example.com", subject: "x", text: "x" }));
    expect(err).toMatchObject({ permanent: true, scope: "transport", code: "EAUTH", responseCode: 535 });
    expect(err.message).toMatch(/login refused/);
    for (const secret of [password, encodeURIComponent(password), Buffer.from(`\0ana\0${password}`).toString("base64")]) {
      expect(err.message).not.toContain(secret);
      expect(String(err.stack)).not.toContain(secret);
    }
    expect(err.message).toContain("ana:***@");
  });

  it("a server that accepts the connection but never greets: a retryable timeout", async () => {
    const silent: Server = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
    cleanups.push(() => new Promise<void>((r) => { silent.close(() => r()); (silent as unknown as { closeAllConnections?: () => void }).closeAllConnections?.(); }));
    const port = (silent.address() as AddressInfo).port;
    const started = Date.now();
    const err = await failure(transport(`smtp://127.0.0.1:${port}?greetingTimeout=300&connectionTimeout=300`).send({ to: "ana@example.com", subject: "x", text: "x" }));
    expect(err).toMatchObject({ permanent: false, scope: "transport", code: "ETIMEDOUT" });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("a bad smtpUrl is a permanent configuration error that hides the password", async () => {
    const err = await failure(transport("smtp://ana:hunter2@127.0.0.1:25?requireTSL=true").send({ to: "ana@example.com", subject: "x", text: "x" }));
    expect(err).toMatchObject({ permanent: true, scope: "transport", code: "ECONFIG" });
    expect(err.message).toMatch(/unknown option "requireTSL", did you mean "requireTLS"\?/);
    expect(err.message).not.toContain("hunter2");
    expect(() => parseSmtpUrl("smtp://127.0.0.1?greetingTimeout=soon")).toThrow(/greetingTimeout must be a number/);
    expect(() => parseSmtpUrl("http://127.0.0.1")).toThrow(/smtp:\/\/ or smtps:\/\//);
    expect(maskSmtpUrl("smtps://ana:hunter2@mail.example.com:465")).toBe("smtps://ana:***@mail.example.com:465");
    expect(maskSmtpUrl("smtp://ana:hun:ter@@bad url")).not.toContain("hun");
    expect(parseSmtpUrl("smtp://a%40b:p%2Fw@mail.example.com").options).toMatchObject({ host: "mail.example.com", port: 587, secure: false, auth: { user: "a@b", pass: "p/w" } });
    expect(parseSmtpUrl("smtps://mail.example.com").options).toMatchObject({ port: 465, secure: true });
    // Whatever form the password takes in a reply or a library message, it is scrubbed.
    const { secrets } = parseSmtpUrl("smtp://ana:p%40ss@mail.example.com");
    const forms = ["p@ss", "p%40ss", Buffer.from("p@ss").toString("base64"), Buffer.from("\0ana\0p@ss").toString("base64")];
    expect(scrub(`535 rejected ${forms.join(" ")}`, secrets)).toBe("535 rejected *** *** *** ***");
  });
});

describe("header injection", () => {
  it("a CR/LF in the subject cannot add a header or a recipient", async () => {
    const s = await server();
    await transport(`smtp://127.0.0.1:${s.port}`).send({ to: "ana@example.com", subject: "Hi\r\nBcc: evil@attacker.org\r\n\r\nfake body", text: "real body\n" });
    expect(s.received).toHaveLength(1);
    expect(s.received[0]!.to).toEqual(["ana@example.com"]);
    const parsed = await simpleParser(s.received[0]!.raw);
    expect(parsed.headers.has("bcc")).toBe(false);
    expect(parsed.subject).toBe("Hi Bcc: evil@attacker.org fake body");
    expect(parsed.text).toBe("real body\n");
  });

  it("a recipient carrying CR/LF, a second address or a display name is refused before anything is sent", async () => {
    const s = await server();
    const t = transport(`smtp://127.0.0.1:${s.port}`);
    for (const to of ["ana@example.com\r\nRCPT TO:<evil@attacker.org>", "ana@example.com\nBcc: evil@attacker.org", "ana@example.com, evil@attacker.org", "Ana <evil@attacker.org>"]) {
      const err = await failure(t.send({ to, subject: "x", text: "x" }));
      expect(err).toMatchObject({ permanent: true, scope: "recipient", code: "EADDRESS" });
    }
    expect(s.connections).toBe(0);
    expect(s.received).toHaveLength(0);
  });
});

describe("outbox", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const outbox = () => {
    const d = mkdtempSync(join(tmpdir(), "tw-outbox-"));
    dirs.push(d);
    return join(d, "outbox");
  };

  it("writes each message as a real .eml file with a unique, sortable name", async () => {
    const dir = outbox();
    const t = transport(null, dir);
    expect(t.description).toBe(`outbox ${dir}`);
    const sent = [];
    for (let i = 1; i <= 5; i++) sent.push(await t.send({ to: `user${i}@example.com`, subject: `Message ${i}: café`, text: `Body ${i}\nsecond line\n` }));
    const files = readdirSync(dir);
    expect(files).toHaveLength(5);
    expect(files.every((f) => /^\d{8}T\d{9}Z-\d{6}-[0-9a-f]{8}\.eml$/.test(f))).toBe(true);
    expect(files.some((f) => f.endsWith(".partial"))).toBe(false);
    // Sorted by name is the order they were sent in.
    expect([...files].sort().map((f) => join(dir, f))).toEqual(sent.map((s) => s.path));
    for (const [i, s] of sent.entries()) {
      expect(statSync(s.path!).mode & 0o777).toBe(0o600);
      const raw = readFileSync(s.path!);
      expect(raw.toString("latin1")).toMatch(/^[\x00-\x7f]*$/);
      const parsed = await simpleParser(raw);
      expect(toOf(parsed)).toEqual([`user${i + 1}@example.com`]);
      expect(parsed.from?.value[0]?.address).toBe(FROM);
      expect(parsed.subject).toBe(`Message ${i + 1}: café`);
      expect(parsed.text).toBe(`Body ${i + 1}\nsecond line\n`);
      expect(parsed.messageId).toBe(s.messageId);
      expect(parsed.date).toBeInstanceOf(Date);
    }
  });

  it("writes nothing for a refused recipient, and neutralises a hostile subject", async () => {
    const dir = outbox();
    const t = transport(null, dir);
    await failure(t.send({ to: "a@example.com\r\nBcc: evil@attacker.org", subject: "x", text: "x" }));
    const ok = await t.send({ to: "a@example.com", subject: "Hi\nBcc: evil@attacker.org", text: "x\n" });
    expect(readdirSync(dir)).toEqual([ok.path!.slice(dir.length + 1)]);
    const parsed = await simpleParser(readFileSync(ok.path!));
    expect(parsed.headers.has("bcc")).toBe(false);
    expect(parsed.subject).toBe("Hi Bcc: evil@attacker.org");
  });
});
