// Compile-time checks of the JobTypes map (run by `npm run typecheck`, not by vitest): the
// built-in handlers that declare their types explicitly agree with the map, and the
// producer and handler sides refuse what the map does not allow.

import { connect, defineJob, type PayloadOf, type ResultOf } from "../../src/index.js";
import type assignmentEmail from "../../src/jobs/assignment-email.js";
import type { AssignmentEmailPayload } from "../../src/jobs/assignment-email.js";
import type notify from "../../src/jobs/notify.js";
import type { NotifyPayload } from "../../src/jobs/notify.js";
import type thumbnail from "../../src/jobs/thumbnail.js";
import type { ThumbnailPayload } from "../../src/jobs/thumbnail.js";
import type report from "../../src/jobs/report.js";
import type { ReportPayload } from "../../src/jobs/report.js";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const yes = <T extends true>(t: T): T => t;
type ResultOfDef<D> = D extends { run(...args: never[]): infer R } ? Awaited<R> : never;

// Results: what the handlers return is exactly what the map says producers get.
yes<Equal<ResultOfDef<typeof thumbnail>, ResultOf<"thumbnail">>>(true);
yes<Equal<ResultOfDef<typeof notify>, ResultOf<"notify">>>(true);
yes<Equal<ResultOfDef<typeof assignmentEmail>, ResultOf<"assignment-email">>>(true);
yes<Equal<ResultOfDef<typeof report>, ResultOf<"report">>>(true);
// Payloads: what a handler's parser accepts in full fits what producers may send.
yes<ThumbnailPayload extends PayloadOf<"thumbnail"> ? true : false>(true);
yes<NotifyPayload extends PayloadOf<"notify"> ? true : false>(true);
yes<AssignmentEmailPayload extends PayloadOf<"assignment-email"> ? true : false>(true);
yes<ReportPayload extends PayloadOf<"report"> ? true : false>(true);

export async function producer(): Promise<void> {
  const tw = await connect();
  // @ts-expect-error: "pdf" is not a report format
  await tw.jobs.enqueue("report", { board: "x", format: "pdf" });
  // @ts-expect-error: notify needs a task and recipients
  await tw.jobs.enqueue("notify", { taskId: 1 });
  // @ts-expect-error: in a batch too
  await tw.jobs.enqueueMany([{ type: "noop" }, { type: "report", payload: { format: "pdf" } }]);
  const { job } = await tw.jobs.enqueue("report", { board: "x", format: "md" });
  const result = await tw.jobs.wait(job);
  yes<Equal<typeof result, ResultOf<"report">>>(true);
  const byId = await tw.jobs.wait<"report">(job.id);
  yes<Equal<typeof byId, ResultOf<"report">>>(true);
  const [a, b] = await tw.jobs.enqueueMany([{ type: "report" }, { type: "cleanup", payload: { olderThanMs: 1 } }]);
  yes<Equal<typeof a.job.type, "report">>(true);
  yes<Equal<typeof b.job.payload, PayloadOf<"cleanup">>>(true);
  // A type outside the map takes and gives JSON.
  await tw.jobs.enqueue("my-own-type", { anything: [1, "two"] });
  await tw.jobs.enqueue("digest");
}

// @ts-expect-error: a report handler must return what the map says
export const wrongResult = defineJob({ type: "report", run: () => ({ artifact: "x", bytes: 1, format: "pdf" as const, tasks: 1 }) });
export const rightResult = defineJob({ type: "report", run: (p) => ({ artifact: `${p.board ?? "default"}.html`, bytes: 0, format: p.format ?? "html", tasks: 0 }) });
export const ownType = defineJob<{ n: number }, { doubled: number }>({ type: "double", run: (p) => ({ doubled: p.n * 2 }) });
