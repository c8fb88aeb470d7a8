import { describe, expect, it } from "vitest";
import { formatInZone } from "../../src/output/time.js";

describe("formatInZone", () => {
  it("shows the zone's wall clock with its offset at that instant, daylight saving included", () => {
    expect(formatInZone("2026-12-03T08:00:00.000Z", "Europe/Berlin")).toBe("2026-12-03 09:00:00 +01:00");
    expect(formatInZone("2026-07-03T07:00:00.000Z", "Europe/Berlin")).toBe("2026-07-03 09:00:00 +02:00");
    // The night clocks go back: the same wall time twice, told apart by the offset.
    expect(formatInZone("2026-10-25T00:30:00.000Z", "Europe/Berlin")).toBe("2026-10-25 02:30:00 +02:00");
    expect(formatInZone("2026-10-25T01:30:00.000Z", "Europe/Berlin")).toBe("2026-10-25 02:30:00 +01:00");
    expect(formatInZone("2026-12-03T04:00:00.000Z", "Asia/Kolkata")).toBe("2026-12-03 09:30:00 +05:30");
    expect(formatInZone("2026-12-03T20:00:00.000Z", "America/New_York")).toBe("2026-12-03 15:00:00 -05:00");
    expect(formatInZone("2026-12-03T23:59:59.000Z", "UTC")).toBe("2026-12-03 23:59:59 +00:00");
  });

  it("is always the same instant, whatever the zone", () => {
    const iso = "2026-03-29T01:15:00.000Z";
    for (const zone of ["Europe/Berlin", "Australia/Lord_Howe", "Pacific/Chatham", "America/St_Johns", null]) {
      const shown = formatInZone(iso, zone).replace(/^(\S+) (\S+) (\S+)$/, "$1T$2$3");
      expect(Date.parse(shown), String(zone)).toBe(Date.parse(iso));
    }
  });

  it("falls back to UTC, labelled, for a zone it does not know", () => {
    expect(formatInZone("2026-12-03T08:00:00.000Z", "Mars/Olympus_Mons")).toBe("2026-12-03 08:00:00 +00:00");
  });
});
