// What people see in a terminal: the live dashboard and the spinner in a real pty of a
// fixed size, colours (and NO_COLOR), and shell completion loading in bash.

import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { BIN, runCli, runJson, runTty } from "../helpers/cli.js";
import type { Job } from "../../src/protocol/types.js";

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon();
  for (let i = 0; i < 3; i++) await runCli(["enqueue", "noop", "--watch"], { home: d.home });
  await runCli(["enqueue", "permanent", "--watch"], { home: d.home });
});
afterAll(async () => {
  await d?.cleanup();
});

const SGR = /\u001b\[(?:3\d|9\d|2|1)(?:;\d+)*m/; // a colour or style, not cursor movement
const plain = (s: string) => s.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, "");

describe("the live dashboard in a pseudo-terminal", () => {
  it("draws totals, slots and one row per job, in colour, within the terminal's size", async () => {
    const { output } = await runTty(["jobs", "watch"], { home: d.home, cols: 90, rows: 20, until: (o) => /permanent/.test(plain(o)) && /complete 3/.test(plain(o)) });
    const text = plain(output);
    expect(text).toMatch(/teamwork jobs\s+pending 0\s+running 0\s+complete 3\s+failed 1/);
    expect(text).toMatch(/ID\s+TYPE\s+STATUS\s+TRIES\s+PROGRESS\s+SLOT\s+AGE\s+MESSAGE/);
    expect(text).toMatch(/\d+\s+permanent\s+failed\s+1\/3/);
    expect((text.match(/noop\s+complete/g) ?? []).length).toBe(3);
    expect(output).toContain("\u001b[32mcomplete"); // green
    expect(output).toContain("\u001b[31mfailed"); // red
    expect(output).toContain("\u001b[?1049h"); // alternate screen: redraws in place
    for (const line of text.split(/\r?\n/)) expect(line.length).toBeLessThanOrEqual(90);
  });

  it("shows a new job as it runs and a toast when it completes, pushed by the daemon", async () => {
    let enqueued = false;
    const { output } = await runTty(["jobs", "watch"], {
      home: d.home,
      cols: 110,
      rows: 24,
      until: (o) => {
        if (!enqueued && /MESSAGE/.test(plain(o))) {
          enqueued = true;
          void runCli(["enqueue", "slow-progress", "--data", '{"steps":4,"stepMs":80}'], { home: d.home });
        }
        return /✔ job \d+ \(slow-progress\) complete/.test(plain(o));
      },
    });
    const text = plain(output);
    expect(text).toMatch(/slow-progress\s+running/);
    expect(text).toMatch(/slots: #\d job \d+ slow-progress/);
    expect(text).toMatch(/✔ job \d+ \(slow-progress\) complete: \{"steps":4\}/);
  });

  it("shows when the queue is paused", async () => {
    await d.client.call("queuePause", {});
    try {
      const { output } = await runTty(["jobs", "watch"], { home: d.home, until: (o) => /QUEUE PAUSED/.test(plain(o)) });
      expect(plain(output)).toMatch(/teamwork jobs .*QUEUE PAUSED/);
    } finally {
      await d.client.call("queueResume", {});
    }
  });

  it("honours NO_COLOR", async () => {
    const { output } = await runTty(["jobs", "watch"], { home: d.home, env: { NO_COLOR: "1" }, until: (o) => /permanent/.test(plain(o)) });
    expect(plain(output)).toMatch(/permanent\s+failed/);
    expect(output).not.toMatch(SGR);
  });
});

describe("jobs watch ID in a pseudo-terminal", () => {
  it("spins while the job runs and ends with a green tick and the result", async () => {
    const { json: job } = await runJson<Job>(["enqueue", "slow-progress", "--data", '{"steps":10,"stepMs":200}'], { home: d.home });
    const { output, exitCode } = await runTty(["jobs", "watch", String(job.id)], { home: d.home });
    expect(exitCode).toBe(0);
    const text = plain(output);
    expect(text).toMatch(/running \d+%: step \d+ of 10/);
    expect(text).toMatch(/✔ job \d+ \(slow-progress\) complete: \{"steps":10\}/);
    expect(output).toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/); // ora's spinner frames
  });

  it("ends with a red cross and exit 1 when the job fails", async () => {
    const { json: job } = await runJson<Job>(["enqueue", "throw", "--max-attempts", "1"], { home: d.home });
    const { output, exitCode } = await runTty(["jobs", "watch", String(job.id)], { home: d.home });
    expect(exitCode).toBe(1);
    expect(plain(output)).toMatch(/✖ job \d+ \(throw\) failed after 1 attempt: boom on attempt 1/);
  });
});

describe("help and completion", () => {
  it("every command's help has a summary and exactly one example", async () => {
    // Every command path, read from the generated completion script (the command tree).
    const script = (await runCli(["completion", "bash"])).stdout;
    const paths = [...script.matchAll(/^ {4}"([a-z ]+)"\)/gm)].map((m) => m[1]!.split(" "));
    expect(paths.length).toBeGreaterThan(40);
    for (const args of paths) {
      const r = await runCli([...args, "--help"]);
      expect(r.exitCode, args.join(" ")).toBe(0);
      expect(r.stdout, args.join(" ")).toMatch(/Usage: teamwork/);
      expect(r.stdout, args.join(" ")).toMatch(/Examples?:\n\s+\$ \S/);
      expect(r.stdout.match(/Examples?:/g), args.join(" ")).toHaveLength(1);
    }
  });

  it("the bash completion script loads and completes commands, subcommands and options", () => {
    const script = `source <(${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} completion bash)
complete -p teamwork
COMP_WORDS=(teamwork sch); COMP_CWORD=1; _teamwork; echo "1:\${COMPREPLY[*]}"
COMP_WORDS=(teamwork schedules p); COMP_CWORD=2; _teamwork; echo "2:\${COMPREPLY[*]}"
COMP_WORDS=(teamwork jobs list --li); COMP_CWORD=3; _teamwork; echo "3:\${COMPREPLY[*]}"`;
    const out = execFileSync("bash", ["-c", script], { encoding: "utf8" });
    expect(out).toContain("complete -F _teamwork teamwork");
    expect(out).toContain("1:schedules");
    expect(out).toContain("2:pause");
    expect(out).toContain("3:--limit");
  });
});
