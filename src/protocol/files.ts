// Files kept in the store: the bytes of uploads and the artifacts jobs write (a thumbnail, a
// report). They live in the database, not under a daemon's home, so that a job's inputs and
// outputs do not depend on the host that runs it: any node of a team reads an upload another
// node took, and fetches an artifact another node made.
//
// Terminology:
// - artifact: a file a job wrote (ctx.files.putArtifact), named within its job
//   ("web-20261203-0900-job42.html"). Deleted with its job when the job is pruned.
// - upload: a file a user gave the daemon (`teamwork upload`); its bytes are kept with the
//   attachment ("original"), and so is its thumbnail once made ("thumbnail").
//
// The limit. Every file is one value in one row (a bytea on PostgreSQL, a BLOB in SQLite's
// file), written whole in one statement, so a file is stored whole or not at all. 32 MiB by
// default (config fileMaxBytes, 1 KiB to 256 MiB), because:
// - a handler gets an upload whole in memory (an image decoder needs all of it), in a worker
//   whose memory is capped (jobMemoryMb, 512 MiB by default): 32 MiB of input leaves room to
//   decode it; phone photos are 3-15 MB, screenshots under 5 MB;
// - SQLite takes one writer at a time: a 32 MiB file held the write lock 170 ms here on an
//   idle machine (synchronous FULL), 240-320 ms with the machine loaded (load 6 on 2 cores),
//   about the 250 ms the daemon's other writes wait before they answer busy (a route's 503,
//   an engine write tried again: store/sqlite/open.ts); 256 MiB holds it for seconds;
// - on PostgreSQL a value is sent in one message and logged whole in the WAL, which a
//   team's replicas and backups carry; reads come in 1 MiB slices (store/postgres/files.ts).
// Past the limit: a clear error, nothing stored (an upload is refused 400; an artifact fails
// its job permanently, since the same output would be as large on a retry).

/** An artifact's name: a file name that is safe in a path, a URL and a shell (no folder, no leading dot). */
export const ARTIFACT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
export const ARTIFACT_NAME_HINT = "an artifact name is a file name of letters, digits, '.', '_' and '-' (up to 200), starting with a letter or digit";

/** The names an upload's files have in the store. */
export const UPLOAD_FILES = { original: "original", thumbnail: "thumbnail" } as const;

/** A size for people: 512 B, 12.3 KiB, 32 MiB. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Number((bytes / 1024).toFixed(1))} KiB`;
  return `${Number((bytes / (1024 * 1024)).toFixed(1))} MiB`;
}

/** Why a file cannot be stored, or null if it may: the same words for an upload and an artifact. */
export function fileTooLarge(what: string, bytes: number, limit: number): string | null {
  if (bytes <= limit) return null;
  return `${what} is ${bytes} bytes (${formatBytes(bytes)}); files kept in teamwork's database are limited to ${limit} bytes (${formatBytes(limit)}, fileMaxBytes)`;
}

const MEDIA_TYPES: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  svg: "image/svg+xml",
  pdf: "application/pdf",
  json: "application/json",
  html: "text/html; charset=utf-8",
  htm: "text/html; charset=utf-8",
  md: "text/markdown; charset=utf-8",
  txt: "text/plain; charset=utf-8",
  csv: "text/csv; charset=utf-8",
  zip: "application/zip",
};

/** The media type a file name suggests; application/octet-stream when it says nothing. */
export function mediaTypeOf(name: string): string {
  const dot = name.lastIndexOf(".");
  return (dot > 0 && MEDIA_TYPES[name.slice(dot + 1).toLowerCase()]) || "application/octet-stream";
}

/** True for media types that are text (safe to print to a terminal, as far as the type goes). */
export function isTextMediaType(type: string): boolean {
  return /^text\//i.test(type) || /^application\/(json|xml)\b/i.test(type) || /\+(json|xml)\b/i.test(type);
}

/** A file kept in the store, as the API shows it. */
export interface FileInfo {
  name: string;
  mediaType: string;
  size: number;
  /** SHA-256 of the bytes, hex. */
  sha256: string;
  createdAt: string;
}
