import { closeSync, existsSync, fstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
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

describe("RotatingLog when its file is moved or deleted", () => {
  it("a deleted log is opened again, and a failed rotation never closes a descriptor twice", () => {
    dir = mkdtempSync(join(tmpdir(), "tw-log-"));
    const path = join(dir, "daemon.log");
    const log = new RotatingLog(path, 100, 3);
    log.write("first line xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n");
    unlinkSync(path);
    log.write("second line, which rotates xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n");
    // The number the log had open, were it closed, would be the next one handed out.
    const other = openSync(join(dir, "other"), "w+");
    try {
      for (let i = 0; i < 20; i++) log.write(`line ${i} xxxxxxxxxxxxxxxxxxxxxxxxxxxx\n`);
      expect(fstatSync(other).isFile()).toBe(true); // still open: nobody closed it
      expect(readFileSync(join(dir, "other"), "utf8")).toBe(""); // and no log line went into it
      expect(readFileSync(path, "utf8")).toContain("line 19 ");
    } finally {
      closeSync(other);
      log.close();
    }
  });

  it("a log moved away (logrotate without copytruncate) is noticed and the path opened again", () => {
    dir = mkdtempSync(join(tmpdir(), "tw-log-"));
    const path = join(dir, "daemon.log");
    let now = 0;
    const log = new RotatingLog(path, 1_000_000, 3, () => now);
    log.write("before the move\n");
    renameSync(path, `${path}.moved`);
    now += 1000; // the next check is due
    log.write("after the move\n");
    log.close();
    expect(readFileSync(`${path}.moved`, "utf8")).toBe("before the move\n");
    expect(readFileSync(path, "utf8")).toBe("after the move\n");
  });

  it("a rotation that cannot rename is counted, not thrown, and writing goes on in the same file", () => {
    dir = mkdtempSync(join(tmpdir(), "tw-log-"));
    const path = join(dir, "daemon.log");
    mkdirSync(`${path}.3`); // in the way of the oldest file's removal
    writeFileSync(join(`${path}.3`, "keep"), "x");
    const log = new RotatingLog(path, 50, 3);
    for (let i = 0; i < 10; i++) log.write(`line ${i} xxxxxxxxxxxxxxxxxxxxxxxxxxxx\n`);
    log.close();
    expect(log.failureCount).toBeGreaterThan(0);
    const text = readFileSync(path, "utf8");
    expect(text).toContain("line 9 ");
    expect(text).toMatch(/log\.rotation_failed count=1 /);
  });
});
