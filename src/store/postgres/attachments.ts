import type pg from "pg";
import type { AttachmentStore } from "../types.js";
import { inTransaction, ts } from "./connect.js";
import { ATTACHMENT_SELECT, digestOf, toAttachment, type AttachmentRow as Row } from "../rows.js";
import { UPLOAD_FILES } from "../../protocol/files.js";
import { writeFile } from "./files.js";

export function pgAttachments(pool: pg.Pool): AttachmentStore {
  const get = async (c: Pick<pg.ClientBase, "query">, id: number) => (await c.query<Row>(`${ATTACHMENT_SELECT} WHERE a.id = $1`, [id])).rows[0];
  return {
    async create(a, now) {
      const digest = digestOf(a.file.bytes);
      return inTransaction(pool, async (c) => {
        const { id } = (await c.query<{ id: number }>(`INSERT INTO attachments (task_id, name, size, created_at) VALUES ($1, $2, $3, $4) RETURNING id`, [a.taskId, a.name, digest.size, ts(now)])).rows[0]!;
        await writeFile(c, { column: "attachment_id", id }, { ...a.file, ...digest, name: UPLOAD_FILES.original }, now);
        return toAttachment((await get(c, id))!);
      });
    },
    async get(id) {
      const r = await get(pool, id);
      return r ? toAttachment(r) : null;
    },
    async listForTask(taskId) {
      return (await pool.query<Row>(`${ATTACHMENT_SELECT} WHERE a.task_id = $1 ORDER BY a.id`, [taskId])).rows.map(toAttachment);
    },
    async setThumbnailJob(id, jobId) {
      await pool.query(`UPDATE attachments SET thumbnail_job_id = $2 WHERE id = $1`, [id, jobId]);
    },
    async finishThumbnail(id, outcome) {
      return inTransaction(pool, async (c) => {
        // Under the row's lock: two daemons settling one thumbnail hand the old path to one.
        const old = (await c.query<{ tmp_path: string | null }>(`SELECT tmp_path FROM attachments WHERE id = $1 FOR UPDATE`, [id])).rows[0];
        if (!old) return null;
        let error: string | null;
        if ("error" in outcome) error = outcome.error;
        else {
          await c.query(`DELETE FROM files WHERE attachment_id = $1 AND name = $2`, [id, UPLOAD_FILES.thumbnail]);
          // The artifact's bytes are copied inside the database: they never come up to the daemon.
          const copied = await c.query(
            `INSERT INTO files (attachment_id, name, media_type, size, sha256, created_at, data)
             SELECT $1, $2, media_type, size, sha256, created_at, data FROM files WHERE job_id = $3 AND name = $4`,
            [id, UPLOAD_FILES.thumbnail, outcome.jobId, outcome.artifact],
          );
          error = copied.rowCount === 1 ? null : `the thumbnail job ${outcome.jobId} left no artifact "${outcome.artifact}"`;
        }
        await c.query(`UPDATE attachments SET thumbnail_error = $2, tmp_path = NULL WHERE id = $1`, [id, error]);
        return old.tmp_path;
      });
    },
  };
}
