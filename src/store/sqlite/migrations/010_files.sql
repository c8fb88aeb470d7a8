-- Files kept in the database: the bytes of uploads and the artifacts jobs write, so that what
-- a job reads and makes does not depend on the host it runs on (protocol/files.ts). One
-- value per file, written whole in one transaction; `data` comes last in the row so that a
-- file's description is read without its overflow pages.
--
-- An upload's bytes were a file under the home (path, with a temporary copy at tmp_path for
-- the thumbnail job); they are now the attachment's file "original", and path stays only for
-- uploads made before. SQLite cannot drop a NOT NULL: the table is rebuilt, ids kept.

CREATE TABLE attachments_next (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id           INTEGER,
  name              TEXT NOT NULL,
  path              TEXT,
  tmp_path          TEXT,
  size              INTEGER NOT NULL,
  thumbnail_path    TEXT,
  thumbnail_error   TEXT,
  thumbnail_job_id  INTEGER,
  created_at        INTEGER NOT NULL
) STRICT;
INSERT INTO attachments_next (id, task_id, name, path, tmp_path, size, thumbnail_path, thumbnail_error, thumbnail_job_id, created_at)
  SELECT id, task_id, name, path, tmp_path, size, thumbnail_path, thumbnail_error, thumbnail_job_id, created_at FROM attachments;
DROP TABLE attachments;
ALTER TABLE attachments_next RENAME TO attachments;
CREATE INDEX attachments_task ON attachments (task_id) WHERE task_id IS NOT NULL;

-- A job's artifacts go with the job when it is pruned, an attachment's files with it
-- (foreign keys are on: store/sqlite/open.ts).
CREATE TABLE files (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id         INTEGER REFERENCES jobs (id) ON DELETE CASCADE,
  attachment_id  INTEGER REFERENCES attachments (id) ON DELETE CASCADE,
  name           TEXT NOT NULL,
  media_type     TEXT NOT NULL,
  size           INTEGER NOT NULL,
  sha256         TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  data           BLOB NOT NULL,
  CHECK ((job_id IS NULL) <> (attachment_id IS NULL))
) STRICT;
CREATE UNIQUE INDEX files_job ON files (job_id, name) WHERE job_id IS NOT NULL;
CREATE UNIQUE INDEX files_attachment ON files (attachment_id, name) WHERE attachment_id IS NOT NULL;
