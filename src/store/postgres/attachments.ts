import type pg from "pg";
import type { AttachmentStore } from "../types.js";
import { ts } from "./connect.js";
import { toAttachment, type AttachmentRow as Row } from "../rows.js";


export function pgAttachments(pool: pg.Pool): AttachmentStore {
  return {
    async create(a, now) {
      const r = await pool.query<Row>(
        `INSERT INTO attachments (task_id, name, path, tmp_path, size, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
        [a.taskId, a.name, a.path, a.tmpPath, a.size, ts(now)],
      );
      return toAttachment(r.rows[0]!);
    },
    async get(id) {
      const r = (await pool.query<Row>(`SELECT * FROM attachments WHERE id = $1`, [id])).rows[0];
      return r ? toAttachment(r) : null;
    },
    async listForTask(taskId) {
      return (await pool.query<Row>(`SELECT * FROM attachments WHERE task_id = $1 ORDER BY id`, [taskId])).rows.map(toAttachment);
    },
    async setThumbnailJob(id, jobId) {
      await pool.query(`UPDATE attachments SET thumbnail_job_id = $2 WHERE id = $1`, [id, jobId]);
    },
    async finishThumbnail(id, outcome) {
      // One statement: the temporary copy's path as it was, read under the row's lock.
      const r = await pool.query<{ tmp_path: string | null }>(
        `WITH old AS (SELECT id, tmp_path FROM attachments WHERE id = $1 FOR UPDATE)
         UPDATE attachments a SET thumbnail_path = $2, thumbnail_error = $3, tmp_path = NULL FROM old WHERE a.id = old.id
         RETURNING old.tmp_path`,
        [id, "path" in outcome ? outcome.path : null, "error" in outcome ? outcome.error : null],
      );
      return r.rows[0]?.tmp_path ?? null;
    },
  };
}
