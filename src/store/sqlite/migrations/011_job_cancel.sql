-- A cancel asked for a running job is recorded in its row (the same columns as PostgreSQL's
-- migration 006): every end of that attempt is then cancelled (a late result is kept, the
-- state is not complete), and a job left running by a daemon that died after the request is
-- ended cancelled at the next start, never run again. Epoch ms, as every time here.
ALTER TABLE jobs ADD COLUMN cancel_requested_at INTEGER;
ALTER TABLE jobs ADD COLUMN cancel_deadline INTEGER;
