-- A job's checkpoint: what its handler recorded as done (e.g. recipients already mailed),
-- kept across attempts so a retry can skip finished work.
ALTER TABLE jobs ADD COLUMN state TEXT;
