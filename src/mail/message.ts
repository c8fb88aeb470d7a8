// Builds one RFC 5322 message: From, To, Subject, Date, Message-ID, MIME-Version and a
// text/plain UTF-8 body (quoted-printable or base64, whichever suits the text).
//
// The MIME work (RFC 2047 encoded words, line folding, transfer encoding) is nodemailer's
// MailComposer, imported lazily so that validating a payload in the daemon does not load
// nodemailer. What we add in front of it is the part that makes header injection
// impossible, whatever nodemailer would do with hostile input:
// - an address is accepted only if it is one bare `local@domain` of printable ASCII by the
//   project's one rule, lib/email.ts (no display name, no comments, no comma, no CR/LF):
//   anything else is refused;
// - a subject has every control character (CR and LF included) and Unicode line
//   separator replaced by a space before it is encoded, so it cannot end its header line.
// The same bytes are written to the outbox and sent over SMTP.

import { randomBytes } from "node:crypto";
import { emailProblem, isEmail } from "../lib/email.js";

/** Longest subject kept (in characters); longer ones are cut with an ellipsis. */
export const MAX_SUBJECT = 250;

/** True for one bare address `local@domain` that is safe to put in a header and an envelope: the project's one rule (lib/email.ts). */
export function isMailAddress(text: string): boolean {
  return isEmail(text);
}

/** A message that could not be built: a bad address. Retrying cannot fix it. */
export class MessageError extends Error {
  readonly permanent = true;
  constructor(message: string) {
    super(message);
    this.name = "MessageError";
  }
}

/**
 * Makes text safe for one header line: CR, LF and every other control character (C0, DEL,
 * C1) and the Unicode line and paragraph separators become a space; runs of white space
 * collapse; the result is trimmed and cut to `max` characters.
 */
export function headerText(text: string, max = MAX_SUBJECT): string {
  const flat = String(text).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, " ").replace(/\s+/g, " ").trim();
  const chars = [...flat];
  return chars.length <= max ? flat : chars.slice(0, max - 1).join("").trimEnd() + "…";
}

export interface MessageInput {
  from: string;
  to: string;
  subject: string;
  text: string;
  /** Defaults to now. */
  date?: Date;
  /** Defaults to a fresh `<random@from-domain>`. */
  messageId?: string;
}

export interface BuiltMessage {
  /** The whole message, CRLF line endings, ready to be written as .eml or sent as SMTP DATA. */
  raw: Buffer;
  /** With angle brackets, as in the header. */
  messageId: string;
  envelope: { from: string; to: string[] };
}

function checkAddress(role: "sender" | "recipient", address: string): string {
  const problem = emailProblem(address);
  if (problem) {
    throw new MessageError(`invalid ${role} address ${JSON.stringify(String(address).slice(0, 100))}: ${problem}; expected one plain address like ana@example.com`);
  }
  return address;
}

/** `<time.random@domain>`: unique without coordination, and tells which host made it. */
export function newMessageId(from: string, now = Date.now()): string {
  const domain = from.slice(from.lastIndexOf("@") + 1);
  return `<${now.toString(36)}.${randomBytes(10).toString("hex")}@${domain}>`;
}

const MESSAGE_ID = /^<[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+>$/;

export async function buildMessage(input: MessageInput): Promise<BuiltMessage> {
  const from = checkAddress("sender", input.from);
  const to = checkAddress("recipient", input.to);
  const messageId = input.messageId ?? newMessageId(from);
  if (!MESSAGE_ID.test(messageId)) throw new MessageError(`invalid Message-ID ${JSON.stringify(messageId.slice(0, 100))}`);
  const { default: MailComposer } = await import("nodemailer/lib/mail-composer");
  const mail = new MailComposer({
    from: { name: "teamwork", address: from },
    to: [{ name: "", address: to }],
    subject: headerText(input.subject),
    // One kind of line break in, CRLF out (below): a lone CR never reaches the wire.
    text: String(input.text).replace(/\r\n?/g, "\n"),
    date: input.date ?? new Date(),
    messageId,
    // RFC 3834: tells auto-responders (vacation replies) not to answer.
    headers: { "Auto-Submitted": "auto-generated" },
    // The message is built from our own strings only: never let it read files or URLs.
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  const built = await mail.compile().build();
  // MailComposer leaves the text's own line breaks as bare LF inside a quoted-printable
  // body; RFC 5322 wants CRLF everywhere. The message is 7-bit by now (headers are encoded
  // words, the body quoted-printable or base64), so this rewrite cannot touch content.
  const raw = Buffer.from(built.toString("latin1").replace(/\r?\n/g, "\r\n"), "latin1");
  return { raw, messageId, envelope: { from, to: [to] } };
}
