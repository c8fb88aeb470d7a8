// Files kept in the store, as the API shows them: a job's artifacts, an upload's files. Finds
// them and says clearly what is missing (no such job, no such artifact and which there are).

import { notFound } from "../lib/errors.js";
import type { FileInfo } from "../protocol/files.js";
import type { FileOwner, Store, StoredFile } from "../store/types.js";

export const fileInfo = (f: StoredFile): FileInfo => ({ name: f.name, mediaType: f.mediaType, size: f.size, sha256: f.sha256, createdAt: new Date(f.createdAt).toISOString() });

export interface FileToSend extends FileInfo {
  chunks: AsyncIterable<Buffer>;
}

/** A job's artifacts; not_found if there is no such job. */
export async function listArtifacts(store: Store, jobId: number): Promise<FileInfo[]> {
  if (!(await store.jobs.get(jobId))) throw notFound(`job ${jobId} not found`);
  return (await store.files.list({ jobId })).map(fileInfo);
}

/** One artifact of a job, opened for reading; not_found (naming the job's artifacts) if there is none of that name. */
export async function openArtifact(store: Store, jobId: number, name: string): Promise<FileToSend> {
  const found = await store.files.get({ jobId }, name);
  if (!found) {
    const all = await listArtifacts(store, jobId);
    throw notFound(`job ${jobId} has no artifact "${name}"; ${all.length === 0 ? "it has none" : `it has ${all.map((a) => a.name).join(", ")}`}`);
  }
  return open(store, found, { jobId });
}

/** A file of an upload ("original" or "thumbnail"), opened for reading; the name given is the upload's. */
export async function openUploadFile(store: Store, uploadId: number, name: "original" | "thumbnail"): Promise<FileToSend> {
  const upload = await store.attachments.get(uploadId);
  if (!upload) throw notFound(`upload ${uploadId} not found`);
  const found = await store.files.get({ attachmentId: uploadId }, name);
  if (!found) {
    if (name === "thumbnail") throw notFound(`upload ${uploadId} has no thumbnail ${upload.thumbnail.status === "failed" ? `(it failed: ${upload.thumbnail.error})` : upload.thumbnail.status === "pending" ? "yet" : "kept in the store"}`);
    throw notFound(`upload ${uploadId} was made before files were kept in the store: its copy is ${upload.path ?? "gone"}, on the host that took it`);
  }
  const file = await open(store, found, { attachmentId: uploadId });
  return name === "original" ? { ...file, name: upload.name } : file;
}

async function open(store: Store, file: StoredFile, owner: FileOwner): Promise<FileToSend> {
  const opened = await store.files.open(file.id);
  // Replaced (a retry stored it again) or deleted (pruned) between the two reads.
  if (!opened) throw notFound(`${"jobId" in owner ? `job ${owner.jobId}'s artifact` : `upload ${owner.attachmentId}'s file`} "${file.name}" was just replaced or deleted; ask again`);
  return { ...fileInfo(opened.file), chunks: opened.chunks };
}
