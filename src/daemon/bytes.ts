// Serves a file's bytes on an HTTP response (the byte routes: protocol/routes.ts BYTE_ROUTES):
// its media type, its length and its SHA-256 in the head, then the bytes as the store hands
// them over, slice by slice, each written only once the socket took the one before
// (backpressure), so a slow reader holds one slice, not the file.
//
// Once the head is sent, an error can no longer be a JSON reply: the connection is cut, and
// the client, counting bytes against content-length, sees a short body (and says so).

import type { ServerResponse } from "node:http";
import { once } from "node:events";
import { SHA256_HEADER } from "../protocol/routes.js";
import { VERSION, VERSION_HEADER } from "../protocol/version.js";
import type { Logger } from "../lib/logger.js";
import type { SseRequest } from "./sse.js";

export interface OpenedFile {
  name: string;
  mediaType: string;
  size: number;
  sha256: string;
  chunks: AsyncIterable<Buffer>;
}

/** A name for content-disposition: the ASCII fallback, and the exact one (RFC 6266, RFC 8187). */
function disposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

export async function serveBytes(http: SseRequest, file: OpenedFile, log: Logger): Promise<void> {
  const { res } = http;
  let gone = false;
  const untrack = http.track(() => {
    gone = true;
    res.destroy();
  });
  res.once("close", () => (gone = true));
  try {
    res.writeHead(200, {
      "content-type": file.mediaType,
      "content-length": file.size,
      "content-disposition": disposition(file.name),
      [SHA256_HEADER]: file.sha256,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      [VERSION_HEADER]: VERSION,
    });
    let sent = 0;
    for await (const chunk of file.chunks) {
      if (gone) return;
      sent += chunk.length;
      if (!write(res, chunk)) await drained(res);
    }
    if (sent !== file.size) throw new Error(`the store gave ${sent} bytes of ${file.name}, ${file.size} were recorded`);
    res.end();
  } catch (err) {
    log.warn("file.send_failed", { file: file.name, error: (err as Error)?.message ?? String(err) });
    res.destroy();
  } finally {
    untrack();
  }
}

const write = (res: ServerResponse, chunk: Buffer): boolean => res.write(chunk);

/** Resolves when the response can take more, or when it is closed (whichever comes first). */
async function drained(res: ServerResponse): Promise<void> {
  if (res.destroyed) return;
  const ac = new AbortController();
  await Promise.race([once(res, "drain", { signal: ac.signal }), once(res, "close", { signal: ac.signal })]).catch(() => {});
  ac.abort();
}
