-- Cancel across nodes (SCALE-OUT.md §9.4 "Request cancel"): a cancel asked for through any
-- node is recorded in the job's row, with a deadline on the database's clock (now() + the
-- grace). The node running the job learns of it by NOTIFY tw_control, or at the latest from
-- its next heartbeat; it stops the job and ends it cancelled. Every end of an attempt whose
-- cancel was requested is cancelled (a late result is kept, the state is not complete); a
-- dead node's job whose cancel was requested is ended cancelled by rescue, never run again;
-- a job still running past deadline + lease (its node alive but stuck) is ended cancelled by
-- any node's reaper, and its node's late writes are fenced. Statements:
-- src/store/postgres/jobs.ts and nodes.ts. (004 and 005 are other work's numbers; the
-- migration runner applies every number not applied, gaps included.)

ALTER TABLE jobs ADD COLUMN cancel_requested_at timestamptz;
ALTER TABLE jobs ADD COLUMN cancel_deadline timestamptz;

-- The reaper's look-up, every rescue tick on every node: running jobs with a deadline (few).
CREATE INDEX jobs_cancel_deadline ON jobs (cancel_deadline) WHERE status = 'running' AND cancel_deadline IS NOT NULL;
