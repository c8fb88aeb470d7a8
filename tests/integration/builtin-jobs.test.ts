// The built-in jobs end to end through the real binary and daemon: upload → thumbnail,
// assignment email with --wait, notify over a real SMTP server on loopback with a
// recipient refused, and the digest (preview, send, no duplicate after a restart).

import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import sharp from "sharp";
import { SMTPServer } from "smtp-server";
import { simpleParser, type ParsedMail } from "mailparser";
import { startDaemon, tempHome, type TestDaemon } from "../helpers/daemon.js";
import { runCli, runJson } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";
import type { Attachment, Job, Task } from "../../src/protocol/types.js";

let d: TestDaemon;
let smtp: SMTPServer;
let smtpPort = 0;
const received: { to: string; mail: ParsedMail }[] = [];

beforeAll(async () => {
  smtp = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    authOptional: true,
    onRcptTo(address, _s, cb) {
      if (address.address === "nobody@example.com") {
        const err = Object.assign(new Error("5.1.1 no such user"), { responseCode: 550 });
        cb(err);
      } else cb();
    },
    onData(stream, session, cb) {
      const to = session.envelope.rcptTo.map((r) => r.address)[0] ?? "";
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        void simpleParser(Buffer.concat(chunks)).then((mail) => received.push({ to, mail }));
        cb();
      });
    },
  });
  await new Promise<void>((r) => smtp.listen(0, "127.0.0.1", () => r()));
  smtpPort = (smtp.server.address() as { port: number }).port;
  d = await startDaemon({ config: { digest: { recipients: ["team@example.com"] } } });
});
afterAll(async () => {
  await d?.cleanup();
  await new Promise<void>((r) => smtp.close(() => r()));
});

const home = () => ({ home: d.home });

describe("upload and thumbnail", () => {
  it("keeps the file in the database, thumbnails it in the background, shows it on the task; both fetched back whole", async () => {
    const { json: task } = await runJson<Task>(["tasks", "add", "Screenshot"], home());
    const png = join(d.home, "..", `shot-${process.pid}.png`);
    await sharp({ create: { width: 1600, height: 1200, channels: 3, background: { r: 30, g: 120, b: 200 } } }).png().toFile(png);
    const r = await runJson<{ upload: Attachment; job: Job }>(["upload", png, "--task", String(task.id)], home());
    expect(r.exitCode).toBe(0);
    expect(r.json.upload).toMatchObject({ name: basename(png), path: null, file: { name: "original", mediaType: "image/png", size: statSync(png).size } });
    const job = await waitFor(async () => {
      const j = (await d.client.call("jobsGet", { id: r.json.job.id })).job;
      return j.status === "complete" ? j : null;
    });
    const result = job.result as { artifact: string; bytes: number; width: number; height: number };
    expect(result).toMatchObject({ artifact: `shot-${process.pid}-256.png`, width: 256, height: 192 });
    const out = join(d.home, "..", `thumb-${process.pid}.png`);
    const fetched = await runCli(["jobs", "artifact", String(job.id), "-o", out], home());
    expect(fetched.exitCode, fetched.stderr).toBe(0);
    expect(fetched.stdout).toMatch(new RegExp(`^Saved shot-${process.pid}-256\\.png \\(image/png, [\\d.]+ (B|KiB)\\) to `));
    const meta = await sharp(out).metadata();
    expect([meta.format, meta.width, meta.height, statSync(out).size]).toEqual(["png", 256, 192, result.bytes]);
    await waitFor(async () => (await runJson<{ attachments: Attachment[] }>(["tasks", "show", String(task.id)], home())).json.attachments[0]!.thumbnail.status === "ready");
    const shown = await runJson<{ attachments: Attachment[] }>(["tasks", "show", String(task.id)], home());
    expect(shown.json.attachments).toHaveLength(1);
    expect(shown.json.attachments[0]!.thumbnail).toMatchObject({ status: "ready", jobId: job.id, path: null, file: { name: "thumbnail", mediaType: "image/png", size: result.bytes } });
    const human = await runCli(["tasks", "show", String(task.id)], home());
    expect(human.stdout).toMatch(new RegExp(`#${r.json.upload.id} shot-${process.pid}\\.png \\(\\d+ bytes\\) thumbnail [\\d.]+ (B|KiB) image/png \\(job ${job.id}\\)`));
    // The upload's own bytes and its thumbnail, through the client.
    const original = await d.client.download("uploadsFile", { id: r.json.upload.id, name: "original" });
    const chunks: Buffer[] = [];
    for await (const c of original.body) chunks.push(c as Buffer);
    expect(original.name).toBe(basename(png));
    expect(Buffer.concat(chunks).equals(readFileSync(png))).toBe(true);
    // Nothing is written under the home.
    expect(readdirSync(join(d.home, "uploads")).filter((f) => f !== "tmp")).toEqual([]);
    expect(readdirSync(join(d.home, "uploads", "tmp"))).toEqual([]);
  });

  it("fails permanently, after one attempt, for a file that is not an image", async () => {
    const txt = join(d.home, "..", `notes-${process.pid}.png`);
    writeFileSync(txt, "this is not a PNG at all");
    const r = await runCli(["upload", txt, "--watch"], home());
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/failed after 1 attempt: .*not an image|failed after 1 attempt: .*unsupported/i);
  });

  it("refuses a missing file, a directory and an unknown task at once", async () => {
    expect((await runCli(["upload", "/nonexistent/x.png"], home())).exitCode).toBe(4);
    expect((await runCli(["upload", d.home], home())).exitCode).toBe(2);
    const png = join(d.home, "..", `tiny-${process.pid}.png`);
    await sharp({ create: { width: 4, height: 4, channels: 3, background: "#000" } }).png().toFile(png);
    expect((await runCli(["upload", png, "--task", "99999"], home())).exitCode).toBe(4);
  });
});

describe("assignment email to the outbox", () => {
  it("tasks assign --wait prints Notification sent and writes a real message", async () => {
    const { json: task } = await runJson<Task>(["tasks", "add", "Review the <spec>"], home());
    const r = await runCli(["tasks", "assign", String(task.id), "ana@example.com", "--wait"], home());
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/Notification sent/);
    const files = readdirSync(join(d.home, "outbox")).filter((f) => f.endsWith(".eml"));
    const mails = await Promise.all(files.map((f) => simpleParser(readFileSync(join(d.home, "outbox", f)))));
    const mail = mails.find((m) => m.subject?.includes("Review the <spec>"))!;
    expect(mail).toBeDefined();
    expect((mail.to as { text: string }).text).toBe("ana@example.com");
    expect(mail.text).toContain("Review the <spec>");
  });

  it("a refused address changes nothing", async () => {
    const { json: task } = await runJson<Task>(["tasks", "add", "Untouched"], home());
    const r = await runCli(["tasks", "assign", String(task.id), "not-an-email"], home());
    expect(r.exitCode).toBe(2);
    expect((await runJson<Task>(["tasks", "show", String(task.id)], home())).json.assignee).toBeNull();
  });
});

describe("notify over SMTP", () => {
  it("mails each recipient, records the one the server refuses, with progress per recipient", async () => {
    const smtpHome = tempHome();
    const s = await startDaemon({ home: smtpHome, config: { smtpUrl: `smtp://127.0.0.1:${smtpPort}`, mailFrom: "board@example.com" } });
    try {
      const { json: task } = await runJson<Task>(["tasks", "add", "Ship it"], { home: s.home });
      const r = await runCli(["notify", String(task.id), "--to", "a@example.com,nobody@example.com,b@example.com", "--message", "Please look", "--watch"], { home: s.home });
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toMatch(/sent to a@example.com \(1\/3\)/);
      const { id } = (await s.client.call("jobsList", { type: "notify", limit: 1 })).jobs[0]!;
      const last = (await s.client.call("jobsGet", { id })).job;
      expect(last.result).toMatchObject({ sent: ["a@example.com", "b@example.com"], rejected: ["nobody@example.com"] });
      await waitFor(() => received.filter((m) => m.mail.subject?.includes("Ship it")).length === 2);
      const got = received.filter((m) => m.mail.subject?.includes("Ship it"));
      expect(got.map((m) => m.to).sort()).toEqual(["a@example.com", "b@example.com"]);
      expect(got[0]!.mail.text).toContain("Please look");
      expect((got[0]!.mail.from as { text: string }).text).toContain("board@example.com");
    } finally {
      await s.cleanup();
    }
  });

  it("refuses bad recipients at enqueue", async () => {
    const { json: task } = await runJson<Task>(["tasks", "add", "x"], home());
    expect((await runCli(["notify", String(task.id), "--to", "not-an-address"], home())).exitCode).toBe(2);
    expect((await runCli(["notify", "99999", "--to", "a@example.com"], home())).exitCode).toBe(4);
    expect((await runCli(["notify", String(task.id), "--to", ","], home())).exitCode).toBe(2);
  });
});

describe("digest", () => {
  it("previews exactly what it sends, sends once, and never again after a restart", async () => {
    const h = home();
    const web = await runCli(["boards", "add", "digestboard"], h);
    expect(web.exitCode).toBe(0);
    const a = (await runJson<Task>(["tasks", "add", "Alpha", "--board", "digestboard"], h)).json;
    await runJson<Task>(["tasks", "add", "Beta", "--board", "digestboard", "--assignee", "bo@example.com"], h);
    await runCli(["tasks", "done", String(a.id)], h);
    const preview = await runJson<{ subject: string; text: string; wouldSend: boolean; boards: { board: string; counts: Record<string, number> }[] }>(["digest", "preview"], h);
    expect(preview.json.wouldSend).toBe(true);
    const board = preview.json.boards.find((b) => b.board === "digestboard")!;
    expect(board.counts).toEqual({ created: 2, completed: 1, assigned: 1, deleted: 0 });
    expect(preview.json.text).toMatch(/Board digestboard\n {2}Created \(2\):\n {4}- #\d+ Alpha\n {4}- #\d+ Beta/);

    const before = readdirSync(join(d.home, "outbox")).length;
    const sent = await runCli(["digest", "send"], h);
    expect(sent.exitCode).toBe(0);
    expect(sent.stdout).toMatch(/Digest sent to team@example.com/);
    const files = readdirSync(join(d.home, "outbox")).sort();
    expect(files.length).toBe(before + 1);
    const mails = await Promise.all(files.map((f) => simpleParser(readFileSync(join(d.home, "outbox", f)))));
    const digest = mails.find((m) => m.subject === preview.json.subject)!;
    expect(digest.text!.replace(/\r\n/g, "\n").trim()).toBe(preview.json.text.trim().replace(/\(until [^)]*\)/, digest.text!.match(/\(until [^)]*\)/)![0]));

    // Marked digested: nothing left to send, and a restart does not send it again.
    const again = await runJson<{ empty: boolean; wouldSend: boolean }>(["digest", "preview"], h);
    expect(again.json).toMatchObject({ empty: true, wouldSend: false });
    await d.stop();
    await d.restart();
    expect((await runJson<{ empty: boolean }>(["digest", "preview"], h)).json.empty).toBe(true);
    const second = await runCli(["digest", "send"], h);
    expect(second.stdout).toMatch(/Digest not sent: nothing happened/);
    expect(readdirSync(join(d.home, "outbox")).length).toBe(before + 1);
  });
});
