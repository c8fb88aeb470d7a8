// A full disk under every file the daemon writes for a job: the .eml of an assignment email
// and of a notify. Reports, thumbnails and uploads are kept in the database: they are checked
// to complete whole with that disk full, writing nothing there.
//
// A small tmpfs stands in for the disk. Its folders are bind-mounted over the daemon's
// reports/, outbox/, thumbs/ and uploads/, so the outputs land on the full disk while the
// database stays on a roomy one: the daemon must be able to record what happened to each
// attempt (a full disk under the database is faults.test.ts's subject). A filler file
// leaves a few KiB free, less than any of the files, so every write is cut short; then the
// filler is emptied and the retried job must complete with a whole file.
//
// Plus writeFileAtomic itself on a full tmpfs, and two processes writing one path at once.

import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, ftruncateSync, fstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { simpleParser } from "mailparser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDaemon, tempHome, type TestDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";
import { prng } from "./support.js";
import { writeFileAtomic } from "../../src/lib/fs.js";
import type { Job } from "../../src/protocol/types.js";

/** What is left free on the full disk: less than the smallest file written here. */
const FREE = 8 * 1024;
const OUTPUT_FOLDERS = ["reports", "outbox", "thumbs", "uploads"] as const;

interface Tmpfs {
  mnt: string;
  /** Fills the disk, then frees exactly `free` bytes by shrinking the filler. */
  fillTo(free: number): number;
  /** Empties the filler: space for everything again. */
  release(): void;
  freeBytes(): number;
  unmount(): void;
}

/** A tmpfs of `size` (mount's syntax), or null (with a warning) when we may not mount one. */
function mountTmpfs(size: string, why: string): Tmpfs | null {
  const mnt = mkdtempSync(join(tmpdir(), "tw-diskfull-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", mnt], { stdio: "pipe" });
  } catch (err) {
    rmSync(mnt, { recursive: true, force: true });
    console.warn(`skipped ${why}: cannot mount a ${size} tmpfs here (${(err as Error).message.split("\n")[0]})`);
    return null;
  }
  const filler = join(mnt, "filler");
  const freeBytes = () => {
    const s = statfsSync(mnt);
    return s.bavail * s.bsize;
  };
  return {
    mnt,
    freeBytes,
    fillTo(free) {
      rmSync(filler, { force: true });
      const fd = openSync(filler, "w");
      try {
        const chunk = Buffer.alloc(1 << 20, 0x61);
        for (;;) {
          try {
            if (writeSync(fd, chunk) === 0) break;
          } catch {
            break; // ENOSPC: full to the last page
          }
        }
        ftruncateSync(fd, Math.max(0, fstatSync(fd).size - free));
      } finally {
        closeSync(fd);
      }
      const left = freeBytes();
      expect(left, "free space after filling").toBeGreaterThanOrEqual(free);
      expect(left, "free space after filling").toBeLessThan(free + 16 * 1024);
      return left;
    },
    release: () => writeFileSync(filler, ""),
    unmount() {
      unmount(mnt);
      rmSync(mnt, { recursive: true, force: true });
    },
  };
}

function unmount(path: string): void {
  try {
    execFileSync("umount", [path], { stdio: "pipe" });
  } catch {
    execFileSync("umount", ["-l", path], { stdio: "pipe" });
  }
}


// ---------------------------------------------------------------------------------------

describe("writeFileAtomic on a full disk", () => {
  it("throws on a short write, keeps the old file, and leaves no partial behind", (ctx) => {
    const disk = mountTmpfs("1m", "writeFileAtomic on a full disk");
    if (!disk) return ctx.skip();
    try {
      const dir = join(disk.mnt, "out");
      mkdirSync(dir);
      const target = join(dir, "report.json");
      writeFileAtomic(target, '{"old": true}\n');
      const free = disk.fillTo(FREE);
      const big = Buffer.alloc(FREE * 8, 0x62);
      let error: (Error & { code?: string }) | null = null;
      try {
        writeFileAtomic(target, big);
      } catch (err) {
        error = err as Error & { code?: string };
      }
      expect(error?.message, "the cut-short write must throw").toMatch(/disk is full/);
      expect(error?.code).toBe("ENOSPC");
      expect(readFileSync(target, "utf8")).toBe('{"old": true}\n');
      expect(readdirSync(dir)).toEqual(["report.json"]);
      expect(disk.freeBytes(), "the partial's space is given back").toBe(free);

      disk.release();
      writeFileAtomic(target, big);
      expect(readFileSync(target).equals(big)).toBe(true);
      expect(readdirSync(dir)).toEqual(["report.json"]);
    } finally {
      disk.unmount();
    }
  });
});

describe("two writers of one path", () => {
  it("never share a partial: every write succeeds and the file is always one writer's whole content", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tw-writers-"));
    try {
      const target = join(dir, "thumb.png");
      const fsModule = fileURLToPath(new URL("../../dist/lib/fs.js", import.meta.url));
      // Each writer writes its own byte, 256 KiB of it, 150 times, and reports what failed.
      const script = `
        import { writeFileAtomic } from ${JSON.stringify(fsModule)};
        const [target, byte] = process.argv.slice(1);
        const data = Buffer.alloc(256 * 1024, Number(byte));
        const errors = [];
        for (let i = 0; i < 150; i++) {
          try { writeFileAtomic(target, data); } catch (err) { errors.push(err.message); }
        }
        process.stdout.write(JSON.stringify(errors));
      `;
      const writer = (byte: number) =>
        new Promise<{ code: number | null; errors: string[]; stderr: string }>((resolve) => {
          const child = spawn(process.execPath, ["--input-type=module", "-e", script, target, String(byte)], { stdio: ["ignore", "pipe", "pipe"] });
          let out = "";
          let stderr = "";
          child.stdout.on("data", (c: Buffer) => (out += c.toString()));
          child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
          child.on("close", (code) => resolve({ code, errors: out ? (JSON.parse(out) as string[]) : [], stderr }));
        });
      const results = await Promise.all([writer(0x41), writer(0x42)]);
      for (const r of results) {
        expect(r.stderr).toBe("");
        expect(r.code).toBe(0);
        expect(r.errors.slice(0, 3), `${r.errors.length} of 150 writes failed`).toEqual([]);
      }
      const content = readFileSync(target);
      expect(content.length).toBe(256 * 1024);
      expect(new Set(content).size, "the file mixes both writers' bytes").toBe(1);
      expect(readdirSync(dir)).toEqual(["thumb.png"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

// ---------------------------------------------------------------------------------------

describe("a full disk under the daemon's output folders", () => {
  let disk: Tmpfs | null = null;
  let d: TestDaemon | undefined;
  let home = "";
  let fixtures = "";
  const mounted: string[] = [];
  let image = "";
  let mailTask = 0;
  const DESCRIPTION = Array.from({ length: 300 }, (_, i) => `Line ${i} of the brief: the whole of it must reach the reader.`).join("\n");

  beforeAll(async () => {
    disk = mountTmpfs("16m", "the full-disk job tests");
    if (!disk) return;
    home = tempHome("tw-diskfull-home-");
    for (const f of OUTPUT_FOLDERS) {
      mkdirSync(join(disk.mnt, f), { mode: 0o700 });
      mkdirSync(join(home, f), { mode: 0o700 });
      execFileSync("mount", ["--bind", join(disk.mnt, f), join(home, f)], { stdio: "pipe" });
      mounted.push(join(home, f));
    }
    // Attempts fail fast on a full disk; a retry comes a second later.
    d = await startDaemon({ home, config: { concurrency: 2, backoff: { base: "1s", cap: "1s" } } });
    fixtures = mkdtempSync(join(tmpdir(), "tw-diskfull-src-"));
    // Noise does not compress: a 160×160 PNG of it is ~75 KB, its 120 px thumbnail ~40 KB.
    const rand = prng(0xd15c);
    const noise = Buffer.alloc(160 * 160 * 3);
    for (let i = 0; i < noise.length; i++) noise[i] = Math.floor(rand() * 256);
    image = join(fixtures, "photo.png");
    await sharp(noise, { raw: { width: 160, height: 160, channels: 3 } }).png().toFile(image);

    // A board whose reports run to tens of KiB: 60 overdue tasks, 60 events.
    await d.client.call("boardsAdd", { name: "full" });
    for (let i = 0; i < 60; i++) {
      await d.client.call("tasksAdd", { board: "full", title: `Overdue task ${i}: ${"the long way round ".repeat(3)}`, assignee: `person${i % 7}@example.com`, dueDate: `2020-01-${String((i % 28) + 1).padStart(2, "0")}` });
    }
    // A task whose mail is ~20 KB.
    mailTask = (await d.client.call("tasksAdd", { title: "Read the whole brief", description: DESCRIPTION })).task.id;
  }, 60_000);

  afterAll(async () => {
    await d?.stop();
    d?.client.close();
    for (const m of mounted.reverse()) unmount(m);
    disk?.unmount();
    if (home) rmSync(home, { recursive: true, force: true });
    if (fixtures) rmSync(fixtures, { recursive: true, force: true });
  });

  const getJob = async (id: number) => (await d!.client.call("jobsGet", { id })).job;
  const listing = (folder: string) => readdirSync(join(home, folder)).filter((f) => f !== "tmp");

  /**
   * Enqueues a job with the disk full, checks its first attempt failed (retryable, "disk is
   * full") leaving nothing in `folder`, frees the space, and returns the completed job and
   * the files it added (no partials among them).
   */
  async function throughFullDisk(folder: string, enqueue: () => Promise<Job>): Promise<{ job: Job; added: string[]; free: number }> {
    const before = new Set(listing(folder));
    const free = disk!.fillTo(FREE);
    const { id } = await enqueue();
    const first = await waitFor(
      async () => {
        const j = await getJob(id);
        return j.status === "complete" || j.status === "failed" || j.errors.length > 0 ? j : null;
      },
      { what: `job ${id}'s first attempt on the full disk` },
    );
    // Looked at before the retry (a second later) can start writing.
    const leftBehind = listing(folder).filter((f) => !before.has(f));
    disk!.release();
    expect(first.status, `the first attempt on a full disk ended "${first.status}" with ${JSON.stringify(first.result)}`).toBe("pending");
    expect(first.errors[0]?.message).toMatch(/disk is full/);
    expect(first.errors[0]?.permanent).toBe(false);
    expect(leftBehind, "files left by the failed attempt").toEqual([]);

    const job = await waitFor(
      async () => {
        const j = await getJob(id);
        return j.status === "complete" || j.status === "failed" ? j : null;
      },
      { what: `job ${id} to finish once space is free` },
    );
    expect(job.status, job.error ?? "").toBe("complete");
    const added = listing(folder).filter((f) => !before.has(f));
    expect(added.filter((f) => f.includes(".partial"))).toEqual([]);
    return { job, added, free };
  }

  const sizeOf = (path: string) => statSync(path).size;

  /** An artifact's bytes, fetched as any client would (checked against its length and SHA-256). */
  async function artifactOf(jobId: number, name: string): Promise<Buffer> {
    const dl = await d!.client.download("jobsArtifact", { id: jobId, name });
    const chunks: Buffer[] = [];
    for await (const c of dl.body) chunks.push(c as Buffer);
    const bytes = Buffer.concat(chunks);
    expect([bytes.length, createHash("sha256").update(bytes).digest("hex")]).toEqual([dl.size, dl.sha256]);
    return bytes;
  }

  // Reports, thumbnails and uploads are kept in the database (protocol/files.ts), not under
  // the home: the full disk under the output folders does not touch them (a full disk under
  // the database is faults.test.ts's subject).
  it("reports, an upload and its thumbnail go to the database: with the output disk full they complete whole and write nothing there", async (ctx) => {
    if (!d) return ctx.skip();
    const before = Object.fromEntries(OUTPUT_FOLDERS.map((f) => [f, listing(f)]));
    const free = disk!.fillTo(FREE);
    try {
      expect(sizeOf(image)).toBeGreaterThan(free);
      const { task } = await d.client.call("tasksAdd", { title: "Attach a photo" });
      const { upload, job: thumb } = await d.client.call("uploadsAdd", { path: image, taskId: task.id });
      expect(upload.file).toMatchObject({ size: sizeOf(image), sha256: createHash("sha256").update(readFileSync(image)).digest("hex") });
      const reports = await Promise.all((["json", "html", "md"] as const).map(async (format) => (await d!.client.call("jobsEnqueue", { type: "report", payload: { board: "full", format } })).job));
      for (const j of [thumb!, ...reports]) {
        const done = await waitFor(async () => { const x = await getJob(j.id); return x.status === "complete" || x.status === "failed" ? x : null; }, { what: `job ${j.id}` });
        expect(done.status, done.error ?? "").toBe("complete");
        expect(done.errors).toEqual([]);
      }
      for (const j of reports) {
        const result = (await getJob(j.id)).result as { artifact: string; format: string };
        const text = (await artifactOf(j.id, result.artifact)).toString("utf8");
        if (result.format === "json") {
          const report = JSON.parse(text) as { totals: { tasks: number }; overdue: { tasks: unknown[] } };
          expect([report.totals.tasks, report.overdue.tasks.length]).toEqual([60, 60]);
        } else if (result.format === "html") expect(text.endsWith("</main>\n</body>\n</html>\n")).toBe(true);
        else expect(text.match(/^- #\d+ Overdue task/gm)).toHaveLength(60);
      }
      const t = (await getJob(thumb!.id)).result as { artifact: string };
      const { info } = await sharp(await artifactOf(thumb!.id, t.artifact), { failOn: "error" }).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height]).toEqual([160, 160]);
      expect(Object.fromEntries(OUTPUT_FOLDERS.map((f) => [f, listing(f)])), "nothing written under the home").toEqual(before);
    } finally {
      disk!.release();
    }
  }, 60_000);

  /** The .eml in the outbox, parsed: addressed to `to` and holding the whole description. */
  async function expectWholeMail(file: string, to: string, free: number) {
    expect(sizeOf(file), "the message must not fit in the space left").toBeGreaterThan(free);
    const mail = await simpleParser(readFileSync(file));
    expect(mail.to && !Array.isArray(mail.to) ? mail.to.text : "").toBe(to);
    expect(mail.text).toContain(DESCRIPTION);
    expect(mail.text?.trimEnd().endsWith("Sent by teamwork.")).toBe(true);
  }

  it("an assignment email: fails its attempt while the disk is full, then its .eml is written whole", async (ctx) => {
    if (!d) return ctx.skip();
    const { job, added, free } = await throughFullDisk("outbox", async () => (await d!.client.call("jobsEnqueue", { type: "assignment-email", payload: { taskId: mailTask, assignee: "ana@example.com" }, maxAttempts: 10 })).job);
    const result = job.result as { sent: string[]; path: string };
    expect(result.sent).toEqual(["ana@example.com"]);
    expect(added).toEqual([basename(result.path)]);
    await expectWholeMail(result.path, "ana@example.com", free);
  }, 30_000);

  it("a notify: no recipient whose .eml was cut is recorded as sent; the retry mails each one whole", async (ctx) => {
    if (!d) return ctx.skip();
    const to = ["bo@example.com", "cy@example.com"];
    const { job, added, free } = await throughFullDisk("outbox", async () => (await d!.client.call("jobsEnqueue", { type: "notify", payload: { taskId: mailTask, to }, maxAttempts: 10 })).job);
    // Both sent by the attempt that completed: neither was taken as sent by the failed one.
    expect(job.result).toEqual({ sent: to, skipped: [], rejected: [] });
    expect(added).toHaveLength(2);
    const byRecipient = new Map<string, string>();
    for (const f of added) {
      const mail = await simpleParser(readFileSync(join(home, "outbox", f)));
      byRecipient.set(mail.to && !Array.isArray(mail.to) ? mail.to.text : "", join(home, "outbox", f));
    }
    for (const r of to) await expectWholeMail(byRecipient.get(r) ?? `(no message to ${r})`, r, free);
  }, 30_000);
});
