// One email rule everywhere (issue 17, item 8): the API's validator, the config loader and
// the mailer's address check are run over the same table, and must agree on every row.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import * as v from "../../src/protocol/validate.js";
import { loadConfig } from "../../src/config/config.js";
import { buildMessage, isMailAddress } from "../../src/mail/message.js";
import { emailProblem, isEmail } from "../../src/lib/email.js";

const dir = mkdtempSync(join(tmpdir(), "tw-email-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const local64 = "a".repeat(64);
const label63 = "d".repeat(63);
/** 254 characters exactly: 64 + "@" + 63 + "." + 63 + "." + 61. */
const longest = `${local64}@${label63}.${label63}.${"e".repeat(61)}`;

// [address, accepted?, why]
const TABLE: [string, boolean, string][] = [
  ["ana@example.com", true, "plain"],
  ["teamwork@localhost", true, "one-label domain: the default sender"],
  ["a.b+tag@sub.example.co.uk", true, "dots between atoms, plus, subdomains"],
  ["o'brien@example.ie", true, "apostrophe is atext"],
  ["x_y-z@a-b.io", true, "underscore and hyphen"],
  ["!#$%&'*+/=?^_`{|}~-@example.com", true, "every atext special"],
  ["ana@xn--bcher-kva.example", true, "IDN as punycode"],
  ["ana@123.example", true, "digits in a label"],
  [`${local64}@example.com`, true, "local part of 64 octets"],
  [`ana@${label63}.com`, true, "label of 63"],
  [longest, true, "254 octets"],
  ["a..b@x.com", false, "double dot"],
  [".ana@example.com", false, "leading dot"],
  ["ana.@example.com", false, "trailing dot"],
  [`${local64}a@example.com`, false, "local part of 65 octets"],
  [`${longest.slice(0, -1)}ee`, false, "255 octets"],
  [`ana@${label63}d.com`, false, "label of 64"],
  ["ana@-example.com", false, "label starts with a hyphen"],
  ["ana@example-.com", false, "label ends with a hyphen"],
  ["ana@example..com", false, "empty label"],
  ["ana@.example.com", false, "domain starts with a dot"],
  ["ana@example.com.", false, "domain ends with a dot"],
  ["ana@ex_ample.com", false, "underscore in a domain"],
  ["ana@bücher.example", false, "IDN in UTF-8 (write it as punycode)"],
  ["anä@example.com", false, "non-ASCII local part"],
  ['"ana smith"@example.com', false, "quoted local part"],
  ["ana@[127.0.0.1]", false, "address literal"],
  ["ana", false, "no @"],
  ["ana@", false, "no domain"],
  ["@example.com", false, "no local part"],
  ["a@b@example.com", false, "two @"],
  ["ana smith@example.com", false, "space"],
  ["Ana <ana@example.com>", false, "display name"],
  ["a@b.com,c@d.com", false, "two addresses"],
  ["a@x.org\r\nBcc: evil@x.org", false, "header injection"],
  ["", false, "empty"],
];

function apiAccepts(address: string): boolean {
  try {
    v.email()(address, "assignee");
    return true;
  } catch {
    return false;
  }
}

let n = 0;
function configAccepts(address: string): boolean {
  const configFile = join(dir, `config-${++n}.json`);
  writeFileSync(configFile, JSON.stringify({ mailFrom: address, digest: { recipients: [address] } }));
  try {
    loadConfig({ configFile, env: {} });
    return true;
  } catch {
    return false;
  }
}

async function mailerAccepts(address: string): Promise<boolean> {
  const sends = await buildMessage({ from: address, to: address, subject: "s", text: "t" }).then(
    () => true,
    () => false,
  );
  expect(isMailAddress(address), "isMailAddress agrees with buildMessage").toBe(sends);
  return sends;
}

describe("one email rule", () => {
  it.each(TABLE)("%j: accepted=%s (%s) by the rule, the API, the config and the mailer", async (address, accepted) => {
    expect(isEmail(address)).toBe(accepted);
    expect(emailProblem(address) === null).toBe(accepted);
    expect({ api: apiAccepts(address), config: configAccepts(address), mailer: await mailerAccepts(address) }).toEqual({ api: accepted, config: accepted, mailer: accepted });
  });

  it("what the API stores, the mailer sends: surrounding blanks are trimmed and case folded", async () => {
    const stored = v.email()("  Ana.Smith+tw@Example.COM ", "assignee");
    expect(stored).toBe("ana.smith+tw@example.com");
    expect(await mailerAccepts(stored)).toBe(true);
    expect(v.email()("ana@example.com\n", "assignee")).toBe("ana@example.com");
    expect(configAccepts("  teamwork@localhost ")).toBe(true);
  });

  it("says why an address is refused, and gives the punycode of a UTF-8 domain", () => {
    expect(emailProblem("a..b@x.com")).toMatch(/dot/);
    expect(emailProblem(`${local64}a@example.com`)).toMatch(/64/);
    expect(emailProblem("ana@bücher.example")).toMatch(/xn--bcher-kva\.example/);
    expect(() => v.email()("ana@bücher.example", "assignee")).toThrow(/^assignee: "ana@bücher.example" is not a valid email address: .*xn--bcher-kva/);
  });

  it("takes the default sender from the environment too", () => {
    expect(loadConfig({ configFile: join(dir, "missing.json"), env: { TEAMWORK_MAIL_FROM: "teamwork@localhost" } }).mailFrom).toBe("teamwork@localhost");
  });
});
