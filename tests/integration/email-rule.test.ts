// One email rule (issue 17, item 8), end to end: the API refuses what the mailer could not
// send, naming the field, and the default sender given explicitly in config.json is accepted
// and used for a real message in the outbox.

import { request } from "node:http";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon({ config: { mailFrom: "teamwork@localhost" } });
});
afterAll(async () => {
  await d?.cleanup();
});

function post(path: string, body: unknown): Promise<{ status: number; json: { error?: { code: string; message: string } } }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: d.paths.socket, method: "POST", path, headers: { "content-type": "application/json" } }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString("utf8")));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

describe("one email rule through the API", () => {
  it("refuses a..b@x.com with a 400 that names the field, and changes nothing", async () => {
    const before = (await d.client.call("tasksList", {})).tasks.length;
    for (const assignee of ["a..b@x.com", ".ana@example.com", `${"a".repeat(65)}@example.com`]) {
      const r = await post("/tasks", { title: "mail me", assignee });
      expect(r.status, assignee).toBe(400);
      expect(r.json.error?.code).toBe("invalid_input");
      expect(r.json.error?.message).toMatch(/^assignee: ".*" is not a valid email address: /);
    }
    expect((await d.client.call("tasksList", {})).tasks.length).toBe(before);
  });

  it("runs with the default sender set in config.json, and mails from it", async () => {
    const { task } = await d.client.call("tasksAdd", { title: "mail me" });
    const r = await post(`/tasks/${task.id}/assign`, { assignee: "ana@localhost" });
    expect(r.status).toBeLessThan(300);
    const eml = await waitFor(() => readdirSync(d.paths.outbox).find((f) => f.endsWith(".eml")), { what: "an .eml in the outbox" });
    const raw = readFileSync(join(d.paths.outbox, eml), "utf8");
    expect(raw).toMatch(/^From: teamwork <teamwork@localhost>\r$/m);
    expect(raw).toMatch(/^To: ana@localhost\r$/m);
  });
});
