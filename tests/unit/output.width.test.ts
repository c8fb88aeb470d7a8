import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { displayWidth, truncateToWidth } from "../../src/output/width.js";
import { Output, visible } from "../../src/output/output.js";

/** No lone surrogate: half a character that a cut left behind. */
const wellFormed = (s: string) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

describe("displayWidth", () => {
  it("counts columns, not UTF-16 units", () => {
    expect(displayWidth("abc")).toBe(3);
    expect(displayWidth("日本語")).toBe(6); // CJK: wide
    expect(displayWidth("한국어")).toBe(6); // Hangul syllables
    expect(displayWidth("ｶﾀｶﾅ")).toBe(4); // halfwidth katakana: narrow
    expect(displayWidth("ＡＢ")).toBe(4); // fullwidth Latin
    expect(displayWidth("𠀋")).toBe(2); // CJK Extension B, a surrogate pair
    expect(displayWidth("🎉")).toBe(2);
    expect(displayWidth("👍🏽")).toBe(2); // with a skin-tone modifier
    expect(displayWidth("👩‍👩‍👧‍👦")).toBe(2); // a ZWJ sequence is one emoji
    expect(displayWidth("🇳🇴🇯🇵")).toBe(4); // two flags
    expect(displayWidth("❤️")).toBe(2); // text-default heart made emoji by U+FE0F
    expect(displayWidth("❤")).toBe(1); // and without it
    expect(displayWidth("1️⃣")).toBe(2); // keycap
    expect(displayWidth("e\u0301te\u0301")).toBe(3); // "été": combining acute accents take no column
    expect(displayWidth("\u0301")).toBe(0);
    expect(displayWidth("a\u200bb")).toBe(2); // zero-width space
    expect(displayWidth("Ωé…—")).toBe(4);
  });

  it("visible() ignores our colour codes", () => {
    expect(visible("\u001b[31m日本\u001b[39m")).toBe(4);
  });
});

describe("truncateToWidth", () => {
  it("cuts to at most the width, with an ellipsis, between graphemes", () => {
    expect(truncateToWidth("abcdef", 4)).toBe("abc…");
    expect(truncateToWidth("abc", 3)).toBe("abc");
    expect(truncateToWidth("日本語テキスト", 7)).toBe("日本語…"); // 6 + 1
    expect(truncateToWidth("日本語テキスト", 6)).toBe("日本…"); // a wide char does not straddle the edge
    expect(truncateToWidth("ab👩‍👩‍👧‍👦cd", 4)).toBe("ab…"); // the family stays whole or goes
    expect(truncateToWidth("ab👩‍👩‍👧‍👦cd", 5)).toBe("ab👩‍👩‍👧‍👦…");
    expect(truncateToWidth("🇳🇴🇯🇵🇩🇪", 5)).toBe("🇳🇴🇯🇵…"); // never half a flag
    expect(truncateToWidth("🇳🇴🇯🇵🇩🇪", 4)).toBe("🇳🇴…");
    expect(truncateToWidth("cafe\u0301 au lait", 5)).toBe("cafe\u0301…"); // the accent stays on its letter
    expect(truncateToWidth("𠀋𠀋𠀋", 4)).toBe("𠀋…"); // no lone surrogate
    expect(truncateToWidth("abc", 0)).toBe("");
    expect(truncateToWidth("abc", 1)).toBe("…");
  });

  it("never returns broken UTF-16 or more columns than asked", () => {
    const texts = ["日本語テキスト🎉", "👍🏽👍🏽👍🏽", "a\u0301b\u0301c\u0301d", "🇳🇴x🇯🇵y", "👩‍👩‍👧‍👦👩‍👩‍👧‍👦", "ｶﾀｶﾅ𠀋x"];
    for (const t of texts) {
      for (let w = 0; w <= displayWidth(t) + 1; w++) {
        const cut = truncateToWidth(t, w);
        expect(displayWidth(cut), `${t} @ ${w}`).toBeLessThanOrEqual(w);
        expect(wellFormed(cut), `${t} @ ${w}`).toBe(true);
      }
    }
  });
});

/** A stream that collects what is written, standing in for a terminal of `columns` columns. */
function screen(columns: number) {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  }) as unknown as NodeJS.WriteStream;
  Object.assign(stream, { isTTY: true, columns });
  return { stream, text: () => text };
}

describe("Output.table", () => {
  it("lines up columns holding CJK, emoji, flags and accents", () => {
    const s = screen(200);
    const out = new Output({ json: false, stdout: s.stream, env: { NO_COLOR: "1" } });
    out.table(
      [
        { key: "title", title: "TITLE" },
        { key: "board", title: "BOARD" },
      ],
      [
        { title: "Write spec", board: "web" },
        { title: "仕様を書く", board: "ウェブ" },
        { title: "Ship it 🚀🎉", board: "🇳🇴" },
        { title: "Family 👩‍👩‍👧‍👦", board: "cafe\u0301" },
      ],
    );
    const lines = s.text().trimEnd().split("\n");
    expect(lines).toHaveLength(5);
    // The second column starts at the same screen column on every line.
    const starts = lines.map((l) => displayWidth(l.slice(0, l.search(/(BOARD|web|ウェブ|🇳🇴|cafe)/))));
    expect(new Set(starts).size).toBe(1);
  });

  it("shrinks the flexible column to the terminal's width by columns, not UTF-16 units", () => {
    const s = screen(30);
    const out = new Output({ json: false, stdout: s.stream, env: { NO_COLOR: "1" } });
    out.table(
      [
        { key: "id", title: "ID" },
        { key: "title", title: "TITLE", flex: true },
        { key: "board", title: "BOARD" },
      ],
      [
        { id: "1", title: "日本語のとても長いタスクのタイトルです", board: "web" },
        { id: "2", title: "👩‍👩‍👧‍👦👩‍👩‍👧‍👦👩‍👩‍👧‍👦👩‍👩‍👧‍👦👩‍👩‍👧‍👦👩‍👩‍👧‍👦👩‍👩‍👧‍👦👩‍👩‍👧‍👦👩‍👩‍👧‍👦👩‍👩‍👧‍👦👩‍👩‍👧‍👦👩‍👩‍👧‍👦", board: "web" },
      ],
    );
    for (const line of s.text().trimEnd().split("\n")) {
      expect(displayWidth(line), line).toBeLessThanOrEqual(30);
      expect(wellFormed(line)).toBe(true);
      expect(line).toMatch(/(BOARD|web)$/);
    }
  });
});
