import type { AttachmentStore, NewFile } from "../types.js";
import type { Db } from "./open.js";
import { ATTACHMENT_SELECT, digestOf, toAttachment, type AttachmentRow as Row } from "../rows.js";
import { UPLOAD_FILES } from "../../protocol/files.js";
import { fileWriter } from "./files.js";

export function sqliteAttachments(db: Db): AttachmentStore {
  const writeFile = fileWriter(db);
  const insert = db.prepare<[number | null, string, number, number], { id: number }>(`INSERT INTO attachments (task_id, name, size, created_at) VALUES (?, ?, ?, ?) RETURNING id`);
  const get = db.prepare<[number], Row>(`${ATTACHMENT_SELECT} WHERE a.id = ?`);
  const forTask = db.prepare<[number], Row>(`${ATTACHMENT_SELECT} WHERE a.task_id = ? ORDER BY a.id`);
  const setJob = db.prepare<[number, number]>(`UPDATE attachments SET thumbnail_job_id = ? WHERE id = ?`);
  const finish = db.prepare<[string | null, number]>(`UPDATE attachments SET thumbnail_error = ?, tmp_path = NULL WHERE id = ?`);
  const getTmp = db.prepare<[number], { tmp_path: string | null }>(`SELECT tmp_path FROM attachments WHERE id = ?`);
  // The artifact's bytes are copied inside the database: they never come up to the daemon.
  const copyThumbnail = db.prepare<[number, number, string]>(
    `INSERT INTO files (attachment_id, name, media_type, size, sha256, created_at, data)
     SELECT ?, '${UPLOAD_FILES.thumbnail}', media_type, size, sha256, created_at, data FROM files WHERE job_id = ? AND name = ?`,
  );
  const dropThumbnail = db.prepare<[number]>(`DELETE FROM files WHERE attachment_id = ? AND name = '${UPLOAD_FILES.thumbnail}'`);
  const createTx = db.transaction((a: { taskId: number | null; name: string; file: NewFile & { size: number; sha256: string } }, now: number) => {
    const { id } = insert.get(a.taskId, a.name, a.file.size, now)!;
    writeFile({ column: "attachment_id", id }, { ...a.file, name: UPLOAD_FILES.original }, now);
    return id;
  });
  const finishTx = db.transaction((id: number, outcome: { jobId: number; artifact: string } | { error: string }) => {
    const old = getTmp.get(id);
    if (!old) return null;
    if ("error" in outcome) finish.run(outcome.error, id);
    else {
      dropThumbnail.run(id);
      const copied = copyThumbnail.run(id, outcome.jobId, outcome.artifact).changes;
      finish.run(copied === 1 ? null : `the thumbnail job ${outcome.jobId} left no artifact "${outcome.artifact}"`, id);
    }
    return old.tmp_path;
  });
  return {
    async create(a, now) {
      // Hashed before the write lock is taken.
      return toAttachment(get.get(createTx.immediate({ ...a, file: { ...a.file, ...digestOf(a.file.bytes) } }, now))!);
    },
    async get(id) {
      const r = get.get(id);
      return r ? toAttachment(r) : null;
    },
    async listForTask(taskId) {
      return forTask.all(taskId).map(toAttachment);
    },
    async setThumbnailJob(id, jobId) {
      setJob.run(jobId, id);
    },
    async finishThumbnail(id, outcome) {
      return finishTx.immediate(id, outcome);
    },
  };
}
