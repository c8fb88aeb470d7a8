// The checked-in PostgreSQL schema dump (src/store/postgres/schema.sql) is what the migrations
// produce, so that a change to the schema shows in review (as src/store/sqlite/schema.sql does
// for SQLite: `npm run schema:check`). Regenerate with `npm run build && npm run schema:dump`.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { POSTGRES_SKIPPED, postgresFactory, rawClient } from "./factory.js";
// @ts-expect-error: a plain ES module of the scripts (no types)
import { describeSchema } from "../../scripts/pg-schema.mjs";

describe.skipIf(POSTGRES_SKIPPED !== null)("postgres: the schema dump", () => {
  it("matches what the migrations make of a fresh database", async () => {
    const f = await postgresFactory.create();
    try {
      const c = await rawClient(f);
      try {
        const dump = (await describeSchema(c)) as string;
        const checkedIn = readFileSync(new URL("../../src/store/postgres/schema.sql", import.meta.url), "utf8");
        expect(dump, "src/store/postgres/schema.sql is out of date: run `npm run build && npm run schema:dump` and commit it").toBe(checkedIn);
      } finally {
        await c.end();
      }
    } finally {
      await f.cleanup();
    }
  }, 60_000);
});
