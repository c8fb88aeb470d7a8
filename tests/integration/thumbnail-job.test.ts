// The `thumbnail` handler, called directly with a small fake ctx on a real temp home:
// real images generated with sharp, real files, real symlinks.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import thumbnail from "../../src/jobs/thumbnail.js";
import { PermanentJobError, type JobContext, type Lookup } from "../../src/jobs/define.js";
import type { Json } from "../../src/protocol/types.js";
import { boardPortAt } from "../../src/store/index.js";

interface FakeCtx extends JobContext {
  progressCalls: { percent: number; message: string | undefined }[];
  logs: string[];
}

function fakeCtx(home: string): FakeCtx {
  const ctx: FakeCtx = {
    jobId: 1,
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
    board: boardPortAt({ kind: "sqlite", path: join(home, "teamwork.db") }),
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
const runThumb = (payload: Record<string, unknown>, ctx = fakeCtx(home)) => Promise.resolve().then(() => thumbnail.run(payload, ctx));
const validate = (payload: unknown) => Promise.resolve().then(() => thumbnail.validate!(payload, lookup));

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

afterAll(() => {
  rmSync(home, { recursive: true, force: true });
  rmSync(elsewhere, { recursive: true, force: true });
});

describe("thumbnails of real images", () => {
  it("PNG 1600×1200 → 256×192 PNG in thumbs/, written via .partial and rename, with real progress stages", async () => {
    const ctx = fakeCtx(home);
    const result = await runThumb({ source: "photo.png", uploadId: 7 }, ctx);
    expect(result).toEqual({ path: join(home, "thumbs", "photo-256.png"), width: 256, height: 192, format: "png" });
    const meta = await sharp(result.path).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(["png", 256, 192]);
    expect(readdirSync(join(home, "thumbs")).filter((f) => f.endsWith(".partial"))).toEqual([]);
    const pcts = ctx.progressCalls.map((c) => c.percent);
    expect(pcts).toEqual([...pcts].sort((a, b) => a - b));
    expect(pcts.at(-1)).toBe(100);
    expect(ctx.progressCalls.map((c) => c.message).join("\n")).toMatch(/resizing 1600×1200 PNG to fit 256 px/);
  });

  it("JPEG in, JPEG out, portrait kept, with a custom maxSize", async () => {
    const result = await runThumb({ source: "portrait.jpg", maxSize: 100 });
    expect(result).toEqual({ path: join(home, "thumbs", "portrait-100.jpg"), width: 75, height: 100, format: "jpeg" });
    const meta = await sharp(result.path).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(["jpeg", 75, 100]);
  });

  it("WebP in, WebP out (alpha kept)", async () => {
    const result = await runThumb({ source: "wide.webp" });
    expect(result).toMatchObject({ width: 256, height: 128, format: "webp" });
    const meta = await sharp(result.path).metadata();
    expect([meta.format, meta.width, meta.height, meta.hasAlpha]).toEqual(["webp", 256, 128, true]);
  });

  it("GIF in, PNG out", async () => {
    const result = await runThumb({ source: "anim.gif" });
    expect(result).toEqual({ path: join(home, "thumbs", "anim-256.png"), width: 256, height: 171, format: "png" });
    expect((await sharp(result.path).metadata()).format).toBe("png");
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
    expect(result).toMatchObject({ path: join(home, "thumbs", "alias-64.png"), width: 64, height: 48 });
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
    expect(readdirSync(join(home, "thumbs")).some((f) => f.startsWith("truncated") || f.startsWith("header-only"))).toBe(false);
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
    expect(readdirSync(join(home, "thumbs")).some((f) => f.startsWith("secret") || f.startsWith("escape"))).toBe(false);
  });
});
