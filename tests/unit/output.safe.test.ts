import { describe, expect, it } from "vitest";
import { guardRendered, safe, toJson } from "../../src/output/safe.js";
import { outputFailureMessage } from "../../src/output/output.js";

describe("safe", () => {
  it("shows every control a terminal acts on as a visible escape", () => {
    expect(safe("a\u001b[2Jb")).toBe("a\\x1b[2Jb");
    expect(safe("\u001b]0;title\u0007")).toBe("\\x1b]0;title\\x07");
    expect(safe("a\rb\bc\u007fd\u0000")).toBe("a\\rb\\x08c\\x7fd\\x00");
    expect(safe("\u009b31m \u0085")).toBe("\\x9b31m \\x85");
    expect(safe("\u202eevil\u202c \u2066x\u2069 \u200f\u061c")).toBe("\\u202eevil\\u202c \\u2066x\\u2069 \\u200f\\u061c");
    expect(safe("one\ntwo\tthree\u2028four")).toBe("one\\ntwo\\tthree\\u2028four");
  });

  it("keeps newlines and tabs in multi-line text, and reads CRLF as a newline", () => {
    expect(safe("one\r\ntwo\n\tthree\r\u001b[H", { multiline: true })).toBe("one\ntwo\n\tthree\\r\\x1b[H");
  });

  it("leaves ordinary text alone, whatever its script", () => {
    const text = "Write spec — 日本語 🎉 👍🏽 🇳🇴 é (e\u0301) \\x1b literally";
    expect(safe(text)).toBe(text);
  });
});

describe("guardRendered", () => {
  it("keeps our colour codes when colour is on, and escapes them when it is off", () => {
    expect(guardRendered("\u001b[31mred\u001b[39m \u001b[2J", { colour: true })).toBe("\u001b[31mred\u001b[39m \\x1b[2J");
    expect(guardRendered("\u001b[31mred\u001b[39m", { colour: false })).toBe("\\x1b[31mred\\x1b[39m");
    expect(guardRendered("a\nb\u0007", { colour: false, multiline: true })).toBe("a\nb\\x07");
  });
});

describe("toJson", () => {
  it("is JSON.stringify's value with DEL, C1 and bidi controls escaped too", () => {
    const value = { s: "a\u001b\u007f\u009b\u202e\u2028b", n: 1, list: ["日本", "🎉"] };
    const text = toJson(value);
    expect(JSON.parse(text)).toEqual(value);
    expect(text).toBe('{"s":"a\\u001b\\u007f\\u009b\\u202e\\u2028b","n":1,"list":["日本","🎉"]}');
    expect(toJson(undefined)).toBe("null");
  });
});

describe("outputFailureMessage", () => {
  const err = (code: string, message: string) => Object.assign(new Error(message), { code });
  it("is quiet for a reader that went away, and says why for anything else", () => {
    expect(outputFailureMessage(err("EPIPE", "write EPIPE"))).toBeNull();
    expect(outputFailureMessage(err("ENOSPC", "ENOSPC: no space left on device, write"))).toBe("could not write output: ENOSPC (no space left on device, write)");
    expect(outputFailureMessage(err("EIO", "EIO: i/o error, write"))).toMatch(/^could not write output: EIO/);
  });
});
