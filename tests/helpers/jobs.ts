// Every job a daemon holds, whole: lists page through summaries (at most MAX_LIST_LIMIT a
// page, without payloads or results), so each job is then read on its own.

import type { Client } from "../../src/client/client.js";
import { MAX_LIST_LIMIT } from "../../src/protocol/routes.js";
import type { Job, JobStatus } from "../../src/protocol/types.js";

/** The ids of every job (of a type or status), newest first, page by page. */
export async function allJobIds(client: Client, filter: { type?: string; status?: JobStatus } = {}): Promise<number[]> {
  const ids: number[] = [];
  for (let beforeId: number | undefined; ; ) {
    const { jobs } = await client.call("jobsList", { ...filter, limit: MAX_LIST_LIMIT, beforeId });
    ids.push(...jobs.map((j) => j.id));
    if (jobs.length < MAX_LIST_LIMIT) return ids;
    beforeId = jobs.at(-1)!.id;
  }
}

/** Every job (of a type or status), whole, newest first. */
export async function allJobs(client: Client, filter: { type?: string; status?: JobStatus } = {}): Promise<Job[]> {
  const ids = await allJobIds(client, filter);
  const out: Job[] = [];
  for (let i = 0; i < ids.length; i += 50) {
    out.push(...(await Promise.all(ids.slice(i, i + 50).map(async (id) => (await client.call("jobsGet", { id })).job))));
  }
  return out;
}
