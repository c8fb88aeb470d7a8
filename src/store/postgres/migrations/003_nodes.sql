-- Nodes: the daemons serving one database (SCALE-OUT.md §9). Each daemon run registers a
-- node (its id is the owner its claims record), holds a session advisory lock
-- (LOCK_NAMESPACE, lock_key) on a control connection of its own, and renews a lease on the
-- database's clock every second. A node whose lease lapsed, or whose lock is gone and whose
-- heartbeat is old, is dead: any node's rescue hands its running jobs back to the queue and
-- removes its row. Statements: src/store/postgres/nodes.ts.

CREATE TABLE nodes (
  -- A new id on every registration (a daemon run, or a node re-registering after a fence).
  id            text PRIMARY KEY,
  -- pg_advisory_lock(LOCK_NAMESPACE, lock_key), held by the node's control session.
  lock_key      integer NOT NULL UNIQUE,
  host          text NOT NULL,
  pid           integer NOT NULL,
  started_at    timestamptz NOT NULL DEFAULT now(),
  heartbeat_at  timestamptz NOT NULL DEFAULT now(),
  lease_until   timestamptz NOT NULL,
  -- A node stopping gracefully claims nothing more; it still renews its lease while it drains.
  stopping      boolean NOT NULL DEFAULT false
  -- Heartbeats change no indexed column: with room left on the page they are HOT updates.
) WITH (fillfactor = 50);

-- Lock keys of the namespace below 16 are teamwork's own fixed locks (migrate.ts).
CREATE SEQUENCE nodes_lock_key_seq AS integer MINVALUE 16 START 16 CYCLE;

-- The claim of migration 002, for a live node only (the first statement is new).
CREATE OR REPLACE FUNCTION jobs_claim(claimer text, due_by timestamptz, n integer, paused text[], budgets jsonb, draws jsonb, other_types jsonb)
  RETURNS TABLE (id bigint, type text, payload json, status text, progress integer, progress_message text,
                 attempts integer, max_attempts integer, run_at timestamptz, priority integer, unique_key text,
                 slot integer, result json, error text, errors json, created_at timestamptz, started_at timestamptz,
                 finished_at timestamptz, state json, next_due timestamptz)
  LANGUAGE plpgsql VOLATILE ROWS 10
  SET enable_sort = off SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $$
  #variable_conflict use_column
  DECLARE
    due record;
    budget_left jsonb := budgets;
    names text[];
    b text;
    taken bigint[] := '{}';
    seen integer := 0;
    stopped boolean := false;
  BEGIN
    -- Only for a node that may claim: its row is there, its lease has not lapsed, it is not
    -- stopping. FOR KEY SHARE holds the row until this claim commits: a rescuer (FOR UPDATE
    -- SKIP LOCKED) steps over the node meanwhile, so no job can become running for a node
    -- that rescue has just removed; a heartbeat (an update of no key) does not wait for it.
    PERFORM 1 FROM nodes nd WHERE nd.id = claimer AND nd.lease_until > now() AND NOT nd.stopping FOR KEY SHARE OF nd;
    IF NOT FOUND THEN
      RETURN;
    END IF;
    <<walk>>
    FOR due IN
      SELECT j.id, j.type FROM jobs j
       WHERE j.status = 'pending' AND j.run_at <= due_by AND j.type <> ALL (paused)
       ORDER BY j.priority DESC, j.run_at, j.id
       LIMIT n
       FOR UPDATE SKIP LOCKED
    LOOP
      seen := seen + 1;
      names := ARRAY(SELECT jsonb_array_elements_text(CASE WHEN draws ? due.type THEN draws -> due.type ELSE other_types END));
      FOREACH b IN ARRAY names LOOP
        IF NOT coalesce((budget_left ->> b)::float8, 0) > 0 THEN
          stopped := true;
          EXIT walk;
        END IF;
      END LOOP;
      FOREACH b IN ARRAY names LOOP
        budget_left := jsonb_set(budget_left, ARRAY[b], to_jsonb(coalesce((budget_left ->> b)::float8, 0) - 1));
      END LOOP;
      taken := taken || due.id;
    END LOOP;
    -- By primary key (id = ANY: never a scan of the table), in no particular order.
    RETURN QUERY
      UPDATE jobs j SET status = 'running', slot = NULL, attempts = j.attempts + 1, started_at = NULL, owner = claimer,
             progress = 0, progress_message = NULL
       WHERE j.id = ANY (taken)
      RETURNING j.id, j.type, j.payload, j.status, j.progress, j.progress_message, j.attempts, j.max_attempts, j.run_at,
                j.priority, j.unique_key, j.slot, j.result, j.error, j.errors, j.created_at, j.started_at, j.finished_at,
                j.state, NULL::timestamptz;
    IF NOT stopped AND seen < n THEN
      next_due := (SELECT j.run_at FROM jobs j
                    WHERE j.status = 'pending' AND j.type <> ALL (paused) AND j.id <> ALL (taken)
                    ORDER BY j.run_at
                    LIMIT 1);
      RETURN NEXT;
    END IF;
  END
$$;
