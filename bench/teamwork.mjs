// teamwork's side of the benchmarks: a real daemon on a temp home, driven over its socket.
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "../dist/client/client.js";
import { resolvePaths } from "../dist/config/paths.js";

const DAEMON = fileURLToPath(new URL("../dist/daemon/main.js", import.meta.url));
const NOOP = fileURLToPath(new URL("./noop.mjs", import.meta.url));

export async function startTeamwork({ concurrency = 3, durability = "full" } = {}) {
  const home = mkdtempSync(join(tmpdir(), "tw-bench-"));
  writeFileSync(join(home, "config.json"), JSON.stringify({ jobModules: [NOOP], concurrency, durability, retention: "30d" }));
  const paths = resolvePaths({ home });
  const fd = openSync(join(home, "daemon.log"), "a");
  const child = spawn(process.execPath, [DAEMON, "--home", home], { stdio: ["ignore", fd, fd] });
  closeSync(fd);
  const client = new Client({ socket: paths.socket, keepAlive: true });
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await client.call("health", {});
      break;
    } catch {
      if (Date.now() > deadline) throw new Error("daemon did not start");
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  return {
    home,
    client,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => child.on("exit", r));
      client.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Waits until every job is complete by following the event stream (no polling). */
export function completions(client, total) {
  let done = 0;
  let resolve;
  const finished = new Promise((r) => (resolve = r));
  const stream = client.stream("eventsStream", {}, (e) => {
    if (e.type === "job:status" && e.data.job.status === "complete" && ++done === total) {
      stream.close();
      resolve();
    }
  });
  return { opened: stream.opened, finished };
}
