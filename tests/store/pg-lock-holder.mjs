// A second process that holds a PostgreSQL store's tables against writers: it begins a
// transaction, locks every table of the store IN EXCLUSIVE MODE (plain reads still go
// through; every write, and every SELECT ... FOR UPDATE, waits), prints "locked", and keeps
// them until its stdin closes (then rolls back and exits 0) or it is killed (the server sees
// the connection close and drops the locks).
//
//   node tests/store/pg-lock-holder.mjs <database URL>

import pg from "pg";

const client = new pg.Client({ connectionString: process.argv[2] });
await client.connect();
await client.query("BEGIN");
const { rows } = await client.query("SELECT quote_ident(tablename) AS t FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'");
await client.query(`LOCK TABLE ${rows.map((r) => r.t).join(", ")} IN EXCLUSIVE MODE`);
process.stdout.write("locked\n");
process.stdin.on("end", async () => {
  await client.query("ROLLBACK");
  await client.end();
  process.exit(0);
});
process.stdin.resume();
