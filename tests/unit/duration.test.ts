import { describe, expect, it } from "vitest";
import { formatDuration, parseDuration } from "../../src/lib/duration.js";

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe("parseDuration", () => {
  it("reads every unit", () => {
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("90s")).toBe(90 * S);
    expect(parseDuration("10m")).toBe(10 * M);
    expect(parseDuration("24h")).toBe(24 * H);
    expect(parseDuration("7d")).toBe(7 * D);
    expect(parseDuration("2w")).toBe(14 * D);
  });

  it("adds up compound durations, with or without spaces between parts", () => {
    expect(parseDuration("1h30m")).toBe(H + 30 * M);
    expect(parseDuration("1h 30m")).toBe(H + 30 * M);
    expect(parseDuration("1d2h3m4s5ms")).toBe(D + 2 * H + 3 * M + 4 * S + 5);
    expect(parseDuration("  10m  ")).toBe(10 * M);
  });

  it("tells minutes from milliseconds", () => {
    expect(parseDuration("1m")).toBe(M);
    expect(parseDuration("1ms")).toBe(1);
    expect(parseDuration("1m1ms")).toBe(M + 1);
  });

  it("accepts decimals and rounds to whole milliseconds", () => {
    expect(parseDuration("1.5h")).toBe(90 * M);
    expect(parseDuration("0.5s")).toBe(500);
    expect(parseDuration("1.0004s")).toBe(1000);
    expect(parseDuration("0s")).toBe(0);
  });

  it("refuses a bare number and says how to write it", () => {
    expect(() => parseDuration("10")).toThrow(/no unit; write it like 10s, 10m or 10h/);
    expect(() => parseDuration("1.5")).toThrow(/"1.5" has no unit/);
  });

  it("refuses empty input", () => {
    expect(() => parseDuration("")).toThrow(/empty duration/);
    expect(() => parseDuration("   ")).toThrow(/empty duration/);
  });

  it("refuses unknown units, signs and trailing junk, quoting the unreadable part", () => {
    expect(() => parseDuration("10x")).toThrow(/could not read "10x" in duration "10x"; units are ms, s, m, h, d, w/);
    expect(() => parseDuration("1h30")).toThrow(/could not read "30" in duration "1h30"/);
    expect(() => parseDuration("-5s")).toThrow(/could not read "-5s"/);
    expect(() => parseDuration("5 mins")).toThrow(/could not read/);
    expect(() => parseDuration("h")).toThrow(/could not read "h"/);
  });

  it("refuses absurdly long durations", () => {
    expect(parseDuration("36500d")).toBe(36500 * D);
    expect(() => parseDuration("36501d")).toThrow(/too long/);
    expect(() => parseDuration("9".repeat(400) + "w")).toThrow(/too long/);
  });
});

describe("formatDuration", () => {
  it("formats each range in its natural unit", () => {
    expect(formatDuration(0)).toBe("0ms");
    expect(formatDuration(999)).toBe("999ms");
    expect(formatDuration(1000)).toBe("1s");
    expect(formatDuration(59 * S)).toBe("59s");
    expect(formatDuration(60 * S)).toBe("1m");
    expect(formatDuration(90 * S)).toBe("1m30s");
    expect(formatDuration(H)).toBe("1h");
    expect(formatDuration(H + 30 * M)).toBe("1h30m");
    expect(formatDuration(47 * H)).toBe("47h");
    expect(formatDuration(48 * H)).toBe("2d");
    expect(formatDuration(50 * H)).toBe("2d2h");
  });

  it("rounds to the second above one second", () => {
    expect(formatDuration(1499)).toBe("1s");
    expect(formatDuration(59_500)).toBe("1m");
  });

  it("round-trips through parseDuration", () => {
    for (const ms of [1, 500, S, 45 * S, 90 * S, 10 * M, H, H + 15 * M, 30 * H, 2 * D, 3 * D + 5 * H]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
  });
});
