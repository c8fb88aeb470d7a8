// Protocol fuzz: 3,000 generated requests against one real daemon, from a seeded generator.
// Almost all are malformed: bad JSON, wrong types, unknown fields (unicode, NUL, __proto__),
// deep nesting, huge bodies, unknown routes and job types, path tricks (encoded slashes and
// dots, `//`, very long paths, absolute-form targets), wrong and unknown methods, bad
// headers, garbage bytes, and connections that stall, half-close or vanish mid-body. Each
// one must get a 4xx (or, where the client itself hung up, a clean close) within a bound:
// never a 5xx, never a hang. Valid requests are mixed in, and must keep getting right answers
// while 16 slow-loris connections sit open. At the end the daemon has the same pid, answers,
// logged no internal failure, and stored data is unchanged: task, board and job counts,
// jobs, schedules, queue state, task events, and a checksum of `tasks list --json`.
//
// The seed is printed; FUZZ_SEED=<seed> replays a run and FUZZ_CASE=<n> runs only case n
// of it. A failure lists, per kind of case, the first offending case with its seed and index.

import { createHash } from "node:crypto";
import { setMaxListeners } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { runCli } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";
import { allJobs } from "../helpers/jobs.js";
import { httpRequest, prng, rawExchange, seedFrom, type RawExchange, type RawReply } from "./support.js";

const SEED = seedFrom("FUZZ_SEED", 0xf022_2026);
const ONLY = process.env.FUZZ_CASE === undefined || process.env.FUZZ_CASE === "" ? null : Number(process.env.FUZZ_CASE);
const COUNT = 3_000;
const IN_FLIGHT = 8;
/** Nothing the daemon is asked may take longer than this to be answered (or closed). */
const BOUND_MS = 8_000;
const MAX_BODY = 8 * 1024 * 1024;

let d: TestDaemon;
/** Ids of the seeded data. */
const ids = { task: 0, webTask: 0, heldJob: 0, doneJob: 0 };

beforeAll(async () => {
  d = await startDaemon({ config: { concurrency: 2 } });
  await d.client.call("boardsAdd", { name: "web" });
  ids.task = (await d.client.call("tasksAdd", { title: "keep me" })).task.id;
  ids.webTask = (await d.client.call("tasksAdd", { title: "second", board: "web", assignee: "ana@example.com", dueDate: "2026-12-24" })).task.id;
  ids.heldJob = (await d.client.call("jobsEnqueue", { type: "noop", delayMs: 3_600_000, uniqueKey: "fuzz-hold" })).job.id;
  ids.doneJob = (await d.client.call("jobsEnqueue", { type: "noop", payload: { seeded: true } })).job.id;
  await waitFor(async () => (await d.client.call("jobsGet", { id: ids.doneJob })).job.status === "complete", { what: "the seeded job" });
});
afterAll(async () => {
  await d?.cleanup();
});

// ---------------------------------------------------------------------------------------
// Cases

type Expect =
  /** A 4xx reply is required. */
  | "4xx"
  /** A 4xx reply, or the connection closed without a reply (the client stalled or hung up). */
  | "4xx-or-close"
  /** A valid request: the check returns null when the reply is right, else what is wrong. */
  | ((r: RawReply) => string | null);

type Case =
  | { kind: "http"; name: string; method: string; path: string; headers?: Record<string, string>; body?: string | Buffer; expect: Expect }
  | { kind: "raw"; name: string; parts: (string | Buffer)[]; gapMs?: number; finish: "end" | "destroy" | "keep"; expect: "4xx" | "4xx-or-close" | "none" };

const JSON_TYPE = { "content-type": "application/json" };

function generator(rand: () => number) {
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const chance = (p: number) => rand() < p;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  /** Text with the characters parsers trip on: NUL, controls, quotes, escapes, RTL, emoji, lone surrogates. */
  const weird = (n: number) =>
    Array.from({ length: n }, () => pick(["a", "\u0000", "\u0007", "\n", "\r", '"', "\\", "%", "/", "..", "é", "ß", "\u202e", "\ufeff", "💥", "\ud800", "\udfff", "<", "'", " ", "\t", "$", "{", "}"])).join("");
  const deep = (depth: number, leaf: unknown = 1): string => {
    const open = Array.from({ length: depth }, () => (chance(0.5) ? "[" : '{"k":'));
    return open.join("") + JSON.stringify(leaf) + open.reverse().map((o) => (o === "[" ? "]" : "}")).join("");
  };
  const badJson = () =>
    pick([
      "{",
      "}",
      '{"title": "x"',
      '{"title": "x",}',
      "{'title': 'x'}",
      '{"title": NaN}',
      '{"title": undefined}',
      '{"title": "x"}{"title": "y"}',
      '{"title" "x"}',
      "\ufeff{}",
      "nul",
      "tru",
      '"unterminated',
      '{"a":1e999999999}x',
      '{"\\ud800": 1',
      "[1,2,",
      "{{}}",
      "/* comment */ {}",
      "0x10",
    ]);
  const nonObject = () => pick(["null", "42", "-1", "3.14", '"a string"', "true", "false", "[]", '[{"title":"x"}]', '"{}"']);
  /** A field name that no route knows. */
  const unknownField = () => pick(["zz", "titel", "__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "id ", " title", "TITLE", "tit\u0000le", weird(6), "x".repeat(300), "💥", ""]);
  /** A body that is JSON but guaranteed invalid for the route, built from a valid base. */
  const poison = (base: Record<string, unknown>): string => {
    const b = { ...base };
    switch (int(3)) {
      case 0:
        return JSON.stringify({ ...b, [unknownField()]: pick([1, null, weird(5), [], {}, true]) });
      case 1: {
        const keys = Object.keys(b);
        if (keys.length === 0) return JSON.stringify({ [unknownField()]: 1 });
        const k = pick(keys);
        const wrong = [123, -1, 1.5, null, true, false, [], {}, [weird(3)], { $gt: "" }, "", "   ", weird(20), "x".repeat(70_000)];
        // Keep only values that are surely wrong for this field.
        let v: unknown = pick(wrong);
        if (typeof b[k] === "string" && typeof v === "string" && v.trim() !== "" && v.length < 600) v = 7;
        if (typeof b[k] === "number" && typeof v === "number" && Number.isInteger(v) && v > 0) v = -5;
        // Any JSON is a valid payload: a payload is poisoned with a field next to it instead.
        if (k === "payload") return JSON.stringify({ ...b, [unknownField()]: b[k] });
        if (k === "description") v = pick([7, true, [], {}]);
        return JSON.stringify({ ...b, [k]: v });
      }
      default:
        return JSON.stringify({ ...b, [unknownField()]: JSON.parse(deep(5 + int(40))) });
    }
  };

  // Routes that write, with a valid body to poison. (None of these may ever be sent valid.)
  const writeRoutes = (): { method: string; path: string; base: Record<string, unknown> }[] => [
    { method: "POST", path: "/tasks", base: { title: "fuzzed", board: "web" } },
    { method: "POST", path: "/boards", base: { name: "fuzzed" } },
    { method: "POST", path: "/jobs", base: { type: "noop", payload: { a: 1 }, delayMs: 3_600_000 } },
    { method: "POST", path: "/jobs/batch", base: { jobs: [{ type: "noop", delayMs: 3_600_000 }] } },
    { method: "PATCH", path: `/tasks/${ids.task}`, base: { title: "renamed" } },
    { method: "POST", path: `/tasks/${ids.task}/assign`, base: { assignee: "bo@example.com" } },
    { method: "POST", path: "/queue/concurrency", base: { concurrency: 4 } },
    { method: "POST", path: "/queue/pause", base: {} },
    { method: "POST", path: "/queue/resume", base: {} },
    { method: "POST", path: "/uploads", base: { path: "/etc/hostname" } },
    { method: "POST", path: "/schedules", base: { name: "fuzzed", cron: "0 0 * * * *", type: "noop" } },
    { method: "POST", path: "/daemon/stop", base: {} },
    { method: "POST", path: `/tasks/${ids.task}/done`, base: {} },
    { method: "POST", path: `/jobs/${ids.heldJob}/cancel`, base: {} },
    { method: "POST", path: `/jobs/${ids.doneJob}/retry`, base: {} },
    { method: "POST", path: "/jobs/prune", base: { olderThan: "1s" } },
    { method: "POST", path: "/schedules/cleanup/pause", base: {} },
    { method: "POST", path: "/schedules/digest/run", base: {} },
  ];

  // A request for a route that exists, with input that cannot be right.
  const semantic = (): Case => {
    const variants: (() => Case)[] = [
      () => ({ kind: "http", name: "unknown job type", method: "POST", path: "/jobs", headers: JSON_TYPE, body: JSON.stringify({ type: pick(["nope", "reprot", "noop\u0000", "nöop", "no op", "../noop", "noop;rm -rf", "NOOP", "x".repeat(100), weird(8)]), delayMs: 3_600_000 }), expect: "4xx" }),
      () => ({ kind: "http", name: "bad job type syntax", method: "POST", path: "/jobs", headers: JSON_TYPE, body: JSON.stringify({ type: pick(["", " ", "x".repeat(101), 5, null, ["noop"], { type: "noop" }]) }), expect: "4xx" }),
      () => ({ kind: "http", name: "batch with one bad spec", method: "POST", path: "/jobs/batch", headers: JSON_TYPE, body: JSON.stringify({ jobs: [{ type: "noop", delayMs: 3_600_000 }, pick([{ type: "nope" }, { type: "noop", maxAttempts: 0 }, { type: "noop", zz: 1 }, "noop", null]), { type: "noop", delayMs: 3_600_000 }] }), expect: "4xx" }),
      () => ({ kind: "http", name: "batch size", method: "POST", path: "/jobs/batch", headers: JSON_TYPE, body: JSON.stringify({ jobs: pick([[], "x", null, {}]) }), expect: "4xx" }),
      () => ({ kind: "http", name: "invalid payload", method: "POST", path: "/jobs", headers: JSON_TYPE, body: JSON.stringify(pick([{ type: "validated", payload: { n: "2" } }, { type: "thumbnail", payload: { source: "../../etc/passwd" } }, { type: "thumbnail", payload: { source: "a.png", maxSize: 1 } }, { type: "report", payload: { board: "no-such-board" } }, { type: "report", payload: { board: "web", format: "pdf" } }, { type: "notify", payload: { taskId: ids.task, to: ["not-an-email"] } }, { type: "notify", payload: { taskId: ids.task, to: [] } }, { type: "assignment-email", payload: {} }])), expect: "4xx" }),
      () => ({ kind: "http", name: "job spec out of range", method: "POST", path: "/jobs", headers: JSON_TYPE, body: JSON.stringify({ type: "noop", ...pick([{ maxAttempts: 0 }, { maxAttempts: 101 }, { maxAttempts: "3" }, { priority: 1001 }, { priority: 1.5 }, { delayMs: -1 }, { delayMs: 1e15 }, { runAt: "yesterday" }, { runAt: "2026-02-30T09:00:00Z" }, { runAt: "9999-01-01T00:00:00Z" }, { runAt: "2026-12-01T09:00:00Z", delayMs: 5 }, { uniqueKey: "" }, { uniqueKey: "k".repeat(201) }, { payload: "x".repeat(600 * 1024) }]) }), expect: "4xx" }),
      () => ({ kind: "http", name: "task on a missing board", method: "POST", path: "/tasks", headers: JSON_TYPE, body: JSON.stringify({ title: "lost", board: pick(["no-such-board", "Web", "web2"]) }), expect: "4xx" }),
      () => ({ kind: "http", name: "task field rules", method: "POST", path: "/tasks", headers: JSON_TYPE, body: JSON.stringify({ title: "x", ...pick([{ dueDate: "2026-02-30" }, { dueDate: "tomorrow" }, { assignee: "ana" }, { assignee: "a..b@x.com" }, { status: "open" }, { board: "../web" }, { board: "web/../default" }, { board: "a b" }, { board: ".hidden" }, { description: "d".repeat(20_001) }]) }), expect: "4xx" }),
      () => ({ kind: "http", name: "empty patch", method: "PATCH", path: `/tasks/${ids.task}`, headers: JSON_TYPE, body: pick(["{}", " ", ""]), expect: "4xx" }),
      () => ({ kind: "http", name: "missing task", method: pick(["POST", "DELETE", "PATCH", "GET"]), path: `/tasks/${pick([999_999, 2 ** 53 - 1])}${pick(["", "/done"])}`, headers: JSON_TYPE, body: '{"title":"ghost"}', expect: "4xx" }),
      () => ({ kind: "http", name: "missing job", method: "POST", path: `/jobs/${pick([999_999, 2 ** 53 - 1])}/${pick(["cancel", "retry"])}`, headers: JSON_TYPE, expect: "4xx" }),
      () => ({ kind: "http", name: "wrong job state", method: "POST", path: pick([`/jobs/${ids.doneJob}/cancel`, `/jobs/${ids.heldJob}/retry`]), headers: JSON_TYPE, expect: "4xx" }),
      () => ({ kind: "http", name: "duplicate board", method: "POST", path: "/boards", headers: JSON_TYPE, body: JSON.stringify({ name: pick(["web", "default"]) }), expect: "4xx" }),
      () => ({ kind: "http", name: "bad upload", method: "POST", path: "/uploads", headers: JSON_TYPE, body: JSON.stringify(pick([{ path: "relative.png" }, { path: "../../etc/passwd" }, { path: "/nonexistent/x.png" }, { path: "/" }, { path: "/dev/null" }, { path: "/etc/hostname", taskId: 999_999 }, { path: "" }, { path: "/tmp/\u0000x" }])), expect: "4xx" }),
      () => ({ kind: "http", name: "bad schedule", method: "POST", path: "/schedules", headers: JSON_TYPE, body: JSON.stringify({ name: pick(["../x", "a b", "", "x".repeat(65)]), cron: "* * * * * *" }), expect: "4xx" }),
      () => ({ kind: "http", name: "bad cron", method: "POST", path: "/schedules", headers: JSON_TYPE, body: JSON.stringify({ name: "fuzzed", cron: pick(["* * *", "nope", "99 * * * * *", "", "* * * * * * * *"]), type: "noop" }), expect: "4xx" }),
      () => ({ kind: "http", name: "unknown schedule", method: "POST", path: `/schedules/${pick(["nope", "no-such"])}/${pick(["pause", "resume", "run"])}`, headers: JSON_TYPE, expect: "4xx" }),
      () => ({ kind: "http", name: "bad prune", method: "POST", path: "/jobs/prune", headers: JSON_TYPE, body: JSON.stringify({ olderThan: pick(["abc", "", "10 parsecs", "-5m", "1h30", "x".repeat(41), 5]) }), expect: "4xx" }),
      () => ({ kind: "http", name: "bad concurrency", method: "POST", path: "/queue/concurrency", headers: JSON_TYPE, body: JSON.stringify({ concurrency: pick([0, 65, -1, 1.5, "3", null]) }), expect: "4xx" }),
      () => ({ kind: "http", name: "pause an unknown type", method: "POST", path: "/queue/pause", headers: JSON_TYPE, body: JSON.stringify({ type: pick(["nope", "", "noop\u0000"]) }), expect: "4xx" }),
      () => ({ kind: "http", name: "bad query", method: "GET", path: pick(["/jobs?limit=abc", "/jobs?limit=0", "/jobs?limit=10001", "/jobs?limit=1.5", "/jobs?limit=-5", "/jobs?limit=1&limit=2", "/jobs?status=runing", "/jobs?beforeId=0", "/jobs?zz=1", "/tasks?board=../web", "/tasks?status=open", "/tasks?assignee=nobody", "/tasks?limit=1e3", "/task-events?afterId=x", "/task-events?taskId=0", "/stats?since=forever", `/jobs/${ids.heldJob}?id=1`, "/health?x=1", "/digest/preview?x=1", "/tasks?__proto__=1", "/tasks?board=" + "w".repeat(65)]), expect: "4xx" }),
      () => ({ kind: "http", name: "bad id", method: pick(["GET", "DELETE", "POST", "PATCH"]), path: `/tasks/${pick(["0", "-1", "abc", "1.5", "1e3", "0x1", "99999999999999999999", "%00", "%20", "1%20", "+1", "１", "NaN", "Infinity", "1;2"])}`, headers: JSON_TYPE, body: '{"title":"x"}', expect: "4xx" }),
      () => ({ kind: "http", name: "id repeated in body", method: "POST", path: `/tasks/${ids.task}/done`, headers: JSON_TYPE, body: JSON.stringify({ id: ids.task }), expect: "4xx" }),
      () => ({ kind: "http", name: "query on a POST", method: "POST", path: pick(["/tasks?board=web", "/jobs?x", `/tasks/${ids.task}/done?now=1`, "/daemon/stop?force=1"]), headers: JSON_TYPE, body: JSON.stringify({ title: "sneaky", type: "noop" }).replace(',"type":"noop"', ""), expect: "4xx" }),
    ];
    return pick(variants)();
  };

  const pathTricks = [
    "/tasks/..%2f..",
    "/tasks/..%2F..%2Fetc%2Fpasswd",
    "/tasks/1%2Fdone",
    "/tasks/1%2f..%2f..%2fdaemon%2fstop",
    "//jobs",
    "//",
    "///daemon/stop",
    "/tasks/%ff",
    "/tasks/%",
    "/tasks/%zz",
    "/tasks/%00",
    "/jobs/%2e%2e/%2e%2e/nope",
    "/schedules/..%2F..%2Fetc/run",
    "/schedules/%2e%2e/pause",
    "/tasks/" + "1".repeat(5000),
    "/" + "a/".repeat(2500),
    "/tasks/" + "%41".repeat(2000),
    "/api/../../../etc/passwd",
    "/tasks;jsessionid=1",
    "/tasks/1/done/",
    "/TASKS",
    "/tasks//1",
    "/tasks/1/../../nope",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/uploads/..%2f..%2fteamwork.db",
    "/jobs/1/events/..",
  ];

  const http = (name: string, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = JSON_TYPE, expect: Expect = "4xx"): Case => ({ kind: "http", name, method, path, headers, body, expect });

  const valid = (): Case => {
    const v: (() => Case)[] = [
      () => http("valid: health", "GET", "/health", undefined, {}, (r) => (r.status === 200 && JSON.parse(r.body).pid === d.pid ? null : `health: ${r.status} ${r.body}`)),
      () => http("valid: get task", "GET", `/tasks/${ids.task}`, undefined, {}, (r) => (r.status === 200 && JSON.parse(r.body).task.title === "keep me" ? null : `task: ${r.status} ${r.body.slice(0, 200)}`)),
      () => http("valid: list board", "GET", "/tasks?board=web", undefined, {}, (r) => (r.status === 200 && JSON.parse(r.body).tasks.length === 1 ? null : `board: ${r.status} ${r.body.slice(0, 200)}`)),
      () => http("valid: held job", "GET", `/jobs/${ids.heldJob}`, undefined, {}, (r) => (r.status === 200 && JSON.parse(r.body).job.status === "pending" ? null : `job: ${r.status} ${r.body.slice(0, 200)}`)),
      () => http("valid: boards", "GET", "/boards", undefined, {}, (r) => (r.status === 200 && JSON.parse(r.body).boards.length === 2 ? null : `boards: ${r.status} ${r.body.slice(0, 200)}`)),
      () => http("valid: jobs list", "GET", "/jobs?status=pending&type=noop", undefined, {}, (r) => (r.status === 200 && JSON.parse(r.body).jobs.some((j: { id: number }) => j.id === ids.heldJob) ? null : `jobs: ${r.status} ${r.body.slice(0, 200)}`)),
      // Writes that change nothing, by the protocol's own rules.
      () => http("valid: same title", "PATCH", `/tasks/${ids.task}`, JSON.stringify({ title: "keep me" }), JSON_TYPE, (r) => (r.status === 200 && JSON.parse(r.body).task.title === "keep me" ? null : `patch: ${r.status} ${r.body.slice(0, 200)}`)),
      () =>
        http("valid: unique key", "POST", "/jobs", JSON.stringify({ type: "noop", uniqueKey: "fuzz-hold", delayMs: 3_600_000 }), JSON_TYPE, (r) => {
          const b = JSON.parse(r.body);
          return r.status === 200 && b.created === false && b.job.id === ids.heldJob ? null : `unique: ${r.status} ${r.body.slice(0, 200)}`;
        }),
      () => http("valid: status", "GET", "/daemon/status", undefined, {}, (r) => (r.status === 200 && JSON.parse(r.body).pid === d.pid ? null : `status: ${r.status}`)),
    ];
    return pick(v)();
  };

  const malformedHttp = (): Case => {
    const r = rand();
    const route = pick(writeRoutes());
    if (r < 0.12) return http("bad JSON", route.method, route.path, badJson());
    if (r < 0.2) return http("not an object", route.method, route.path, nonObject());
    if (r < 0.42) return http("poisoned body", route.method, route.path, poison(route.base));
    if (r < 0.47) {
      const depth = pick([50, 500, 2_000, 5_000, 20_000, 100_000]);
      return pick([
        () => http(`deep body (${depth})`, route.method, route.path, deep(depth)),
        () => http(`deep unknown field (${depth})`, "POST", "/tasks", `{"title":"x","zz":${deep(depth)}}`),
        () => http(`deep payload, unknown type (${depth})`, "POST", "/jobs", `{"type":"nope","payload":${deep(depth)}}`),
        () => http(`deep schedule payload, bad name (${depth})`, "POST", "/schedules", `{"name":"../x","cron":"* * * * * *","type":"noop","payload":${deep(depth)}}`),
        () => http(`deep title (${depth})`, "POST", "/tasks", `{"title":${deep(depth)}}`),
      ])();
    }
    if (r < 0.53) {
      // Right body, wrong content type: 415 before the body is even read.
      const type = pick(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "application/jsonp", "text/json", "json", "*/*", "application/json\u0000"]);
      if (type.includes("\u0000")) return { kind: "raw", name: "NUL in a header", parts: [`POST /tasks HTTP/1.1\r\nhost: x\r\ncontent-type: ${type}\r\ncontent-length: 16\r\n\r\n{"title":"nul"}`], finish: "keep", expect: "4xx-or-close" };
      return http("wrong content type", route.method, route.path, JSON.stringify(route.base).replace("fuzzed", "typed"), { "content-type": type });
    }
    if (r < 0.6) {
      const method = pick(["PUT", "DELETE", "HEAD", "OPTIONS", "TRACE", "PATCH", "POST", "PURGE", "PROPFIND", "SEARCH", "LOCK", "MKCOL", "REPORT", "LINK"]);
      const path = pick(["/health", "/jobs", "/boards", "/daemon/stop", "/jobs/batch", "/tasks", "/daemon/status", "/queue", "/events", "/metrics", `/tasks/${ids.task}/done`]);
      // A method the route does not take (GET-only paths get a write method, and so on).
      const ok = (m: string, p: string) =>
        (m === "POST" && ["/jobs", "/boards", "/daemon/stop", "/jobs/batch", "/tasks", `/tasks/${ids.task}/done`].includes(p)) || (m === "DELETE" && p.startsWith("/tasks/"));
      if (ok(method, path)) return http("wrong method", "PUT", path, "{}");
      return http("wrong method", method, path, method === "HEAD" || method === "TRACE" ? undefined : '{"zz":1}');
    }
    if (r < 0.68) {
      const path = pick(pathTricks);
      // A GET may land on a real route after dot-segment normalisation; every other method
      // carries a body that is wrong for any route.
      return http("path trick", pick(["POST", "PATCH", "DELETE", "GET"]) === "GET" && !/%2e|\.\./i.test(path) ? "GET" : "POST", path, '{"zz":1,"title":"x"}');
    }
    if (r < 0.74) return http("unknown route", pick(["GET", "POST"]), pick(["/nope", "/", "/api/v1/tasks", "/tasks/1/nope", "/jobs/1/events/x", "/graphql", "/.env", "/admin", "/jobs/batch/1", "/debug/pprof", "/%F0%9F%92%A5", "/tasks/" + ids.task + "/assign/extra"]), '{"zz":1}');
    if (r < 0.8) {
      // Query strings: repeated, unknown, unicode, NUL, huge.
      const q = pick(["limit=1&limit=1", "zz=1", "status=%00", "status=running%00", "type=%F0%9F%92%A5", "limit=" + "9".repeat(40), "a=" + "b".repeat(4000), "&&&=&", "limit", "type=noop&type=noop", "beforeId=%ff", "__proto__[x]=1", "limit[]=1"]);
      return http("bad query", "GET", `${pick(["/jobs", "/tasks", "/task-events", "/boards", "/health"])}?${q}`, undefined, {});
    }
    if (r < 0.88) {
      // Unicode, NUL and control characters in names and values, always with one wrong field.
      const text = weird(1 + int(40));
      return pick([
        () => http("unicode field name", route.method, route.path, JSON.stringify({ ...route.base, [text]: text })),
        () => http("unicode board", "POST", "/tasks", JSON.stringify({ title: text || "x", board: text + "/" })),
        () => http("unicode job type", "POST", "/jobs", JSON.stringify({ type: "noop" + text + "\u0000", delayMs: 3_600_000 })),
        () => http("unicode email", "POST", `/tasks/${ids.task}/assign`, JSON.stringify({ assignee: `${text}@@example.com` })),
        () => http("raw bytes body", route.method, route.path, Buffer.concat([Buffer.from('{"title":"'), bytes(1 + int(200)), Buffer.from('"')])),
        () => http("latin-1 body", route.method, route.path, Buffer.from(`{"title":"caf\xe9","zz":1}`, "latin1")),
        () => http("utf-16 body", route.method, route.path, Buffer.from(JSON.stringify({ ...route.base, zz: 1 }), "utf16le")),
      ])();
    }
    return semantic();
  };

  const rawCase = (): Case => {
    const r = rand();
    const host = "host: localhost\r\n";
    if (r < 0.2) return { kind: "raw", name: "garbage bytes", parts: [bytes(1 + int(400))], finish: "end", expect: "4xx-or-close" };
    if (r < 0.3) {
      const line = pick(["GET /tasks HTTP/1.1\r\nHo", "POST /tasks HTTP/1.1\r\n", "GET /heal", "PATCH", "GET / HTTP/1.1\r\nx-long: " + "a".repeat(2000)]);
      return { kind: "raw", name: "half a request, then half-close", parts: [line], finish: "end", expect: "4xx-or-close" };
    }
    if (r < 0.42) {
      const route = pick(writeRoutes());
      const body = JSON.stringify(route.base);
      const cut = 1 + int(Math.max(1, body.length - 1));
      return { kind: "raw", name: `body cut short, then ${r < 0.36 ? "half-close" : "vanish"}`, parts: [`${route.method} ${route.path} HTTP/1.1\r\n${host}content-type: application/json\r\ncontent-length: ${body.length + 10}\r\n\r\n`, body.slice(0, cut)], finish: r < 0.36 ? "end" : "destroy", expect: r < 0.36 ? "4xx-or-close" : "none" };
    }
    if (r < 0.55) {
      // A complete but malformed request, dribbled in over a second or so.
      const body = '{"title":"slow","zz":1}';
      const text = `POST /tasks HTTP/1.1\r\n${host}content-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
      const n = 4 + int(8);
      const parts = Array.from({ length: n }, (_, i) => text.slice(Math.floor((i * text.length) / n), Math.floor(((i + 1) * text.length) / n)));
      return { kind: "raw", name: "slow malformed request", parts, gapMs: 20 + int(80), finish: "keep", expect: "4xx" };
    }
    if (r < 0.65) {
      const bad = pick([
        `POST /tasks HTTP/1.1\r\n${host}content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n`,
        `POST /tasks HTTP/1.1\r\n${host}content-length: abc\r\n\r\n`,
        `POST /tasks HTTP/1.1\r\n${host}content-length: -1\r\n\r\n`,
        `POST /tasks HTTP/1.1\r\n${host}content-length: 1\r\ncontent-length: 2\r\n\r\n{}`,
        `POST /tasks HTTP/1.1\r\n${host}transfer-encoding: gzip, chunked, identity\r\n\r\n`,
        `GET /health HTTP/1.1\r\n${host}bad header\r\n\r\n`,
        `GET /health HTTP/1.1\r\n${host}x: a\rb\r\n\r\n`,
        `GET /health HTTP/9.9\r\n${host}\r\n`,
        `FOO /health HTTP/1.1\r\n${host}\r\n`,
        `GET /t\u00e2ches HTTP/1.1\r\n${host}\r\n`,
        `GET /tasks/\u0000 HTTP/1.1\r\n${host}\r\n`,
        `GET /${"a".repeat(20_000)} HTTP/1.1\r\n${host}\r\n`,
        `GET /health HTTP/1.1\r\n${host}x-h: ${"v".repeat(20_000)}\r\n\r\n`,
        `POST /tasks HTTP/1.1\r\n${host}transfer-encoding: chunked\r\ncontent-type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
        `POST /tasks HTTP/1.1\r\n${host}content-type: application/json\r\ncontent-length: ${MAX_BODY + 1}\r\n\r\n{"title":`,
        `GET /tasks/1 HTTP/1.1\r\n${host}\r\n`.replace("GET /tasks/1", "GET http://evil.example/tasks/0"),
        `OPTIONS * HTTP/1.1\r\n${host}\r\n`,
        `CONNECT localhost:80 HTTP/1.1\r\n${host}\r\n`,
        `GET /events HTTP/1.1\r\n${host}connection: upgrade\r\nupgrade: websocket\r\nx-zz: 1\r\n\r\n`.replace("/events", "/nope"),
      ]);
      // CONNECT and Upgrade go to events the daemon does not serve: a close is a fine answer.
      return { kind: "raw", name: "bad framing or headers", parts: [bad], finish: "keep", expect: /^(CONNECT|GET \/nope)/.test(bad) ? "4xx-or-close" : "4xx" };
    }
    if (r < 0.78) {
      // Two requests in one write: the first is refused and closes the connection.
      const first = pick([`GET /nope HTTP/1.1\r\n${host}\r\n`, `POST /tasks HTTP/1.1\r\n${host}content-type: text/plain\r\ncontent-length: 5\r\n\r\nhello`, `POST /tasks HTTP/1.1\r\n${host}content-type: application/json\r\ncontent-length: 8\r\n\r\n{"zz":1}`]);
      return { kind: "raw", name: "pipelined after an error", parts: [first + `POST /tasks HTTP/1.1\r\n${host}content-type: application/json\r\ncontent-length: 9\r\n\r\n{"zz":12}`], finish: "keep", expect: "4xx" };
    }
    if (r < 0.88) {
      // Declares a body over the limit and sends none of it: refused at once, not read.
      return { kind: "raw", name: "declared body over the limit", parts: [`POST /jobs HTTP/1.1\r\n${host}content-type: application/json\r\ncontent-length: ${MAX_BODY + 1 + int(1e9)}\r\n\r\n`], finish: "keep", expect: "4xx" };
    }
    return { kind: "raw", name: "expect 100-continue, then nothing", parts: [`POST /tasks HTTP/1.1\r\n${host}content-type: application/json\r\nexpect: 100-continue\r\ncontent-length: 20\r\n\r\n`], finish: "end", expect: "4xx-or-close" };
  };

  let n = 0;
  return (): Case => {
    n++;
    // A few huge bodies at fixed places: they are slow to send, so not left to chance.
    if (n % 500 === 250) {
      const huge = pick([
        (): Case => http("huge body (9 MiB)", "POST", "/tasks", JSON.stringify({ title: "x".repeat(MAX_BODY + 1024) })),
        (): Case => http("huge chunked body", "POST", "/tasks", Buffer.alloc(MAX_BODY + 4096, 0x20), { "content-type": "application/json", "transfer-encoding": "chunked" }),
        (): Case => http("large title (7 MiB)", "POST", "/tasks", JSON.stringify({ title: "x".repeat(7 * 1024 * 1024) })),
        (): Case => http("payload over 512 KiB", "POST", "/jobs", JSON.stringify({ type: "noop", payload: { blob: "x".repeat(600 * 1024) } })),
      ]);
      return huge();
    }
    const r = rand();
    if (r < 0.08) return valid();
    if (r < 0.2) return rawCase();
    return malformedHttp();
  };
}

// ---------------------------------------------------------------------------------------
// Running them

function describeCase(c: Case): string {
  const show = (s: string | Buffer | undefined) => (s === undefined ? "" : JSON.stringify(String(s).slice(0, 160)));
  if (c.kind === "http") return `${c.method} ${c.path.slice(0, 120)}${c.path.length > 120 ? `… (${c.path.length} chars)` : ""} ${JSON.stringify(c.headers ?? {})} body ${show(c.body)}${c.body && c.body.length > 160 ? ` (${c.body.length} bytes)` : ""}`;
  return `raw ${c.finish} ${c.parts.map((p) => show(p)).join(" + ")}`;
}

async function runCase(c: Case): Promise<string | null> {
  if (c.kind === "http") {
    const r = await httpRequest(d.paths.socket, c, BOUND_MS);
    if (r.timedOut) return `no answer within ${BOUND_MS} ms`;
    if (typeof c.expect === "function") return r.status === null ? `no reply (${r.error})` : c.expect(r);
    if (r.status === null) {
      // The daemon may answer early (413, 415) and close while a large body is still being
      // sent: the client then sees EPIPE/ECONNRESET instead of the reply. Anything else is
      // a connection the daemon dropped without answering.
      if (c.body && c.body.length > 1_000_000 && /EPIPE|ECONNRESET/.test(r.error ?? "")) return null;
      return c.expect === "4xx-or-close" ? null : `connection closed without a reply (${r.error})`;
    }
    if (r.status >= 400 && r.status < 500) {
      if (c.method !== "HEAD" && !/^\{"error":\{"code":"[a-z_]+","message":/.test(r.body)) return `${r.status} without a JSON error body: ${r.body.slice(0, 200)}`;
      return null;
    }
    return `got ${r.status}: ${r.body.slice(0, 300)}`;
  }
  const x: RawExchange = await rawExchange(d.paths.socket, c.parts, { gapMs: c.gapMs, finish: c.finish, timeoutMs: BOUND_MS });
  if (c.expect === "none") return null;
  if (x.timedOut) return `no answer within ${BOUND_MS} ms (got ${JSON.stringify(x.data.slice(0, 100))})`;
  if (x.status === null) return c.expect === "4xx-or-close" && x.data === "" ? null : `no HTTP reply: ${JSON.stringify(x.data.slice(0, 200))}`;
  if (x.status >= 400 && x.status < 500) return null;
  return `got ${x.status}: ${JSON.stringify(x.data.slice(0, 300))}`;
}

async function snapshot(): Promise<{ hash: string; summary: string }> {
  const cli = await runCli(["tasks", "list", "--json"], { home: d.home });
  expect(cli.exitCode).toBe(0);
  const status = await d.client.call("daemonStatus", {});
  const jobs = await allJobs(d.client);
  const { boards } = await d.client.call("boardsList", {});
  const { schedules } = await d.client.call("schedulesList", {});
  const queue = await d.client.call("queueGet", {});
  const { events } = await d.client.call("taskEventsList", { limit: 10_000 });
  const { upload } = await d.client.call("uploadsGet", { id: 1 }).catch(() => ({ upload: null }));
  const parts = {
    tasksJson: createHash("sha256").update(cli.stdout).digest("hex"),
    counts: status.counts,
    paused: status.paused,
    concurrency: status.concurrency,
    jobs: jobs.map((j) => [j.id, j.type, j.status, j.attempts, j.maxAttempts, j.payload, j.uniqueKey, j.runAt, j.result]),
    boards: boards.map((b) => [b.id, b.name, b.taskCount]),
    schedules: schedules.map((s) => JSON.stringify(s, (k, v) => (/^(next|last|updated)/i.test(k) ? undefined : v))),
    queue: JSON.stringify(queue, (k, v) => (/running|slots|busy/i.test(k) ? undefined : v)),
    events: events.map((e) => [e.id, e.type, e.taskId]),
    upload,
  };
  return { hash: createHash("sha256").update(JSON.stringify(parts)).digest("hex"), summary: JSON.stringify({ counts: parts.counts, tasksJson: parts.tasksJson.slice(0, 12), events: events.length, jobs: jobs.length }) };
}

describe(`protocol fuzz (seed ${SEED})`, () => {
  it(`answers ${ONLY === null ? COUNT : 1} generated requests with 4xx (valid ones correctly), and changes nothing`, async () => {
    console.log(`fuzz seed ${SEED} (replay with FUZZ_SEED=${SEED}, one case with FUZZ_CASE=<n>)`);
    const pid = d.pid;
    const before = await snapshot();
    const next = generator(prng(SEED));
    const cases = Array.from({ length: COUNT }, () => next());

    // Slow-loris connections, open for the whole run: one header byte at a time.
    const dropLoris = new AbortController();
    setMaxListeners(32, dropLoris.signal);
    const loris = Array.from({ length: 16 }, () => {
      const parts = Array.from("GET /health HTTP/1.1\r\nx-slow: " + "s".repeat(400));
      return rawExchange(d.paths.socket, parts, { gapMs: 250, finish: "keep", timeoutMs: 120_000, signal: dropLoris.signal });
    });

    const failures = new Map<string, { index: number; description: string; problem: string; count: number }>();
    const kinds = new Map<string, number>();
    const started = Date.now();
    const todo = ONLY === null ? cases.map((c, i) => [i, c] as const) : [[ONLY, cases[ONLY]!] as const];
    let cursor = 0;
    const worker = async () => {
      while (cursor < todo.length) {
        const [i, c] = todo[cursor++]!;
        kinds.set(c.name, (kinds.get(c.name) ?? 0) + 1);
        const problem = await runCase(c);
        if (problem) {
          const f = failures.get(c.name);
          if (f) f.count++;
          else failures.set(c.name, { index: i, description: describeCase(c), problem, count: 1 });
        }
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    const elapsed = Date.now() - started;

    // The slow connections are still being fed (their headers are not complete, so the
    // daemon owes them nothing yet): drop them. None of them got anything but a 4xx.
    dropLoris.abort();
    const lorisReplies = (await Promise.all(loris)).map((x) => x.status).filter((s) => s !== null && (s < 400 || s >= 500));

    const problems = [...failures.entries()].map(([name, f]) => `${name} ×${f.count}: case ${f.index} (FUZZ_SEED=${SEED} FUZZ_CASE=${f.index}): ${f.description}\n    → ${f.problem}`);
    console.log(`fuzz seed ${SEED}: ${todo.length} cases in ${elapsed} ms; kinds: ${[...kinds.entries()].map(([k, v]) => `${k} ${v}`).join(", ")}`);

    // The daemon is the same process, answers, and logged no internal failure.
    expect(d.pid).toBe(pid);
    expect(d.process.exitCode).toBeNull();
    expect((await d.client.call("health", {})).pid).toBe(pid);
    const after = await snapshot();
    const internal = d
      .log()
      .split("\n")
      .filter((l) => /request\.failed|request\.crashed|daemon\.uncaught_exception|daemon\.unhandled_rejection|store\.write_failed/.test(l))
      .map((l) => l.slice(0, 300));

    // Soft: one run reports every kind of failure, not just the first.
    expect.soft(problems, `seed ${SEED}: requests not refused as they should be`).toEqual([]);
    expect.soft(lorisReplies, `seed ${SEED}: replies to the slow connections`).toEqual([]);
    expect.soft(internal, `seed ${SEED}: internal failures in the daemon's log`).toEqual([]);
    expect.soft(after.summary, `seed ${SEED}: stored data changed`).toBe(before.summary);
    expect.soft(after.hash, `seed ${SEED}: stored data changed`).toBe(before.hash);
  }, 120_000);
});

// What the generator found, pinned down as a plain case. (The other finding, `__proto__` in
// a query string silently vanishing, is pinned in integration/api.test.ts.)
describe("protocol fuzz findings", () => {
  it("refuses a deeply nested job payload with 400 at any depth (not 500 from a stack overflow)", async () => {
    // Once JSON.stringify on the parsed payload overflowed the stack past a few thousand
    // levels, and the RangeError became a 500; payloads now nest at most 64 levels.
    const nest = (n: number) => "[".repeat(n) + "]".repeat(n);
    const replies: string[] = [];
    for (const depth of [1_000, 10_000, 100_000]) {
      for (const [path, body] of [
        ["/jobs", `{"type":"noop","payload":${nest(depth)}}`],
        ["/jobs/batch", `{"jobs":[{"type":"noop","payload":${nest(depth)}}]}`],
        ["/schedules", `{"name":"deep","cron":"0 0 * * * *","type":"noop","payload":${nest(depth)}}`],
      ] as const) {
        const r = await httpRequest(d.paths.socket, { method: "POST", path, headers: JSON_TYPE, body });
        replies.push(`${path} depth ${depth}: ${r.status} ${/nests deeper than 64 levels/.test(r.body) ? "" : r.body.slice(0, 120)}`);
      }
    }
    expect(replies.filter((r) => !/: 400 $/.test(r))).toEqual([]);
    expect((await d.client.call("health", {})).ok).toBe(true);
    expect((await d.client.call("schedulesList", {})).schedules.map((s) => s.name)).not.toContain("deep");
  });
});
