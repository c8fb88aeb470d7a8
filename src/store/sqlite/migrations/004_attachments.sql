-- Files uploaded to the board. The stored copy stays; the temporary copy in uploads/tmp
-- feeds the thumbnail job and is removed once that job ends (cleanup sweeps leftovers).

CREATE TABLE attachments (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id           INTEGER,
  name              TEXT NOT NULL,
  path              TEXT NOT NULL,
  tmp_path          TEXT,
  size              INTEGER NOT NULL,
  thumbnail_path    TEXT,
  thumbnail_error   TEXT,
  thumbnail_job_id  INTEGER,
  created_at        INTEGER NOT NULL
) STRICT;
CREATE INDEX attachments_task ON attachments (task_id) WHERE task_id IS NOT NULL;
