-- Task board, its durable event log, and the job queue.

CREATE TABLE boards (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  created_at  INTEGER NOT NULL
) STRICT;

-- AUTOINCREMENT: ids are never reused, so a deleted task's events and a pruned job's
-- watchers can never be confused with a newer one.
CREATE TABLE tasks (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  board_id      INTEGER NOT NULL REFERENCES boards(id),
  title         TEXT NOT NULL,
  description   TEXT NOT NULL DEFAULT '',
  status        TEXT NOT NULL CHECK (status IN ('todo', 'doing', 'done')),
  assignee      TEXT,
  due_date      TEXT,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  completed_at  INTEGER
) STRICT;
CREATE INDEX tasks_board_status ON tasks (board_id, status);
CREATE INDEX tasks_assignee ON tasks (assignee) WHERE assignee IS NOT NULL;

-- Append-only. task_id is not a foreign key: events outlive deleted tasks.
CREATE TABLE task_events (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id     INTEGER NOT NULL,
  board_id    INTEGER NOT NULL REFERENCES boards(id),
  type        TEXT NOT NULL CHECK (type IN ('created', 'updated', 'completed', 'assigned', 'deleted')),
  title       TEXT NOT NULL,
  data        TEXT NOT NULL DEFAULT '{}',
  created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX task_events_task ON task_events (task_id, id);
CREATE INDEX task_events_board ON task_events (board_id, id);

CREATE TABLE jobs (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  type              TEXT NOT NULL,
  payload           TEXT NOT NULL,
  status            TEXT NOT NULL CHECK (status IN ('pending', 'running', 'complete', 'failed', 'cancelled')),
  progress          INTEGER NOT NULL DEFAULT 0,
  progress_message  TEXT,
  attempts          INTEGER NOT NULL DEFAULT 0,
  max_attempts      INTEGER NOT NULL,
  run_at            INTEGER NOT NULL,
  priority          INTEGER NOT NULL DEFAULT 0,
  unique_key        TEXT,
  slot              INTEGER,
  result            TEXT,
  error             TEXT,
  errors            TEXT NOT NULL DEFAULT '[]',
  created_at        INTEGER NOT NULL,
  started_at        INTEGER,
  finished_at       INTEGER
) STRICT;
-- The claim walks this index in order: highest priority, then earliest run_at, then id.
CREATE INDEX jobs_due ON jobs (priority DESC, run_at, id) WHERE status = 'pending';
CREATE INDEX jobs_status ON jobs (status, id);
CREATE INDEX jobs_type ON jobs (type, id);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
-- One live (pending or running) job per unique key: the double-click guard.
CREATE UNIQUE INDEX jobs_unique_live ON jobs (unique_key)
  WHERE unique_key IS NOT NULL AND status IN ('pending', 'running');

INSERT INTO boards (name, created_at) VALUES ('default', CAST(unixepoch('subsec') * 1000 AS INTEGER));
CREATE INDEX jobs_pending_run_at ON jobs (run_at) WHERE status = 'pending';
