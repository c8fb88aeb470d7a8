// `teamwork nodes` on SQLite: the daemon of the home is the one node, marked as the one asked,
// with its running jobs; its id is the node `daemon status --json` names.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { runCli } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";
import type { NodeInfo } from "../../src/protocol/types.js";

describe("teamwork nodes on SQLite", () => {
  let d: TestDaemon;
  beforeAll(async () => {
    d = await startDaemon();
  });
  afterAll(async () => {
    await d.cleanup();
  });

  it("lists the one daemon, as this one, with its running jobs", async () => {
    const { job } = await d.client.call("jobsEnqueue", { type: "until-cancelled" });
    await waitFor(async () => (await d.client.call("jobsGet", { id: job.id })).job.status === "running");
    const r = await runCli(["nodes", "--json"], { home: d.home });
    expect(r.exitCode).toBe(0);
    const { nodes } = JSON.parse(r.stdout) as { nodes: NodeInfo[] };
    expect(nodes).toHaveLength(1);
    expect(nodes[0]).toMatchObject({ pid: d.pid, self: true, stopping: false, running: 1 });
    const status = JSON.parse((await runCli(["daemon", "status", "--json"], { home: d.home })).stdout) as { node: string };
    expect(nodes[0]!.id).toBe(status.node);

    const table = await runCli(["nodes"], { home: d.home });
    expect(table.stdout.split("\n")[0]).toMatch(/^NODE\s+HOST\s+PID\s+STARTED\s+LAST HEARTBEAT\s+RUNNING$/);
    expect(table.stdout).toMatch(new RegExp(`${status.node} \\*.*\\b${d.pid}\\b.*\\b1$`, "m"));
    await d.client.call("jobsCancel", { id: job.id });
  });
});
