// `thumbnail`: resizes an uploaded image so that its longest side is `maxSize` pixels
// (aspect kept, never enlarged) and writes it under <home>/thumbs/ as
// `<basename>-<maxSize>.<ext>`: PNG for PNG and GIF input (the first frame of an animated
// GIF), JPEG for JPEG, WebP for WebP. EXIF orientation is applied first, so a portrait
// photo stays portrait.
//
// The source must lie inside the uploads folder. validate() can only judge the path's
// shape (the daemon's folders are not known there), so run() checks it again on the
// filesystem: after resolving `..` and every symlink, the file must still be inside the
// (resolved) uploads folder. resolveUploadSource() is exported so that the code that
// enqueues can give the same answer before enqueueing.
//
// Everything wrong with the file itself is permanent (a retry would read the same bytes):
// "file not found: …", "not an image: …", "image is truncated or corrupt: …". A thumbnail
// that cannot be written whole (a full disk) fails the attempt, which is retried:
// writeFileAtomic leaves no cut file under the thumbnail's name.
// sharp decodes with failOn "error": truncation and decoder errors abort instead of
// leaving grey bands in the thumbnail; mere decoder warnings (common in camera JPEGs) do not.
//
// Hazard: between the realpath check and the decoder opening the file, someone who can
// write into the uploads folder could swap a path component for a symlink. Only users who
// can already write the daemon's home can do that.

import { mkdirSync, realpathSync, statSync } from "node:fs";
import { isAbsolute, join, parse, relative, resolve, sep } from "node:path";
import { defineJob, PermanentJobError, type JobContext } from "./define.js";
import { invalid, notFound, TeamworkError } from "../lib/errors.js";
import { writeFileAtomic } from "../lib/fs.js";

export const THUMBNAIL_MIN_SIZE = 16;
export const THUMBNAIL_MAX_SIZE = 2048;
export const THUMBNAIL_DEFAULT_SIZE = 256;

/** The input formats we accept, and the format each one's thumbnail is written in. */
const OUTPUT_FORMAT = { png: "png", gif: "png", jpeg: "jpeg", webp: "webp" } as const;
type InputFormat = keyof typeof OUTPUT_FORMAT;
export type ThumbnailFormat = (typeof OUTPUT_FORMAT)[InputFormat];
const EXTENSION: Record<ThumbnailFormat, string> = { png: "png", jpeg: "jpg", webp: "webp" };

export interface ThumbnailPayload {
  uploadId?: number;
  /** A path inside the uploads folder: relative to it, or absolute. */
  source: string;
  maxSize: number;
}

export type ThumbnailResult = { path: string; width: number; height: number; format: ThumbnailFormat };

export function parseThumbnailPayload(payload: unknown): ThumbnailPayload {
  if (payload === null || typeof payload !== "object" || Array.isArray(payload)) throw invalid('the thumbnail payload must be an object like {"source": "12-screenshot.png", "maxSize": 256}');
  const p = payload as Record<string, unknown>;
  for (const k of Object.keys(p)) if (k !== "uploadId" && k !== "source" && k !== "maxSize") throw invalid(`unknown field "${k}" in the thumbnail payload (it takes uploadId, source, maxSize)`);
  const { source, uploadId, maxSize = THUMBNAIL_DEFAULT_SIZE } = p;
  if (typeof source !== "string" || source.trim() === "") throw invalid("source must be the path of an uploaded file");
  if (source.length > 4096 || source.includes("\0")) throw invalid("source is not a usable path");
  if (source.split(/[\\/]/).includes("..")) throw invalid(`source ${JSON.stringify(source)} must not contain ".." (it must stay inside the uploads folder)`);
  if (typeof maxSize !== "number" || !Number.isInteger(maxSize) || maxSize < THUMBNAIL_MIN_SIZE || maxSize > THUMBNAIL_MAX_SIZE) {
    throw invalid(`maxSize must be a whole number of pixels from ${THUMBNAIL_MIN_SIZE} to ${THUMBNAIL_MAX_SIZE}, got ${JSON.stringify(maxSize) ?? String(maxSize)}`);
  }
  if (uploadId !== undefined && (typeof uploadId !== "number" || !Number.isSafeInteger(uploadId) || uploadId <= 0)) throw invalid("uploadId must be a positive integer");
  return uploadId === undefined ? { source, maxSize } : { uploadId, source, maxSize };
}

/** True if `path` is strictly below `root` (both absolute and normalised). */
function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== "" && rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/**
 * Resolves `source` (relative to `uploadsDir`, or absolute) to the real path of a regular
 * file inside the uploads folder, following symlinks. Throws TeamworkError: not_found when
 * the file does not exist, invalid_input when it is outside the folder or not a file.
 */
export function resolveUploadSource(source: string, uploadsDir: string): string {
  const root = resolve(uploadsDir);
  const abs = resolve(root, source);
  const outside = (how = "") => invalid(`${source} is outside the uploads folder ${root}${how}`);
  if (abs === root) throw invalid(`not a file: ${source} is the uploads folder itself`);
  if (!inside(root, abs)) throw outside();
  let real: string;
  let realRoot: string;
  try {
    realRoot = realpathSync(root);
    real = realpathSync(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") throw notFound(`file not found: ${source}`);
    if (code === "ELOOP") throw invalid(`${source} is a symlink loop`);
    if (code === "EACCES" || code === "EPERM") throw invalid(`file not readable: ${source}`);
    throw err;
  }
  if (!inside(realRoot, real)) throw outside(" (through a symlink)");
  const st = statSync(real);
  if (!st.isFile()) throw invalid(`not a file: ${source} is ${st.isDirectory() ? "a directory" : "not a regular file"}`);
  return real;
}

/** First line of a sharp/libvips error, which often carries a second, generic one. */
const firstLine = (err: unknown) =>
  (err instanceof Error ? err.message : String(err))
    .split("\n")[0]!
    .replace(/[\s:]+$/, "")
    .trim();

function imageError(err: unknown, source: string, empty: boolean): Error {
  const why = firstLine(err);
  if (/unsupported image format/i.test(why)) return new PermanentJobError(`not an image: ${source}${empty ? " (the file is empty)" : ""}`);
  if (/input file is missing/i.test(why)) return new PermanentJobError(`file not found: ${source}`);
  if (/pixel limit/i.test(why)) return new PermanentJobError(`image is too large: ${source} (${why})`);
  // Running out of memory says nothing about the file: worth another attempt.
  if (/out of memory|cannot allocate/i.test(why)) return new Error(`out of memory while reading ${source}: ${why}`);
  return new PermanentJobError(`image is truncated or corrupt: ${source} (${why})`);
}

async function run(payload: unknown, ctx: JobContext): Promise<ThumbnailResult> {
  let p: ThumbnailPayload;
  let file: string;
  try {
    p = parseThumbnailPayload(payload);
    ctx.progress(5, `checking ${p.source}`);
    file = resolveUploadSource(p.source, ctx.paths.uploads);
  } catch (err) {
    if (err instanceof TeamworkError) throw new PermanentJobError(err.message);
    throw err;
  }
  const empty = statSync(file).size === 0;

  const { default: sharp } = await import("sharp");
  // One-off inputs: libvips' operation cache would only hold memory in a long-lived worker.
  sharp.cache(false);
  ctx.progress(15, `reading the image header of ${p.source}`);
  let format: InputFormat;
  let width: number;
  let height: number;
  try {
    const meta = await sharp(file, { failOn: "error" }).metadata();
    const found = String(meta.format);
    if (!Object.hasOwn(OUTPUT_FORMAT, found)) {
      throw new PermanentJobError(`not a supported image: ${p.source} is ${found.toUpperCase()} (PNG, JPEG, WebP or GIF are)`);
    }
    format = found as InputFormat;
    width = meta.autoOrient?.width ?? meta.width;
    height = meta.autoOrient?.height ?? meta.height;
  } catch (err) {
    if (err instanceof PermanentJobError) throw err;
    throw imageError(err, p.source, empty);
  }
  if (ctx.signal.aborted) throw ctx.signal.reason;

  const out = OUTPUT_FORMAT[format];
  ctx.progress(35, `resizing ${width}×${height} ${format.toUpperCase()} to fit ${p.maxSize} px`);
  let pipeline = sharp(file, { failOn: "error" })
    .autoOrient()
    .resize({ width: p.maxSize, height: p.maxSize, fit: "inside", withoutEnlargement: true });
  pipeline = out === "png" ? pipeline.png({ compressionLevel: 9 }) : out === "jpeg" ? pipeline.jpeg({ quality: 82, mozjpeg: true }) : pipeline.webp({ quality: 82 });
  let data: Buffer;
  let info: { width: number; height: number };
  try {
    ({ data, info } = await pipeline.toBuffer({ resolveWithObject: true }));
  } catch (err) {
    throw imageError(err, p.source, empty);
  }
  if (ctx.signal.aborted) throw ctx.signal.reason;

  const name = `${parse(resolve(ctx.paths.uploads, p.source)).name}-${p.maxSize}.${EXTENSION[out]}`;
  const path = join(ctx.paths.thumbs, name);
  ctx.progress(85, `writing ${name} (${info.width}×${info.height})`);
  mkdirSync(ctx.paths.thumbs, { recursive: true });
  writeFileAtomic(path, data);
  ctx.progress(100, `wrote ${path}`);
  return { path, width: info.width, height: info.height, format: out };
}

export default defineJob<unknown, ThumbnailResult>({
  type: "thumbnail",
  timeoutMs: 2 * 60_000,
  // Untrusted images go to native code (sharp/libvips): a crash or a decompression bomb
  // must fail this job, not the daemon.
  isolation: "process",
  validate(payload) {
    parseThumbnailPayload(payload);
  },
  run,
});
