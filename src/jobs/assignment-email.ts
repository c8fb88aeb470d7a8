// `assignment-email`: tells the new assignee of a task, by one email ("You were assigned:
// <title>"), over SMTP or into the outbox. Enqueued by `teamwork tasks assign`.
//
// Once the message is accepted, `{ sent: [assignee], messageId }` is checkpointed, so a
// retry after a crash between sending and completing does not mail the assignee twice
// (except in the window between the server's "250 OK" and the checkpoint's commit).
// Failures keep the transport's classification: a 5xx refusal of the address (or a
// refused login) fails the job at once; a refused connection, a timeout or a 4xx reply
// is retried.
//
// The email goes to the assignee named in the payload even if the task was reassigned
// since: it reports the assignment that happened; the body shows the task as it is now.

import { defineJob, PermanentJobError, type JobContext } from "./define.js";
import type { Json } from "../protocol/types.js";
import { invalid, notFound } from "../lib/errors.js";
import { createTransport, MailSendError } from "../mail/transport.js";
import { describeTask, isRecipient, objectPayload, parseOrFail, parseTaskId, SIGNATURE, type MailTask } from "./notify.js";

export interface AssignmentEmailPayload {
  taskId: number;
  assignee: string;
}

export type AssignmentEmailResult = {
  sent: string[];
  messageId: string;
  /** The .eml file, when mail goes to the outbox. */
  path?: string;
};

export function parseAssignmentEmailPayload(payload: unknown): AssignmentEmailPayload {
  const p = objectPayload(payload, "assignment-email", ["taskId", "assignee"], '{"taskId": 12, "assignee": "ana@example.com"}');
  const taskId = parseTaskId(p.taskId);
  if (!isRecipient(p.assignee)) throw invalid(`assignee ${JSON.stringify(p.assignee) ?? String(p.assignee)} is not a valid email address (expected one plain address like ana@example.com)`);
  return { taskId, assignee: p.assignee };
}

export function assignmentSubject(task: MailTask): string {
  return `You were assigned: ${task.title}`;
}

export function assignmentText(task: MailTask, assignee: string): string {
  return `Hello ${assignee},\n\nyou were assigned task #${task.id} on the board "${task.board}".\n\n${describeTask(task)}${SIGNATURE}`;
}

function priorResult(state: Json | null, assignee: string): AssignmentEmailResult | null {
  if (state === null || typeof state !== "object" || Array.isArray(state)) return null;
  const { sent, messageId, path } = state;
  if (!Array.isArray(sent) || !sent.includes(assignee) || typeof messageId !== "string") return null;
  return typeof path === "string" ? { sent: [assignee], messageId, path } : { sent: [assignee], messageId };
}

async function run(payload: unknown, ctx: JobContext): Promise<AssignmentEmailResult> {
  const { taskId, assignee } = parseOrFail(parseAssignmentEmailPayload, payload);
  const already = priorResult(ctx.state, assignee);
  if (already) {
    ctx.progress(100, `already sent to ${assignee} in an earlier attempt`);
    return already;
  }
  ctx.progress(10, `reading task #${taskId}`);
  const task = await ctx.board.task(taskId);
  if (!task) throw new PermanentJobError(`task #${taskId} no longer exists`);
  const transport = createTransport(ctx.settings, ctx.paths.outbox);
  ctx.progress(30, `sending to ${assignee} via ${transport.description}`);
  let sent;
  try {
    sent = await transport.send({ to: assignee, subject: assignmentSubject(task), text: assignmentText(task, assignee) });
  } catch (err) {
    // MailSendError carries `permanent`, which the engine reads: 5xx fails at once, the rest retries.
    if (err instanceof MailSendError) ctx.log(err.message);
    throw err;
  } finally {
    transport.close();
  }
  const result: AssignmentEmailResult = sent.path ? { sent: [assignee], messageId: sent.messageId, path: sent.path } : { sent: [assignee], messageId: sent.messageId };
  await ctx.checkpoint(result);
  ctx.progress(100, `sent to ${assignee}`);
  return result;
}

export default defineJob<unknown, AssignmentEmailResult>({
  type: "assignment-email",
  timeoutMs: 5 * 60_000,
  async validate(payload, lookup) {
    const { taskId } = parseAssignmentEmailPayload(payload);
    if (!(await lookup.taskExists(taskId))) throw notFound(`task ${taskId} not found`);
  },
  run,
});
