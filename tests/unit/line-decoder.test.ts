import { describe, expect, it } from "vitest";
import { LineDecoder, utf8Boundary } from "../../src/lib/line-decoder.js";

const TEXT = "é日本🎉 😀 🧑‍💻 ü\u2028ß€";
const LINES = [TEXT, "", "plain ascii", `${TEXT.repeat(50)} long`, "🎉", "é"];
const STREAM = Buffer.from(LINES.join("\n") + "\n");

/** Feeds the chunks to a fresh decoder and returns every line it gave, the last one included. */
function decode(chunks: Buffer[], maxBytes = Number.POSITIVE_INFINITY, overflow: "refuse" | "truncate" = "refuse"): { lines: string[]; tooLong: boolean } {
  const d = new LineDecoder(maxBytes, overflow);
  const lines = chunks.flatMap((c) => d.push(c));
  return { lines: [...lines, ...d.end()], tooLong: d.tooLong };
}

describe("LineDecoder", () => {
  it("gives the same lines whatever byte offset the stream is cut at", () => {
    for (let at = 0; at <= STREAM.length; at++) {
      expect(decode([STREAM.subarray(0, at), STREAM.subarray(at)]).lines, `cut at ${at}`).toEqual(LINES);
    }
  });

  it("gives the same lines for every pair of cuts in a short stream, and byte by byte", () => {
    const short = Buffer.from(`${TEXT}\n\n🎉x\n`);
    const want = [TEXT, "", "🎉x"];
    for (let a = 0; a <= short.length; a++) {
      for (let b = a; b <= short.length; b++) {
        expect(decode([short.subarray(0, a), short.subarray(a, b), short.subarray(b)]).lines, `cuts at ${a}, ${b}`).toEqual(want);
      }
    }
    expect(decode([...STREAM].map((byte) => Buffer.from([byte]))).lines).toEqual(LINES);
  });

  it("gives a last line without a newline at the end, and nothing for an empty stream", () => {
    expect(decode([Buffer.from("a\nb"), Buffer.from("é")]).lines).toEqual(["a", "bé"]);
    expect(decode([]).lines).toEqual([]);
    expect(decode([Buffer.alloc(0), Buffer.from("\n")]).lines).toEqual([""]);
  });

  it("counts the limit in bytes: a line of exactly the limit passes, one byte more is refused", () => {
    const line = "日".repeat(10); // 10 characters, 30 bytes
    for (let at = 0; at <= 31; at++) {
      const bytes = Buffer.from(`ok\n${line}\n`);
      expect(decode([bytes.subarray(0, at), bytes.subarray(at)], 30).lines, `cut at ${at}`).toEqual(["ok", line]);
      const over = Buffer.from(`ok\n${line}x\nnext\n`);
      expect(decode([over.subarray(0, at), over.subarray(at)], 30), `cut at ${at}`).toEqual({ lines: ["ok"], tooLong: true });
    }
  });

  it("takes a chunk that is one whole line alone, within the limit or refused past it, truncated in that mode, after a held part or not", () => {
    const line = "日".repeat(10); // 30 bytes
    expect(decode(LINES.map((l) => Buffer.from(`${l}\n`))).lines).toEqual(LINES);
    expect(decode([Buffer.from(`${line}\n`)], 30)).toEqual({ lines: [line], tooLong: false });
    expect(decode([Buffer.from(`${line}x\n`), Buffer.from("next\n")], 30)).toEqual({ lines: [], tooLong: true });
    expect(decode([Buffer.from(`${line}x\n`), Buffer.from("next\n")], 30, "truncate").lines).toEqual([line, "next"]);
    expect(decode([Buffer.from("he"), Buffer.from("llo\n"), Buffer.from("\n")]).lines).toEqual(["hello", ""]);
  });

  it("refuses a long line as soon as it passes the limit, before its newline comes", () => {
    const d = new LineDecoder(8);
    expect(d.push(Buffer.from("a\n12345678"))).toEqual(["a"]);
    expect(d.tooLong).toBe(false);
    expect(d.push(Buffer.from("9"))).toEqual([]);
    expect(d.tooLong).toBe(true);
    expect(d.push(Buffer.from("\nmore\n"))).toEqual([]);
  });

  it("truncates a long line between two characters, at every limit and every cut, and goes on", () => {
    const long = Buffer.from(TEXT);
    for (let max = 0; max <= long.length; max++) {
      const want = long.subarray(0, utf8Boundary(long, max)).toString("utf8");
      expect(want.includes("\uFFFD")).toBe(false);
      expect(TEXT.startsWith(want)).toBe(true);
      const stream = Buffer.from(`${TEXT}\nok\n`);
      for (let at = 0; at <= stream.length; at++) {
        const r = decode([stream.subarray(0, at), stream.subarray(at)], max, "truncate");
        expect(r.lines, `limit ${max}, cut at ${at}`).toEqual([want, max >= 2 ? "ok" : "ok".slice(0, max)]);
      }
    }
  });
});

describe("utf8Boundary", () => {
  it("backs off a character cut short and keeps one that is whole", () => {
    const b = Buffer.from("a🎉"); // 61 f0 9f 8e 89
    expect([0, 1, 2, 3, 4, 5].map((end) => utf8Boundary(b, end))).toEqual([0, 1, 1, 1, 1, 5]);
    const c = Buffer.from("é日"); // c3 a9 e6 97 a5
    expect([0, 1, 2, 3, 4, 5].map((end) => utf8Boundary(c, end))).toEqual([0, 0, 2, 2, 2, 5]);
  });

  it("leaves bytes that are not UTF-8 as they are", () => {
    expect(utf8Boundary(Buffer.from([0x80, 0x80, 0x80, 0x80]), 4)).toBe(4);
    expect(utf8Boundary(Buffer.from([0x61, 0x80]), 2)).toBe(2);
  });
});
