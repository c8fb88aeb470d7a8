-- The next due time is found by a skip-scan over jobs_due (one seek per distinct priority),
-- so this index no longer earns its keep: it cost a write on every enqueue and every claim.
DROP INDEX IF EXISTS jobs_pending_run_at;
