-- Lines a job's handler logged (ctx.log, and anything its worker printed), kept with the
-- job and bounded per job (the newest lines win). Pruned with their job.
CREATE TABLE job_logs (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id    INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  attempt   INTEGER NOT NULL,
  at        INTEGER NOT NULL,
  message   TEXT NOT NULL
) STRICT;
CREATE INDEX job_logs_job ON job_logs (job_id, id);
