import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { RotatingLog } from "../../src/lib/rotating-log.js";

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("RotatingLog", () => {
  it("rotates past the size limit, keeps three old files, and drops the oldest", () => {
    dir = mkdtempSync(join(tmpdir(), "tw-log-"));
    const path = join(dir, "daemon.log");
    const log = new RotatingLog(path, 100, 3);
    for (let i = 0; i < 50; i++) log.write(`line ${String(i).padStart(3, "0")} xxxxxxxxxx\n`); // 20 bytes each
    log.close();
    for (const f of [path, `${path}.1`, `${path}.2`, `${path}.3`]) {
      expect(existsSync(f)).toBe(true);
      expect(statSync(f).size).toBeLessThanOrEqual(100);
    }
    expect(existsSync(`${path}.4`)).toBe(false);
    expect(readFileSync(path, "utf8").trim().split("\n").at(-1)).toBe("line 049 xxxxxxxxxx");
    const all = [`${path}.3`, `${path}.2`, `${path}.1`, path].map((f) => readFileSync(f, "utf8")).join("");
    expect(all.trim().split("\n")).toHaveLength(20); // the newest 20 lines survive, in order
    expect(all.startsWith("line 030")).toBe(true);
  });

  it("appends to an existing file and counts its size", () => {
    dir = mkdtempSync(join(tmpdir(), "tw-log-"));
    const path = join(dir, "daemon.log");
    new RotatingLog(path, 1000).close();
    const a = new RotatingLog(path, 40);
    a.write("0123456789012345678901234567890\n");
    a.close();
    const b = new RotatingLog(path, 36);
    b.write("next\n");
    b.close();
    expect(readFileSync(`${path}.1`, "utf8")).toBe("0123456789012345678901234567890\n");
    expect(readFileSync(path, "utf8")).toBe("next\n");
  });
});
