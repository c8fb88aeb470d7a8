// Security basics: no TCP listener, nothing escapes the uploads folder, and the SMTP
// password never shows up in logs, errors or --json output.

import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { runCli } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";

let d: TestDaemon | undefined;
afterEach(async () => {
  await d?.cleanup();
  d = undefined;
});

/** Inodes of the sockets a process has open. */
function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Inodes of listening TCP sockets on the machine (state 0A). */
function tcpListeners(): Set<string> {
  const out = new Set<string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.trim().split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === "0A") out.add(cols[9]!);
    }
  }
  return out;
}

describe("security basics", () => {
  it("opens no TCP listener", async () => {
    d = await startDaemon();
    await d.client.call("tasksAdd", { title: "x" });
    const mine = socketInodes(d.pid);
    expect(mine.size).toBeGreaterThan(0); // it does hold its Unix socket
    const listening = tcpListeners();
    expect([...mine].filter((i) => listening.has(i))).toEqual([]);
  });

  it("refuses thumbnail sources outside the uploads folder", async () => {
    d = await startDaemon();
    for (const source of ["/etc/passwd", `${d.home}/teamwork.db`, `${d.home}/uploads/../teamwork.db`]) {
      const r = await d.client.call("jobsEnqueue", { type: "thumbnail", payload: { source } }).then(
        (x) => x.job,
        (e: Error & { code?: string }) => e,
      );
      if (r instanceof Error) expect(r.code, source).toBe("invalid_input");
      else {
        const job = await waitFor(async () => {
          const j = (await d!.client.call("jobsGet", { id: r.id })).job;
          return j.status === "failed" ? j : null;
        });
        expect(job.attempts, source).toBe(1);
        expect(job.error, source).toMatch(/outside|uploads/i);
      }
    }
  });

  it("never shows the SMTP password in logs, errors or --json output", async () => {
    const secret = "s3cretPass";
    d = await startDaemon({ config: { smtpUrl: `smtp://mailer:${secret}@127.0.0.1:1`, mailFrom: "board@example.com" } });
    const { task } = await d.client.call("tasksAdd", { title: "mail me" });
    const notify = await runCli(["notify", String(task.id), "--to", "a@example.com", "--watch"], { home: d.home });
    const { job } = await d.client.call("jobsEnqueue", { type: "notify", payload: { taskId: task.id, to: ["b@example.com"] }, maxAttempts: 1 });
    const failed = await waitFor(async () => {
      const j = (await d!.client.call("jobsGet", { id: job.id })).job;
      return j.status === "failed" ? j : null;
    });
    expect(failed.error).toBeTruthy();
    const outputs = [
      notify.stdout,
      notify.stderr,
      (await runCli(["jobs", "show", String(job.id), "--json"], { home: d.home })).stdout,
      (await runCli(["jobs", "list", "--json"], { home: d.home })).stdout,
      (await runCli(["daemon", "status", "--json"], { home: d.home })).stdout,
      (await runCli(["jobs", "logs", String(job.id)], { home: d.home })).stdout,
      d.log(),
    ];
    for (const text of outputs) expect(text).not.toContain(secret);
    await d.client.call("jobsCancel", { id: (await d.client.call("jobsList", { type: "notify", status: "pending" })).jobs[0]?.id ?? job.id }).catch(() => {});
  });
});
