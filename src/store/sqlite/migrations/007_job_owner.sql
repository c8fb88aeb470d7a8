-- Ownership: a running job records the daemon run (engine) that claimed it. Every write an
-- attempt makes (finish, progress, checkpoint, log, begin) names the job, its attempt and this
-- owner, and is refused when they no longer match; rescue re-queues only jobs whose owner is
-- not alive. NULL while the job is not running (and for jobs a daemon before this migration
-- left running: no live owner has that name, so they are rescued).
ALTER TABLE jobs ADD COLUMN owner TEXT;
