// `teamwork nodes`: the daemons serving the store. On PostgreSQL every daemon of the team that
// shares the database; on SQLite the one daemon of this home.

import type { Command } from "commander";
import type { NodeInfo } from "../protocol/types.js";
import type { CliContext } from "./context.js";
import { safe } from "../output/safe.js";
import { formatInZone } from "../output/time.js";

/** "0.4s ago", "12s ago", "3m ago": a heartbeat's age is worth tenths of a second when it is fresh. */
export function heartbeatAge(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s ago`;
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.floor(s / 60)}m ago` : `${Math.floor(s / 3600)}h ago`;
}

function nodeRows(ctx: CliContext, nodes: NodeInfo[]): Record<string, string>[] {
  const c = ctx.out.c;
  return nodes.map((n) => ({
    node: n.self ? c.bold(`${safe(n.id)} *`) : safe(n.id),
    host: safe(n.host),
    pid: String(n.pid),
    started: formatInZone(n.startedAt),
    heartbeat: n.stopping ? `${heartbeatAge(n.heartbeatAgeMs)} ${c.yellow("(stopping)")}` : heartbeatAge(n.heartbeatAgeMs),
    running: String(n.running),
  }));
}

export function registerNodes(program: Command, ctx: CliContext): void {
  program
    .command("nodes")
    .description("the daemons serving the store: host, pid, started, last heartbeat, running jobs (* this daemon)")
    .addHelpText("after", "\nOn PostgreSQL every daemon sharing the database is a node; on SQLite the daemon of this home is the only one.\n\nExample:\n  $ teamwork nodes --json")
    .action(async () => {
      const client = await ctx.client();
      const nodes = await client.daemon.nodes();
      ctx.out.result({ nodes }, () =>
        ctx.out.table(
          [
            { key: "node", title: "NODE", flex: true },
            { key: "host", title: "HOST" },
            { key: "pid", title: "PID", align: "right" },
            { key: "started", title: "STARTED" },
            { key: "heartbeat", title: "LAST HEARTBEAT" },
            { key: "running", title: "RUNNING", align: "right" },
          ],
          nodeRows(ctx, nodes),
        ),
      );
    });
}
