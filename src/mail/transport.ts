// Delivers built messages (message.ts) one recipient at a time, over SMTP when `smtpUrl`
// is configured and otherwise into the outbox folder as .eml files.
//
// Every failure is a MailSendError that says two things the jobs act on:
// - `permanent`: retrying the same message would fail the same way (a 5xx reply, a bad
//   address, a bad configuration) — otherwise it is worth another attempt (connection
//   refused, timeouts, 4xx replies);
// - `scope`: "recipient" when only this message's recipient is affected (the server
//   refused the recipient or the message at RCPT TO / DATA), "transport" when every
//   further message would fail the same way (server down, login refused, bad URL), so a
//   job sending many messages should stop at once.
//
// Hazard: the SMTP password lives in the URL. It never appears in a message of ours: the
// URL is shown masked (smtp://user:***@host:587), and any error text from the library or
// the server is scrubbed of the password before it is kept.

import { mkdirSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { NodemailerError } from "nodemailer/lib/errors";
import type { SMTPTransportOptions } from "nodemailer/lib/smtp-transport";
import { closest } from "../lib/suggest.js";
import { errorMessage } from "../lib/errors.js";
import { writeFileAtomic } from "../lib/fs.js";
import { buildMessage, MessageError } from "./message.js";

export interface MailSettings {
  smtpUrl: string | null;
  mailFrom: string;
}

export interface MailToSend {
  to: string;
  subject: string;
  text: string;
}

export interface SendResult {
  /** With angle brackets, as in the message's header. */
  messageId: string;
  /** The .eml file written (outbox transport only). */
  path?: string;
}

export interface MailTransport {
  /** "smtp://user:***@host:port" or "outbox <dir>": safe to show and log. */
  readonly description: string;
  send(msg: MailToSend): Promise<SendResult>;
  close(): void;
}

export type FailureScope = "recipient" | "transport";

export class MailSendError extends Error {
  readonly permanent: boolean;
  readonly scope: FailureScope;
  /** nodemailer's code (ECONNECTION, ETIMEDOUT, EENVELOPE, EAUTH, …) or ours (EADDRESS, ECONFIG). */
  readonly code: string | undefined;
  /** The SMTP reply code, when the server answered. */
  readonly responseCode: number | undefined;
  readonly recipient: string;

  constructor(message: string, opts: { permanent: boolean; scope: FailureScope; code?: string; responseCode?: number; recipient: string }) {
    super(message);
    this.name = "MailSendError";
    this.permanent = opts.permanent;
    this.scope = opts.scope;
    this.code = opts.code;
    this.responseCode = opts.responseCode;
    this.recipient = opts.recipient;
  }
}

export function createTransport(settings: MailSettings, outboxDir: string): MailTransport {
  return settings.smtpUrl ? smtpTransport(settings.smtpUrl, settings.mailFrom) : outboxTransport(outboxDir, settings.mailFrom);
}

/** Builds the message, turning a refused address into a permanent, recipient-scoped error. */
async function build(from: string, msg: MailToSend) {
  try {
    return await buildMessage({ from, to: msg.to, subject: msg.subject, text: msg.text });
  } catch (err) {
    if (!(err instanceof MessageError)) throw err;
    const sender = /sender/.test(err.message);
    throw new MailSendError(err.message, { permanent: true, scope: sender ? "transport" : "recipient", code: sender ? "ECONFIG" : "EADDRESS", recipient: msg.to });
  }
}

// ---------------------------------------------------------------------------------------
// Outbox: one .eml file per message.

let outboxSeq = 0;

/**
 * `20261128T101502123Z-000001-9f3a2c1b.eml`: sorts by creation time (UTC, millisecond),
 * then by a per-thread counter; the random part keeps names from different worker threads
 * or daemons apart.
 */
export function outboxFileName(now = Date.now()): string {
  const stamp = new Date(now).toISOString().replace(/[-:.]/g, "");
  outboxSeq = (outboxSeq + 1) % 1_000_000;
  return `${stamp}-${String(outboxSeq).padStart(6, "0")}-${randomBytes(4).toString("hex")}.eml`;
}

function outboxTransport(dir: string, from: string): MailTransport {
  return {
    description: `outbox ${dir}`,
    async send(msg) {
      const built = await build(from, msg);
      const path = join(dir, outboxFileName());
      // Written to a partial file and renamed: a reader never sees half a message, and a
      // message that could not be written whole (a full disk) is not reported as sent.
      try {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        writeFileAtomic(path, built.raw, 0o600);
      } catch (err) {
        // Every further message would meet the same disk: a transport failure, worth a retry.
        throw new MailSendError(`could not put the message to ${msg.to} in the outbox: ${errorMessage(err)}`, { permanent: false, scope: "transport", code: (err as { code?: string }).code ?? "EOUTBOX", recipient: msg.to });
      }
      return { messageId: built.messageId, path };
    },
    close() {},
  };
}

// ---------------------------------------------------------------------------------------
// SMTP.

/** Query parameters of smtpUrl that are passed on to nodemailer, with their types. */
const URL_OPTIONS: Record<string, "boolean" | "number" | "string"> = {
  requireTLS: "boolean",
  ignoreTLS: "boolean",
  "tls.rejectUnauthorized": "boolean",
  "tls.servername": "string",
  name: "string",
  connectionTimeout: "number",
  greetingTimeout: "number",
  socketTimeout: "number",
};

export interface ParsedSmtpUrl {
  options: SMTPTransportOptions;
  /** The URL with the password replaced by ***: safe to show. */
  masked: string;
  /** Strings that must never appear in a message: the password in every form it takes. */
  secrets: string[];
}

/** Masks the password of an SMTP URL (or of any URL), for messages and logs. */
export function maskSmtpUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString().replace(/\/$/, "");
  } catch {
    // Not parseable: hide everything between "//" and "@", where a password would be.
    return url.replace(/\/\/[^@/]*@/, "//***@");
  }
}

const configError = (message: string) => new MailSendError(message, { permanent: true, scope: "transport", code: "ECONFIG", recipient: "" });

/**
 * smtp://[user[:pass]@]host[:port][?option=value…] (STARTTLS when the server offers it) or
 * smtps://… (TLS from the first byte). User and password are URL-decoded.
 */
export function parseSmtpUrl(url: string): ParsedSmtpUrl {
  const masked = maskSmtpUrl(url);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw configError(`smtpUrl ${masked} is not a valid URL (expected smtp://host:port or smtps://host:port)`);
  }
  if (u.protocol !== "smtp:" && u.protocol !== "smtps:") throw configError(`smtpUrl must use smtp:// or smtps://, got ${u.protocol}//`);
  if (!u.hostname) throw configError(`smtpUrl ${masked} has no host`);
  const secure = u.protocol === "smtps:";
  const options: SMTPTransportOptions = {
    host: u.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: u.port ? Number(u.port) : secure ? 465 : 587,
    secure,
    // Shorter than nodemailer's defaults (2 min to connect, 10 min idle): a job should
    // learn that the server is gone in time to retry, not hold its slot.
    connectionTimeout: 30_000,
    greetingTimeout: 30_000,
    socketTimeout: 60_000,
    logger: false,
    debug: false,
  };
  const secrets: string[] = [];
  if (u.username || u.password) {
    const user = decode(u.username, masked);
    const pass = decode(u.password, masked);
    options.auth = { user, pass };
    // Raw, as written in the URL, and as AUTH LOGIN / AUTH PLAIN put it on the wire.
    if (pass) secrets.push(pass, u.password, encodeURIComponent(pass), Buffer.from(pass).toString("base64"), Buffer.from(`\0${user}\0${pass}`).toString("base64"));
  }
  const tls: Record<string, unknown> = {};
  for (const [key, raw] of u.searchParams) {
    const kind = URL_OPTIONS[key];
    if (!kind) {
      const guess = closest(key, Object.keys(URL_OPTIONS));
      throw configError(`smtpUrl has an unknown option "${key}"${guess ? `, did you mean "${guess}"?` : ` (known: ${Object.keys(URL_OPTIONS).join(", ")})`}`);
    }
    let value: string | number | boolean = raw;
    if (kind === "boolean") {
      if (raw !== "true" && raw !== "false") throw configError(`smtpUrl option ${key} must be true or false, got "${raw}"`);
      value = raw === "true";
    } else if (kind === "number") {
      value = Number(raw);
      if (!Number.isInteger(value) || value <= 0) throw configError(`smtpUrl option ${key} must be a number of milliseconds, got "${raw}"`);
    }
    if (key.startsWith("tls.")) tls[key.slice(4)] = value;
    else (options as Record<string, unknown>)[key] = value;
  }
  if (Object.keys(tls).length > 0) options.tls = tls;
  return { options, masked, secrets: [...new Set(secrets)].filter((s) => s.length > 0) };
}

function decode(text: string, masked: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw configError(`smtpUrl ${masked} has a badly encoded user or password`);
  }
}

/** Replaces every secret in text with ***. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join("***");
  return out;
}

/** What a failed SMTP exchange means for this message and for the ones after it. */
export function classifySmtpError(err: NodemailerError, recipient: string, where: string, secrets: readonly string[]): MailSendError {
  const code = typeof err.code === "string" ? err.code : undefined;
  const responseCode = typeof err.responseCode === "number" ? err.responseCode : undefined;
  const command = typeof err.command === "string" ? err.command.toUpperCase() : "";
  // 5yz is a permanent refusal (RFC 5321 §4.2.1), except 503 "bad sequence of commands",
  // which says the session was confused rather than the message refused.
  const permanent = responseCode !== undefined ? responseCode >= 500 && responseCode < 600 && responseCode !== 503 : code === "ECONFIG" || code === "ENOAUTH";
  // Only a reply to RCPT TO or DATA is about this message; 421 means the server is
  // closing the connection, whatever the command was.
  const aboutMessage = responseCode !== undefined && responseCode !== 421 && (command.startsWith("RCPT") || command === "DATA" || code === "EMESSAGE" || (code === "EENVELOPE" && !command.startsWith("MAIL")));
  const scope: FailureScope = aboutMessage ? "recipient" : "transport";
  const reply = err.response ? err.response.trim() : (err.message ?? String(err));
  let what: string;
  if (scope === "recipient") what = `${permanent ? "rejected" : "temporarily refused"} ${recipient}: ${reply}`;
  else if (code === "EAUTH") what = `login refused: ${reply}`;
  else if (code === "ETLS") what = `TLS failed: ${reply}`;
  else if (code === "ECONNECTION" || code === "ESOCKET" || code === "ETIMEDOUT" || code === "EDNS") {
    const orig = (err as { originalCode?: string }).originalCode ?? (err as { errno?: unknown }).errno;
    what = `${err.message}${typeof orig === "string" && !err.message.includes(orig) ? ` (${orig})` : ""}`;
  } else what = reply;
  const message = scrub(`SMTP ${where}: ${what}${code ? ` [${code}${responseCode ? ` ${responseCode}` : ""}]` : ""}`, secrets);
  return new MailSendError(message.length > 2000 ? message.slice(0, 2000) + "…" : message, { permanent, scope, code, responseCode, recipient });
}

function smtpTransport(url: string, from: string): MailTransport {
  const masked = maskSmtpUrl(url);
  // Parsed at the first send, so that a bad URL fails the job (with a clear, permanent
  // error) rather than the code that creates the transport.
  let transporter: Promise<{ t: import("nodemailer").Transporter; secrets: string[] }> | null = null;
  const open = () =>
    (transporter ??= (async () => {
      const parsed = parseSmtpUrl(url);
      const nodemailer = await import("nodemailer");
      return { t: nodemailer.createTransport(parsed.options), secrets: parsed.secrets };
    })());
  return {
    description: masked,
    async send(msg) {
      const built = await build(from, msg);
      const { t, secrets } = await open();
      try {
        await t.sendMail({ envelope: built.envelope, raw: built.raw });
      } catch (err) {
        throw classifySmtpError(err as NodemailerError, msg.to, masked, secrets);
      }
      return { messageId: built.messageId };
    },
    close() {
      if (transporter) void transporter.then(({ t }) => t.close(), () => {});
    },
  };
}
