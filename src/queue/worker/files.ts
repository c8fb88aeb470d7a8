// ctx.files: what a handler reads and writes of the files kept in the store, for one attempt
// of one job. The bytes go between the worker and the database on the worker's own connection
// (store/index.ts filesPortAt), never through the daemon's thread nor the pool's messages.

import type { JobFile, JobFiles } from "../../jobs/define.js";
import { ARTIFACT_NAME, ARTIFACT_NAME_HINT, fileTooLarge, mediaTypeOf } from "../../protocol/files.js";
import type { FileStore, StoredFile } from "../../store/types.js";

/** An error the attempt cannot get past by retrying: the runner fails the job at once. */
const permanent = (message: string): Error => Object.assign(new Error(message), { permanent: true });

const described = (f: StoredFile): JobFile => ({ name: f.name, mediaType: f.mediaType, size: f.size, sha256: f.sha256 });

export function jobFiles(port: FileStore, at: { jobId: number; attempt: number }, maxBytes: number, now: () => number = Date.now): JobFiles {
  return {
    maxBytes,
    async upload(id) {
      if (!Number.isSafeInteger(id) || id <= 0) throw permanent(`an upload id is a positive integer, got ${JSON.stringify(id)}`);
      const r = await port.readUpload(id);
      return r ? { ...described(r.file), name: r.uploadName, bytes: r.bytes } : null;
    },
    async putArtifact(name, bytes, mediaType) {
      if (typeof name !== "string" || !ARTIFACT_NAME.test(name)) throw permanent(`artifact name ${JSON.stringify(name)} is not allowed: ${ARTIFACT_NAME_HINT}`);
      const buffer = typeof bytes === "string" ? Buffer.from(bytes, "utf8") : Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const tooLarge = fileTooLarge(`artifact ${name}`, buffer.length, maxBytes);
      if (tooLarge) throw permanent(`${tooLarge}; nothing was stored`);
      const type = mediaType ?? mediaTypeOf(name);
      if (!/^[\w.+-]+\/[\w.+-]+(\s*;\s*[\w.+-]+=[\w.+"-]+)*$/.test(type) || type.length > 200) throw permanent(`media type ${JSON.stringify(type)} is not a media type like "image/png"`);
      const stored = await port.putArtifact(at, { name, mediaType: type, bytes: buffer }, now());
      if (!stored) throw new Error(`artifact ${name} not stored: attempt ${at.attempt} of job ${at.jobId} is no longer running (cancelled, timed out or taken over)`);
      return described(stored);
    },
  };
}
