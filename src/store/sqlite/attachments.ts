import type { AttachmentStore } from "../types.js";
import type { Db } from "./open.js";
import { toAttachment, type AttachmentRow as Row } from "../rows.js";


export function sqliteAttachments(db: Db): AttachmentStore {
  const insert = db.prepare(
    `INSERT INTO attachments (task_id, name, path, tmp_path, size, created_at) VALUES (@taskId, @name, @path, @tmpPath, @size, @now) RETURNING *`,
  );
  const get = db.prepare<[number], Row>(`SELECT * FROM attachments WHERE id = ?`);
  const forTask = db.prepare<[number], Row>(`SELECT * FROM attachments WHERE task_id = ? ORDER BY id`);
  const setJob = db.prepare<[number, number]>(`UPDATE attachments SET thumbnail_job_id = ? WHERE id = ?`);
  const finish = db.prepare<[string | null, string | null, number]>(
    `UPDATE attachments SET thumbnail_path = ?, thumbnail_error = ?, tmp_path = NULL WHERE id = ?`,
  );
  const getTmp = db.prepare<[number], { tmp_path: string | null }>(`SELECT tmp_path FROM attachments WHERE id = ?`);
  const finishTx = db.transaction((id: number, path: string | null, error: string | null) => {
    const tmp = getTmp.get(id)?.tmp_path ?? null;
    finish.run(path, error, id);
    return tmp;
  });
  return {
    async create(a, now) {
      return toAttachment(insert.get({ ...a, now }) as Row);
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
      return finishTx.immediate(id, "path" in outcome ? outcome.path : null, "error" in outcome ? outcome.error : null);
    },
  };
}
