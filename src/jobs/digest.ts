// `digest`: mails a summary of the task events since the last sent digest to
// digest.recipients. The cursor (meta "digest.cursor") moves only after this job completes
// (scheduler/housekeeping.ts), so a failed or interrupted send loses nothing. Recipients
// already mailed are checkpointed, so a retry does not mail them twice.

import { defineJob, PermanentJobError, type JobContext } from "./define.js";
import { buildDigest, DIGEST_CURSOR_KEY, type DigestCursor } from "../board/digest.js";
import { createTransport, MailSendError } from "../mail/transport.js";

const MAX_EVENTS = 100_000;

export interface DigestResult {
  sent: boolean;
  reason?: string;
  recipients: string[];
  events: number;
  fromEventId: number;
  toEventId: number;
  subject: string;
  sentAt?: string;
}

async function run(payload: unknown, ctx: JobContext): Promise<DigestResult> {
  const state = (ctx.state ?? null) as { toEventId: number; sent: string[] } | null;
  const cursor = (await ctx.board.meta(DIGEST_CURSOR_KEY)) as DigestCursor | null;
  const afterEventId = cursor?.lastEventId ?? 0;
  // A retry sends the same digest it started with: the same events, to the rest.
  const events = (await ctx.board.eventsAfter(afterEventId, state ? Math.max(0, state.toEventId - afterEventId) : MAX_EVENTS)).filter((e) => !state || e.id <= state.toEventId);
  const digest = buildDigest(events, { afterEventId, since: cursor?.sentAt ?? null, now: Date.now() });
  const recipients = ctx.settings.digestRecipients;
  const base = { recipients, events: digest.toEventId - digest.afterEventId, fromEventId: digest.afterEventId, toEventId: digest.toEventId, subject: digest.subject };
  if (recipients.length === 0) return { ...base, sent: false, reason: "no recipients (set digest.recipients in config.json)" };
  if (digest.empty && !ctx.settings.digestSendEmpty) return { ...base, sent: false, reason: "nothing happened since the last digest" };

  const sent = state?.sent ?? [];
  await ctx.checkpoint({ toEventId: digest.toEventId, sent });
  const transport = createTransport(ctx.settings, ctx.paths.outbox);
  let retryable: MailSendError | null = null;
  try {
    for (const [i, to] of recipients.entries()) {
      if (sent.includes(to)) continue;
      if (ctx.signal.aborted) throw ctx.signal.reason;
      try {
        await transport.send({ to, subject: digest.subject, text: digest.text });
        sent.push(to);
        await ctx.checkpoint({ toEventId: digest.toEventId, sent });
        ctx.progress(Math.round(((i + 1) / recipients.length) * 100), `sent to ${to} (${i + 1}/${recipients.length})`);
      } catch (err) {
        if (!(err instanceof MailSendError)) throw err;
        if (err.permanent && err.scope === "recipient") {
          ctx.log(`digest not delivered to ${to}: ${err.message}`);
          continue;
        }
        if (err.permanent) throw new PermanentJobError(err.message);
        retryable = err;
        if (err.scope === "transport") break;
      }
    }
  } finally {
    transport.close();
  }
  if (retryable) throw retryable;
  return { ...base, sent: true, recipients: sent, sentAt: new Date().toISOString() };
}

export default defineJob({
  type: "digest",
  maxAttempts: 5,
  validate(payload) {
    if (payload !== null && (typeof payload !== "object" || Array.isArray(payload) || Object.keys(payload).length > 0)) {
      throw new Error("digest takes no payload");
    }
  },
  run,
});
