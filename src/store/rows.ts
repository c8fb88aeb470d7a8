// What every store shares between its rows and the records it returns: rules about the data
// that do not depend on the database, written once.

import type { Attachment } from "../protocol/types.js";
import type { TaskPatch } from "./types.js";

/** The fields a patch names: one given as undefined is left out like a missing one (a spread
 * of `{ title: undefined }` must not clear or fail the stored value). */
export function fieldsGiven(patch: TaskPatch): TaskPatch {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(patch)) if (v !== undefined) out[k] = v;
  return out as TaskPatch;
}

/** Where an attachment's thumbnail stands, from what its row records. */
export function thumbnailStatus(path: string | null, error: string | null): Attachment["thumbnail"]["status"] {
  return path ? "ready" : error ? "failed" : "pending";
}
