// Security, each against a real daemon:
// - the socket is 0600 and its folder 0700, both ours; the daemon refuses a runtime folder
//   that is another user's, a symlink, or (for a relocated socket) a squatted /tmp folder;
// - another user (`nobody`, through runuser) cannot connect, and the CLI says why — proven
//   against a positive control where the same user can connect once the modes allow it;
// - no TCP or UDP socket is listening in the daemon, even after it ran jobs that use the
//   network; its only listening sockets are the Unix one at its socket path and its lock;
// - uploads land inside <home>/uploads under a safe name, whatever the source's name or path
//   (`..` segments, symlinks, dots, newlines, 250 characters); nothing is written beside the
//   home; a thumbnail whose source leaves the uploads folder (by `..`, an absolute path, a
//   symlinked file or folder) is refused or fails permanently; reports stay in <home>/reports;
// - the SMTP password never shows: not in daemon.log, `jobs show/list --json`, `jobs logs`,
//   `jobs why`, `daemon status --json`, the CLI's output, the event stream, /metrics, nor in
//   the database — with nothing listening on port 1, and with a local SMTP server that puts
//   the password (plain and base64) into its own error replies.

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative, sep } from "node:path";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { BIN, runCli } from "../helpers/cli.js";
import { FIXTURE_JOBS, startDaemon, tempHome, writeConfig, type TestDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";
import { allJobs } from "../helpers/jobs.js";
import type { Job } from "../../src/protocol/types.js";
import { ARTIFACT_NAME } from "../../src/protocol/files.js";
import { homeLockKey } from "../../src/config/paths.js";
import type { StreamEvent } from "../../src/protocol/events.js";
import { cleanupAfterEach, finished, httpRequest, killDaemonsFor, spawnDaemon, within } from "./support.js";

let d: TestDaemon | undefined;
const cleanups = cleanupAfterEach(
  () => d,
  () => (d = undefined),
);

const uid = process.getuid?.() ?? -1;
const mode = (p: string) => statSync(p).mode & 0o777;

/** The uid of `nobody`, when this machine has one and we may switch to it. */
function nobody(): { uid: number; gid: number } | null {
  if (uid !== 0) return null;
  const r = spawnSync("runuser", ["-u", "nobody", "--", "id", "-u"], { encoding: "utf8" });
  if (r.status !== 0) return null;
  const g = spawnSync("runuser", ["-u", "nobody", "--", "id", "-g"], { encoding: "utf8" });
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/**
 * The CLI as another user can run it: the launcher and its bundle copied to a folder anyone
 * may read. The checkout itself may sit where `nobody` cannot look (a clone under /root, or
 * in a 0700 folder), and that must not decide whether this test passes.
 */
function cliForOthers(cleanup: (fn: () => void) => void): string {
  const root = mkdtempSync(join(tmpdir(), "tw-cli-"));
  cleanup(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, "bin"));
  mkdirSync(join(root, "dist", "cli"), { recursive: true });
  const bundle = join(dirname(BIN), "..", "dist", "cli", "bundle.cjs");
  writeFileSync(join(root, "bin", "teamwork.cjs"), readFileSync(BIN));
  writeFileSync(join(root, "dist", "cli", "bundle.cjs"), readFileSync(bundle));
  writeFileSync(join(root, "package.json"), readFileSync(join(dirname(BIN), "..", "package.json")));
  for (const p of [root, join(root, "bin"), join(root, "dist"), join(root, "dist", "cli")]) chmodSync(p, 0o755);
  for (const p of [join(root, "bin", "teamwork.cjs"), join(root, "dist", "cli", "bundle.cjs"), join(root, "package.json")]) chmodSync(p, 0o644);
  return join(root, "bin", "teamwork.cjs");
}

/** As `nobody`: connect to the socket and ask for /health. Returns "ok", or the error code. */
function connectAsNobody(socket: string): string {
  const script = `
    const http = require("node:http");
    const r = http.get({ socketPath: process.argv[1], path: "/health", timeout: 3000 }, (res) => { console.log(res.statusCode === 200 ? "ok" : "status " + res.statusCode); res.resume(); });
    r.on("error", (e) => console.log(e.code || e.message));
    r.on("timeout", () => { console.log("timeout"); r.destroy(); });`;
  const r = spawnSync("runuser", ["-u", "nobody", "--", process.execPath, "-e", script, socket], { encoding: "utf8", timeout: 10_000 });
  return (r.stdout || r.stderr).trim();
}

/** Inodes of the sockets a process has open. */
function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Listening (TCP state 0A) or bound UDP sockets in the daemon's network namespace: inode → "proto local". */
function inetListeners(pid: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const proto of ["tcp", "tcp6", "udp", "udp6"]) {
    let text = "";
    try {
      text = readFileSync(`/proc/${pid}/net/${proto}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.trim().split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      const listening = proto.startsWith("tcp") ? cols[3] === "0A" : true;
      if (listening) out.set(cols[9]!, `${proto} ${cols[1]}`);
    }
  }
  return out;
}

/** Every file below dir, as paths relative to it. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      out.push(relative(dir, p));
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

// ---------------------------------------------------------------------------------------

describe("the socket and its folder", () => {
  it("are 0600 and 0700 and ours; the pid file too", async () => {
    d = await startDaemon();
    const sock = lstatSync(d.paths.socket);
    expect(sock.isSocket()).toBe(true);
    expect(sock.mode & 0o777).toBe(0o600);
    expect(sock.uid).toBe(uid);
    const dir = lstatSync(dirname(d.paths.socket));
    expect(dir.isDirectory()).toBe(true);
    expect(dir.mode & 0o777).toBe(0o700);
    expect(dir.uid).toBe(uid);
    expect(mode(d.paths.pidFile) & 0o077).toBe(0);
  });

  it("a runtime folder others can open is refused at start (never chmod-ed behind the owner's back)", async () => {
    const home = tempHome();
    cleanups.push(() => rmSync(home, { recursive: true, force: true }));
    mkdirSync(join(home, "run"), { mode: 0o777 });
    chmodSync(join(home, "run"), 0o777);
    const r = await runCli(["daemon", "start"], { home });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/run can be opened by other users \(mode 777\); run `chmod 700 /);
    expect(mode(join(home, "run"))).toBe(0o777);
    expect(existsSync(join(home, "run", "daemon.sock"))).toBe(false);
    chmodSync(join(home, "run"), 0o700);
    d = await startDaemon({ home });
    expect(mode(d.paths.socket)).toBe(0o600);
  });

  it("refuses a runtime folder that is another user's or a symlink, and a squatted relocated folder", async (ctx) => {
    const who = nobody();
    if (!who) {
      console.warn("skipped: needs root and a `nobody` user to create folders owned by someone else");
      ctx.skip();
      return;
    }
    const problems: string[] = [];
    const refused = async (name: string, home: string, env: NodeJS.ProcessEnv = {}) => {
      writeConfig(home, { jobModules: [FIXTURE_JOBS] });
      const s = spawnDaemon(home, { env });
      cleanups.push(() => killDaemonsFor(home));
      const exit = await within(s.exited, 15_000, `a daemon on ${name}`).catch(async (e: Error) => {
        s.child.kill("SIGKILL");
        await s.exited;
        return { code: -1, signal: null, note: e.message };
      });
      const log = readFileSync(join(home, "daemon.log"), "utf8");
      if (exit.code === 0 || exit.code === -1) problems.push(`${name}: the daemon did not refuse (exit ${exit.code})`);
      else if (!/another user|not a directory|refusing/.test(log)) problems.push(`${name}: refused without saying why: ${log.slice(-300)}`);
    };

    // run/ owned by nobody.
    const h1 = tempHome();
    cleanups.push(() => rmSync(h1, { recursive: true, force: true }));
    mkdirSync(join(h1, "run"), { mode: 0o700 });
    chownSync(join(h1, "run"), who.uid, who.gid);
    await refused("a run folder owned by nobody", h1);

    // run/ is a symlink to a folder elsewhere.
    const h2 = tempHome();
    const elsewhere = mkdtempSync(join(tmpdir(), "tw-elsewhere-"));
    cleanups.push(() => rmSync(h2, { recursive: true, force: true }));
    cleanups.push(() => rmSync(elsewhere, { recursive: true, force: true }));
    symlinkSync(elsewhere, join(h2, "run"));
    await refused("a run folder that is a symlink", h2);
    if (readdirSync(elsewhere).length > 0) problems.push(`a symlinked run folder: files were created through it: ${readdirSync(elsewhere).join(", ")}`);

    // A home so long that the socket moves to $TMPDIR/teamwork-<uid>/, which nobody squatted.
    const shortTmp = mkdtempSync(join(tmpdir(), "tw-t-"));
    cleanups.push(() => rmSync(shortTmp, { recursive: true, force: true }));
    chmodSync(shortTmp, 0o755);
    const squat = join(shortTmp, `teamwork-${uid}`);
    mkdirSync(squat, { mode: 0o777 });
    chownSync(squat, who.uid, who.gid);
    const h3 = join(tempHome(), "a-rather-long-folder-name-".repeat(4));
    mkdirSync(h3, { recursive: true });
    cleanups.push(() => rmSync(dirname(h3), { recursive: true, force: true }));
    await refused("a relocated socket folder squatted by nobody", h3, { TMPDIR: shortTmp });
    if (readdirSync(squat).length > 0) problems.push(`a squatted socket folder: the daemon put ${readdirSync(squat).join(", ")} in it`);

    expect(problems).toEqual([]);
  }, 60_000);
});

describe("another user", () => {
  it("cannot connect to the socket, even with the folders opened up; the CLI says it is a permission problem", async (ctx) => {
    const who = nobody();
    if (!who) {
      console.warn("skipped: needs root and a `nobody` user (runuser) to connect as another user");
      ctx.skip();
      return;
    }
    d = await startDaemon();
    const daemon = d;
    const bin = cliForOthers((fn) => cleanups.push(fn));
    const runDir = dirname(daemon.paths.socket);
    // As the daemon leaves things: the home (mkdtemp) is 0700, run/ is 0700.
    expect(connectAsNobody(daemon.paths.socket)).toMatch(/EACCES|EPERM/);
    // Even if the owner loosens the home and the folder, the socket's own 0600 keeps nobody out.
    chmodSync(daemon.home, 0o755);
    chmodSync(runDir, 0o711);
    try {
      expect(connectAsNobody(daemon.paths.socket)).toMatch(/EACCES|EPERM/);
      const cli = spawnSync("runuser", ["-u", "nobody", "--", process.execPath, bin, "--home", daemon.home, "--no-autostart", "tasks", "list"], { encoding: "utf8", timeout: 15_000, env: { ...process.env, NO_COLOR: "1" } });
      expect(cli.status).toBe(3);
      expect(cli.stderr).toMatch(/permission denied/);
      const status = spawnSync("runuser", ["-u", "nobody", "--", process.execPath, bin, "--home", daemon.home, "--no-autostart", "daemon", "status"], { encoding: "utf8", timeout: 15_000, env: { ...process.env, NO_COLOR: "1" } });
      expect.soft(`${status.stdout}${status.stderr}`, "`daemon status` run by another user").toMatch(/permission denied|another user/);
      // Positive control: with the socket opened up, the same user does get in, so the
      // refusals above are the permissions at work, not a broken harness.
      chmodSync(daemon.paths.socket, 0o666);
      expect(connectAsNobody(daemon.paths.socket)).toBe("ok");
    } finally {
      chmodSync(daemon.paths.socket, 0o600);
      chmodSync(runDir, 0o700);
      chmodSync(daemon.home, 0o700);
    }
    expect(connectAsNobody(daemon.paths.socket)).toMatch(/EACCES|EPERM/);
  }, 60_000);
});

describe("network exposure", () => {
  it("opens no TCP or UDP listener, even after running jobs; its only listening socket is its Unix socket", async () => {
    d = await startDaemon({ config: { concurrency: 3, smtpUrl: "smtp://u:p@127.0.0.1:1/", backoff: { base: "50ms", cap: "100ms" } } });
    const daemon = d;
    const { task } = await daemon.client.call("tasksAdd", { title: "x", board: "default" });
    const jobs = await Promise.all([
      daemon.client.call("jobsEnqueue", { type: "report", payload: { board: "default", format: "md" } }),
      daemon.client.call("jobsEnqueue", { type: "notify", payload: { taskId: task.id, to: ["a@example.com"] }, maxAttempts: 1 }),
      daemon.client.call("jobsEnqueue", { type: "noop" }),
    ]);
    for (const { job } of jobs) await finished(daemon.client, job.id);

    const mine = socketInodes(daemon.pid);
    expect(mine.size).toBeGreaterThan(0);
    const inet = inetListeners(daemon.pid);
    expect([...mine].filter((i) => inet.has(i)).map((i) => inet.get(i))).toEqual([]);

    // Cross-check with ss where it exists: nothing listening for our pid but the Unix socket.
    const ss = spawnSync("ss", ["-H", "-l", "-n", "-p", "-t", "-u", "-x", "-w"], { encoding: "utf8" });
    if (ss.status === 0) {
      const ours = ss.stdout.split("\n").filter((l) => l.includes(`pid=${daemon.pid},`));
      expect(ours.filter((l) => !l.startsWith("u_str")), ss.stdout.slice(0, 500)).toEqual([]);
      // Its socket, and the home's lock: an abstract name that tells a connection the daemon's pid and nothing else.
      const lock = `@${homeLockKey(daemon.paths.runtimeDir).abstractName!.slice(1)}`;
      // (ss shows an abstract name's NUL padding as "@": Node binds the whole sun_path.)
      expect(ours.map((l) => l.split(/\s+/)[4]!.replace(/(?<=^@.*)@+$/, "")).sort()).toEqual([daemon.paths.socket, lock].sort());
    } else console.warn("ss is not available: checked /proc only");
  }, 30_000);
});

describe("files stay in their folders", () => {
  it("keeps uploads in the database, writing no file anywhere, whatever the source's name or path; thumbnails get safe names", async () => {
    // A sandbox holding both the home and the sources, to see that nothing lands beside the home.
    const sandbox = mkdtempSync(join(tmpdir(), "tw-sandbox-"));
    cleanups.push(() => rmSync(sandbox, { recursive: true, force: true }));
    const home = join(sandbox, "home");
    mkdirSync(home, { mode: 0o700 });
    d = await startDaemon({ home });
    const daemon = d;
    const src = join(sandbox, "src");
    mkdirSync(join(src, "a", "b"), { recursive: true });
    const png = await sharp({ create: { width: 4, height: 3, channels: 3, background: "#c03" } }).png().toBuffer();
    const names = ["evil.png", "...png", ".. .png", ".hidden.png", "new\nline.png", "%2e%2e%2fevil.png", "évil ✓.png", `${"n".repeat(246)}.png`, "back\\slash..\\..png"];
    for (const n of names) writeFileSync(join(src, n), png);
    symlinkSync(join(src, "evil.png"), join(src, "a", "b", "link-to-evil.png"));
    const before = tree(sandbox).filter((p) => !p.startsWith(`home${sep}`) && p !== "home");

    const sources = [
      ...names.map((n) => join(src, n)),
      `${join(src, "a", "b")}/../../evil.png`, // `..` segments, through the API as given
      join(src, "a", "b", "link-to-evil.png"), // a symlink
    ];
    const sha = createHash("sha256").update(png).digest("hex");
    const homeBefore = tree(home).filter((p) => p.startsWith(`uploads`) || p.startsWith("thumbs"));
    const problems: string[] = [];
    for (const source of sources) {
      const { upload } = await daemon.client.call("uploadsAdd", { path: source });
      if (upload.path !== null) problems.push(`${JSON.stringify(source)} stored as a file at ${upload.path}`);
      if (upload.file?.sha256 !== sha) problems.push(`${JSON.stringify(source)}: the stored bytes differ`);
    }
    // The CLI resolves a relative path with `..` itself; the result must be the same.
    const cli = spawnSync(process.execPath, [BIN, "--home", home, "upload", "a/b/../../evil.png", "--json"], { cwd: src, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
    expect(cli.status, cli.stderr).toBe(0);
    const cliUpload = (JSON.parse(cli.stdout) as { upload: { name: string; path: string | null; file: { sha256: string } } }).upload;
    expect([cliUpload.name, cliUpload.path, cliUpload.file.sha256]).toEqual(["evil.png", null, sha]);

    const after = tree(sandbox).filter((p) => !p.startsWith(`home${sep}`) && p !== "home");
    expect(after).toEqual(before);
    expect(problems).toEqual([]);
    // Every upload got its thumbnail job, and all of them completed with an artifact of a safe name.
    await waitFor(async () => {
      const s = await daemon.client.call("daemonStatus", {});
      return s.counts.jobs.pending === 0 && s.counts.jobs.running === 0;
    }, { timeoutMs: 20_000, what: "the thumbnails" });
    const thumbs = await allJobs(daemon.client, { type: "thumbnail" });
    expect(thumbs.length).toBe(sources.length + 1);
    for (const j of thumbs) {
      expect(j.status, `${j.id}: ${j.error}`).toBe("complete");
      expect((j.result as { artifact: string }).artifact).toMatch(ARTIFACT_NAME);
    }
    expect(tree(home).filter((p) => p.startsWith(`uploads`) || p.startsWith("thumbs")), "files under the home").toEqual(homeBefore);
  }, 60_000);

  it("refuses or permanently fails a thumbnail whose source leaves the uploads folder", async () => {
    d = await startDaemon();
    const daemon = d;
    const outside = mkdtempSync(join(tmpdir(), "tw-outside-"));
    cleanups.push(() => rmSync(outside, { recursive: true, force: true }));
    writeFileSync(join(outside, "secret.png"), "not for you");
    symlinkSync(join(outside, "secret.png"), join(daemon.paths.uploads, "link-out.png"));
    symlinkSync(outside, join(daemon.paths.uploads, "dir-out"));
    symlinkSync("/etc", join(daemon.paths.uploadsTmp, "etc"));
    const sources = [
      "/etc/passwd",
      daemon.paths.database,
      `${daemon.paths.uploads}/../teamwork.db`,
      "../teamwork.db",
      "tmp/../../teamwork.db",
      "link-out.png",
      "dir-out/secret.png",
      "tmp/etc/passwd",
      join(outside, "secret.png"),
      ".",
      "tmp",
    ];
    const problems: string[] = [];
    for (const source of sources) {
      const r = await daemon.client.call("jobsEnqueue", { type: "thumbnail", payload: { source } }).then(
        (x) => x.job,
        (e: Error & { code?: string }) => e,
      );
      if (r instanceof Error) {
        if (r.code !== "invalid_input") problems.push(`${source}: refused with ${r.code}: ${r.message}`);
        continue;
      }
      const j: Job = await finished(daemon.client, r.id);
      if (j.status !== "failed" || j.attempts !== 1 || !/outside|not a file|not found/.test(j.error ?? "")) problems.push(`${source}: ${j.status} after ${j.attempts} attempts: ${j.error}`);
    }
    expect(problems).toEqual([]);
    expect(readdirSync(daemon.paths.thumbs)).toEqual([]);
  }, 30_000);

  it("stores reports as artifacts with safe names, writing no file; board names cannot climb out", async () => {
    d = await startDaemon();
    const daemon = d;
    await daemon.client.call("boardsAdd", { name: "web" });
    for (const board of ["../../etc", "..", "web/../../x", "/tmp/x", "web\u0000", "..%2f..%2fx"]) {
      const r = await daemon.client.call("jobsEnqueue", { type: "report", payload: { board, format: "md" } }).then(
        (x) => `enqueued ${x.job.id}`,
        (e: Error & { code?: string }) => e.code ?? e.message,
      );
      expect(["invalid_input", "not_found"], `${JSON.stringify(board)}: ${r}`).toContain(r);
      const add = await daemon.client.call("boardsAdd", { name: board }).then(
        () => "created",
        (e: Error & { code?: string }) => e.code ?? "",
      );
      expect(add, JSON.stringify(board)).toBe("invalid_input");
    }
    const { job } = await daemon.client.call("jobsEnqueue", { type: "report", payload: { board: "web", format: "html" } });
    const done = await finished(daemon.client, job.id);
    expect(done.status).toBe("complete");
    const artifact = (done.result as { artifact: string }).artifact;
    expect(artifact).toMatch(new RegExp(`^web-\\d{8}-\\d{6}-job${job.id}\\.html$`));
    expect(artifact).toMatch(ARTIFACT_NAME);
    expect(readdirSync(daemon.paths.reports)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------

const SECRET = "s3cretPass";
/** The password as it may leak: plain, URL- and base64-encoded, and as AUTH PLAIN/LOGIN send it. */
const LEAKS = [SECRET, encodeURIComponent(SECRET), Buffer.from(SECRET).toString("base64"), Buffer.from(`\0user\0${SECRET}`).toString("base64")];
const leaks = (text: string) => LEAKS.filter((l) => text.includes(l));

/** Every file under home except config.json (where the user put the password), as latin1 text. */
function filesUnder(home: string): { path: string; text: string }[] {
  return tree(home)
    .filter((p) => p !== "config.json" && statSync(join(home, p)).isFile())
    .map((p) => ({ path: p, text: readFileSync(join(home, p)).toString("latin1") }));
}

/** An SMTP server on loopback that offers AUTH and refuses it, quoting the credentials back. */
async function blabbingSmtp(): Promise<{ server: Server; port: number }> {
  const server = createServer((sock) => {
    sock.setEncoding("latin1");
    sock.write("220 blab.example ESMTP ready\r\n");
    let buf = "";
    sock.on("data", (chunk: string) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\r\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const verb = line.split(" ")[0]!.toUpperCase();
        if (verb === "EHLO") sock.write("250-blab.example\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n");
        else if (verb === "HELO") sock.write("250 blab.example\r\n");
        else if (verb === "AUTH") {
          const arg = line.split(" ").slice(2).join(" ");
          const decoded = arg ? Buffer.from(arg, "base64").toString("latin1") : "";
          sock.write(`535 5.7.8 Authentication failed for ${arg} (${decoded.replace(/\0/g, ":")}) password ${SECRET}\r\n`);
        } else if (verb === "QUIT") sock.end("221 bye\r\n");
        else sock.write(`502 5.5.2 unknown ${line} ${SECRET}\r\n`);
      }
    });
    sock.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  return { server, port: typeof addr === "object" && addr ? addr.port : 0 };
}

describe("the SMTP password", () => {
  for (const variant of ["nothing listening on port 1", "a server that quotes the password back"] as const) {
    it(`never shows in logs, errors, --json output, streams or the database (${variant})`, async () => {
      let port = 1;
      if (variant !== "nothing listening on port 1") {
        const s = await blabbingSmtp();
        cleanups.push(() => new Promise<void>((r) => s.server.close(() => r())));
        port = s.port;
      }
      d = await startDaemon({ config: { smtpUrl: `smtp://user:${SECRET}@127.0.0.1:${port}/`, mailFrom: "board@example.com", backoff: { base: "50ms", cap: "200ms" } } });
      const daemon = d;
      const { task } = await daemon.client.call("tasksAdd", { title: "mail me" });

      // Watch every event while it happens.
      const events: StreamEvent[] = [];
      const stream = daemon.client.stream("eventsStream", {}, (e) => events.push(e));
      await stream.opened;
      cleanups.push(() => stream.close());

      // Through the CLI, as a user would (three attempts, then it fails), and through the API.
      const notify = await runCli(["notify", String(task.id), "--to", "a@example.com,b@example.com", "--watch"], { home: daemon.home, timeoutMs: 30_000 });
      expect(notify.exitCode).toBe(1);
      const { job } = await daemon.client.call("jobsEnqueue", { type: "notify", payload: { taskId: task.id, to: ["c@example.com"] }, maxAttempts: 1 });
      const failed = await finished(daemon.client, job.id);
      expect(failed.status).toBe("failed");
      expect(failed.error).toMatch(/SMTP|ECONN|refused|login|535/i);
      const assign = await runCli(["tasks", "assign", String(task.id), "d@example.com", "--json"], { home: daemon.home });
      await waitFor(async () => {
        const s = await daemon.client.call("daemonStatus", {});
        return s.counts.jobs.pending === 0 && s.counts.jobs.running === 0;
      }, { timeoutMs: 20_000, what: "the mail jobs to end" });
      stream.close();

      const outputs: [string, string][] = [
        ["notify --watch (stdout)", notify.stdout],
        ["notify --watch (stderr)", notify.stderr],
        ["tasks assign", assign.stdout + assign.stderr],
        ["jobs show --json", (await runCli(["jobs", "show", String(job.id), "--json"], { home: daemon.home })).stdout],
        ["jobs show", (await runCli(["jobs", "show", String(job.id)], { home: daemon.home })).stdout],
        ["jobs list --json", (await runCli(["jobs", "list", "--json"], { home: daemon.home })).stdout],
        ["jobs logs", (await runCli(["jobs", "logs", String(job.id)], { home: daemon.home })).stdout],
        ["jobs why", (await runCli(["jobs", "why", String(job.id)], { home: daemon.home })).stdout],
        ["daemon status --json", (await runCli(["daemon", "status", "--json"], { home: daemon.home })).stdout],
        ["daemon logs", (await runCli(["daemon", "logs"], { home: daemon.home })).stdout],
        ["GET /metrics", (await httpRequest(daemon.paths.socket, { method: "GET", path: "/metrics" })).body],
        ["GET /stats", (await httpRequest(daemon.paths.socket, { method: "GET", path: "/stats" })).body],
        ["the event stream", JSON.stringify(events)],
      ];
      // The database and the log at rest (the daemon stopped, so the WAL is folded in too).
      expect(await daemon.stop()).toBe(0);
      for (const f of filesUnder(daemon.home)) outputs.push([f.path, f.text]);

      const found = outputs.filter(([, text]) => leaks(text).length > 0).map(([where, text]) => `${where}: ${leaks(text).join(", ")}`);
      expect(found).toEqual([]);
      // And the errors are still useful: they name the server, with the password masked.
      expect(outputs.find(([w]) => w === "jobs show --json")![1]).toMatch(/127\.0\.0\.1/);
    }, 60_000);
  }
});
