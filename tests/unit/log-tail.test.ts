import { appendFileSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { logTail } from "../../src/client/autostart.js";

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("logTail", () => {
  it("starts at a byte offset, whatever multi-byte text comes before it", () => {
    dir = mkdtempSync(join(tmpdir(), "tw-tail-"));
    const file = join(dir, "daemon.log");
    writeFileSync(file, `${"é日本🎉".repeat(50)}\nan older start\n`);
    const since = statSync(file).size;
    appendFileSync(file, "config.invalid 🎉 concurrency must be 1 to 64\nexit 2\n");
    expect(logTail(file, 20, since)).toBe("config.invalid 🎉 concurrency must be 1 to 64\nexit 2");
    expect(logTail(file, 1, since)).toBe("exit 2");
  });
});
