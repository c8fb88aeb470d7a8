import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/lib/logger.js";

/** One line logged with these fields, as written. */
function logged(fields: Record<string, unknown>): string {
  const lines: string[] = [];
  createLogger((l) => lines.push(l), () => 0).info("test.event", fields);
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe("logger: a field never makes logging throw", () => {
  it("a BigInt, alone and inside an object", () => {
    expect(logged({ n: 12345678901234567890n })).toBe("1970-01-01T00:00:00.000Z info  test.event n=12345678901234567890\n");
    expect(logged({ o: { n: 1n } })).toContain(`o="{\\"n\\":\\"1\\"}"`);
  });

  it("a circular object", () => {
    const a: Record<string, unknown> = { name: "a" };
    a.self = a;
    expect(logged({ a })).toContain(`a="{\\"name\\":\\"a\\",\\"self\\":\\"[circular]\\"}"`);
  });

  it("an object seen twice but not circular is written twice", () => {
    const shared = { x: 1 };
    expect(logged({ o: { p: shared, q: shared } })).toContain(`o="{\\"p\\":{\\"x\\":1},\\"q\\":{\\"x\\":1}}"`);
  });

  it("a getter that throws, on a field and on the fields themselves", () => {
    const bad = {
      get boom(): string {
        throw new Error("getter failed");
      },
    };
    expect(logged({ v: bad, after: "kept" })).toMatch(/ v="\[unprintable: getter failed\]" after=kept\n$/);
    const fields = { before: 1 } as Record<string, unknown>;
    Object.defineProperty(fields, "f", { enumerable: true, get: () => { throw new Error("no"); } });
    expect(logged(fields)).toMatch(/ before=1 f="\[unprintable: no\]"\n$/);
  });

  it("a symbol, alone and inside an object", () => {
    expect(logged({ s: Symbol("tag") })).toContain(" s=Symbol(tag)");
    expect(logged({ o: { s: Symbol("x"), k: 1 } })).toContain(`o="{\\"s\\":\\"Symbol(x)\\",\\"k\\":1}"`);
  });

  it("an error whose message getter throws, a toJSON that throws, a function", () => {
    const err = new Error("x");
    Object.defineProperty(err, "message", { get: () => { throw new Error("nope"); } });
    expect(logged({ err })).toContain("err=");
    expect(logged({ j: { toJSON: () => { throw new Error("bad json"); } } })).toContain(`j="[unprintable: bad json]"`);
    expect(logged({ f: function named() {} })).toContain(`f="[function named]"`);
  });

  it("a sink that throws", () => {
    const log = createLogger(() => {
      throw new Error("disk gone");
    });
    expect(() => log.error("x", { a: 1 })).not.toThrow();
  });
});
