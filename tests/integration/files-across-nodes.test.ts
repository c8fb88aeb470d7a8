// Files do not depend on the host a job runs on (issue 14, item 6). On PostgreSQL, two daemons
// with their own homes on one database, one after the other (two at once are refused until
// nodes land): an upload taken by daemon A is thumbnailed by daemon B, which never saw the
// file, and `jobs artifact` on B fetches the thumbnail; a report made by B is fetched through
// A once B is gone. On SQLite: the artifact round trip through the CLI (file, stdout, the
// terminal refused for binary), bad ids and names, and the size limit.

import { createHash, randomBytes } from "node:crypto";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, runCli, runJson, runTty } from "../helpers/cli.js";
import { FIXTURE_JOBS, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";
import { PG_TEST_URL, POSTGRES_SKIPPED, pgUrlFor } from "../store/factory.js";
import type { Attachment, Job } from "../../src/protocol/types.js";

const FILES_JOBS = fileURLToPath(new URL("../fixtures/jobs/files.mjs", import.meta.url));
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** The job once it has ended (complete, failed or cancelled). */
async function ended(d: TestDaemon, id: number): Promise<Job> {
  return waitFor(
    async () => {
      const j = (await d.client.call("jobsGet", { id })).job;
      return j.status === "complete" || j.status === "failed" || j.status === "cancelled" ? j : null;
    },
    { timeoutMs: 30_000, what: `job ${id} to end` },
  );
}

/** Runs the CLI and keeps stdout as bytes (runCli decodes it as text). */
function runCliBytes(args: string[], home: string): Promise<{ exitCode: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1", TEAMWORK_HOME: home };
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code) => resolve({ exitCode: code ?? 1, stdout: Buffer.concat(out), stderr }));
  });
}

describe.skipIf(POSTGRES_SKIPPED !== null)("files across two daemons on one PostgreSQL database", () => {
  const database = `tw_files_${randomBytes(5).toString("hex")}`;
  const url = pgUrlFor(database);
  const admin = new pg.Client({ connectionString: PG_TEST_URL });
  const daemons: TestDaemon[] = [];
  let scratch = "";

  beforeAll(async () => {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    scratch = mkdtempSync(join(tmpdir(), "tw-files-"));
  });
  afterAll(async () => {
    for (const d of daemons) await d.cleanup().catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
    rmSync(scratch, { recursive: true, force: true });
  });

  const start = async () => {
    const d = await startDaemon({ config: { jobModules: [FIXTURE_JOBS, FILES_JOBS] }, env: { TEAMWORK_DATABASE_URL: url } });
    daemons.push(d);
    return d;
  };

  it("A takes an upload and stops; B, which never saw the file, thumbnails it; `jobs artifact` on B fetches a real image", async () => {
    const a = await start();
    // Hold thumbnails on A (the pause is kept in the database), so that A stops before it runs one.
    expect((await runCli(["queue", "pause", "thumbnail"], { home: a.home })).exitCode).toBe(0);
    const { json: task } = await runJson<{ id: number }>(["tasks", "add", "Screenshot of the bug"], { home: a.home });
    const photo = join(scratch, "bug screen.png");
    await sharp({ create: { width: 1200, height: 900, channels: 3, background: { r: 200, g: 40, b: 40 } } }).png().toFile(photo);
    const original = readFileSync(photo);
    const up = await runJson<{ upload: Attachment; job: Job }>(["upload", photo, "--task", String(task.id)], { home: a.home });
    expect(up.exitCode, up.stderr).toBe(0);
    expect(up.json.upload).toMatchObject({ path: null, file: { size: original.length, sha256: sha(original) } });
    expect(up.json.job.status).toBe("pending");
    await a.stop();
    // The file is gone from A's host too: B can only have the bytes from the database.
    rmSync(photo);

    const b = await start();
    expect(b.home).not.toBe(a.home);
    expect((await runCli(["queue", "resume", "thumbnail"], { home: b.home })).exitCode).toBe(0);
    const job = await ended(b, up.json.job.id);
    expect(job.status, job.error ?? "").toBe("complete");
    expect(job.attempts).toBe(1);
    const result = job.result as { artifact: string; bytes: number; width: number; height: number };
    expect(result).toMatchObject({ artifact: "bug_screen-256.png", width: 256, height: 192 });

    const out = join(scratch, "thumb.png");
    const fetched = await runCli(["jobs", "artifact", String(job.id), "-o", out], { home: b.home });
    expect(fetched.exitCode, fetched.stderr).toBe(0);
    const meta = await sharp(out, { failOn: "error" }).metadata();
    expect([meta.format, meta.width, meta.height, statSync(out).size]).toEqual(["png", 256, 192, result.bytes]);
    // The board on B shows it, kept with the upload.
    const shown = await waitFor(async () => {
      const s = await runJson<{ attachments: Attachment[] }>(["tasks", "show", String(task.id)], { home: b.home });
      return s.json.attachments[0]?.thumbnail.status === "ready" ? s.json.attachments[0] : null;
    });
    expect(shown.thumbnail).toMatchObject({ jobId: job.id, file: { mediaType: "image/png", size: result.bytes, sha256: sha(readFileSync(out)) } });
    // And the upload's own bytes, through B, are the file A read.
    const dl = await b.client.download("uploadsFile", { id: up.json.upload.id, name: "original" });
    const chunks: Buffer[] = [];
    for await (const c of dl.body) chunks.push(c as Buffer);
    expect([dl.name, sha(Buffer.concat(chunks))]).toEqual(["bug screen.png", sha(original)]);
    await b.stop();
  }, 120_000);

  it("a report made by B is fetched through A after B stops; a binary artifact bigger than one read slice comes whole", async () => {
    const b = daemons[1]!;
    await b.restart();
    const { job } = await b.client.call("jobsEnqueue", { type: "report", payload: { format: "md" } });
    const report = await ended(b, job.id);
    expect(report.status, report.error ?? "").toBe("complete");
    const name = (report.result as { artifact: string }).artifact;
    const big = await ended(b, (await b.client.call("jobsEnqueue", { type: "put-artifact", payload: { size: 2_500_000, seed: 7, name: "blob.bin" } })).job.id);
    expect(big.status, big.error ?? "").toBe("complete");
    await b.stop();

    const a = daemons[0]!;
    await a.restart();
    const text = await runCli(["jobs", "artifact", String(job.id)], { home: a.home });
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^# Board report: default\n/);
    const listed = await runJson<{ name: string; mediaType: string; size: number }[]>(["jobs", "artifact", String(job.id), "--list"], { home: a.home });
    expect(listed.json).toEqual([{ name, mediaType: "text/markdown; charset=utf-8", size: Buffer.byteLength(text.stdout), sha256: sha(Buffer.from(text.stdout)), createdAt: expect.any(String) }]);
    const blob = await runCliBytes(["jobs", "artifact", String(big.id), "blob.bin"], a.home);
    expect(blob.exitCode, blob.stderr).toBe(0);
    expect(blob.stdout.length).toBe(2_500_000);
    const listedBlob = await runJson<{ sha256: string }[]>(["jobs", "artifact", String(big.id), "--list"], { home: a.home });
    expect(sha(blob.stdout)).toBe(listedBlob.json[0]!.sha256);
  }, 120_000);
});

describe("jobs artifact on SQLite: the round trip, bad ids and names, the terminal, the limit", () => {
  let d: TestDaemon;
  let scratch = "";
  beforeAll(async () => {
    // 64 KiB: small enough to pass in a test, big enough for a report of the default board.
    d = await startDaemon({ config: { jobModules: [FIXTURE_JOBS, FILES_JOBS], fileMaxBytes: 64 * 1024 } });
    scratch = mkdtempSync(join(tmpdir(), "tw-files-"));
  });
  afterAll(async () => {
    await d?.cleanup();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });
  const home = () => ({ home: d.home });

  it("a binary artifact: to a file, to stdout when it is not a terminal, never to a terminal", async () => {
    const job = await ended(d, (await d.client.call("jobsEnqueue", { type: "put-artifact", payload: { size: 5000, seed: 3, name: "data.bin" } })).job.id);
    expect(job.status, job.error ?? "").toBe("complete");
    const piped = await runCliBytes(["jobs", "artifact", String(job.id)], d.home);
    expect(piped.exitCode, piped.stderr).toBe(0);
    expect(piped.stdout.length).toBe(5000);
    const out = join(scratch, "data.bin");
    const saved = await runJson<{ name: string; size: number; sha256: string; path: string }>(["jobs", "artifact", String(job.id), "data.bin", "-o", out], home());
    expect(saved.json).toEqual({ name: "data.bin", mediaType: "application/octet-stream", size: 5000, sha256: sha(piped.stdout), path: out });
    expect(readFileSync(out).equals(piped.stdout)).toBe(true);
    expect(existsSync(`${out}.partial`)).toBe(false);
    const tty = await runTty(["jobs", "artifact", String(job.id)], { home: d.home });
    expect(tty.exitCode).toBe(2);
    expect(tty.output).toMatch(/refusing to write data\.bin \(application\/octet-stream, 4\.9 KiB\) to the terminal/);
    expect(tty.output).toMatch(/give -o FILE/);
    // With --json, stdout carries only JSON: the bytes need -o.
    const json = await runJson(["jobs", "artifact", String(job.id)], home());
    expect(json.exitCode).toBe(2);
    expect(json.stderr + JSON.stringify(json.json)).toMatch(/with --json, stdout carries only JSON: give -o FILE/);
  }, 60_000);

  it("bad ids and names: a clear message and the documented exit code; 4xx JSON on the socket", async () => {
    const several = await ended(d, (await d.client.call("jobsEnqueue", { type: "put-artifact", payload: { count: 2 } })).job.id);
    const none = await ended(d, (await d.client.call("jobsEnqueue", { type: "noop" })).job.id);
    const cases: [string[], number, RegExp][] = [
      [["jobs", "artifact", "999999"], 4, /job 999999 not found/],
      [["jobs", "artifact", "999999", "x.bin"], 4, /job 999999 not found/],
      [["jobs", "artifact", String(several.id)], 2, new RegExp(`job ${several.id} stored 2 artifacts; name one:\\n\\s+out-0\\.bin\\s+\\(application/octet-stream, 1000 B\\)\\n\\s+out-1\\.bin`)],
      [["jobs", "artifact", String(several.id), "nope.bin"], 4, new RegExp(`job ${several.id} has no artifact "nope\\.bin"; it has out-0\\.bin, out-1\\.bin`)],
      [["jobs", "artifact", String(none.id)], 4, new RegExp(`job ${none.id} stored no artifacts`)],
      [["jobs", "artifact", String(several.id), "../etc/passwd"], 2, /an artifact name is a file name/],
      [["jobs", "artifact", "abc"], 2, /./],
    ];
    for (const [args, code, message] of cases) {
      const r = await runCli(args, home());
      expect(r.exitCode, `${args.join(" ")}: ${r.stderr}`).toBe(code);
      expect(r.stderr, args.join(" ")).toMatch(message);
    }
    // On the socket: the error as JSON, before any byte.
    const { request } = await import("node:http");
    const get = (path: string) =>
      new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
        const req = request({ socketPath: d.paths.socket, path }, (res) => {
          let body = "";
          res.setEncoding("utf8").on("data", (c: string) => (body += c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), body }));
        });
        req.on("error", reject);
        req.end();
      });
    const missing = await get(`/jobs/${several.id}/artifacts/nope.bin`);
    expect([missing.status, missing.type]).toEqual([404, "application/json; charset=utf-8"]);
    expect(JSON.parse(missing.body)).toMatchObject({ error: { code: "not_found", message: expect.stringMatching(/has no artifact "nope\.bin"/) } });
    const bad = await get(`/jobs/${several.id}/artifacts/..%2Fx`);
    expect(bad.status).toBe(400);
    const good = await get(`/jobs/${several.id}/artifacts/out-1.bin`);
    expect([good.status, good.type, good.body.length > 0]).toEqual([200, "application/octet-stream", true]);
  }, 60_000);

  it("past fileMaxBytes: an upload is refused (exit 2), an artifact fails its job permanently; nothing is stored", async () => {
    const big = join(scratch, "big.png");
    writeFileSync(big, randomBytes(64 * 1024 + 1));
    const up = await runCli(["upload", big], home());
    expect(up.exitCode).toBe(2);
    expect(up.stderr).toContain(`${big} is 65537 bytes (64 KiB); files kept in teamwork's database are limited to 65536 bytes (64 KiB, fileMaxBytes)`);
    expect(up.stderr).toMatch(/hint: raise fileMaxBytes/);
    const job = await ended(d, (await d.client.call("jobsEnqueue", { type: "put-artifact", payload: { size: 64 * 1024 + 1, name: "too-big.bin" } })).job.id);
    expect(job.status).toBe("failed");
    expect(job.attempts).toBe(1);
    expect(job.errors[0]).toMatchObject({ permanent: true, message: "artifact too-big.bin is 65537 bytes (64 KiB); files kept in teamwork's database are limited to 65536 bytes (64 KiB, fileMaxBytes); nothing was stored" });
    expect((await d.client.call("jobsArtifacts", { id: job.id })).artifacts).toEqual([]);
    // At the limit exactly: stored.
    const fits = await ended(d, (await d.client.call("jobsEnqueue", { type: "put-artifact", payload: { size: 64 * 1024, name: "fits.bin" } })).job.id);
    expect(fits.status, fits.error ?? "").toBe("complete");
  }, 60_000);
});
