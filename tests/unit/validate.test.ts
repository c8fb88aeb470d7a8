import { describe, expect, it } from "vitest";
import * as v from "../../src/protocol/validate.js";
import { TeamworkError } from "../../src/lib/errors.js";

/** The message of the invalid_input error a validator throws for this value. */
function rejects<T>(validator: v.Validator<T>, value: unknown, path = "field"): string {
  try {
    validator(value, path);
  } catch (err) {
    expect(err).toBeInstanceOf(TeamworkError);
    expect((err as TeamworkError).code).toBe("invalid_input");
    return (err as TeamworkError).message;
  }
  throw new Error(`validator accepted ${JSON.stringify(value)}`);
}

describe("string", () => {
  it("accepts strings, optionally trimmed", () => {
    expect(v.string()("  a  ", "s")).toBe("  a  ");
    expect(v.string({ trim: true })("  a  ", "s")).toBe("a");
  });
  it("checks type, length after trimming, and pattern, naming the path", () => {
    expect(rejects(v.string(), 5, "title")).toBe("title: expected a string, got a number");
    expect(rejects(v.string(), null, "title")).toBe("title: expected a string, got null");
    expect(rejects(v.string({ min: 1, trim: true }), "   ", "title")).toBe("title: must not be empty");
    expect(rejects(v.string({ min: 3 }), "ab", "name")).toBe("name: must be at least 3 characters");
    expect(rejects(v.string({ max: 3 }), "abcd", "name")).toBe("name: must be at most 3 characters");
    expect(rejects(v.string({ pattern: /^[a-z]+$/, patternHint: "lower-case letters only" }), "A1", "board")).toBe("board: lower-case letters only");
  });
  it("a message without a path is just the message", () => {
    expect(rejects(v.string(), 1, "")).toBe("expected a string, got a number");
  });
});

describe("int and intText", () => {
  it("int accepts only integer numbers in range", () => {
    expect(v.int({ min: 1, max: 10 })(10, "n")).toBe(10);
    expect(rejects(v.int(), 1.5, "n")).toBe("n: expected an integer, got 1.5");
    expect(rejects(v.int(), "5", "n")).toBe("n: expected an integer, got a string");
    expect(rejects(v.int({ min: 1, max: 10 }), 0, "n")).toBe("n: must be between 1 and 10, got 0");
    expect(rejects(v.int({ min: 1, max: 10 }), 11, "n")).toMatch(/got 11/);
    expect(rejects(v.int(), Number.NaN, "n")).toMatch(/expected an integer/);
  });
  it("intText reads plain digits only", () => {
    const id = v.intText({ min: 1 });
    expect(id("42", "id")).toBe(42);
    expect(id(42, "id")).toBe(42);
    expect(rejects(id, "abc", "id")).toBe('id: expected a whole number, got "abc"');
    for (const bad of ["1.5", "1e3", " 1", "0x10", "", "+1", "12345678901234567"]) expect(rejects(id, bad, "id")).toMatch(/expected a whole number/);
    expect(rejects(id, "0", "id")).toMatch(/id: must be between 1 and/);
    expect(rejects(id, "-3", "id")).toMatch(/must be between 1 and/);
  });
});

describe("boolean and oneOf", () => {
  it("boolean refuses text", () => {
    expect(v.boolean()(false, "b")).toBe(false);
    expect(rejects(v.boolean(), "true", "b")).toBe("b: expected true or false, got a string");
  });
  it("oneOf lists the choices and suggests a close one", () => {
    const status = v.oneOf(["todo", "doing", "done"] as const);
    expect(status("doing", "status")).toBe("doing");
    expect(rejects(status, "dnoe", "status")).toBe('status: must be one of todo, doing, done, got "dnoe", did you mean "done"?');
    expect(rejects(status, "archived", "status")).toBe('status: must be one of todo, doing, done, got "archived"');
    expect(rejects(status, 3, "status")).toBe("status: must be one of todo, doing, done, got 3");
  });
});

describe("email", () => {
  it("trims and lower-cases a valid address", () => {
    expect(v.email()("  Ana.Smith+tw@Example.COM ", "assignee")).toBe("ana.smith+tw@example.com");
  });
  it("refuses what is not one plain address", () => {
    for (const bad of ["ana", "ana@", "@example.com", "a..b@example.com", "ana smith@example.com", "Ana <ana@example.com>", "a@b.com,c@d.com", "a@x.org\r\nBcc: evil@x.org", `${"a".repeat(250)}@x.org`]) {
      expect(rejects(v.email(), bad, "assignee")).toMatch(/^assignee: ".*" is not a valid email address: /s);
    }
    expect(rejects(v.email(), 5, "assignee")).toBe("assignee: expected an email address, got a number");
  });
});

describe("date", () => {
  it("accepts real calendar dates", () => {
    expect(v.date()("2026-12-01", "dueDate")).toBe("2026-12-01");
    expect(v.date()("2024-02-29", "dueDate")).toBe("2024-02-29");
    expect(v.date()(" 2026-01-31 ", "dueDate")).toBe("2026-01-31");
  });
  it("refuses dates that do not exist", () => {
    for (const bad of ["2026-02-30", "2025-02-29", "2026-04-31", "2026-13-01", "2026-00-10", "2026-01-00"]) {
      expect(rejects(v.date(), bad, "dueDate")).toBe(`dueDate: "${bad}" is not a real date`);
    }
  });
  it("refuses other shapes", () => {
    for (const bad of ["2026-2-3", "01/02/2026", "2026-12-01T10:00:00Z", "tomorrow", ""]) {
      expect(rejects(v.date(), bad, "dueDate")).toBe(`dueDate: "${bad}" is not a date; write it as YYYY-MM-DD`);
    }
    expect(rejects(v.date(), 20261201, "dueDate")).toMatch(/expected a date \(YYYY-MM-DD\), got a number/);
  });
});

describe("instant", () => {
  it("normalises to UTC", () => {
    expect(v.instant()("2026-12-01T09:00:00+02:00", "runAt")).toBe("2026-12-01T07:00:00.000Z");
    expect(v.instant()("2026-12-01T09:00Z", "runAt")).toBe("2026-12-01T09:00:00.000Z");
  });
  it("refuses a date without a time, and nonsense", () => {
    expect(rejects(v.instant(), "2026-12-01", "runAt")).toMatch(/^runAt: expected a time like 2026-12-01T09:00:00Z/);
    expect(rejects(v.instant(), 1_700_000_000_000, "runAt")).toMatch(/expected a time/);
    expect(rejects(v.instant(), "2026-13-01T09:00:00Z", "runAt")).toMatch(/is not a valid time/);
  });
  it("refuses a day that does not exist instead of rolling it into the next month", () => {
    // Date.parse("2026-02-30T09:00:00Z") is 2026-03-02 in V8; date() refuses 2026-02-30, so must instant().
    expect(rejects(v.instant(), "2026-02-30T09:00:00Z", "runAt")).toMatch(/runAt: .*2026-02-30/);
  });
});

describe("json", () => {
  it("accepts any JSON value under the size limit", () => {
    expect(v.json()({ a: [1, "x", null] }, "payload")).toEqual({ a: [1, "x", null] });
    expect(rejects(v.json({ maxBytes: 10 }), { text: "more than ten bytes" }, "payload")).toBe("payload: is larger than 10 bytes");
    expect(rejects(v.json(), undefined, "payload")).toBe("payload: must be JSON");
    // Nesting is counted without recursion: 100,000 levels get the same clear refusal.
    const nest = (n: number) => JSON.parse("[".repeat(n) + "]".repeat(n)) as unknown;
    expect(v.json()(nest(v.MAX_JSON_DEPTH), "payload")).toEqual(nest(v.MAX_JSON_DEPTH));
    for (const depth of [v.MAX_JSON_DEPTH + 1, 100_000]) {
      expect(rejects(v.json(), nest(depth), "payload")).toBe(`payload: nests deeper than ${v.MAX_JSON_DEPTH} levels`);
    }
    expect(rejects(v.json(), { a: [{ b: nest(v.MAX_JSON_DEPTH - 2) }] }, "payload")).toMatch(/nests deeper/);
  });
});

describe("array, optional, nullable", () => {
  it("array checks bounds and names the failing index", () => {
    const emails = v.array(v.email(), { min: 1, max: 2 });
    expect(emails(["A@x.org"], "to")).toEqual(["a@x.org"]);
    expect(rejects(emails, [], "to")).toBe("to: must not be empty");
    expect(rejects(emails, ["a@x.org", "b@x.org", "c@x.org"], "to")).toBe("to: has more than 2 items");
    expect(rejects(emails, ["a@x.org", "nope"], "to")).toBe('to[1]: "nope" is not a valid email address: no @');
    expect(rejects(emails, "a@x.org", "to")).toBe("to: expected an array, got a string");
  });
  it("optional lets undefined through but still checks values", () => {
    expect(v.optional(v.int())(undefined, "n")).toBeUndefined();
    expect(rejects(v.optional(v.int()), null, "n")).toMatch(/n: expected an integer, got null/);
  });
  it("nullable lets null through but not undefined", () => {
    expect(v.nullable(v.email())(null, "assignee")).toBeNull();
    expect(rejects(v.nullable(v.email()), undefined, "assignee")).toMatch(/assignee: expected an email address/);
  });
});

describe("object", () => {
  const task = v.object({
    title: v.string({ min: 1, trim: true }),
    status: v.optional(v.oneOf(["todo", "done"] as const)),
    owner: v.optional(v.object({ email: v.email() })),
  });

  it("returns the validated fields and leaves out absent optional ones", () => {
    const out = task({ title: " x " }, "");
    expect(out).toEqual({ title: "x" });
    expect(Object.keys(out)).toEqual(["title"]);
    expect(task({ title: "x", status: "done", owner: { email: "A@B.io" } }, "")).toEqual({ title: "x", status: "done", owner: { email: "a@b.io" } });
  });

  it("refuses an unknown field and suggests the closest known one", () => {
    expect(rejects(task, { titel: "x" }, "")).toBe('titel: unknown field, did you mean "title"?');
    expect(rejects(task, { title: "x", zzzzzz: 1 }, "")).toBe("zzzzzz: unknown field");
  });

  it("names nested paths", () => {
    expect(rejects(task, { title: "x", owner: { emial: "a@b.io" } }, "")).toBe('owner.emial: unknown field, did you mean "email"?');
    expect(rejects(task, { title: "x", owner: { email: "nope" } }, "")).toBe('owner.email: "nope" is not a valid email address: no @');
    expect(rejects(task, { title: "x" , status: "todo", owner: [] }, "body")).toBe("body.owner: expected an object, got an array");
  });

  it("a missing required field is an error that names it", () => {
    expect(rejects(task, {}, "")).toMatch(/^title: /);
  });

  it("refuses what is not a plain object", () => {
    expect(rejects(task, [], "")).toBe("expected an object, got an array");
    expect(rejects(task, null, "")).toBe("expected an object, got null");
    expect(rejects(task, "title=x", "")).toBe("expected an object, got a string");
  });

  it("does not treat inherited names as known fields", () => {
    expect(rejects(v.object({}), { toString: "x" }, "")).toMatch(/^toString: unknown field/);
    expect(rejects(v.object({}), JSON.parse('{"__proto__": {"a": 1}}'), "")).toMatch(/^__proto__: unknown field/);
  });
});
