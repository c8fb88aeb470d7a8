// Nothing a user (or a job) wrote can drive the terminal: every field that reaches stdout or
// stderr holds escape sequences, CR, BEL, backspace, DEL, C1 controls, bidi overrides and
// newlines, and every command that prints it is run for real against a daemon. What may reach
// the terminal: newlines of our own layout, tabs inside multi-line text, and our own colours.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIXTURE_JOBS, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { runCli, runTty, type CliResult } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";
import type { Job, Task } from "../../src/protocol/types.js";

const HOSTILE_JOBS = fileURLToPath(new URL("../fixtures/jobs/hostile.mjs", import.meta.url));

/** Every kind of control a terminal acts on, with distinctive text between them. */
const HOSTILE = "A\u001b]0;pwned\u0007B\u001b[2JC\u001b[5;31mD\rE\nF\bG\u0007H\u007fI\u009b2JJ\u202eK\u2066L\u2069M\u2028N\tO\u0000P";
/** The same minus NUL, for a file name or a command-line argument. */
const HOSTILE_ARG = HOSTILE.replace("\u0000", "");

// C0 but newline, DEL, C1, the bidi controls and the Unicode line/paragraph separators.
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;
const OUR_COLOURS = /\u001b\[\d{1,2}m/g; // chalk's level-1 codes: ESC [ n m, never with a ';'

function rawControls(text: string, opts: { colour?: boolean; tabs?: boolean } = {}): string[] {
  const t = opts.colour ? text.replace(OUR_COLOURS, "") : text;
  const found = [...t].filter((ch) => CONTROL.test(ch) && !(opts.tabs && ch === "\t"));
  return [...new Set(found)].map((ch) => `U+${ch.codePointAt(0)!.toString(16).padStart(4, "0")}`);
}

function expectSafe(r: CliResult, what: string, opts: { colour?: boolean; tabs?: boolean } = {}): void {
  expect(rawControls(r.stdout, opts), `${what}: stdout\n${JSON.stringify(r.stdout)}`).toEqual([]);
  expect(rawControls(r.stderr, opts), `${what}: stderr\n${JSON.stringify(r.stderr)}`).toEqual([]);
}

let d: TestDaemon;
let dir: string;
let task: Task;
let failed: Job;
let done: Job;
let running: Job;

beforeAll(async () => {
  d = await startDaemon({ config: { jobModules: [FIXTURE_JOBS, HOSTILE_JOBS] } });
  dir = mkdtempSync(join(tmpdir(), "tw-hostile-"));
  ({ task } = await d.client.call("tasksAdd", { title: HOSTILE, description: `first line\n${HOSTILE}\nlast line` }));
  const file = join(dir, HOSTILE_ARG);
  writeFileSync(file, "not an image");
  await d.client.call("uploadsAdd", { path: file, taskId: task.id });
  ({ job: failed } = await d.client.call("jobsEnqueue", { type: "hostile-fail", payload: { text: HOSTILE }, uniqueKey: HOSTILE }));
  ({ job: done } = await d.client.call("jobsEnqueue", { type: "hostile-ok", payload: { text: HOSTILE } }));
  ({ job: running } = await d.client.call("jobsEnqueue", { type: "hostile-running", payload: { text: HOSTILE } }));
  await waitFor(async () => (await d.client.call("jobsGet", { id: failed.id })).job.status === "failed", { what: "hostile-fail to fail" });
  await waitFor(async () => (await d.client.call("jobsGet", { id: done.id })).job.status === "complete", { what: "hostile-ok to complete" });
  await waitFor(async () => (await d.client.call("jobsGet", { id: running.id })).job.progressMessage !== null, { what: "hostile-running to report progress" });
  await d.client.call("schedulesSet", { name: "hostile", cron: "0 0 9 * * *", timezone: "Europe/Berlin", type: "noop", payload: { text: HOSTILE } });
});

afterAll(async () => {
  await d?.client.call("jobsCancel", { id: running.id }).catch(() => {});
  await d?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[], env?: NodeJS.ProcessEnv) => runCli(args, { home: d.home, env });

describe("every command prints user data without raw controls", () => {
  it("tasks: list, show (title, description, attachment name), add, edit, done", async () => {
    const show = await cli(["tasks", "show", String(task.id)]);
    expect(show.exitCode).toBe(0);
    expectSafe(show, "tasks show", { tabs: true });
    // Shown, escaped, not dropped: the title, the description's lines and the attachment.
    expect(show.stdout).toContain("A\\x1b]0;pwned\\x07B\\x1b[2JC");
    expect(show.stdout).toMatch(/#\d+ A\\x1b\]0;pwned.*\\u202eK.*\(12 bytes\)/);
    expect(show.stdout).toContain("\n  first line\n");
    expect(show.stdout).toContain("\n  last line");

    const list = await cli(["tasks", "list"]);
    expect(list.exitCode).toBe(0);
    expectSafe(list, "tasks list");
    // One row per task: the title's newline and line separator did not start new lines.
    expect(list.stdout.trimEnd().split("\n")).toHaveLength(2);

    for (const args of [
      ["tasks", "add", HOSTILE_ARG, "--description", HOSTILE_ARG],
      ["tasks", "edit", String(task.id), "--title", `${HOSTILE_ARG}!`],
      ["tasks", "done", String(task.id)],
    ]) {
      const r = await cli(args);
      expect(r.exitCode, `${args.join(" ")}: ${r.stderr}`).toBe(0);
      expectSafe(r, args.slice(0, 2).join(" "));
      expect(r.stdout).toContain("\\x1b[2J");
    }
  });

  it("jobs: list, show, status, why, logs, watch ID, enqueue with a unique key", async () => {
    // [command, whether what it prints includes the hostile text]
    for (const [args, echoes] of [
      [["jobs", "list"], true],
      [["jobs", "show", String(failed.id)], true],
      [["jobs", "show", String(done.id)], true],
      [["jobs", "show", String(running.id)], true],
      [["jobs", "status", String(failed.id)], true],
      [["jobs", "status", String(running.id)], true],
      [["jobs", "why", String(failed.id)], false],
      [["jobs", "why", String(running.id)], false],
      [["jobs", "logs", String(failed.id)], true],
      [["jobs", "logs", String(done.id)], true],
      [["jobs", "watch", String(failed.id)], true],
      [["jobs", "watch", String(done.id)], true],
    ] as const) {
      const r = await cli([...args]);
      expectSafe(r, args.join(" "));
      if (echoes) expect(r.stdout + r.stderr, args.join(" ")).toContain("\\x1b]0;pwned");
    }
    const enqueue = ["enqueue", "noop", "--in", "1h", "--unique", HOSTILE_ARG];
    expectSafe(await cli(enqueue), "enqueue --unique");
    const again = await cli(enqueue);
    expect(again.exitCode).toBe(0);
    expectSafe(again, "enqueue --unique");
    expect(again.stdout).toContain(`with key "A\\x1b]0;pwned`);
  });

  it("schedules list and set, digest preview, upload", async () => {
    const list = await cli(["schedules", "list"]);
    expect(list.exitCode).toBe(0);
    expectSafe(list, "schedules list");
    const set = await cli(["schedules", "set", "hostile2", "0 0 9 * * *", "--type", "noop", "--data", JSON.stringify({ text: HOSTILE })]);
    expect(set.exitCode, set.stderr).toBe(0);
    expectSafe(set, "schedules set");

    const digest = await cli(["digest", "preview"]);
    expect(digest.exitCode, digest.stderr).toBe(0);
    expectSafe(digest, "digest preview", { tabs: true });
    expect(digest.stdout).toContain("\\x1b]0;pwned");

    const file = join(dir, `${HOSTILE_ARG}.txt`);
    writeFileSync(file, "text");
    const upload = await cli(["upload", file]);
    expect(upload.exitCode, upload.stderr).toBe(0);
    expectSafe(upload, "upload");
    expect(upload.stdout).toContain("\\x1b]0;pwned");
  });

  it("errors echoed from the daemon and from the command line", async () => {
    for (const args of [
      ["tasks", "add", "x", "--board", HOSTILE_ARG],
      ["tasks", "add", "x", "--assignee", `${HOSTILE_ARG}@example.com`],
      ["tasks", "list", "--assignee", HOSTILE_ARG],
      ["enqueue", HOSTILE_ARG],
      ["schedules", "set", "bad", HOSTILE_ARG],
      ["schedules", "set", "bad", "0 0 9 * * *", "--tz", HOSTILE_ARG],
      ["upload", join(dir, `missing ${HOSTILE_ARG}`)],
      [HOSTILE_ARG],
      ["tasks", HOSTILE_ARG],
      ["tasks", "show", HOSTILE_ARG],
    ]) {
      const r = await cli(args);
      expect(r.exitCode, JSON.stringify(args)).not.toBe(0);
      expectSafe(r, JSON.stringify(args), { tabs: true }); // an error message is multi-line text
    }
    // Shown, escaped: commander's "unknown command" echoes what was typed.
    expect((await cli([HOSTILE_ARG])).stderr).toContain("A\\x1b]0;pwned\\x07B");
  });

  it("--json stays exact JSON: the same strings back, with no raw control on the wire", async () => {
    const json = async <T>(args: string[]): Promise<T> => {
      const r = await cli([...args, "--json"]);
      expect(r.exitCode, args.join(" ")).toBe(0);
      expect(rawControls(r.stdout.replace(/\n$/, "")), args.join(" ")).toEqual([]);
      return JSON.parse(r.stdout) as T;
    };
    const shown = await json<{ title: string; attachments: { name: string }[] }>(["tasks", "show", String(task.id)]);
    expect([shown.title, shown.attachments[0]!.name]).toEqual([`${HOSTILE_ARG}!`, HOSTILE_ARG]);
    const job = await json<Job>(["jobs", "show", String(failed.id)]);
    expect([job.error, job.uniqueKey, (job.payload as { text: string }).text]).toEqual([HOSTILE, HOSTILE, HOSTILE]);
    const list = await json<Job[]>(["jobs", "list"]);
    expect(list.find((j) => j.id === failed.id)!.error).toBe(HOSTILE);
  });
});

describe("in a terminal", () => {
  // A pty turns "\n" into "\r\n" and we draw with cursor moves: only user-written controls count.
  const OURS = /\u001b\[(?:\d{1,2}m|\?\d+[hl]|\d*[HKJGACD])|\r\n/g;

  it("with colour on, the only escape sequences are our own", async () => {
    for (const args of [["tasks", "list"], ["tasks", "show", String(task.id)], ["jobs", "list"], ["jobs", "show", String(failed.id)], ["schedules", "list"], ["jobs", "watch", String(failed.id)]]) {
      const { output } = await runTty(args, { home: d.home, cols: 200 });
      expect(output, args.join(" ")).toMatch(OUR_COLOURS); // colour really was on
      expect(rawControls(output.replace(OURS, ""), { tabs: true }), `${args.join(" ")}\n${JSON.stringify(output)}`).toEqual([]);
    }
  });

  it("the live dashboard shows hostile progress, errors, results and toasts escaped", async () => {
    // A toast needs a job to end while the dashboard's stream is open, which the screen does
    // not show: so another quick job is queued on each redraw until a toast appears.
    let lastEnqueue = 0;
    const { output } = await runTty(["jobs", "watch"], {
      home: d.home,
      cols: 160,
      rows: 40,
      until: (o) => {
        if (/✔ job \d+ \(hostile-ok\) complete: A\\x1b/.test(o)) return true;
        if (/MESSAGE/.test(o) && Date.now() - lastEnqueue > 250) {
          lastEnqueue = Date.now();
          void d.client.call("jobsEnqueue", { type: "hostile-ok", payload: { text: HOSTILE } });
        }
        return false;
      },
    });
    expect(output).toMatch(/hostile-running .*A\\x1b\]0;pwned/);
    expect(output).toMatch(/hostile-fail .*A\\x1b\]0;pwned/);
    expect(rawControls(output.replace(OURS, ""))).toEqual([]);
  });

  it("the spinner of jobs watch ID shows a hostile progress message escaped", async () => {
    const { output } = await runTty(["jobs", "watch", String(running.id)], { home: d.home, until: (o) => /42%/.test(o) && o.includes("\\x1b") });
    expect(rawControls(output.replace(OURS, ""))).toEqual([]);
  });
});
