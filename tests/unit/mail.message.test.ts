// src/mail/message.ts: real messages, parsed back with mailparser; header injection refused
// or neutralised.

import { describe, expect, it } from "vitest";
import { simpleParser } from "mailparser";
import { buildMessage, headerText, isMailAddress, MessageError, newMessageId } from "../../src/mail/message.js";

const base = { from: "teamwork@localhost", to: "ana@example.com", subject: "Task #1: Write spec", text: "Hello Ana,\nthe spec is due.\n" };

/** The header block of a raw message, unfolded, as [name, value] lines. */
function headerLines(raw: Buffer): string[] {
  const text = raw.toString("latin1");
  const end = text.indexOf("\r\n\r\n");
  expect(end).toBeGreaterThan(0);
  return text.slice(0, end).replace(/\r\n[ \t]+/g, " ").split("\r\n");
}

describe("buildMessage", () => {
  it("writes every RFC 5322 header and a UTF-8 text body that parses back", async () => {
    const date = new Date("2026-11-28T10:15:00Z");
    const msg = await buildMessage({ ...base, date });
    const lines = headerLines(msg.raw);
    const names = lines.map((l) => l.slice(0, l.indexOf(":")).toLowerCase());
    for (const h of ["from", "to", "subject", "date", "message-id", "mime-version", "content-type", "content-transfer-encoding"]) expect(names).toContain(h);
    expect(lines).toContain("MIME-Version: 1.0");
    expect(lines.find((l) => /^content-type:/i.test(l))).toMatch(/text\/plain; charset=utf-8/i);

    const parsed = await simpleParser(msg.raw);
    expect(parsed.from?.value).toEqual([{ name: "teamwork", address: "teamwork@localhost" }]);
    expect(parsed.to && !Array.isArray(parsed.to) ? parsed.to.value : null).toEqual([{ name: "", address: "ana@example.com" }]);
    expect(parsed.subject).toBe("Task #1: Write spec");
    expect(parsed.text).toBe("Hello Ana,\nthe spec is due.\n");
    expect(parsed.date?.toISOString()).toBe(date.toISOString());
    expect(parsed.messageId).toBe(msg.messageId);
    expect(parsed.headers.get("auto-submitted")).toBe("auto-generated");
    expect(msg.envelope).toEqual({ from: "teamwork@localhost", to: ["ana@example.com"] });
  });

  it("encodes a non-ASCII subject as RFC 2047 words and picks a transfer encoding for the body", async () => {
    const subject = "Tâche #7 : réviser le schéma — 日本語";
    const ascii = await buildMessage({ ...base, subject, text: "Mostly ASCII with one é.\n" });
    const raw = ascii.raw.toString("latin1");
    expect(/[^\x00-\x7f]/.test(raw)).toBe(false); // 7-bit clean on the wire
    expect(headerLines(ascii.raw).find((l) => l.startsWith("Subject:"))).toMatch(/=\?UTF-8\?[QB]\?/i);
    expect(raw).toMatch(/Content-Transfer-Encoding: quoted-printable/i);
    expect((await simpleParser(ascii.raw)).subject).toBe(subject);

    const cjk = await buildMessage({ ...base, text: "日本語のテキストです。\n".repeat(20) });
    expect(cjk.raw.toString("latin1")).toMatch(/Content-Transfer-Encoding: base64/i);
    expect((await simpleParser(cjk.raw)).text).toBe("日本語のテキストです。\n".repeat(20));
  });

  it("keeps every line under 998 octets and ends each with CRLF", async () => {
    const msg = await buildMessage({ ...base, subject: "long ".repeat(200), text: "x".repeat(5000) + "\r\n" + "ü".repeat(3000) + "\r" + "end\n" });
    const text = msg.raw.toString("latin1");
    expect(text.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/);
    for (const line of text.split("\r\n")) expect(line.length).toBeLessThanOrEqual(998);
    const parsed = await simpleParser(msg.raw);
    expect(parsed.text).toBe("x".repeat(5000) + "\n" + "ü".repeat(3000) + "\nend\n");
    expect([...(parsed.subject ?? "")].length).toBeLessThanOrEqual(250);
  });

  it("neutralises CR/LF in the subject: no header can be injected", async () => {
    for (const subject of ["Hi\r\nBcc: evil@attacker.org", "Hi\nBcc: evil@attacker.org", "Hi\rBcc: evil@attacker.org", "Hi\u2028Bcc: evil@attacker.org", "Hi\r\n\r\nInjected body"]) {
      const msg = await buildMessage({ ...base, subject });
      const lines = headerLines(msg.raw);
      expect(lines.some((l) => /^bcc:/i.test(l))).toBe(false);
      expect(lines.filter((l) => /^subject:/i.test(l))).toHaveLength(1);
      const parsed = await simpleParser(msg.raw);
      expect(parsed.headers.has("bcc")).toBe(false);
      expect(parsed.subject).toBe(headerText(subject));
      expect(parsed.subject).not.toMatch(/[\r\n]/);
      expect(parsed.text).toBe(base.text);
    }
  });

  it("refuses any recipient or sender that is not one plain address", async () => {
    const bad = [
      "ana@example.com\r\nBcc: evil@attacker.org",
      "ana@example.com\nBcc: evil@attacker.org",
      "ana@example.com, evil@attacker.org",
      "Ana <ana@example.com>",
      "<ana@example.com>",
      "ana@example.com (comment)",
      "ana",
      "ana@",
      "@example.com",
      ".ana@example.com",
      "an..a@example.com",
      "ana@-example.com",
      "ana@example..com",
      "\"ana\"@example.com",
      "anä@example.com",
      "ana@exämple.com",
      "ana @example.com",
      "",
      "a".repeat(65) + "@example.com",
      "ana@" + "a".repeat(250) + ".com",
    ];
    for (const to of bad) {
      await expect(buildMessage({ ...base, to }), JSON.stringify(to)).rejects.toBeInstanceOf(MessageError);
      await expect(buildMessage({ ...base, from: to }), JSON.stringify(to)).rejects.toThrow(/invalid sender address/);
    }
    const err = await buildMessage({ ...base, to: "x\r\ny" }).catch((e: MessageError) => e);
    expect(err).toMatchObject({ permanent: true });
    expect((err as Error).message).toMatch(/invalid recipient address "x\\r\\ny"/);
  });

  it("gives every message its own Message-ID on the sender's domain", async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 50; i++) ids.add((await buildMessage(base)).messageId);
    expect(ids.size).toBe(50);
    for (const id of ids) expect(id).toMatch(/^<[a-z0-9]+\.[0-9a-f]{20}@localhost>$/);
    expect(newMessageId("ops@mail.example.org")).toMatch(/@mail\.example\.org>$/);
    await expect(buildMessage({ ...base, messageId: "<a@b>\r\nBcc: x@y.org" })).rejects.toThrow(/invalid Message-ID/);
  });
});

describe("isMailAddress", () => {
  it("accepts plain addresses, including a one-label domain for the default sender", () => {
    for (const a of ["ana@example.com", "a.b+tag@sub.example.co.uk", "o'brien@example.ie", "teamwork@localhost", "x_y-z@a-b.io"]) expect(isMailAddress(a), a).toBe(true);
  });
});

describe("headerText", () => {
  it("turns control characters and line separators into single spaces and cuts long text", () => {
    expect(headerText("a\r\nb\tc\u0000d\u007fe\u0085f\u2029g")).toBe("a b c d e f g");
    expect(headerText("  spaced   out  ")).toBe("spaced out");
    const long = headerText("é".repeat(300), 10);
    expect([...long]).toHaveLength(10);
    expect(long.endsWith("…")).toBe(true);
  });
});
