// `schedules list` beside a "Europe/Berlin" column shows Berlin's clock, labelled with its
// offset, not UTC unlabelled.

import { afterAll, beforeAll, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { runCli } from "../helpers/cli.js";
import type { Schedule } from "../../src/protocol/types.js";

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon();
});
afterAll(async () => {
  await d?.cleanup();
});

/** The instant a "2026-12-03 09:00:00 +01:00" cell means. */
const instantOf = (cell: string) => Date.parse(cell.replace(/^(\S+) (\S+) (\S+)$/, "$1T$2$3"));

it("shows each next run on its schedule's own clock, with the offset", async () => {
  await d.client.call("schedulesSet", { name: "berlin", cron: "0 0 9 * * *", timezone: "Europe/Berlin", type: "noop" });
  await d.client.call("schedulesSet", { name: "kolkata", cron: "0 30 9 * * *", timezone: "Asia/Kolkata", type: "noop" });
  await d.client.call("schedulesSet", { name: "local", cron: "0 0 9 * * *", type: "noop" });
  const { schedules } = await d.client.call("schedulesList", {});
  const byName = new Map<string, Schedule>(schedules.map((s) => [s.name, s]));

  const r = await runCli(["schedules", "list"], { home: d.home });
  expect(r.exitCode, r.stderr).toBe(0);
  const [header, ...rows] = r.stdout.trimEnd().split("\n");
  expect(header).toMatch(/NEXT RUN/);
  for (const [name, clock, offset] of [
    ["berlin", "09:00:00", /^\+0[12]:00$/], // CET or CEST
    ["kolkata", "09:30:00", /^\+05:30$/],
  ] as const) {
    const row = rows.find((l) => l.startsWith(`${name} `))!;
    const cell = /(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{2}:\d{2})/.exec(row)?.[1];
    expect(cell, row).toBeDefined();
    expect(cell!.split(" ")[1], row).toBe(clock);
    expect(cell!.split(" ")[2], row).toMatch(offset);
    expect(instantOf(cell!), row).toBe(Date.parse(byName.get(name)!.nextRunAt!)); // the same instant
  }
  // No zone: the local clock, labelled all the same.
  const local = rows.find((l) => l.startsWith("local "))!;
  const cell = /(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{2}:\d{2})/.exec(local)?.[1];
  expect(cell, local).toBeDefined();
  expect(instantOf(cell!)).toBe(Date.parse(byName.get("local")!.nextRunAt!));
});
