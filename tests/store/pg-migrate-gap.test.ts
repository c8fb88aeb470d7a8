// PostgreSQL migrations are numbered by whoever writes them, and land in any order: a
// database may get 004 before 003 exists. The runner applies every migration not applied
// yet, a gap's too, never only those above the highest applied.

import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import pg from "pg";
import { POSTGRES_SKIPPED, PG_TEST_URL, pgUrlFor } from "./factory.js";
import { loadMigrations, migrate } from "../../src/store/postgres/migrate.js";

describe.skipIf(POSTGRES_SKIPPED !== null)("postgres migrations: a gap filled later", () => {
  const dbs: string[] = [];
  afterEach(async () => {
    const admin = new pg.Client({ connectionString: PG_TEST_URL });
    await admin.connect();
    for (const db of dbs.splice(0)) await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await admin.end();
  });

  it("a database migrated with 001, 002, 004 gets 003 when a build that has it opens it; a newer schema is still refused", async () => {
    const db = `tw_test_${randomBytes(6).toString("hex")}`;
    dbs.push(db);
    const admin = new pg.Client({ connectionString: PG_TEST_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${db}`);
    await admin.end();
    const pool = new pg.Pool({ connectionString: pgUrlFor(db), max: 2 });
    try {
      const real = loadMigrations().filter((m) => m.version <= 2);
      const four = { version: 4, name: "004_four.sql", sql: "CREATE TABLE gap_four (id int)" };
      const three = { version: 3, name: "003_three.sql", sql: "CREATE TABLE gap_three (id int)" };
      expect(await migrate(pool, [...real, four])).toEqual([...real.map((m) => m.version), 4]);
      expect(await migrate(pool, [...real, three, four])).toEqual([3]);
      expect(await migrate(pool, [...real, three, four])).toEqual([]);
      const tables = (await pool.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE tablename LIKE 'gap_%' ORDER BY 1")).rows.map((r) => r.t);
      expect(tables).toEqual(["gap_four", "gap_three"]);
      await expect(migrate(pool, [...real, three])).rejects.toThrow(/newer teamwork \(schema 4, this version knows up to 3\)/);
    } finally {
      await pool.end();
    }
  });
});
