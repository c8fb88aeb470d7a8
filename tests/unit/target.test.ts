// parseTarget reads a request target as new URL(target, "http://localhost") does: the plain
// ones by slicing, the rest through URL. Both ways must agree on every target.
import { describe, expect, it } from "vitest";
import { parseTarget } from "../../src/daemon/target.js";

const asUrl = (target: string) => {
  const url = new URL(target, "http://localhost");
  return { pathname: url.pathname, search: url.search, query: [...url.searchParams] };
};
const asParsed = (target: string) => {
  const t = parseTarget(target);
  return { pathname: t.pathname, search: t.search, query: [...t.query()] };
};

const TARGETS = [
  "/",
  "/jobs",
  "/jobs/",
  "/jobs/12",
  "/jobs/12/artifacts/report.v2.pdf",
  "/jobs/12/artifacts/a%20b%2Fc",
  "/jobs?",
  "/jobs?limit=5&status=pending",
  "/jobs?limit=5&limit=6",
  "/jobs?a=1+2&b=%41%zz&c",
  "/jobs?a='x'&b=\"y\"&c=<z>",
  "/jobs?__proto__=1",
  "/tasks/%E2%9C%93",
  "/tasks/%zz",
  "/tasks/~a_b-c!$&'()*+,;=:@",
  // resolved, encoded or dropped by the URL parser: these take the URL way
  "/jobs/../health",
  "/jobs/./12",
  "/jobs/..",
  "/jobs/.",
  "/jobs/%2e%2E/health",
  "/jobs/.%2e",
  "//evil/jobs",
  "/jobs\\12",
  "/jobs#frag",
  "/jobs?a=1#frag",
  "/jobs/a b",
  "/jobs/a^b|c`d{e}",
  "/jobs?a=b c",
  "/jobs/\u00e9",
  "/jobs?name=\u00e9",
  "*",
  "http://other/jobs?x=1",
];

describe("parseTarget", () => {
  it.each(TARGETS)("reads %j as new URL does", (target) => {
    expect(asParsed(target)).toEqual(asUrl(target));
  });

  it("agrees with new URL on random targets, throwing where it throws", () => {
    const alphabet = "/?#.%2eE/a-_~!$&'()*+,;=:@ \"<>^`{|}\\é\t[]";
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let i = 0; i < 5000; i++) {
      let target = "/";
      for (let n = rand(12); n > 0; n--) target += alphabet[rand(alphabet.length)];
      let expected: unknown;
      try {
        expected = asUrl(target);
      } catch {
        expect(() => parseTarget(target), target).toThrow();
        continue;
      }
      expect(asParsed(target), target).toEqual(expected);
    }
  });

  it("dot segments are not taken for plain: names with dots in them are", () => {
    expect(parseTarget("/jobs/1/artifacts/.hidden").pathname).toBe("/jobs/1/artifacts/.hidden");
    expect(parseTarget("/jobs/1/artifacts/...").pathname).toBe("/jobs/1/artifacts/...");
    expect(parseTarget("/jobs/1/../2").pathname).toBe("/jobs/2");
  });
});
