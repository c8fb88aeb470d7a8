// The one decoder of newline-framed byte streams (RPC both ways, SSE, worker output).
//
// Terminology: a *chunk* is what one read gave (a socket read, a pipe message); a *line* is
// the bytes up to a newline byte (0x0A), which is never part of a multi-byte UTF-8
// character, so splitting on it in bytes is always safe. Each line is decoded once, whole:
// decoding each chunk alone turns a character cut across two chunks into two U+FFFD.
// Limits count bytes, as the wire does, not UTF-16 units.

/** What to do with a line longer than the limit. */
export type Overflow =
  /** Stop: `tooLong` is set and nothing more is decoded (a framing error; close the stream). */
  | "refuse"
  /** Keep its first bytes up to the limit, cut between two characters, and drop the rest. */
  | "truncate";

/** A held partial line buffer larger than this is released once the line is taken. */
const KEEP_CAPACITY = 64 * 1024;

export class LineDecoder {
  /** The current (unterminated) line's bytes: line[0, held). Grows by doubling. */
  private line = Buffer.alloc(0);
  private held = 0;
  /** Truncating: the current line passed the limit; its bytes up to the newline are dropped. */
  private cut = false;
  /** Set when a line passed the limit in "refuse" mode; the decoder is finished then. */
  tooLong = false;

  /** @param maxBytes the longest line taken, in bytes, its newline excluded */
  constructor(
    private readonly maxBytes: number,
    private readonly overflow: Overflow = "refuse",
  ) {}

  /** The whole lines this chunk completes, decoded, without their newline. */
  push(chunk: Buffer): string[] {
    let lines: string[] = [];
    if (this.tooLong) return lines;
    const first = chunk.indexOf(0x0a);
    if (first < 0) {
      this.hold(chunk, 0, chunk.length);
      return lines;
    }
    // One whole line and nothing held (a one-by-one call's chunk): no second search, no split.
    if (first === chunk.length - 1 && this.held === 0 && !this.cut && first <= this.maxBytes) {
      lines.push(chunk.toString("utf8", 0, first));
      return lines;
    }
    let start = 0;
    if (this.held > 0 || this.cut) {
      this.hold(chunk, 0, first);
      if (this.tooLong) return lines;
      lines.push(this.take());
      start = first + 1;
    }
    const last = chunk.lastIndexOf(0x0a);
    if (last >= start) {
      // The whole lines in this chunk at once: one decode and one split. Measured on 200,000
      // RPC lines in 64 KiB chunks: 40 ms with a decode per line, 9 ms so (the string buffer
      // this replaced: 9 ms). Safe as no character holds a newline byte; and when the span
      // is within the limit, so is each of its lines.
      if (last - start <= this.maxBytes) {
        const whole = chunk.toString("utf8", start, last).split("\n");
        lines = lines.length ? lines.concat(whole) : whole;
      } else if (!this.eachLine(chunk, start, last, lines)) return lines;
      start = last + 1;
    }
    if (start < chunk.length) this.hold(chunk, start, chunk.length);
    return lines;
  }

  /** The lines of chunk[start, last] one by one, against the limit; false once refused. */
  private eachLine(chunk: Buffer, start: number, last: number, lines: string[]): boolean {
    while (start <= last) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl - start <= this.maxBytes) lines.push(chunk.toString("utf8", start, nl));
      else {
        this.hold(chunk, start, nl);
        if (this.tooLong) return false;
        lines.push(this.take());
      }
      start = nl + 1;
    }
    return true;
  }

  /** The stream ended: its last line if it had no newline after it. */
  end(): string[] {
    if (this.tooLong || (this.held === 0 && !this.cut)) return [];
    return [this.take()];
  }

  /** Adds chunk[start, end) to the current line, within the limit. */
  private hold(chunk: Buffer, start: number, end: number): void {
    const room = this.maxBytes - this.held;
    let n = end - start;
    if (n > room) {
      if (this.overflow === "refuse") {
        this.tooLong = true;
        this.release();
        return;
      }
      this.cut = true;
      n = room;
    }
    if (n <= 0) return;
    if (this.held + n > this.line.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.maxBytes, Math.max(this.held + n, this.line.length * 2, 256)));
      this.line.copy(grown, 0, 0, this.held);
      this.line = grown;
    }
    chunk.copy(this.line, this.held, start, start + n);
    this.held += n;
  }

  private take(): string {
    const end = this.cut ? utf8Boundary(this.line, this.held) : this.held;
    const text = this.line.toString("utf8", 0, end);
    this.held = 0;
    this.cut = false;
    if (this.line.length > KEEP_CAPACITY) this.release();
    return text;
  }

  private release(): void {
    this.line = Buffer.alloc(0);
    this.held = 0;
  }
}

/**
 * The largest index <= end that does not fall inside a UTF-8 character of buf: where a
 * line cut to a byte limit may end without leaving half a character (a U+FFFD) behind.
 */
export function utf8Boundary(buf: Uint8Array, end: number): number {
  // Back over at most three continuation bytes (10xxxxxx) to the byte that starts the character.
  let i = end;
  while (i > 0 && end - i < 3 && (buf[i - 1]! & 0xc0) === 0x80) i--;
  if (i === 0) return end;
  const first = buf[i - 1]!;
  if ((first & 0xc0) !== 0xc0) return end; // ASCII, or not UTF-8 at all: nothing to spare
  const size = first >= 0xf0 ? 4 : first >= 0xe0 ? 3 : 2;
  return end - (i - 1) >= size ? end : i - 1;
}
