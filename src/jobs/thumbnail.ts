// `thumbnail`: resizes an uploaded image so that its longest side is `maxSize` pixels
// (aspect kept, never enlarged) and stores it as the job's artifact `<name>-<maxSize>.<ext>`
// (ctx.files): PNG for PNG and GIF input (the first frame of an animated GIF), JPEG for JPEG,
// WebP for WebP. EXIF orientation is applied first, so a portrait photo stays portrait.
//
// Where the image comes from: `uploadId`, an upload whose bytes are kept in the store, read
// through ctx.files, so whichever node of a team claims the job reads the same bytes. The
// daemon that takes an upload enqueues {uploadId}; once the job completes it copies the
// artifact to the upload's thumbnail (board/uploads.ts). `source`, a path inside this
// daemon's uploads folder, is read from the disk of the node that runs the job: for uploads
// made before files were kept in the store, and for files put there by hand; such a job only
// works on the host that has the file.
//
// A source path must lie inside the uploads folder. validate() can only judge the path's
// shape (the daemon's folders are not known there), so run() checks it again on the
// filesystem: after resolving `..` and every symlink, the file must still be inside the
// (resolved) uploads folder. resolveUploadSource() is exported so that the code that
// enqueues can give the same answer before enqueueing.
//
// Everything wrong with the image itself is permanent (a retry would read the same bytes):
// "upload not found: …", "file not found: …", "not an image: …", "image is truncated or
// corrupt: …". sharp decodes with failOn "error": truncation and decoder errors abort instead
// of leaving grey bands in the thumbnail; mere decoder warnings (common in camera JPEGs) do not.
//
// Hazard (source paths only): between the realpath check and the read, someone who can write
// into the uploads folder could swap a path component for a symlink. Only users who can
// already write the daemon's home can do that.

import { readFileSync, realpathSync, statSync } from "node:fs";
import { isAbsolute, parse, relative, resolve, sep } from "node:path";
import { defineJob, PermanentJobError, type JobContext } from "./define.js";
import { invalid, notFound, TeamworkError } from "../lib/errors.js";

export const THUMBNAIL_MIN_SIZE = 16;
export const THUMBNAIL_MAX_SIZE = 2048;
export const THUMBNAIL_DEFAULT_SIZE = 256;

/** The input formats we accept, and the format each one's thumbnail is written in. */
const OUTPUT_FORMAT = { png: "png", gif: "png", jpeg: "jpeg", webp: "webp" } as const;
type InputFormat = keyof typeof OUTPUT_FORMAT;
export type ThumbnailFormat = (typeof OUTPUT_FORMAT)[InputFormat];
const EXTENSION: Record<ThumbnailFormat, string> = { png: "png", jpeg: "jpg", webp: "webp" };

export interface ThumbnailPayload {
  /** An upload kept in the store (any node reads it). */
  uploadId?: number;
  /** Or a path inside this node's uploads folder, relative to it or absolute; the fallback for an upload whose bytes are not in the store. */
  source?: string;
  maxSize: number;
}

/** artifact: the name of the job's artifact holding the thumbnail; bytes: its size. */
export type ThumbnailResult = { artifact: string; bytes: number; width: number; height: number; format: ThumbnailFormat };

export function parseThumbnailPayload(payload: unknown): ThumbnailPayload {
  if (payload === null || typeof payload !== "object" || Array.isArray(payload)) throw invalid('the thumbnail payload must be an object like {"uploadId": 12, "maxSize": 256}');
  const p = payload as Record<string, unknown>;
  for (const k of Object.keys(p)) if (k !== "uploadId" && k !== "source" && k !== "maxSize") throw invalid(`unknown field "${k}" in the thumbnail payload (it takes uploadId, source, maxSize)`);
  const { source, uploadId, maxSize = THUMBNAIL_DEFAULT_SIZE } = p;
  if (uploadId === undefined && source === undefined) throw invalid("the thumbnail payload needs uploadId (an upload's id) or source (a path inside the uploads folder)");
  if (source !== undefined) {
    if (typeof source !== "string" || source.trim() === "") throw invalid("source must be the path of an uploaded file");
    if (source.length > 4096 || source.includes("\0")) throw invalid("source is not a usable path");
    if (source.split(/[\\/]/).includes("..")) throw invalid(`source ${JSON.stringify(source)} must not contain ".." (it must stay inside the uploads folder)`);
  }
  if (typeof maxSize !== "number" || !Number.isInteger(maxSize) || maxSize < THUMBNAIL_MIN_SIZE || maxSize > THUMBNAIL_MAX_SIZE) {
    throw invalid(`maxSize must be a whole number of pixels from ${THUMBNAIL_MIN_SIZE} to ${THUMBNAIL_MAX_SIZE}, got ${JSON.stringify(maxSize) ?? String(maxSize)}`);
  }
  if (uploadId !== undefined && (typeof uploadId !== "number" || !Number.isSafeInteger(uploadId) || uploadId <= 0)) throw invalid("uploadId must be a positive integer");
  return { ...(uploadId !== undefined ? { uploadId } : {}), ...(source !== undefined ? { source } : {}), maxSize };
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

/** A file name's stem, safe as the start of an artifact name. */
function stemOf(name: string): string {
  const stem = parse(name).name.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^[._-]+/, "").slice(0, 100);
  return stem || "image";
}

/** The image's bytes and what to call it: from the store (uploadId), or from this node's uploads folder (source). */
async function readInput(p: ThumbnailPayload, ctx: JobContext): Promise<{ bytes: Buffer; label: string; stem: string }> {
  if (p.uploadId !== undefined) {
    ctx.progress(5, `reading upload ${p.uploadId}`);
    const upload = await ctx.files.upload(p.uploadId);
    if (upload) return { bytes: upload.bytes, label: `upload ${p.uploadId} (${upload.name})`, stem: stemOf(upload.name) };
    if (p.source === undefined) throw new PermanentJobError(`upload not found: ${p.uploadId} (no such upload, or its bytes are not kept in the store)`);
  }
  const source = p.source!;
  ctx.progress(5, `checking ${source}`);
  let file: string;
  try {
    file = resolveUploadSource(source, ctx.paths.uploads);
  } catch (err) {
    if (err instanceof TeamworkError) throw new PermanentJobError(err.message);
    throw err;
  }
  const size = statSync(file).size;
  if (size > ctx.files.maxBytes) throw new PermanentJobError(`image is too large: ${source} is ${size} bytes (the limit is ${ctx.files.maxBytes}, fileMaxBytes)`);
  return { bytes: readFileSync(file), label: source, stem: stemOf(resolve(ctx.paths.uploads, source)) };
}

async function run(payload: unknown, ctx: JobContext): Promise<ThumbnailResult> {
  let p: ThumbnailPayload;
  try {
    p = parseThumbnailPayload(payload);
  } catch (err) {
    if (err instanceof TeamworkError) throw new PermanentJobError(err.message);
    throw err;
  }
  const { bytes, label, stem } = await readInput(p, ctx);
  const empty = bytes.length === 0;
  if (empty) throw new PermanentJobError(`not an image: ${label} (the file is empty)`);
  if (ctx.signal.aborted) throw ctx.signal.reason;

  const { default: sharp } = await import("sharp");
  // One-off inputs: libvips' operation cache would only hold memory in a long-lived worker.
  sharp.cache(false);
  ctx.progress(15, `reading the image header of ${label}`);
  let format: InputFormat;
  let width: number;
  let height: number;
  try {
    const meta = await sharp(bytes, { failOn: "error" }).metadata();
    const found = String(meta.format);
    if (!Object.hasOwn(OUTPUT_FORMAT, found)) {
      throw new PermanentJobError(`not a supported image: ${label} is ${found.toUpperCase()} (PNG, JPEG, WebP or GIF are)`);
    }
    format = found as InputFormat;
    width = meta.autoOrient?.width ?? meta.width;
    height = meta.autoOrient?.height ?? meta.height;
  } catch (err) {
    if (err instanceof PermanentJobError) throw err;
    throw imageError(err, label, empty);
  }
  if (ctx.signal.aborted) throw ctx.signal.reason;

  const out = OUTPUT_FORMAT[format];
  ctx.progress(35, `resizing ${width}×${height} ${format.toUpperCase()} to fit ${p.maxSize} px`);
  let pipeline = sharp(bytes, { failOn: "error" })
    .autoOrient()
    .resize({ width: p.maxSize, height: p.maxSize, fit: "inside", withoutEnlargement: true });
  pipeline = out === "png" ? pipeline.png({ compressionLevel: 9 }) : out === "jpeg" ? pipeline.jpeg({ quality: 82, mozjpeg: true }) : pipeline.webp({ quality: 82 });
  let data: Buffer;
  let info: { width: number; height: number };
  try {
    ({ data, info } = await pipeline.toBuffer({ resolveWithObject: true }));
  } catch (err) {
    throw imageError(err, label, empty);
  }
  if (ctx.signal.aborted) throw ctx.signal.reason;

  const name = `${stem}-${p.maxSize}.${EXTENSION[out]}`;
  ctx.progress(85, `storing ${name} (${info.width}×${info.height})`);
  const stored = await ctx.files.putArtifact(name, data, `image/${out}`);
  ctx.progress(100, `stored ${name} (${stored.size} bytes)`);
  return { artifact: name, bytes: stored.size, width: info.width, height: info.height, format: out };
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
