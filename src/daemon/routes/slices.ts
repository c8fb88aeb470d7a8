// Long lists read in slices. A list of a thousand rows read, shaped and serialised in one go
// held the main thread some 10 ms, and /health with it; read LIST_SLICE_ROWS at a time, with
// a turn of the event loop between two slices, whatever waits (a /health, a job's result) is
// served between. Each slice starts after the last row of the one before (by id, in the
// list's order), so no row is listed twice; a row shows as it was when its slice was read.

/** Rows per slice. */
export const LIST_SLICE_ROWS = 250;

/**
 * Up to `limit` rows (every row: Infinity) through `read(n, after)`, which returns the first
 * `n` rows after the cursor (an id) (`from`, then the cursor of each slice's last row), in the list's
 * order. A list of at most one slice is read at once, with no turn given up.
 */
export async function readInSlices<T>(limit: number, from: number | undefined, read: (n: number, after: number | undefined) => Promise<T[]>, cursorOf: (row: T) => number): Promise<T[]> {
  if (limit <= LIST_SLICE_ROWS) return read(limit, from);
  const rows: T[] = [];
  let after = from;
  for (;;) {
    const want = Math.min(LIST_SLICE_ROWS, limit - rows.length);
    const slice = await read(want, after);
    for (const r of slice) rows.push(r);
    if (slice.length < want || rows.length >= limit) return rows;
    after = cursorOf(slice[slice.length - 1]!);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
