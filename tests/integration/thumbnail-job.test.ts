// The `thumbnail` handler, called directly with a small fake ctx on a real temp home:
// real images generated with sharp, real files, real symlinks, and a real store (SQLite in
// the home) behind ctx.files, with the job running, as a worker has it.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import thumbnail from "../../src/jobs/thumbnail.js";
import { PermanentJobError, type JobContext, type Lookup } from "../../src/jobs/define.js";
import type { Json } from "../../src/protocol/types.js";
import { boardPortAt, filesPortAt, openStore, type StoreLocation } from "../../src/store/index.js";
import type { Store } from "../../src/store/types.js";
import { jobFiles } from "../../src/queue/worker/files.js";
import { taskEventPolicy } from "../../src/board/task-events.js";

interface FakeCtx extends JobContext {
  progressCalls: { percent: number; message: string | undefined }[];
  logs: string[];
}

const MAX_BYTES = 32 * 1024 * 1024;

function fakeCtx(home: string): FakeCtx {
  const ctx: FakeCtx = {
    jobId,
    attempt: 1,
    signal: new AbortController().signal,
    progressCalls: [],
    logs: [],
    progress(percent, message) {
      ctx.progressCalls.push({ percent, message });
    },
    log(message) {
      ctx.logs.push(message);
    },
    state: null,
    async checkpoint(state: Json) {
      ctx.state = state;
    },
    board: boardPortAt(location),
    files: jobFiles(filesPortAt(location), { jobId, attempt: 1 }, MAX_BYTES),
    paths: {
      home,
      reports: join(home, "reports"),
      uploads: join(home, "uploads"),
      uploadsTmp: join(home, "uploads", "tmp"),
      thumbs: join(home, "thumbs"),
      outbox: join(home, "outbox"),
    } as JobContext["paths"],
    settings: { smtpUrl: null, mailFrom: "teamwork@localhost" } as JobContext["settings"],
  };
  return ctx;
}

const lookup: Lookup = { boardExists: async () => true, taskExists: async () => true };

/** Noise, so that encoders have real work and truncation hits image data. */
function noise(width: number, height: number, channels: 3 | 4 = 3) {
  return sharp({ create: { width, height, channels, background: { r: 40, g: 120, b: 200, alpha: 1 }, noise: { type: "gaussian", mean: 128, sigma: 40 } } });
}

let home: string;
let uploads: string;
let elsewhere: string;
let location: StoreLocation;
let store: Store;
/** The job the handler runs as: running its first attempt, so ctx.files may store its artifacts. */
let jobId: number;

/** The bytes of the running job's artifact `name`. */
async function artifact(name: string): Promise<Buffer> {
  const f = await store.files.get({ jobId }, name);
  if (!f) throw new Error(`no artifact ${name}`);
  return (await store.files.readAll(f.id))!.bytes;
}
const artifactNames = async () => (await store.files.list({ jobId })).map((f) => f.name);
const runThumb = (payload: Record<string, unknown>, ctx = fakeCtx(home)) => Promise.resolve().then(() => thumbnail.run(payload, ctx));
const validate = (payload: unknown) => Promise.resolve().then(() => thumbnail.validate!(payload, lookup));

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
    },
    (e: unknown) => e,
  );
}

async function permanentFailure(p: Promise<unknown>): Promise<PermanentJobError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PermanentJobError);
  expect((err as PermanentJobError).permanent).toBe(true);
  return err as PermanentJobError;
}

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), "tw-thumb-"));
  uploads = join(home, "uploads");
  elsewhere = mkdtempSync(join(tmpdir(), "tw-thumb-outside-"));
  mkdirSync(join(uploads, "tmp"), { recursive: true });
  location = { kind: "sqlite", path: join(home, "teamwork.db") };
  store = await openStore(location, { durability: "process", taskEvents: taskEventPolicy });
  const now = Date.now();
  const [inserted] = (await store.jobs.tick({ now, owner: "test", inserts: [{ type: "thumbnail", payload: {}, runAt: now, priority: 0, maxAttempts: 3, uniqueKey: null }], finishes: [], progress: [], checkpoints: [], logs: [], begins: [], claim: null })).inserted;
  jobId = inserted!.job.id;
  await store.jobs.claim({ owner: "test", now, limit: 1, pausedTypes: [], budgets: { any: 1 }, draws: {}, otherTypes: ["any"] });
  await noise(1600, 1200).png().toFile(join(uploads, "photo.png"));
  await noise(1200, 1600).jpeg({ quality: 90 }).toFile(join(uploads, "portrait.jpg"));
  await noise(800, 400, 4).webp().toFile(join(uploads, "wide.webp"));
  await noise(300, 200).gif().toFile(join(uploads, "anim.gif"));
  await noise(100, 50).png().toFile(join(uploads, "tmp", "small.png"));
  // Stored 400×200 with EXIF orientation 6: shown rotated, 200×400.
  await noise(400, 200).jpeg().withMetadata({ orientation: 6 }).toFile(join(uploads, "rotated.jpg"));
  await noise(64, 64).tiff().toFile(join(uploads, "scan.tiff"));
  writeFileSync(join(uploads, "notes.txt"), "These are not pixels.\n".repeat(50));
  writeFileSync(join(uploads, "empty.png"), "");
  const png = readFileSync(join(uploads, "photo.png"));
  writeFileSync(join(uploads, "truncated.png"), png.subarray(0, Math.floor(png.length / 2)));
  const jpg = readFileSync(join(uploads, "portrait.jpg"));
  writeFileSync(join(uploads, "truncated.jpg"), jpg.subarray(0, Math.floor(jpg.length / 2)));
  writeFileSync(join(uploads, "header-only.png"), png.subarray(0, 60));
  mkdirSync(join(uploads, "folder.png"));
  await noise(640, 480).png().toFile(join(elsewhere, "secret.png"));
  symlinkSync(join(elsewhere, "secret.png"), join(uploads, "escape.png"));
  symlinkSync(elsewhere, join(uploads, "outside-dir"));
  symlinkSync(join(uploads, "photo.png"), join(uploads, "alias.png"));
});

afterAll(async () => {
  await store.close();
  rmSync(home, { recursive: true, force: true });
  rmSync(elsewhere, { recursive: true, force: true });
});

describe("thumbnails of real images", () => {
  it("PNG 1600×1200 → 256×192 PNG, stored as the job's artifact, with real progress stages", async () => {
    const ctx = fakeCtx(home);
    const result = await runThumb({ source: "photo.png" }, ctx);
    const bytes = await artifact("photo-256.png");
    expect(result).toEqual({ artifact: "photo-256.png", bytes: bytes.length, width: 256, height: 192, format: "png" });
    const meta = await sharp(bytes).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(["png", 256, 192]);
    expect(existsSync(join(home, "thumbs")), "nothing is written under the home").toBe(false);
    const pcts = ctx.progressCalls.map((c) => c.percent);
    expect(pcts).toEqual([...pcts].sort((a, b) => a - b));
    expect(pcts.at(-1)).toBe(100);
    expect(ctx.progressCalls.map((c) => c.message).join("\n")).toMatch(/resizing 1600×1200 PNG to fit 256 px/);
  });

  it("JPEG in, JPEG out, portrait kept, with a custom maxSize", async () => {
    const result = await runThumb({ source: "portrait.jpg", maxSize: 100 });
    expect(result).toMatchObject({ artifact: "portrait-100.jpg", width: 75, height: 100, format: "jpeg" });
    const meta = await sharp(await artifact(result.artifact)).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(["jpeg", 75, 100]);
  });

  it("WebP in, WebP out (alpha kept)", async () => {
    const result = await runThumb({ source: "wide.webp" });
    expect(result).toMatchObject({ width: 256, height: 128, format: "webp" });
    const meta = await sharp(await artifact(result.artifact)).metadata();
    expect([meta.format, meta.width, meta.height, meta.hasAlpha]).toEqual(["webp", 256, 128, true]);
  });

  it("GIF in, PNG out", async () => {
    const result = await runThumb({ source: "anim.gif" });
    expect(result).toMatchObject({ artifact: "anim-256.png", width: 256, height: 171, format: "png" });
    expect((await sharp(await artifact("anim-256.png")).metadata()).format).toBe("png");
  });

  it("never enlarges a small image; an absolute path inside uploads is fine", async () => {
    const result = await runThumb({ source: join(uploads, "tmp", "small.png") });
    expect(result).toMatchObject({ width: 100, height: 50, format: "png" });
  });

  it("applies EXIF orientation before resizing", async () => {
    const result = await runThumb({ source: "rotated.jpg" });
    expect(result).toMatchObject({ width: 128, height: 256, format: "jpeg" });
  });

  it("follows a symlink that stays inside the uploads folder", async () => {
    const result = await runThumb({ source: "alias.png", maxSize: 64 });
    expect(result).toMatchObject({ artifact: "alias-64.png", width: 64, height: 48 });
  });
});

describe("an upload kept in the store (uploadId): read through ctx.files, whichever node runs the job", () => {
  it("reads the upload's bytes from the store, names the thumbnail after its name", async () => {
    const png = readFileSync(join(uploads, "photo.png"));
    const a = await store.attachments.create({ taskId: null, name: "Screen shot (2).png", file: { name: "Screen shot (2).png", mediaType: "image/png", bytes: png } }, Date.now());
    const ctx = fakeCtx(home);
    const result = await runThumb({ uploadId: a.id, maxSize: 128 }, ctx);
    expect(result).toMatchObject({ artifact: "Screen_shot__2_-128.png", width: 128, height: 96, format: "png" });
    expect((await sharp(await artifact(result.artifact)).metadata()).width).toBe(128);
    expect(ctx.progressCalls.map((c) => c.message).join("\n")).toMatch(/reading upload \d+/);
  });

  it("an upload that is not in the store: permanent, unless a source path says where its old copy is", async () => {
    const err = await permanentFailure(runThumb({ uploadId: 99_999 }));
    expect(err.message).toBe("upload not found: 99999 (no such upload, or its bytes are not kept in the store)");
    const result = await runThumb({ uploadId: 99_999, source: "anim.gif", maxSize: 32 });
    expect(result).toMatchObject({ artifact: "anim-32.png", width: 32 });
  });

  it("a thumbnail larger than the limit is refused, permanently, and nothing is stored", async () => {
    const png = readFileSync(join(uploads, "photo.png"));
    const a = await store.attachments.create({ taskId: null, name: "photo.png", file: { name: "photo.png", mediaType: "image/png", bytes: png } }, Date.now());
    const ctx = fakeCtx(home);
    ctx.files = jobFiles(filesPortAt(location), { jobId, attempt: 1 }, 1024);
    const err = await rejection(runThumb({ uploadId: a.id, maxSize: 2048 }, ctx));
    expect(err).toMatchObject({ permanent: true });
    expect(String((err as Error).message)).toMatch(/^artifact photo-2048\.png is \d+ bytes \([\d.]+ (KiB|MiB)\); files kept in teamwork's database are limited to 1024 bytes \(1 KiB, fileMaxBytes\); nothing was stored$/);
    expect(await artifactNames()).not.toContain("photo-2048.png");
  });

  it("an attempt that is no longer running cannot store its thumbnail", async () => {
    const ctx = fakeCtx(home);
    ctx.files = jobFiles(filesPortAt(location), { jobId, attempt: 2 }, MAX_BYTES);
    await expect(runThumb({ source: "anim.gif", maxSize: 20 }, ctx)).rejects.toThrow(/^artifact anim-20\.png not stored: attempt 2 of job \d+ is no longer running/);
  });
});

describe("files that cannot be thumbnailed fail permanently, with a clear reason", () => {
  it("a text file: not an image", async () => {
    const err = await permanentFailure(runThumb({ source: "notes.txt" }));
    expect(err.message).toBe("not an image: notes.txt");
  });

  it("an empty file: not an image", async () => {
    const err = await permanentFailure(runThumb({ source: "empty.png" }));
    expect(err.message).toBe("not an image: empty.png (the file is empty)");
  });

  it("a truncated PNG, a truncated JPEG and a PNG cut inside its header: truncated or corrupt", async () => {
    for (const source of ["truncated.png", "truncated.jpg", "header-only.png"]) {
      const err = await permanentFailure(runThumb({ source }));
      expect(err.message).toMatch(new RegExp(`^image is truncated or corrupt: ${source.replace(".", "\\.")} \\(.*[a-z].*[^:]\\)$`));
    }
    expect((await artifactNames()).some((f) => f.startsWith("truncated") || f.startsWith("header-only"))).toBe(false);
  });

  it("a missing file: file not found", async () => {
    const err = await permanentFailure(runThumb({ source: "nope.png" }));
    expect(err.message).toBe("file not found: nope.png");
  });

  it("a directory: not a file", async () => {
    const err = await permanentFailure(runThumb({ source: "folder.png" }));
    expect(err.message).toMatch(/^not a file: folder\.png is a directory/);
  });

  it("an image format other than PNG, JPEG, WebP or GIF", async () => {
    const err = await permanentFailure(runThumb({ source: "scan.tiff" }));
    expect(err.message).toMatch(/^not a supported image: scan\.tiff is TIFF/);
  });
});

describe("the source must stay inside the uploads folder", () => {
  it("validate refuses a path with .. and a bad shape at enqueue time", async () => {
    const bad: unknown[] = [
      { source: "../secret.png" },
      { source: "tmp/../../secret.png" },
      { source: "..\\secret.png" },
      { source: "" },
      { source: 42 },
      {},
      { maxSize: 64 },
      { source: "a.png", maxSize: 8 },
      { source: "a.png", maxSize: 4096 },
      { source: "a.png", maxSize: 100.5 },
      { source: "a.png", maxSize: "256" },
      { source: "a.png", uploadId: -1 },
      { source: "a.png", colour: "red" },
      ["a.png"],
      null,
    ];
    for (const payload of bad) {
      await expect(validate(payload), JSON.stringify(payload)).rejects.toMatchObject({ code: "invalid_input" });
    }
    await expect(validate({ source: "../x.png" })).rejects.toThrow(/must not contain "\.\."/);
    await expect(validate({ source: "a.png", maxSize: 8 })).rejects.toThrow(/maxSize must be a whole number of pixels from 16 to 2048, got 8/);
    await expect(validate({ source: "photo.png", maxSize: 16, uploadId: 3 })).resolves.toBeUndefined();
    await expect(validate({ uploadId: 3 })).resolves.toBeUndefined();
    await expect(validate({})).rejects.toThrow(/needs uploadId \(an upload's id\) or source/);
  });

  it("run refuses .., an absolute path elsewhere, and symlinks that lead outside", async () => {
    const cases: [string, RegExp][] = [
      ["../secret.png", /^source "\.\.\/secret\.png" must not contain "\.\."/],
      [join(elsewhere, "secret.png"), /^\/.*secret\.png is outside the uploads folder \/.*uploads$/],
      ["escape.png", /^escape\.png is outside the uploads folder .* \(through a symlink\)$/],
      ["outside-dir/secret.png", /^outside-dir\/secret\.png is outside the uploads folder .* \(through a symlink\)$/],
      [uploads, /^not a file: .* is the uploads folder itself$/],
    ];
    for (const [source, message] of cases) {
      const err = await permanentFailure(runThumb({ source }));
      expect(err.message, source).toMatch(message);
    }
    expect((await artifactNames()).some((f) => f.startsWith("secret") || f.startsWith("escape"))).toBe(false);
  });
});
