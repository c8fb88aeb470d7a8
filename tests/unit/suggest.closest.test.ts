import { describe, expect, it } from "vitest";
import { closest, didYouMean, editDistance } from "../../src/lib/suggest.js";

describe("suggestions", () => {
  it("measures edit distance", () => {
    expect(editDistance("concurency", "concurrency")).toBe(1);
    expect(editDistance("", "abc")).toBe(3);
    expect(editDistance("same", "same")).toBe(0);
  });
  it("suggests only what looks like a typo", () => {
    expect(closest("concurency", ["concurrency", "durability"])).toBe("concurrency");
    expect(closest("reprot", ["report", "thumbnail"])).toBe("report");
    expect(closest("zzzzzz", ["report", "thumbnail"])).toBeUndefined();
    expect(didYouMean("titel", ["title", "board"])).toBe(', did you mean "title"?');
    expect(didYouMean("xyz", ["title"])).toBe("");
  });
});
