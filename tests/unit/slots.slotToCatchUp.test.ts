import { describe, expect, it } from "vitest";
import { earlyRetryIn, latestSlot, nextSlot, parseCron, slotToCatchUp } from "../../src/scheduler/slots.js";

const t = (iso: string) => Date.parse(iso);

describe("schedule math", () => {
  const everyFive = parseCron("*/5 * * * * *");
  it("finds the next slot strictly after a time, and the latest at or before it", () => {
    expect(nextSlot(everyFive, t("2026-01-01T00:00:07.500Z"))).toBe(t("2026-01-01T00:00:10Z"));
    expect(nextSlot(everyFive, t("2026-01-01T00:00:10Z"))).toBe(t("2026-01-01T00:00:15Z"));
    expect(latestSlot(everyFive, t("2026-01-01T00:00:10Z"))).toBe(t("2026-01-01T00:00:10Z"));
    expect(latestSlot(everyFive, t("2026-01-01T00:00:14.999Z"))).toBe(t("2026-01-01T00:00:10Z"));
  });

  it("catches up once, with the latest missed slot, however many were missed", () => {
    const last = t("2026-01-01T00:00:00Z");
    expect(slotToCatchUp(everyFive, last, 0, t("2026-01-01T00:00:04Z"))).toBeNull();
    expect(slotToCatchUp(everyFive, last, 0, t("2026-01-01T00:00:05Z"))).toBe(t("2026-01-01T00:00:05Z"));
    expect(slotToCatchUp(everyFive, last, 0, t("2026-01-01T06:00:03Z"))).toBe(t("2026-01-01T06:00:00Z"));
  });

  it("counts a never-run schedule from its creation", () => {
    const created = t("2026-01-01T00:00:07Z");
    expect(slotToCatchUp(everyFive, null, created, t("2026-01-01T00:00:09Z"))).toBeNull();
    expect(slotToCatchUp(everyFive, null, created, t("2026-01-01T00:00:11Z"))).toBe(t("2026-01-01T00:00:10Z"));
  });

  it("reads expressions in their time zone", () => {
    const oslo = parseCron("0 0 8 * * *", "Europe/Oslo");
    // 08:00 in Oslo is 07:00 UTC in winter and 06:00 UTC in summer.
    expect(nextSlot(oslo, t("2026-01-15T12:00:00Z"))).toBe(t("2026-01-16T07:00:00Z"));
    expect(nextSlot(oslo, t("2026-07-15T12:00:00Z"))).toBe(t("2026-07-16T06:00:00Z"));
  });

  it("refuses bad expressions and zones with readable messages", () => {
    expect(() => parseCron("every day")).toThrow(/invalid cron expression "every day"/);
    expect(() => parseCron("61 * * * * *")).toThrow(/invalid cron expression/);
    expect(() => parseCron("* * * * * *", "Mars/Base")).toThrow(/unknown time zone "Mars\/Base"/);
  });

  it("waits for an early slot by the store's clock, a little past it, within bounds", () => {
    expect(earlyRetryIn(t("2026-01-01T00:00:05Z"), t("2026-01-01T00:00:03.500Z"))).toBe(1510);
    expect(earlyRetryIn(t("2026-01-01T00:00:05Z"), t("2026-01-01T00:00:05Z"))).toBe(10); // came meanwhile: try again at once
    expect(earlyRetryIn(t("2026-01-01T00:00:05Z"), t("2026-01-01T00:00:06Z"))).toBe(10);
    expect(earlyRetryIn(t("2026-01-01T06:00:00Z"), t("2026-01-01T00:00:00Z"))).toBe(60_000); // a wild gap: ask again in a minute
  });
});
