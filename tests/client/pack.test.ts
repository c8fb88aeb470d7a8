// The package as users get it: `npm pack`, unpacked into a temporary project's
// node_modules/teamwork, and used by its name, from TypeScript (checked with tsc, then run)
// and from plain JavaScript, against a real daemon; and examples/ run from that project.
//
// The tarball is unpacked as npm would place it, rather than `npm install`ed: npm would fetch
// the package's dependencies from the registry (its cache does not hold them offline), so
// they are linked from this checkout's node_modules instead (node_modules/teamwork/node_modules).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile, spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startDaemon, tempHome, type TestDaemon } from "../helpers/daemon.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");

let d: TestDaemon;
let dir: string;
let app: string;

beforeAll(async () => {
  d = await startDaemon();
  dir = mkdtempSync(join(tmpdir(), "tw-pack-"));
  await run("npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", dir], { cwd: ROOT });
  const tgz = readdirSync(dir).find((f) => f.endsWith(".tgz"));
  if (!tgz) throw new Error(`npm pack wrote no tarball in ${dir}`);
  app = join(dir, "app");
  mkdirSync(join(app, "node_modules"), { recursive: true });
  await run("tar", ["--no-same-owner", "-xzf", join(dir, tgz), "-C", join(app, "node_modules")]);
  renameSync(join(app, "node_modules", "package"), join(app, "node_modules", "teamwork"));
  symlinkSync(join(ROOT, "node_modules"), join(app, "node_modules", "teamwork", "node_modules"));
  symlinkSync(join(ROOT, "node_modules", "@types"), join(app, "node_modules", "@types"));
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "tw-pack-app", private: true, type: "module" }));
}, 60_000);

afterAll(async () => {
  await d?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs a script of the app with TEAMWORK_HOME set to the test daemon's home; its stdout's JSON. */
async function runApp(file: string, env: NodeJS.ProcessEnv = {}): Promise<unknown> {
  const { stdout } = await run(process.execPath, [file], { cwd: app, env: { ...process.env, TEAMWORK_HOME: d.home, ...env } });
  return JSON.parse(stdout);
}

const TS_APP = `
import { connect, defineJob, JobFailedError, TeamworkError, type ResultOf } from "teamwork";

// The application's own job types, by declaration merging.
declare module "teamwork" {
  interface JobTypes {
    noop: { payload: { n?: number }; result: { ok: true; echo: { n?: number } | null } };
    permanent: { payload: Record<string, never>; result: never };
  }
}

// The handler side reads the same map: a handler that returned something else would not compile.
export const noop = defineJob({ type: "noop", run: (p) => ({ ok: true as const, echo: p }) });

function typeChecks(tw: Awaited<ReturnType<typeof connect>>) {
  // @ts-expect-error: "pdf" is not a report format
  void tw.jobs.enqueue("report", { board: "x", format: "pdf" });
  // @ts-expect-error: noop's n is a number
  void tw.jobs.enqueue("noop", { n: "two" });
  // @ts-expect-error: the handler must return the map's result
  defineJob({ type: "noop", run: () => ({ ok: false }) });
}
void typeChecks;

const tw = await connect();
const { job } = await tw.jobs.enqueue("noop", { n: 2 });
const result: ResultOf<"noop"> = await tw.jobs.wait(job);
const batch = await tw.jobs.enqueueMany([{ type: "noop", payload: { n: 3 } }, { type: "noop" }]);
const second = await tw.jobs.wait(batch[0].job, { timeout: 10_000 });
let failed: string | null = null;
try {
  await tw.jobs.wait((await tw.jobs.enqueue("permanent")).job);
} catch (err) {
  if (err instanceof JobFailedError) failed = \`\${err.code} \${err.lastError?.message}\`;
}
let missing: string | null = null;
try {
  await tw.jobs.get(424242);
} catch (err) {
  if (err instanceof TeamworkError) missing = \`\${err.code} \${err.status}\`;
}
tw.close();
console.log(JSON.stringify({ result, second, failed, missing }));
`;

const JS_APP = `
import { connect, JobFailedError, TeamworkError } from "teamwork";

const out = {};
const tw = await connect();
const { job } = await tw.jobs.enqueue("noop", { n: 1 });
out.result = await tw.jobs.wait(job.id);

const batch = await tw.jobs.enqueueMany([{ type: "noop", payload: { n: 2 } }, { type: "noop", payload: { n: 3 } }]);
out.batch = await Promise.all(batch.map((b) => tw.jobs.wait(b.job)));

const slow = (await tw.jobs.enqueue("slow-progress", { steps: 2, stepMs: 10 })).job;
out.watched = [];
for await (const e of tw.jobs.watch(slow)) out.watched.push(e.type === "job:status" ? e.data.job.status : e.type);

const forever = (await tw.jobs.enqueue("until-cancelled")).job;
out.timeout = await tw.jobs.wait(forever, { timeout: 100 }).catch((e) => [e instanceof TeamworkError, e.code]);
const controller = new AbortController();
const waiting = tw.jobs.wait(forever, { signal: controller.signal });
controller.abort();
out.aborted = await waiting.catch((e) => [e instanceof TeamworkError, e.code]);
const cancelled = tw.jobs.wait(forever);
await tw.jobs.cancel(forever.id);
out.cancelled = await cancelled.catch((e) => [e instanceof JobFailedError, e.code, e.job.status]);

out.notFound = await tw.jobs.cancel(424242).catch((e) => [e.code, e.status]);
out.invalid = await tw.jobs.enqueue("noop", {}, { priority: 5000 }).catch((e) => [e.code, e.status, e.message]);
out.unreachable = await connect({ home: process.env.OTHER_HOME }).catch((e) => [e.code, e.status, e.hint]);
tw.close();
console.log(JSON.stringify(out));
`;

describe("the packed package", () => {
  it("is used by its name from TypeScript: tsc checks the job types, and the compiled app runs", async () => {
    mkdirSync(join(app, "ts"), { recursive: true });
    writeFileSync(join(app, "ts", "app.ts"), TS_APP);
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { target: "es2022", module: "nodenext", moduleResolution: "nodenext", strict: true, types: ["node"], outDir: "build", rootDir: "ts" }, include: ["ts"] }),
    );
    const tsc = await run(process.execPath, [TSC, "-p", "tsconfig.json"], { cwd: app }).catch((err: { stdout: string }) => err);
    expect(tsc.stdout).toBe("");
    expect(await runApp(join(app, "build", "app.js"))).toEqual({
      result: { ok: true, echo: { n: 2 } },
      second: { ok: true, echo: { n: 3 } },
      failed: "job_failed this will never work",
      missing: "not_found 404",
    });
  });

  it("is used by its name from plain JavaScript: enqueue, batch, watch, wait with timeout and abort, cancel, errors", async () => {
    writeFileSync(join(app, "app.mjs"), JS_APP);
    const other = tempHome();
    try {
      expect(await runApp(join(app, "app.mjs"), { OTHER_HOME: other })).toEqual({
        result: { ok: true, echo: { n: 1 } },
        batch: [
          { ok: true, echo: { n: 2 } },
          { ok: true, echo: { n: 3 } },
        ],
        watched: expect.arrayContaining(["job:progress", "complete"]) as unknown,
        timeout: [true, "timeout"],
        aborted: [true, "aborted"],
        cancelled: [true, "job_failed", "cancelled"],
        notFound: ["not_found", 404],
        invalid: ["invalid_input", 400, "priority: must be between -1000 and 1000, got 5000"],
        unreachable: ["daemon_unreachable", 503, "start it with `teamwork daemon start` (auto-start is off)"],
      });
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it("runs the examples of docs/client.md marked tested", async () => {
    const doc = readFileSync(join(ROOT, "docs", "client.md"), "utf8");
    const blocks = [...doc.matchAll(/^\*tested\*\n\n```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    for (const [i, code] of blocks.entries()) {
      const file = join(app, `doc-${i}.mjs`);
      writeFileSync(file, code);
      const { stdout } = await run(process.execPath, [file], { cwd: app, env: { ...process.env, TEAMWORK_HOME: d.home } }).catch((err: Error & { stderr?: string }) => {
        throw new Error(`docs/client.md, tested block ${i + 1}: ${err.message}\n${err.stderr ?? ""}`);
      });
      expect(stdout).not.toBe("");
    }
  });

  it("runs examples/report-server: an HTTP endpoint that queues a report and streams its progress", async () => {
    cpSync(join(ROOT, "examples"), join(app, "examples"), { recursive: true });
    const server = spawn(process.execPath, [join(app, "examples", "report-server", "server.mjs")], { cwd: app, env: { ...process.env, TEAMWORK_HOME: d.home } });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = "";
        server.stdout.on("data", (c: Buffer) => {
          out += c.toString();
          if (out.includes("\n")) resolve((JSON.parse(out.split("\n")[0]!) as { listening: number }).listening);
        });
        server.on("exit", (code) => reject(new Error(`the example exited with ${code}`)));
      });
      const post = (path: string) =>
        new Promise<{ status: number; lines: Record<string, unknown>[] }>((resolve, reject) => {
          const req = request({ host: "127.0.0.1", port, path, method: "POST" }, (res) => {
            let body = "";
            res.on("data", (c: Buffer) => (body += c.toString()));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, lines: body.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>) }));
          });
          req.on("error", reject);
          req.end();
        });
      const ok = await post("/reports?board=default&format=md");
      expect(ok.status).toBe(202);
      expect(ok.lines[0]).toMatchObject({ event: "queued" });
      // Then the job's events as they come (a quick report may be complete when the watch opens).
      expect(ok.lines.slice(1, -1).every((l) => l.event === "progress" || l.event === "status")).toBe(true);
      expect(ok.lines.at(-2)).toEqual({ event: "status", status: "complete", percent: 100 });
      const done = ok.lines.at(-1) as { event: string; artifact: string; download: string };
      expect(done).toMatchObject({ event: "done", artifact: expect.stringMatching(/\.md$/) as unknown, download: expect.stringMatching(/^\/jobs\/\d+\/report$/) as unknown });
      // The report itself, streamed by the example from teamwork's database.
      const report = await new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
        request({ host: "127.0.0.1", port, path: done.download }, (res) => {
          let body = "";
          res.on("data", (c: Buffer) => (body += c.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), body }));
        })
          .on("error", reject)
          .end();
      });
      expect(report).toMatchObject({ status: 200, type: "text/markdown; charset=utf-8", body: expect.stringMatching(/^# Board report: default\n/) as unknown });
      const bad = await post("/reports?board=no-such-board");
      expect(bad).toEqual({ status: 404, lines: [{ error: { code: "not_found", message: 'board "no-such-board" not found' } }] });
    } finally {
      server.kill("SIGTERM");
    }
  });
});
