// The task board through the real binary against one daemon: CRUD round trips with exact
// fields, filters, boards, the task event log, bad input (exit codes, nothing changed) and
// the human output.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { runCli, runJson } from "../helpers/cli.js";
import type { Board, Job, Task, TaskEvent } from "../../src/protocol/types.js";
import type { RouteInput } from "../../src/protocol/routes.js";

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon();
});
afterAll(async () => {
  await d?.cleanup();
});

interface ErrorJson {
  error: { code: string; message: string; hint?: string };
}

const TASK_FIELDS = ["assignee", "board", "completedAt", "createdAt", "description", "dueDate", "id", "status", "title", "updatedAt"];
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const cli = (args: string[], env?: NodeJS.ProcessEnv) => runCli(args, { home: d.home, env });
const json = <T>(args: string[]) => runJson<T>(args, { home: d.home });

/** Runs a command that must succeed with --json and returns its output. */
async function ok<T>(args: string[]): Promise<T> {
  const r = await json<T>(args);
  if (r.exitCode !== 0) throw new Error(`teamwork ${args.join(" ")} exited ${r.exitCode}: ${JSON.stringify(r.json)} ${r.stderr}`);
  return r.json;
}

const addTask = (title: string, ...flags: string[]) => ok<Task>(["tasks", "add", title, ...flags]);
/** Setup that is not what a test is about goes straight to the daemon (a CLI run costs ~0.2 s of CPU). */
const seed = async (input: RouteInput<"tasksAdd">) => (await d.client.call("tasksAdd", input)).task;
const events = async (taskId: number) => (await d.client.call("taskEventsList", { taskId })).events;

/** Everything the board holds, read straight from the daemon, and the assignment emails queued. */
async function snapshot() {
  const [{ tasks }, { boards }, { events: all }, { jobs }] = await Promise.all([
    d.client.call("tasksList", {}),
    d.client.call("boardsList", {}),
    d.client.call("taskEventsList", { limit: 10_000 }),
    d.client.call("jobsList", { type: "assignment-email", limit: 1_000 }),
  ]);
  return { tasks, boards, events: all, emails: jobs.map((j) => j.id) };
}

function expectTask(t: Task, want: Partial<Task>) {
  expect(Object.keys(t).sort()).toEqual(TASK_FIELDS);
  expect(t.id).toEqual(expect.any(Number));
  expect(t.createdAt).toMatch(ISO);
  expect(t.updatedAt).toMatch(ISO);
  expect(t).toMatchObject(want);
}

describe("boards", () => {
  it("a default board exists from the start", async () => {
    const boards = await ok<Board[]>(["boards", "list"]);
    expect(boards.find((b) => b.name === "default")).toEqual({ id: expect.any(Number), name: "default", createdAt: expect.stringMatching(ISO), taskCount: expect.any(Number) });
  });

  it("boards add creates a board that boards list shows", async () => {
    const board = await ok<Board>(["boards", "add", "web"]);
    expect(board).toEqual({ id: expect.any(Number), name: "web", createdAt: expect.stringMatching(ISO), taskCount: 0 });
    const boards = await ok<Board[]>(["boards", "list"]);
    expect(boards.map((b) => b.name)).toEqual(expect.arrayContaining(["default", "web"]));
    expect(boards.find((b) => b.name === "web")).toEqual(board);
  });

  it("a duplicate board is exit 1, conflict, and changes nothing", async () => {
    const before = await snapshot();
    const r = await json<ErrorJson>(["boards", "add", "web"]);
    expect(r.exitCode).toBe(1);
    expect(r.json.error.code).toBe("conflict");
    expect(r.json.error.message).toMatch(/board "web" already exists/);
    const dflt = await json<ErrorJson>(["boards", "add", "default"]);
    expect(dflt.exitCode).toBe(1);
    expect(await snapshot()).toEqual(before);
  });

  it("a bad board name is exit 2", async () => {
    const before = await snapshot();
    const names = ["has space", "x".repeat(65)];
    const results = await Promise.all(names.map((name) => json<ErrorJson>(["boards", "add", name])));
    results.forEach((r, i) => {
      expect(r.exitCode, names[i]).toBe(2);
      expect(r.json.error.code).toBe("invalid_input");
      expect(r.json.error.message).toMatch(/^name: /);
    });
    expect(await snapshot()).toEqual(before);
  });

  it("taskCount follows the tasks on a board", async () => {
    await d.client.call("boardsAdd", { name: "counted" });
    await seed({ title: "one", board: "counted" });
    await seed({ title: "two", board: "counted" });
    const boards = await ok<Board[]>(["boards", "list"]);
    expect(boards.find((b) => b.name === "counted")!.taskCount).toBe(2);
  });
});

describe("tasks: round trips", () => {
  it("add with every field, then show returns the same task and its history", async () => {
    const before = Date.now();
    const t = await addTask("Write spec", "--board", "web", "--assignee", "Ana@Example.com", "--due", "2026-12-01", "--description", "the long version", "--status", "doing");
    expectTask(t, {
      title: "Write spec",
      description: "the long version",
      board: "web",
      status: "doing",
      assignee: "ana@example.com",
      dueDate: "2026-12-01",
      completedAt: null,
    });
    expect(t.createdAt).toBe(t.updatedAt);
    expect(Date.parse(t.createdAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(t.createdAt)).toBeLessThanOrEqual(Date.now() + 1000);

    const shown = await ok<Task & { events: TaskEvent[]; attachments: unknown[] }>(["tasks", "show", String(t.id)]);
    const { events: history, attachments, ...task } = shown;
    expect(task).toEqual(t);
    expect(attachments).toEqual([]);
    expect(history.map((e) => e.type)).toEqual(["created", "assigned"]);
    expect(history[1]!.data).toEqual({ assignee: "ana@example.com", previous: null });
  });

  it("add with only a title uses the defaults", async () => {
    const t = await addTask("  Just a title  ");
    expectTask(t, { title: "Just a title", description: "", board: "default", status: "todo", assignee: null, dueDate: null, completedAt: null });
  });

  it("ids grow and list returns tasks in id order", async () => {
    const a = await seed({ title: "first of two" });
    const b = await seed({ title: "second of two" });
    expect(b.id).toBeGreaterThan(a.id);
    const list = await ok<Task[]>(["tasks", "list"]);
    const ids = list.map((t) => t.id);
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
    expect(list.find((t) => t.id === a.id)).toEqual(a);
    expect(list.find((t) => t.id === b.id)).toEqual(b);
  });

  it("edit changes exactly the given fields", async () => {
    const t = await addTask("Draft", "--due", "2026-06-01", "--assignee", "bo@example.org");
    const e = await ok<Task>(["tasks", "edit", String(t.id), "--title", "Final", "--status", "doing", "--due", "2026-07-15", "--description", "more"]);
    expectTask(e, { id: t.id, title: "Final", status: "doing", dueDate: "2026-07-15", description: "more", board: "default", assignee: "bo@example.org", createdAt: t.createdAt, completedAt: null });
    expect(Date.parse(e.updatedAt)).toBeGreaterThanOrEqual(Date.parse(t.updatedAt));

    const moved = await ok<Task>(["tasks", "edit", String(t.id), "--board", "web"]);
    expect(moved).toMatchObject({ board: "web", title: "Final" });

    const cleared = await ok<Task>(["tasks", "edit", String(t.id), "--clear-due", "--unassign"]);
    expect(cleared).toMatchObject({ dueDate: null, assignee: null, title: "Final", board: "web" });

    expect((await d.client.call("tasksGet", { id: t.id })).task).toEqual(cleared);
  });

  it("done marks the task done and sets completedAt; moving it back clears it", async () => {
    const t = await addTask("Finish me");
    const done = await ok<Task>(["tasks", "done", String(t.id)]);
    expectTask(done, { id: t.id, status: "done", title: "Finish me" });
    expect(done.completedAt).toMatch(ISO);
    const again = await ok<Task>(["tasks", "done", String(t.id)]);
    expect(again.completedAt).toBe(done.completedAt);
    const reopened = await ok<Task>(["tasks", "edit", String(t.id), "--status", "todo"]);
    expect(reopened).toMatchObject({ status: "todo", completedAt: null });
  });

  it("assign sets the assignee, lower-cased, and queues the assignment email", async () => {
    const t = await addTask("Needs an owner");
    const { job, ...a } = await ok<Task & { job: Job | null }>(["tasks", "assign", String(t.id), "Cy@Example.NET"]);
    expectTask(a, { id: t.id, assignee: "cy@example.net", title: "Needs an owner", status: "todo" });
    expect(job).toMatchObject({ type: "assignment-email", payload: { taskId: t.id, assignee: "cy@example.net" } });
  });

  it("rm deletes the task and returns it; it is gone afterwards", async () => {
    const t = await addTask("Delete me", "--board", "web");
    const removed = await ok<Task>(["tasks", "rm", String(t.id)]);
    expect(removed).toEqual(t);
    const [show, list, again] = await Promise.all([json<ErrorJson>(["tasks", "show", String(t.id)]), ok<Task[]>(["tasks", "list"]), json<ErrorJson>(["tasks", "rm", String(t.id)])]);
    expect(show.exitCode).toBe(4);
    expect(show.json.error).toMatchObject({ code: "not_found", message: `task ${t.id} not found` });
    expect(list.some((x) => x.id === t.id)).toBe(false);
    expect(again.exitCode).toBe(4);
  });
});

describe("tasks list filters", () => {
  let ids: { a: number; b: number; c: number };
  beforeAll(async () => {
    await d.client.call("boardsAdd", { name: "filters" });
    const a = await seed({ title: "filter a", board: "filters", assignee: "fa@example.com" });
    const b = await seed({ title: "filter b", board: "filters", assignee: "fb@example.com", status: "doing" });
    const c = await seed({ title: "filter c", board: "filters" });
    await d.client.call("tasksDone", { id: c.id });
    ids = { a: a.id, b: b.id, c: c.id };
  });

  const listIds = async (...flags: string[]) => (await ok<Task[]>(["tasks", "list", ...flags])).map((t) => t.id);

  it("--board", async () => {
    const r = await ok<Task[]>(["tasks", "list", "--board", "filters"]);
    expect(r.map((t) => t.id)).toEqual([ids.a, ids.b, ids.c]);
    expect(r.every((t) => t.board === "filters")).toBe(true);
  });

  it("--status", async () => {
    const [done, doing] = await Promise.all([ok<Task[]>(["tasks", "list", "--status", "done"]), listIds("--board", "filters", "--status", "doing")]);
    expect(done.length).toBeGreaterThan(0);
    expect(done.every((t) => t.status === "done")).toBe(true);
    expect(done.map((t) => t.id)).toContain(ids.c);
    expect(done.map((t) => t.id)).not.toContain(ids.a);
    expect(doing).toEqual([ids.b]);
  });

  it("--assignee, matched case-insensitively", async () => {
    const [a, b] = await Promise.all([listIds("--assignee", "fa@example.com"), listIds("--assignee", "FB@Example.com")]);
    expect(a).toEqual([ids.a]);
    expect(b).toEqual([ids.b]);
  });

  it("filters combine; --limit caps the list", async () => {
    const [combined, none, limited] = await Promise.all([
      listIds("--board", "filters", "--status", "todo", "--assignee", "fa@example.com"),
      listIds("--board", "filters", "--assignee", "fb@example.com", "--status", "todo"),
      listIds("--board", "filters", "--limit", "2"),
    ]);
    expect(combined).toEqual([ids.a]);
    expect(none).toEqual([]);
    expect(limited).toEqual([ids.a, ids.b]);
  });
});

describe("the task event log", () => {
  it("records created, updated, completed, assigned, deleted in order", async () => {
    const t = await addTask("Logged", "--board", "web");
    await ok(["tasks", "edit", String(t.id), "--title", "Logged twice"]);
    await d.client.call("tasksDone", { id: t.id });
    await d.client.call("tasksAssign", { id: t.id, assignee: "dee@example.com" });
    await ok(["tasks", "rm", String(t.id)]);

    const log = await events(t.id);
    expect(log.map((e) => e.type)).toEqual(["created", "updated", "completed", "assigned", "deleted"]);
    const logIds = log.map((e) => e.id);
    expect(logIds).toEqual([...logIds].sort((x, y) => x - y));
    for (const e of log) {
      expect(e).toMatchObject({ taskId: t.id, board: "web" });
      expect(e.createdAt).toMatch(ISO);
    }
    expect(log[0]).toMatchObject({ title: "Logged", data: { status: "todo" } });
    expect(log[1]).toMatchObject({ title: "Logged twice", data: { changes: { title: { from: "Logged", to: "Logged twice" } } } });
    expect(log[3]!.data).toEqual({ assignee: "dee@example.com", previous: null });
    expect(log[4]).toMatchObject({ title: "Logged twice", data: { status: "done" } });
    // The history outlives the task.
    expect((await d.client.call("taskEventsList", { board: "web" })).events.filter((e) => e.taskId === t.id)).toHaveLength(5);
  });

  it("an edit that changes nothing records nothing", async () => {
    const t = await seed({ title: "Same" });
    const before = await events(t.id);
    const r = await ok<Task>(["tasks", "edit", String(t.id), "--title", "Same"]);
    expect(r).toEqual(t);
    expect(await events(t.id)).toEqual(before);
  });
});

describe("bad input: exit code, clear message, nothing changed", () => {
  let task: Task;

  const cases: { name: string; args: () => string[]; exit: number; code: string; message: RegExp }[] = [
    { name: "non-numeric id (show)", args: () => ["tasks", "show", "abc"], exit: 2, code: "invalid_input", message: /"abc" is not an id/ },
    { name: "unknown id (show)", args: () => ["tasks", "show", "99999"], exit: 4, code: "not_found", message: /task 99999 not found/ },
    { name: "unknown id (assign)", args: () => ["tasks", "assign", "99999", "a@example.com"], exit: 4, code: "not_found", message: /task #?99999 not found/ },
    { name: "unknown board (add)", args: () => ["tasks", "add", "orphan", "--board", "nope"], exit: 4, code: "not_found", message: /board "nope" not found/ },
    { name: "unknown board (edit)", args: () => ["tasks", "edit", String(task.id), "--board", "nope", "--title", "moved"], exit: 4, code: "not_found", message: /board "nope" not found/ },
    { name: "unknown board (list)", args: () => ["tasks", "list", "--board", "nope"], exit: 4, code: "not_found", message: /board "nope" not found/ },
    { name: "bad date (add)", args: () => ["tasks", "add", "dated", "--due", "2026-02-30", "--assignee", "ok@example.com"], exit: 2, code: "invalid_input", message: /dueDate: "2026-02-30" is not a real date/ },
    { name: "bad date (edit)", args: () => ["tasks", "edit", String(task.id), "--due", "2026-02-30", "--title", "changed"], exit: 2, code: "invalid_input", message: /dueDate: "2026-02-30" is not a real date/ },
    { name: "bad email (add)", args: () => ["tasks", "add", "mailed", "--assignee", "not-an-email"], exit: 2, code: "invalid_input", message: /assignee: "not-an-email" is not a valid email address/ },
    { name: "bad email (assign)", args: () => ["tasks", "assign", String(task.id), "ana@"], exit: 2, code: "invalid_input", message: /assignee: "ana@" is not a valid email address/ },
    { name: "empty title (add)", args: () => ["tasks", "add", ""], exit: 2, code: "invalid_input", message: /title: must not be empty/ },
    { name: "empty title (edit)", args: () => ["tasks", "edit", String(task.id), "--title", " "], exit: 2, code: "invalid_input", message: /title: must not be empty/ },
    { name: "edit with nothing to change", args: () => ["tasks", "edit", String(task.id)], exit: 2, code: "invalid_input", message: /nothing to change/ },
  ];

  // The cases run a few at a time (each is a CLI process); the store is compared before and after all of them.
  let before: Awaited<ReturnType<typeof snapshot>>;
  let after: Awaited<ReturnType<typeof snapshot>>;
  const results = new Map<string, { exitCode: number; json: ErrorJson; stderr: string }>();
  beforeAll(async () => {
    task = await seed({ title: "Untouchable", board: "web", assignee: "keep@example.com", dueDate: "2026-10-10" });
    before = await snapshot();
    const queue = [...cases];
    await Promise.all(
      [1, 2, 3].map(async () => {
        for (let c = queue.shift(); c; c = queue.shift()) results.set(c.name, await json<ErrorJson>(c.args()));
      }),
    );
    after = await snapshot();
  });

  for (const c of cases) {
    it(`${c.name}: exit ${c.exit}, ${c.code}`, () => {
      const r = results.get(c.name)!;
      expect(r.exitCode).toBe(c.exit);
      expect(r.json.error.code).toBe(c.code);
      expect(r.json.error.message).toMatch(c.message);
    });
  }

  it("nothing changed: same task count, the task untouched, no new boards or events", () => {
    expect(after.tasks).toHaveLength(before.tasks.length);
    expect(after.tasks.find((t) => t.id === task.id)).toEqual(task);
    expect(after).toEqual(before);
  });

  it("errors in human mode go to stderr with the same exit code", async () => {
    const r = await cli(["tasks", "show", "99999"]);
    expect(r.exitCode).toBe(4);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^error: task 99999 not found$/m);
    const e = await cli(["tasks", "edit", String(task.id)]);
    expect(e.exitCode).toBe(2);
    expect(e.stderr).toMatch(/error: nothing to change/);
    expect(e.stderr).toMatch(/hint: pass at least one of --title/);
  });

  it("the daemon still answers and the task is as it was", async () => {
    expect((await d.client.call("health", {})).ok).toBe(true);
    expect((await d.client.call("tasksGet", { id: task.id })).task).toEqual(task);
  });
});

describe("human output (NO_COLOR, not a TTY)", () => {
  // eslint-disable-next-line no-control-regex
  const ANSI = /\u001b\[/;

  it("add, list, show, edit, done, assign, rm, boards speak plainly", async () => {
    const add = await cli(["tasks", "add", "Human task", "--board", "web", "--assignee", "hu@example.com", "--due", "2026-09-09"]);
    expect(add.exitCode).toBe(0);
    const m = /^Created task (\d+) on board web: Human task\n$/.exec(add.stdout);
    expect(m).not.toBeNull();
    const id = m![1]!;

    const [list, show] = await Promise.all([cli(["tasks", "list", "--board", "web"]), cli(["tasks", "show", id])]);
    expect(list.exitCode).toBe(0);
    const lines = list.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^\s*ID\s+STATUS\s+TITLE\s+BOARD\s+ASSIGNEE\s+DUE$/);
    expect(lines.find((l) => l.includes("Human task"))).toMatch(new RegExp(`^\\s*${id}\\s+todo\\s+Human task\\s+web\\s+hu@example.com\\s+2026-09-09$`));

    expect(show.stdout).toContain(`#${id} Human task`);
    expect(show.stdout).toMatch(/board:\s+web/);
    expect(show.stdout).toMatch(/assignee:\s+hu@example.com/);
    expect(show.stdout).toMatch(/due:\s+2026-09-09/);
    expect(show.stdout).toMatch(/history:[\s\S]*created[\s\S]*assigned to hu@example.com/);

    const edit = await cli(["tasks", "edit", id, "--title", "Human task 2"]);
    expect(edit.stdout).toBe(`Updated task ${id}: Human task 2\n`);
    const done = await cli(["tasks", "done", id]);
    expect(done.stdout).toBe(`Task ${id} done: Human task 2\n`);
    const assign = await cli(["tasks", "assign", id, "other@example.com"]);
    expect(assign.stdout).toMatch(new RegExp(`^Assigned task ${id} to other@example.com; notification queued \\(job \\d+\\)\n$`));
    const [boards, addBoard, rm] = await Promise.all([cli(["boards", "list"]), cli(["boards", "add", "human"]), cli(["tasks", "rm", id])]);
    expect(boards.stdout).toMatch(/^BOARD\s+TASKS\s+CREATED$/m);
    expect(boards.stdout).toMatch(/^web\s+\d+\s+\d{4}-/m);
    expect(addBoard.stdout).toBe("Created board human\n");
    expect(rm.stdout).toBe(`Deleted task ${id}: Human task 2\n`);
    const empty = await cli(["tasks", "list", "--board", "human"]);
    expect(empty.stdout).toBe("no tasks\n");

    for (const r of [add, list, show, edit, done, assign, boards, addBoard, rm, empty]) {
      expect(r.exitCode).toBe(0);
      expect(r.stdout).not.toMatch(ANSI);
      expect(r.stderr).not.toMatch(ANSI);
    }
  });

  it("--json prints JSON only, on one line per result", async () => {
    const r = await cli(["tasks", "list", "--json"]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trimEnd().split("\n")).toHaveLength(1);
    expect(Array.isArray(JSON.parse(r.stdout))).toBe(true);
    expect(r.stdout).not.toMatch(ANSI);
  });
});
