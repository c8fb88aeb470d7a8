-- The board, its durable event log, schedules, meta and attachments: the same data as the
-- SQLite store (src/store/sqlite/migrations), in PostgreSQL's types. Times are timestamptz
-- (the store converts to and from epoch milliseconds at its boundary); opaque documents
-- (event data, meta values, payloads) are json, not jsonb, so that they come back exactly as
-- written (key order included), as they do from SQLite. Ids are bigint identities, never
-- reused (a deleted task's events, a pruned job's watchers).

CREATE TABLE boards (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name        text NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL
);

CREATE TABLE tasks (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  board_id      bigint NOT NULL REFERENCES boards (id),
  title         text NOT NULL,
  description   text NOT NULL DEFAULT '',
  status        text NOT NULL CHECK (status IN ('todo', 'doing', 'done')),
  assignee      text,
  due_date      text,
  created_at    timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL,
  completed_at  timestamptz
);
-- A board's tasks in id order: the board port's keyset pages, and counts per board.
CREATE INDEX tasks_board_id ON tasks (board_id, id);
CREATE INDEX tasks_board_status ON tasks (board_id, status);
CREATE INDEX tasks_assignee ON tasks (assignee) WHERE assignee IS NOT NULL;

-- Append-only. task_id is not a foreign key: events outlive deleted tasks.
-- Read by cursor (id > after): every insert of events takes the transaction-level advisory
-- lock (4243, 1) first and holds it until commit, so ids become visible in id order and a
-- cursor never steps over an id committed late (src/store/postgres/tasks.ts).
CREATE TABLE task_events (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_id     bigint NOT NULL,
  board_id    bigint NOT NULL REFERENCES boards (id),
  type        text NOT NULL CHECK (type IN ('created', 'updated', 'completed', 'assigned', 'deleted')),
  title       text NOT NULL,
  data        json NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL
);
CREATE INDEX task_events_task ON task_events (task_id, id);
CREATE INDEX task_events_board ON task_events (board_id, id);

CREATE TABLE meta (
  key    text PRIMARY KEY,
  value  json NOT NULL
);

CREATE TABLE schedules (
  name           text PRIMARY KEY,
  cron           text NOT NULL,
  timezone       text,
  job_type       text NOT NULL,
  payload        json NOT NULL DEFAULT '{}',
  enabled        boolean NOT NULL DEFAULT true,
  -- The scheduled time of the last slot handled (fired or skipped): a slot at or before it
  -- never fires again.
  last_slot      timestamptz,
  last_fired_at  timestamptz,
  last_job_id    bigint,
  last_outcome   text CHECK (last_outcome IN ('enqueued', 'skipped')),
  created_at     timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL
);

-- One row per slot a schedule handled: the first firing to insert it wins the slot, whoever
-- else (another daemon on another host) tries at the same time.
CREATE TABLE schedule_runs (
  schedule  text NOT NULL REFERENCES schedules (name) ON DELETE CASCADE,
  slot      timestamptz NOT NULL,
  fired_at  timestamptz NOT NULL,
  -- Null only inside the firing's own transaction, which sets both before it commits.
  outcome   text CHECK (outcome IN ('enqueued', 'skipped')),
  job_id    bigint,
  PRIMARY KEY (schedule, slot)
);
CREATE INDEX schedule_runs_fired_at ON schedule_runs (fired_at);

CREATE TABLE attachments (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_id           bigint,
  name              text NOT NULL,
  path              text NOT NULL,
  tmp_path          text,
  size              bigint NOT NULL,
  thumbnail_path    text,
  thumbnail_error   text,
  thumbnail_job_id  bigint,
  created_at        timestamptz NOT NULL
);
CREATE INDEX attachments_task ON attachments (task_id) WHERE task_id IS NOT NULL;

INSERT INTO boards (name, created_at) VALUES ('default', now());
