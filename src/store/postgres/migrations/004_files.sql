-- Files kept in the database: the bytes of uploads and the artifacts jobs write, so that what
-- a job reads and makes does not depend on the host it runs on (protocol/files.ts): an upload
-- taken on one host is thumbnailed on whichever node claims the job, a report made on one is
-- fetched from another. One value per file, written whole in one transaction.
--
-- data is stored EXTERNAL: out of line in TOAST, uncompressed. Images and most artifacts do
-- not compress, and an uncompressed TOAST value can be read by slices (substring(data FROM n
-- FOR m) fetches only the TOAST chunks it covers), so a file is streamed in 1 MiB slices
-- without the whole value in memory (store/postgres/files.ts).

-- An upload's bytes were a file under one daemon's home; they are now its file "original",
-- and path stays only for uploads made before.
ALTER TABLE attachments ALTER COLUMN path DROP NOT NULL;

-- A job's artifacts go with the job when it is pruned, an attachment's files with it.
CREATE TABLE files (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id         bigint REFERENCES jobs (id) ON DELETE CASCADE,
  attachment_id  bigint REFERENCES attachments (id) ON DELETE CASCADE,
  name           text NOT NULL,
  media_type     text NOT NULL,
  size           bigint NOT NULL,
  sha256         text NOT NULL,
  created_at     timestamptz NOT NULL,
  data           bytea NOT NULL,
  CHECK ((job_id IS NULL) <> (attachment_id IS NULL))
);
ALTER TABLE files ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE UNIQUE INDEX files_job ON files (job_id, name) WHERE job_id IS NOT NULL;
CREATE UNIQUE INDEX files_attachment ON files (attachment_id, name) WHERE attachment_id IS NOT NULL;
