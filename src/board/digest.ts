// The activity digest, as a pure function of task events: what happened since the last
// digest, grouped by board, with counts and titles. `digest preview` and the `digest` job
// both call it, so the preview is exactly what would be sent.

import type { TaskEvent, TaskEventType } from "../protocol/types.js";

export const DIGEST_TYPES = ["created", "completed", "assigned", "deleted"] as const;
type DigestType = (typeof DIGEST_TYPES)[number];

export interface DigestItem {
  taskId: number;
  title: string;
  assignee?: string;
}

export interface Digest {
  /** Events after this id are included (the cursor of the last sent digest). */
  afterEventId: number;
  /** The last event id included; the cursor moves here once the digest is sent. */
  toEventId: number;
  since: string | null;
  until: string;
  counts: Record<DigestType, number>;
  boards: { board: string; counts: Record<DigestType, number>; items: Record<DigestType, DigestItem[]> }[];
  empty: boolean;
  subject: string;
  text: string;
}

const LISTED_PER_KIND = 50;

/**
 * A title as one line of the digest's text: its line breaks (CR, LF, VT, FF, NEL, U+2028,
 * U+2029) become spaces, so a title cannot start a line of its own (a forged board heading)
 * in the preview or the mail. The structured digest keeps titles as they are.
 */
const oneLine = (text: string): string => text.replace(/[\r\n\v\f\u0085\u2028\u2029]+/g, " ").trim();
const zero = (): Record<DigestType, number> => ({ created: 0, completed: 0, assigned: 0, deleted: 0 });

export function buildDigest(events: TaskEvent[], opts: { afterEventId: number; since: string | null; now: number }): Digest {
  const boards = new Map<string, { counts: Record<DigestType, number>; items: Record<DigestType, DigestItem[]> }>();
  const counts = zero();
  let toEventId = opts.afterEventId;
  for (const e of events) {
    toEventId = Math.max(toEventId, e.id);
    if (!(DIGEST_TYPES as readonly TaskEventType[]).includes(e.type)) continue;
    const type = e.type as DigestType;
    let b = boards.get(e.board);
    if (!b) boards.set(e.board, (b = { counts: zero(), items: { created: [], completed: [], assigned: [], deleted: [] } }));
    b.counts[type]++;
    counts[type]++;
    const item: DigestItem = { taskId: e.taskId, title: e.title };
    if (type === "assigned" && typeof e.data.assignee === "string") item.assignee = e.data.assignee;
    if (b.items[type].length < LISTED_PER_KIND) b.items[type].push(item);
  }
  const until = new Date(opts.now).toISOString();
  const empty = DIGEST_TYPES.every((t) => counts[t] === 0);
  const sorted = [...boards].sort(([a], [b]) => a.localeCompare(b)).map(([board, v]) => ({ board, ...v }));
  const summary = DIGEST_TYPES.filter((t) => counts[t] > 0).map((t) => `${counts[t]} ${t}`).join(", ");
  const subject = empty ? "teamwork digest: no activity" : `teamwork digest: ${summary}`;
  const lines: string[] = [`Task board activity ${opts.since ? `since ${opts.since.replace("T", " ").slice(0, 16)} UTC` : "so far"} (until ${until.replace("T", " ").slice(0, 16)} UTC).`, ""];
  if (empty) lines.push("Nothing happened on the board.");
  for (const b of sorted) {
    lines.push(`Board ${b.board}`);
    for (const t of DIGEST_TYPES) {
      if (b.counts[t] === 0) continue;
      const listed = b.items[t].map((i) => `#${i.taskId} ${oneLine(i.title)}${i.assignee ? ` -> ${i.assignee}` : ""}`);
      lines.push(`  ${t[0]!.toUpperCase()}${t.slice(1)} (${b.counts[t]}):`);
      for (const l of listed) lines.push(`    - ${l}`);
      if (b.counts[t] > listed.length) lines.push(`    - … and ${b.counts[t] - listed.length} more`);
    }
    lines.push("");
  }
  return { afterEventId: opts.afterEventId, toEventId, since: opts.since, until, counts, boards: sorted, empty, subject, text: lines.join("\n").trimEnd() + "\n" };
}

/** Where the last sent digest ended (stored in meta under this key). */
export const DIGEST_CURSOR_KEY = "digest.cursor";
export interface DigestCursor {
  lastEventId: number;
  sentAt: string;
}
