import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CONFIG_KEYS, DEFAULTS, loadConfig } from "../../src/config/config.js";
import { TeamworkError } from "../../src/lib/errors.js";

const dir = mkdtempSync(join(tmpdir(), "tw-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** Writes a config file (an object is serialised; a string is written as is) and returns its path. */
function file(content: Record<string, unknown> | string): string {
  const path = join(dir, `config-${++n}.json`);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}
const missing = () => join(dir, `missing-${++n}.json`);

/** The error loadConfig throws (it must throw a TeamworkError with code invalid_input). */
function errorOf(opts: Parameters<typeof loadConfig>[0]): TeamworkError {
  try {
    loadConfig(opts);
  } catch (err) {
    expect(err).toBeInstanceOf(TeamworkError);
    expect((err as TeamworkError).code).toBe("invalid_input");
    return err as TeamworkError;
  }
  throw new Error("loadConfig did not throw");
}

describe("loadConfig: sources and precedence", () => {
  it("gives the defaults when there is no file, no environment and no flag", () => {
    expect(loadConfig({ configFile: missing(), env: {} })).toEqual(DEFAULTS);
  });

  it("file < environment < flag", () => {
    const configFile = file({ concurrency: 2, durability: "process", mailFrom: "file@example.com" });
    expect(loadConfig({ configFile, env: {} })).toMatchObject({ concurrency: 2, durability: "process", mailFrom: "file@example.com" });

    const env = { TEAMWORK_CONCURRENCY: "4", TEAMWORK_MAIL_FROM: "env@example.com" };
    expect(loadConfig({ configFile, env })).toMatchObject({ concurrency: 4, durability: "process", mailFrom: "env@example.com" });

    expect(loadConfig({ configFile, env, flags: { concurrency: "6" } })).toMatchObject({ concurrency: 6, durability: "process", mailFrom: "env@example.com" });
  });

  it("ignores empty environment variables and undefined flags", () => {
    const configFile = file({ concurrency: 5 });
    expect(loadConfig({ configFile, env: { TEAMWORK_CONCURRENCY: "" }, flags: { concurrency: undefined } }).concurrency).toBe(5);
  });

  it("reads process.env when no env is given", () => {
    const before = process.env.TEAMWORK_JOB_MEMORY_MB;
    process.env.TEAMWORK_JOB_MEMORY_MB = "300";
    try {
      expect(loadConfig({ configFile: missing() }).jobMemoryMb).toBe(300);
    } finally {
      if (before === undefined) delete process.env.TEAMWORK_JOB_MEMORY_MB;
      else process.env.TEAMWORK_JOB_MEMORY_MB = before;
    }
  });

  it("does not change DEFAULTS", () => {
    const snapshot = structuredClone(DEFAULTS);
    const c = loadConfig({ configFile: file({ cleanup: { maxAge: "1h" }, digest: { recipients: ["a@x.org"] }, jobModules: ["/m.mjs"] }), env: {} });
    c.digest.recipients.push("b@x.org");
    expect(DEFAULTS).toEqual(snapshot);
  });
});

describe("loadConfig: values", () => {
  it("parses durations from text in every source", () => {
    const c = loadConfig({
      configFile: file({ retention: "3d", jobTimeout: "90s" }),
      env: { TEAMWORK_CANCEL_GRACE: "250ms" },
      flags: { shutdownGrace: "1m" },
    });
    expect(c).toMatchObject({ retention: 3 * 86_400_000, jobTimeout: 90_000, cancelGrace: 250, shutdownGrace: 60_000 });
  });

  it("reads nested cleanup.maxAge and digest.recipients from the file", () => {
    const c = loadConfig({ configFile: file({ cleanup: { maxAge: "2h" }, digest: { recipients: [" Ana@example.com ", "bo@example.org"] } }), env: {} });
    expect(c.cleanup).toEqual({ maxAge: 7_200_000 });
    expect(c.digest.recipients).toEqual(["Ana@example.com", "bo@example.org"]);
  });

  it("reads nested keys from the environment, lists split on commas", () => {
    const c = loadConfig({
      configFile: file({ cleanup: { maxAge: "2h" } }),
      env: { TEAMWORK_CLEANUP_MAX_AGE: "30m", TEAMWORK_DIGEST_RECIPIENTS: "a@x.org, b@y.org,,", TEAMWORK_BACKOFF_BASE: "2s" },
    });
    expect(c.cleanup.maxAge).toBe(1_800_000);
    expect(c.digest.recipients).toEqual(["a@x.org", "b@y.org"]);
    expect(c.backoff).toEqual({ base: 2000, cap: DEFAULTS.backoff.cap });
  });

  it("a nested group keeps the defaults of the leaves it does not set", () => {
    const c = loadConfig({ configFile: file({ backoff: { cap: "10m" } }), env: {} });
    expect(c.backoff).toEqual({ base: DEFAULTS.backoff.base, cap: 600_000 });
  });

  it("reads jobModules as a path list from the environment", () => {
    const c = loadConfig({ configFile: missing(), env: { TEAMWORK_JOB_MODULES: ["/a/one.mjs", "/b/two.mjs"].join(delimiter) } });
    expect(c.jobModules).toEqual(["/a/one.mjs", "/b/two.mjs"]);
  });

  it("accepts smtp:// and smtps:// URLs and null", () => {
    expect(loadConfig({ configFile: file({ smtpUrl: "smtps://u:p@mail.example.com:465" }), env: {} }).smtpUrl).toBe("smtps://u:p@mail.example.com:465");
    expect(loadConfig({ configFile: file({ smtpUrl: null }), env: { } }).smtpUrl).toBeNull();
  });
});

describe("loadConfig: errors name the key", () => {
  it("an unknown key in the file suggests the closest known key", () => {
    const e = errorOf({ configFile: file({ concurency: 3 }), env: {} });
    expect(e.message).toMatch(/unknown key "concurency"/);
    expect(e.message).toMatch(/did you mean "concurrency"\?/);
  });

  it("an unknown nested key suggests the closest nested key", () => {
    const e = errorOf({ configFile: file({ cleanup: { maxAg: "1h" } }), env: {} });
    expect(e.message).toMatch(/unknown key "cleanup.maxAg"/);
    expect(e.message).toMatch(/did you mean "cleanup.maxAge"\?/);
  });

  it("an unknown key far from every known key has no suggestion", () => {
    const e = errorOf({ configFile: file({ zzzzzzzzzz: 1 }), env: {} });
    expect(e.message).toMatch(/unknown key "zzzzzzzzzz"/);
    expect(e.message).not.toMatch(/did you mean/);
  });

  it("an unknown flag key is refused too", () => {
    expect(errorOf({ configFile: missing(), env: {}, flags: { durabilty: "full" } }).message).toMatch(/unknown key "durabilty" in flag, did you mean "durability"/);
  });

  it("a bad value in the file names config.json and the key", () => {
    expect(errorOf({ configFile: file({ concurrency: 0 }), env: {} }).message).toBe(
      "invalid configuration: config.json: concurrency must be a whole number from 1 to 64, got 0",
    );
    expect(errorOf({ configFile: file({ concurrency: 2.5 }), env: {} }).message).toMatch(/config.json: concurrency must be a whole number/);
    expect(errorOf({ configFile: file({ durability: "fulll" }), env: {} }).message).toMatch(/config.json: durability must be one of full, process, got "fulll", did you mean "full"\?/);
  });

  it("a bad value in the environment names the variable", () => {
    expect(errorOf({ configFile: missing(), env: { TEAMWORK_CONCURRENCY: "lots" } }).message).toMatch(/TEAMWORK_CONCURRENCY must be a whole number from 1 to 64, got "lots"/);
    expect(errorOf({ configFile: missing(), env: { TEAMWORK_RETENTION: "7" } }).message).toMatch(/TEAMWORK_RETENTION duration "7" has no unit/);
  });

  it("a bad value in a flag names the flag", () => {
    expect(errorOf({ configFile: missing(), env: {}, flags: { concurrency: "65" } }).message).toMatch(/--concurrency must be a whole number from 1 to 64/);
  });

  it("bad nested values name the dotted key", () => {
    expect(errorOf({ configFile: file({ cleanup: { maxAge: 3600 } }), env: {} }).message).toMatch(/config.json: cleanup.maxAge must be a duration like "30s" or "24h", got 3600/);
    expect(errorOf({ configFile: file({ digest: { recipients: ["ok@x.org", "not-an-email"] } }), env: {} }).message).toMatch(
      /config.json: digest.recipients item 2: must be an email address, got "not-an-email"/,
    );
    expect(errorOf({ configFile: missing(), env: { TEAMWORK_DIGEST_RECIPIENTS: "a@x.org,nope" } }).message).toMatch(/TEAMWORK_DIGEST_RECIPIENTS item 2/);
  });

  it("a group that is not an object is refused", () => {
    expect(errorOf({ configFile: file({ cleanup: "1h" }), env: {} }).message).toMatch(/config.json: cleanup must be an object/);
    expect(errorOf({ configFile: file({ digest: ["a@x.org"] }), env: {} }).message).toMatch(/config.json: digest must be an object/);
  });

  it("other bad values: relative job module, non-smtp URL, bad sender", () => {
    expect(errorOf({ configFile: file({ jobModules: ["./rel.mjs"] }), env: {} }).message).toMatch(/jobModules item 1: must be an absolute path/);
    expect(errorOf({ configFile: file({ smtpUrl: "http://mail.example.com" }), env: {} }).message).toMatch(/smtpUrl must use smtp:\/\/ or smtps:\/\//);
    expect(errorOf({ configFile: file({ smtpUrl: "not a url" }), env: {} }).message).toMatch(/smtpUrl is not a valid URL/);
    expect(errorOf({ configFile: file({ mailFrom: "Teamwork <t@x.org>" }), env: {} }).message).toMatch(/mailFrom must be an email address/);
  });

  it("a file that is not JSON or not an object names the file", () => {
    const bad = file("{ concurrency: 3 ");
    expect(errorOf({ configFile: bad, env: {} }).message).toContain(`${bad} is not valid JSON`);
    const arr = file("[1, 2]");
    expect(errorOf({ configFile: arr, env: {} }).message).toContain(`${arr} must hold a JSON object`);
  });

  it("backoff.cap shorter than backoff.base is refused", () => {
    expect(errorOf({ configFile: file({ backoff: { base: "10s", cap: "5s" } }), env: {} }).message).toMatch(/backoff.cap must not be shorter than backoff.base/);
  });

  it("knows the documented keys, with this nesting", () => {
    for (const k of ["concurrency", "durability", "jobModules", "smtpUrl", "mailFrom", "retention", "cleanup.maxAge", "digest.recipients"]) {
      expect(CONFIG_KEYS).toContain(k);
    }
  });
});

describe("loadConfig: database", () => {
  it("is SQLite (null) unless a PostgreSQL URL is given, from the file, TEAMWORK_DATABASE_URL or --database", () => {
    expect(loadConfig({ configFile: missing(), env: {} }).database).toBeNull();
    const url = "postgres://team:s3cret@db.example:5432/teamwork";
    expect(loadConfig({ configFile: file({ database: url }), env: {} }).database).toBe(url);
    expect(loadConfig({ configFile: missing(), env: { TEAMWORK_DATABASE_URL: ` ${url} ` } }).database).toBe(url);
    expect(loadConfig({ configFile: missing(), env: {}, flags: { database: "postgresql://h/db" } }).database).toBe("postgresql://h/db");
    // A socket directory given as ?host= is a host.
    expect(loadConfig({ configFile: missing(), env: {}, flags: { database: "postgres:///db?host=/var/run/postgresql" } }).database).toBe("postgres:///db?host=/var/run/postgresql");
  });

  it("refuses what is not a PostgreSQL URL, naming where it came from, and never echoes the value (it may hold a password)", () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ TEAMWORK_DATABASE_URL: "mysql://root:hunter2@db/teamwork" }, /TEAMWORK_DATABASE_URL must use postgres:\/\/ or postgresql:\/\/, got mysql:\/\//],
      [{ TEAMWORK_DATABASE_URL: "hunter2 is not a url" }, /TEAMWORK_DATABASE_URL is not a valid URL/],
      [{ TEAMWORK_DATABASE_URL: "postgres://:hunter2@/db" }, /TEAMWORK_DATABASE_URL is not a valid URL/],
      [{ TEAMWORK_DATABASE_URL: "postgres:db?password=hunter2" }, /TEAMWORK_DATABASE_URL names no host/],
    ];
    for (const [env, message] of cases) {
      const err = errorOf({ configFile: missing(), env });
      expect(err.message).toMatch(message);
      expect(err.message).not.toContain("hunter2");
    }
    expect(errorOf({ configFile: file({ database: 5432 }), env: {} }).message).toMatch(/config.json: database must be a PostgreSQL URL/);
  });
});
