// Durations as people write them: "90s", "10m", "1h30m", "2d", "500ms". A bare number is
// refused rather than guessed at (seconds? milliseconds?).

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

export function parseDuration(text: string): number {
  const input = text.trim();
  if (input === "") throw new Error("empty duration; write it like 30s, 10m, 1h30m or 7d");
  if (/^\d+(\.\d+)?$/.test(input)) {
    throw new Error(`duration "${text}" has no unit; write it like ${input}s, ${input}m or ${input}h`);
  }
  let total = 0;
  let rest = input;
  while (rest.length > 0) {
    const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*/.exec(rest);
    if (!m) {
      throw new Error(
        `could not read "${rest}" in duration "${text}"; units are ms, s, m, h, d, w (e.g. 1h30m)`,
      );
    }
    total += Number(m[1]) * UNITS[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  if (!Number.isFinite(total) || total > 100 * 365 * 86_400_000) {
    throw new Error(`duration "${text}" is too long`);
  }
  return Math.round(total);
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m}m${s % 60}s` : `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h}h${m % 60}m` : `${h}h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d}d${h % 24}h` : `${d}d`;
}
