// `notify`: one email per recipient about a task, over SMTP or into the outbox.
//
// Delivery is recorded per recipient with ctx.checkpoint, so a retry mails only those not
// reached yet. The checkpoint state is `{ sent: string[], rejected: string[] }`:
// - sent: accepted by the server (or written to the outbox) in some attempt;
// - rejected: refused for good (5xx at RCPT TO or DATA); never tried again.
// A recipient refused for now (4xx) is in neither list: the attempt goes on with the
// others, then throws so that the engine retries it later. A failure of the server itself
// (refused connection, timeout, 421) ends the attempt at once: the rest would fail alike.
//
// Hazard: a crash between the server's "250 OK" and the checkpoint's commit sends that one
// recipient a second copy on retry (at least once, as every job here).
//
// Also exported for assignment-email.ts: checking a payload and describing a task.

import { defineJob, PermanentJobError, type JobContext } from "./define.js";
import type { Json } from "../protocol/types.js";
import type { BoardTask } from "../store/board-port.js";
import { invalid, notFound, TeamworkError } from "../lib/errors.js";
import { isEmail } from "../lib/email.js";
import { isMailAddress } from "../mail/message.js";
import { createTransport, MailSendError } from "../mail/transport.js";

export const MAX_RECIPIENTS = 100;
export const MAX_MESSAGE_LENGTH = 5000;

export interface NotifyPayload {
  taskId: number;
  to: string[];
  message?: string;
}

export interface NotifyResult {
  /** Delivered in this attempt. */
  sent: string[];
  /** Delivered in an earlier attempt, so not sent again. */
  skipped: string[];
  /** Refused for good by the server (in this attempt or an earlier one). */
  rejected: string[];
}

// ---------------------------------------------------------------------------------------
// Shared with assignment-email.

/** An address we will put in a To header: the project's check and the mail module's. */
export const isRecipient = (text: unknown): text is string => typeof text === "string" && isEmail(text) && isMailAddress(text);

export function objectPayload(payload: unknown, type: string, fields: readonly string[], example: string): Record<string, unknown> {
  if (payload === null || typeof payload !== "object" || Array.isArray(payload)) throw invalid(`the ${type} payload must be an object like ${example}`);
  const p = payload as Record<string, unknown>;
  for (const k of Object.keys(p)) if (!fields.includes(k)) throw invalid(`unknown field "${k}" in the ${type} payload (it takes ${fields.join(", ")})`);
  return p;
}

export function parseTaskId(value: unknown): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) throw invalid(`taskId must be a task id (a positive integer), got ${JSON.stringify(value) ?? String(value)}`);
  return value;
}

/** Payload errors found only at run time (a payload stored by an older version) are permanent. */
export function parseOrFail<T>(parse: (p: unknown) => T, payload: unknown): T {
  try {
    return parse(payload);
  } catch (err) {
    if (err instanceof TeamworkError) throw new PermanentJobError(err.message);
    throw err;
  }
}

/** A task as a mail describes it (read through ctx.board.task). */
export type MailTask = BoardTask;

/** The task's fields as aligned lines, then its description. */
export function describeTask(task: MailTask, today = new Date().toISOString().slice(0, 10)): string {
  const overdue = task.dueDate !== null && task.status !== "done" && task.dueDate < today;
  const lines = [
    `Task:      #${task.id} ${task.title}`,
    `Board:     ${task.board}`,
    `Status:    ${task.status}`,
    `Assignee:  ${task.assignee ?? "nobody"}`,
    `Due:       ${task.dueDate ? `${task.dueDate}${overdue ? " (overdue)" : ""}` : "no due date"}`,
  ];
  if (task.description.trim()) lines.push("", task.description.trim());
  return lines.join("\n");
}

export const SIGNATURE = "\n\n-- \nSent by teamwork.\n";

// ---------------------------------------------------------------------------------------

const EXAMPLE = '{"taskId": 12, "to": ["ana@example.com"], "message": "Please review"}';

export function parseNotifyPayload(payload: unknown): NotifyPayload {
  const p = objectPayload(payload, "notify", ["taskId", "to", "message"], EXAMPLE);
  const taskId = parseTaskId(p.taskId);
  if (!Array.isArray(p.to)) throw invalid(`to must be a list of email addresses, like ["ana@example.com"]`);
  if (p.to.length === 0) throw invalid("to must list at least one recipient");
  if (p.to.length > MAX_RECIPIENTS) throw invalid(`to lists ${p.to.length} recipients; at most ${MAX_RECIPIENTS} are allowed`);
  const seen = new Set<string>();
  const to: string[] = [];
  for (const a of p.to as unknown[]) {
    if (!isRecipient(a)) throw invalid(`${JSON.stringify(a) ?? String(a)} is not a valid email address (expected one plain address like ana@example.com)`);
    const key = a.toLowerCase();
    if (seen.has(key)) throw invalid(`${a} is listed twice`);
    seen.add(key);
    to.push(a);
  }
  if (p.message !== undefined && typeof p.message !== "string") throw invalid("message must be text");
  if (typeof p.message === "string" && p.message.length > MAX_MESSAGE_LENGTH) throw invalid(`message is ${p.message.length} characters long; at most ${MAX_MESSAGE_LENGTH} are allowed`);
  return p.message === undefined ? { taskId, to } : { taskId, to, message: p.message };
}

// A type, not an interface: it must be assignable to Json for ctx.checkpoint.
type NotifyState = { sent: string[]; rejected: string[] };

function priorState(state: Json | null): NotifyState {
  const s = state !== null && typeof state === "object" && !Array.isArray(state) ? state : {};
  const strings = (v: Json | undefined) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);
  return { sent: strings(s.sent), rejected: strings(s.rejected) };
}

export function notifySubject(task: MailTask): string {
  return `[teamwork] Task #${task.id}: ${task.title}`;
}

export function notifyText(task: MailTask, message: string | undefined): string {
  const intro = message?.trim() ? `${message.trim()}\n\n` : `A notification about task #${task.id}.\n\n`;
  return intro + describeTask(task) + SIGNATURE;
}

const union = (a: string[], b: string[]) => [...new Set([...a, ...b])];

async function run(payload: unknown, ctx: JobContext): Promise<NotifyResult> {
  const p = parseOrFail(parseNotifyPayload, payload);
  const total = p.to.length;
  ctx.progress(0, `reading task #${p.taskId}`);
  const task = await ctx.board.task(p.taskId);
  if (!task) throw new PermanentJobError(`task #${p.taskId} no longer exists`);

  const prior = priorState(ctx.state);
  const wasSent = new Set(prior.sent.map((a) => a.toLowerCase()));
  const wasRejected = new Set(prior.rejected.map((a) => a.toLowerCase()));
  const sent: string[] = [];
  const skipped: string[] = [];
  const rejected: string[] = [];
  const deferred: string[] = [];
  // Everything recorded so far, including what earlier attempts recorded.
  const state = (): NotifyState => ({ sent: union(prior.sent, sent), rejected: union(prior.rejected, rejected) });
  const pct = (done: number) => Math.round(5 + (95 * done) / total);
  const reached = () => `${skipped.length + sent.length} of ${total} recipients reached so far`;

  const subject = notifySubject(task);
  const text = notifyText(task, p.message);
  const transport = createTransport(ctx.settings, ctx.paths.outbox);
  ctx.progress(5, `mailing ${total} recipient${total === 1 ? "" : "s"} about task #${task.id} via ${transport.description}`);
  try {
    for (const [i, to] of p.to.entries()) {
      const n = `(${i + 1}/${total})`;
      if (wasSent.has(to.toLowerCase())) {
        skipped.push(to);
        ctx.progress(pct(i + 1), `already sent to ${to} ${n}`);
        continue;
      }
      if (wasRejected.has(to.toLowerCase())) {
        rejected.push(to);
        ctx.progress(pct(i + 1), `${to} was rejected earlier ${n}`);
        continue;
      }
      if (ctx.signal.aborted) throw ctx.signal.reason;
      try {
        await transport.send({ to, subject, text });
      } catch (err) {
        if (!(err instanceof MailSendError)) throw err;
        if (err.scope === "transport") {
          // The server (or the configuration) fails every message alike: stop here.
          if (err.permanent) throw new PermanentJobError(`${err.message} (${reached()})`);
          throw new Error(`${err.message} (${reached()}; the others will be tried again)`);
        }
        if (err.permanent) {
          rejected.push(to);
          ctx.log(err.message);
          await ctx.checkpoint(state());
          ctx.progress(pct(i + 1), `rejected ${to} ${n}`);
        } else {
          deferred.push(err.message);
          ctx.log(err.message);
          ctx.progress(pct(i + 1), `could not send to ${to} yet ${n}`);
        }
        continue;
      }
      sent.push(to);
      await ctx.checkpoint(state());
      ctx.progress(pct(i + 1), `sent to ${to} ${n}`);
    }
  } finally {
    transport.close();
  }

  if (deferred.length > 0) {
    throw new Error(`${deferred.length} of ${total} recipient${total === 1 ? "" : "s"} could not be reached yet and will be tried again: ${deferred.join("; ")}`);
  }
  if (sent.length + skipped.length === 0) {
    throw new PermanentJobError(`every recipient was rejected: ${rejected.join(", ")}`);
  }
  return { sent, skipped, rejected };
}

export default defineJob<unknown, NotifyResult>({
  type: "notify",
  // 100 recipients against a slow server: each send has its own 30 s/60 s timeouts.
  timeoutMs: 15 * 60_000,
  async validate(payload, lookup) {
    const { taskId } = parseNotifyPayload(payload);
    if (!(await lookup.taskExists(taskId))) throw notFound(`task ${taskId} not found`);
  },
  run,
});
