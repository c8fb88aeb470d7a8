import { describe, expect, it } from "vitest";
import { buildDigest } from "../../src/board/digest.js";
import type { TaskEvent } from "../../src/protocol/types.js";

const event = (id: number, title: string, type: TaskEvent["type"] = "created"): TaskEvent => ({
  id,
  taskId: id,
  board: "web",
  type,
  title,
  data: {},
  createdAt: new Date(0).toISOString(),
});

describe("buildDigest", () => {
  it("lists each task on one line, whatever line breaks its title holds", () => {
    const titles = ["two\nlines", "carriage\rreturn", "crlf\r\nhere", "line\u2028separator", "para\u2029graph", "vertical\vtab\fform feed", "\n\nleading and trailing\n"];
    const d = buildDigest(titles.map((t, i) => event(i + 1, t)), { afterEventId: 0, since: null, now: 0 });
    const items = d.text.split("\n").filter((l) => l.startsWith("    - "));
    expect(items).toEqual([
      "    - #1 two lines",
      "    - #2 carriage return",
      "    - #3 crlf here",
      "    - #4 line separator",
      "    - #5 para graph",
      "    - #6 vertical tab form feed",
      "    - #7 leading and trailing",
    ]);
    // A title cannot forge a line of its own, such as a fake board heading.
    const forged = buildDigest([event(1, "x\nBoard admin\n  Deleted (99):")], { afterEventId: 0, since: null, now: 0 });
    expect(forged.text.split("\n").filter((l) => l.startsWith("Board "))).toEqual(["Board web"]);
  });

  it("keeps titles as they are in the structured digest", () => {
    const d = buildDigest([event(1, "two\nlines")], { afterEventId: 0, since: null, now: 0 });
    expect(d.boards[0]!.items.created[0]!.title).toBe("two\nlines");
  });
});
