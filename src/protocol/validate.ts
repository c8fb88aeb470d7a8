// Small runtime validators for everything that crosses the socket. Each validator turns
// unknown input into a typed value or throws a TeamworkError("invalid_input") whose message
// names the field. Objects are strict: an unknown field is an error with a suggestion.

import { TeamworkError } from "../lib/errors.js";
import { didYouMean } from "../lib/suggest.js";
import { emailProblem } from "../lib/email.js";

export type Validator<T> = (value: unknown, path: string) => T;
export type Infer<V> = V extends Validator<infer T> ? T : never;

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const fail = (path: string, message: string): never => {
  throw new TeamworkError("invalid_input", path ? `${path}: ${message}` : message);
};

const describe = (value: unknown): string =>
  value === null ? "null" : value === undefined ? "nothing" : Array.isArray(value) ? "an array" : typeof value === "object" ? "an object" : `a ${typeof value}`;

export function string(opts: { min?: number; max?: number; trim?: boolean; pattern?: RegExp; patternHint?: string } = {}): Validator<string> {
  const { min = 0, max = 10_000, trim = false } = opts;
  return (value, path) => {
    if (typeof value !== "string") return fail(path, `expected a string, got ${describe(value)}`);
    const s = trim ? value.trim() : value;
    if (s.length < min) return fail(path, min === 1 ? "must not be empty" : `must be at least ${min} characters`);
    if (s.length > max) return fail(path, `must be at most ${max} characters`);
    if (opts.pattern && !opts.pattern.test(s)) return fail(path, opts.patternHint ?? `does not match ${opts.pattern}`);
    return s;
  };
}

export function int(opts: { min?: number; max?: number } = {}): Validator<number> {
  const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = opts;
  return (value, path) => {
    if (typeof value !== "number" || !Number.isInteger(value)) {
      return fail(path, `expected an integer, got ${typeof value === "number" ? value : describe(value)}`);
    }
    if (value < min || value > max) return fail(path, `must be between ${min} and ${max}, got ${value}`);
    return value;
  };
}

/** An integer that arrives as text (path segments, query strings). Only plain digits are accepted. */
export function intText(opts: { min?: number; max?: number } = {}): Validator<number> {
  const inner = int(opts);
  return (value, path) => {
    if (typeof value === "number") return inner(value, path);
    if (typeof value !== "string" || !/^-?\d{1,16}$/.test(value)) {
      return fail(path, `expected a whole number, got "${String(value)}"`);
    }
    return inner(Number(value), path);
  };
}

export function boolean(): Validator<boolean> {
  return (value, path) => (typeof value === "boolean" ? value : fail(path, `expected true or false, got ${describe(value)}`));
}

export function oneOf<const T extends string>(choices: readonly T[]): Validator<T> {
  return (value, path) => {
    if (typeof value === "string" && (choices as readonly string[]).includes(value)) return value as T;
    return fail(path, `must be one of ${choices.join(", ")}, got ${JSON.stringify(value)}${typeof value === "string" ? didYouMean(value, choices) : ""}`);
  };
}

/** One address by the project's one rule (lib/email.ts), trimmed and lower-cased. */
export function email(): Validator<string> {
  return (value, path) => {
    if (typeof value !== "string") return fail(path, `expected an email address, got ${describe(value)}`);
    const s = value.trim();
    const problem = emailProblem(s);
    if (problem) return fail(path, `"${value}" is not a valid email address: ${problem}`);
    return s.toLowerCase();
  };
}

/** A calendar date, YYYY-MM-DD, that exists. */
export function date(): Validator<string> {
  return (value, path) => {
    if (typeof value !== "string") return fail(path, `expected a date (YYYY-MM-DD), got ${describe(value)}`);
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value.trim());
    if (!m) return fail(path, `"${value}" is not a date; write it as YYYY-MM-DD`);
    const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const t = new Date(Date.UTC(y, mo - 1, d));
    if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d) {
      return fail(path, `"${value}" is not a real date`);
    }
    return value.trim();
  };
}

/** An instant as an ISO 8601 string with a time; returned normalised to UTC (…Z). */
export function instant(): Validator<string> {
  return (value, path) => {
    if (typeof value !== "string" || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(value)) {
      return fail(path, `expected a time like 2026-12-01T09:00:00Z, got ${JSON.stringify(value)}`);
    }
    const t = Date.parse(value);
    if (Number.isNaN(t)) return fail(path, `"${value}" is not a valid time`);
    // Date.parse rolls 2026-02-30 over into March; the calendar date must exist as written.
    date()(value.slice(0, 10), path);
    return new Date(t).toISOString();
  };
}

/** Deeper JSON than this is refused: no payload needs it, and walking it recursively would overflow the stack. */
export const MAX_JSON_DEPTH = 64;

/** How deeply arrays and objects nest in value, counted without recursion; stops past limit. */
export function depthOf(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (d + 1 > deepest) deepest = d + 1;
    if (deepest > limit) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (typeof child === "object" && child !== null) stack.push([child, d + 1]);
  }
  return deepest;
}

export function json(opts: { maxBytes?: number } = {}): Validator<Json> {
  const { maxBytes = 256 * 1024 } = opts;
  return (value, path) => {
    if (depthOf(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) return fail(path, `nests deeper than ${MAX_JSON_DEPTH} levels`);
    const text = JSON.stringify(value);
    if (text === undefined) return fail(path, "must be JSON");
    if (Buffer.byteLength(text) > maxBytes) return fail(path, `is larger than ${maxBytes} bytes`);
    return value as Json;
  };
}

export function array<T>(item: Validator<T>, opts: { min?: number; max?: number } = {}): Validator<T[]> {
  const { min = 0, max = 10_000 } = opts;
  return (value, path) => {
    if (!Array.isArray(value)) return fail(path, `expected an array, got ${describe(value)}`);
    if (value.length < min) return fail(path, min === 1 ? "must not be empty" : `needs at least ${min} items`);
    if (value.length > max) return fail(path, `has more than ${max} items`);
    return value.map((v, i) => item(v, `${path}[${i}]`));
  };
}

export function optional<T>(inner: Validator<T>): Validator<T | undefined> {
  return (value, path) => (value === undefined ? undefined : inner(value, path));
}

export function nullable<T>(inner: Validator<T>): Validator<T | null> {
  return (value, path) => (value === null ? null : inner(value, path));
}

type Shape = Record<string, Validator<unknown>>;
type ObjectOf<S extends Shape> = {
  [K in keyof S as undefined extends Infer<S[K]> ? never : K]: Infer<S[K]>;
} & {
  [K in keyof S as undefined extends Infer<S[K]> ? K : never]?: Infer<S[K]>;
};

export function object<S extends Shape>(shape: S): Validator<{ [K in keyof ObjectOf<S>]: ObjectOf<S>[K] }> {
  const keys = Object.keys(shape);
  return (value, path) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return fail(path, `expected an object, got ${describe(value)}`);
    }
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (!Object.hasOwn(shape, key)) {
        fail(path ? `${path}.${key}` : key, `unknown field${didYouMean(key, keys)}`);
      }
    }
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      const v = shape[key]!(record[key], path ? `${path}.${key}` : key);
      if (v !== undefined) out[key] = v;
    }
    return out as never;
  };
}
