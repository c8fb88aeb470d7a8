// Long lists read in slices. A list of a thousand rows read, shaped and serialised in one go
// held the main thread some 10 ms, and /health with it; read LIST_SLICE_ROWS at a time, with
// a turn of the event loop between two slices, whatever waits (a /health, a job's result) is
// served between. Each slice starts after the last row of the one before (by id, in the
// list's order), so no row is listed twice; a row shows as it was when its slice was read.
//
// Each slice is serialised and encoded (UTF-8) as soon as it is read, and the reply's body is
// those bytes (context.ts JsonText): the serialising of the whole list in one go and the
// encoding of its text when written (JSON.stringify of a thousand rows and the socket's UTF-8
// write, 6-14 ms of one task under bench/hostile.mjs) are spread over the slices, and a
// slice's rows are garbage by the next turn instead of living until the reply is written.

import { JsonText, ok, type Reply } from "../context.js";

/** Rows per slice. */
export const LIST_SLICE_ROWS = 250;

/**
 * The reply `{ [key]: rows }` with up to `limit` rows (every row: Infinity) read through
 * `read(n, after)`, which returns the first `n` rows after the cursor (an id: `from`, then the
 * last row's of each slice), in the list's order. A list of at most one slice is read at once,
 * with no turn given up, and serialised by the server as any reply.
 */
export async function listInSlices<K extends string, T>(
  key: K,
  limit: number,
  from: number | undefined,
  read: (n: number, after: number | undefined) => Promise<T[]>,
  cursorOf: (row: T) => number,
): Promise<Reply<{ [k in K]: T[] }>> {
  if (limit <= LIST_SLICE_ROWS) return ok({ [key]: await read(limit, from) } as { [k in K]: T[] });
  const parts: Buffer[] = [Buffer.from(`{${JSON.stringify(key)}:[`)];
  let count = 0;
  let after = from;
  for (;;) {
    const want = Math.min(LIST_SLICE_ROWS, limit - count);
    const slice = await read(want, after);
    // The slice's rows without the array's brackets, after a comma if rows came before.
    if (slice.length > 0) parts.push(Buffer.from(`${count > 0 ? "," : ""}${JSON.stringify(slice).slice(1, -1)}`));
    count += slice.length;
    if (slice.length < want || count >= limit) break;
    after = cursorOf(slice[slice.length - 1]!);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  parts.push(Buffer.from("]}"));
  return { status: 200, body: new JsonText(parts) };
}
