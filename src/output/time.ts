// Instants shown in a named time zone, always with their UTC offset, so that a time printed
// beside a zone is never mistaken for one in another zone.

const formats = new Map<string, Intl.DateTimeFormat>();

function formatFor(timeZone: string | undefined): Intl.DateTimeFormat {
  const key = timeZone ?? "";
  let f = formats.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat("en-GB", {
      timeZone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
      timeZoneName: "longOffset",
    });
    formats.set(key, f);
  }
  return f;
}

/**
 * "2026-12-03 09:00:00 +01:00": `iso` as a wall-clock time in `timeZone` (an IANA name; null
 * or undefined for this machine's local zone), with that zone's offset at that instant. A
 * zone this Node does not know falls back to UTC, labelled "+00:00", so the time stays right.
 */
export function formatInZone(iso: string, timeZone?: string | null): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  let parts: Intl.DateTimeFormatPart[];
  try {
    parts = formatFor(timeZone ?? undefined).formatToParts(date);
  } catch {
    parts = formatFor("UTC").formatToParts(date);
  }
  const get = (type: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === type)?.value ?? "";
  // longOffset reads "GMT+01:00", or plain "GMT" at offset zero.
  const offset = get("timeZoneName").replace(/^GMT/, "") || "+00:00";
  return `${get("year")}-${get("month")}-${get("day")} ${get("hour")}:${get("minute")}:${get("second")} ${offset}`;
}
