// What each job type takes and gives back: the one map that both the producer side
// (client.jobs.enqueue) and the handler side (defineJob) read, so the two cannot drift apart.
//
// An application adds its own types by declaration merging:
//
//   declare module "teamwork" {
//     interface JobTypes {
//       "resize-avatar": { payload: { userId: number }; result: { path: string } };
//     }
//   }
//
// The built-in types are declared here; the handlers in src/jobs/ are checked against these
// entries by defineJob (and tests/client/job-types.check.ts checks the ones that opt out).

import type { Json } from "./validate.js";

export interface JobTypes {
  report: {
    /** Both have defaults: the board "default", the format "html". */
    payload: { board?: string; format?: "html" | "md" | "json" };
    /** artifact: the name of the job's artifact holding the report (`teamwork jobs artifact ID`); bytes: its size. */
    result: { artifact: string; bytes: number; format: "html" | "md" | "json"; tasks: number };
  };
  thumbnail: {
    /**
     * uploadId: an upload kept in the store (read from any node); or source: a path inside the
     * uploads folder of the node that runs it (relative to it, or absolute); maxSize: pixels,
     * 256 by default.
     */
    payload: { uploadId?: number; source?: string; maxSize?: number };
    /** artifact: the name of the job's artifact holding the thumbnail; bytes: its size. */
    result: { artifact: string; bytes: number; width: number; height: number; format: "png" | "jpeg" | "webp" };
  };
  notify: {
    payload: { taskId: number; to: string[]; message?: string };
    /** Delivered in this attempt, delivered in an earlier one (not sent again), refused for good. */
    result: { sent: string[]; skipped: string[]; rejected: string[] };
  };
  "assignment-email": {
    payload: { taskId: number; assignee: string };
    result: { sent: string[]; messageId: string; path?: string };
  };
  cleanup: {
    payload: { olderThanMs?: number };
    result: { folder: string; olderThanMs: number; files: number; bytes: number; kept: number };
  };
  digest: {
    payload: Record<string, never>;
    result: {
      sent: boolean;
      reason?: string;
      recipients: string[];
      events: number;
      fromEventId: number;
      toEventId: number;
      subject: string;
      sentAt?: string;
    };
  };
}

/** A job type the map knows: a built-in one, or one an application declared. */
export type JobType = keyof JobTypes & string;

/** What a job of type K takes. */
export type PayloadOf<K extends JobType> = JobTypes[K] extends { payload: infer P } ? P : Json;

/** What a job of type K completes with. */
export type ResultOf<K extends JobType> = JobTypes[K] extends { result: infer R } ? R : Json;
