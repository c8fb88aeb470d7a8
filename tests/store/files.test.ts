// Conformance: the files part. A job's artifacts are put by its running attempt only (fenced
// like every write of an attempt), described with their size and SHA-256, read back whole or
// in slices, replaced under one name by a retry, and deleted with their job when it is
// pruned. The same through a worker's own port (filesPortAt), as handlers use it.

import { createHash, randomBytes } from "node:crypto";
import { beforeEach, expect, it } from "vitest";
import { asNodes, forEachStore, newJob, T0, anyJobs, tickBatch } from "./suite.js";
import type { Finish, Store, TickBatch } from "../../src/store/types.js";
import { filesPortAt } from "../../src/store/index.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const batch = (over: Partial<TickBatch>): TickBatch => tickBatch("A", over);

/** A job claimed by owner A: running its first attempt. */
async function runningJob(store: Store): Promise<number> {
  const [r] = (await store.jobs.tick(batch({ inserts: [newJob()] }))).inserted;
  const { claimed } = await store.jobs.claim({ ...anyJobs(1), owner: "A", now: T0 });
  expect(claimed.map((j) => j.id)).toEqual([r!.job.id]);
  return r!.job.id;
}
const finish = (store: Store, f: Finish, now = T0 + 1) => store.jobs.tick(batch({ now, finishes: [f] }));

async function collect(chunks: AsyncIterable<Buffer>): Promise<{ bytes: Buffer; slices: number }> {
  const all: Buffer[] = [];
  for await (const c of chunks) all.push(c);
  return { bytes: Buffer.concat(all), slices: all.length };
}

forEachStore("files", (fx, factory) => {
  // The owners these tests claim for are nodes of the store (PostgreSQL claims only for a live node).
  beforeEach(async () => {
    await asNodes(fx().store, "A", "B");
  });

  it("puts an artifact of the running attempt, with its size and SHA-256; gets, lists and reads it back", async () => {
    const { store } = fx();
    const id = await runningJob(store);
    const bytes = Buffer.from("<h1>report</h1>\n");
    const put = await store.files.putArtifact({ jobId: id, attempt: 1 }, { name: "web.html", mediaType: "text/html; charset=utf-8", bytes }, T0 + 5);
    expect(put).toEqual({ id: expect.any(Number), name: "web.html", mediaType: "text/html; charset=utf-8", size: bytes.length, sha256: sha(bytes), createdAt: T0 + 5 });
    expect(await store.files.get({ jobId: id }, "web.html")).toEqual(put);
    expect(await store.files.get({ jobId: id }, "other.html")).toBeNull();
    expect(await store.files.get({ jobId: id + 1 }, "web.html")).toBeNull();
    expect(await store.files.list({ jobId: id })).toEqual([put]);
    expect((await store.files.readAll(put!.id))!.bytes.equals(bytes)).toBe(true);
    const opened = await store.files.open(put!.id);
    expect(opened!.file).toEqual(put);
    expect((await collect(opened!.chunks)).bytes.equals(bytes)).toBe(true);
    expect(await store.files.open(put!.id + 1000)).toBeNull();
    expect(await store.files.readAll(put!.id + 1000)).toBeNull();
  });

  it("lists a job's artifacts by name; an empty file is a file", async () => {
    const { store } = fx();
    const id = await runningJob(store);
    for (const name of ["b.txt", "a.txt", "empty.bin"]) {
      await store.files.putArtifact({ jobId: id, attempt: 1 }, { name, mediaType: "text/plain", bytes: Buffer.from(name === "empty.bin" ? "" : name) }, T0);
    }
    expect((await store.files.list({ jobId: id })).map((f) => [f.name, f.size])).toEqual([
      ["a.txt", 5],
      ["b.txt", 5],
      ["empty.bin", 0],
    ]);
    const empty = await store.files.get({ jobId: id }, "empty.bin");
    expect((await store.files.readAll(empty!.id))!.bytes.length).toBe(0);
    expect((await collect((await store.files.open(empty!.id))!.chunks)).bytes.length).toBe(0);
  });

  it("refuses (null, nothing written) a put from an attempt that is not the job's running one", async () => {
    const { store } = fx();
    const file = { name: "late.txt", mediaType: "text/plain", bytes: Buffer.from("late") };
    // Pending, never claimed.
    const [pending] = (await store.jobs.tick(batch({ inserts: [newJob({ type: "later", runAt: T0 + 60_000 })] }))).inserted;
    expect(await store.files.putArtifact({ jobId: pending!.job.id, attempt: 0 }, file, T0)).toBeNull();
    // Running attempt 1: attempt 2 is not it.
    const id = await runningJob(store);
    expect(await store.files.putArtifact({ jobId: id, attempt: 2 }, file, T0)).toBeNull();
    // Finished: attempt 1 is over.
    await finish(store, { id, attempt: 1, outcome: "complete", result: null });
    expect(await store.files.putArtifact({ jobId: id, attempt: 1 }, file, T0)).toBeNull();
    // No such job.
    expect(await store.files.putArtifact({ jobId: id + 1000, attempt: 1 }, file, T0)).toBeNull();
    expect(await store.files.list({ jobId: id })).toEqual([]);
    expect(await store.files.list({ jobId: pending!.job.id })).toEqual([]);
  });

  it("a retry's put under the same name replaces the earlier attempt's (a new id: a reader of the old one never mixes them)", async () => {
    const { store } = fx();
    const id = await runningJob(store);
    const first = await store.files.putArtifact({ jobId: id, attempt: 1 }, { name: "out.json", mediaType: "application/json", bytes: Buffer.from("[1]") }, T0);
    await finish(store, { id, attempt: 1, outcome: "retry", error: "flaky", runAt: T0 });
    const { claimed } = await store.jobs.claim({ ...anyJobs(1), owner: "B", now: T0 + 2 });
    expect(claimed[0]).toMatchObject({ id, attempts: 2 });
    // The lost attempt 1 can no longer write; attempt 2 can.
    expect(await store.files.putArtifact({ jobId: id, attempt: 1 }, { name: "out.json", mediaType: "application/json", bytes: Buffer.from("[9]") }, T0 + 3)).toBeNull();
    const second = await store.files.putArtifact({ jobId: id, attempt: 2 }, { name: "out.json", mediaType: "application/json", bytes: Buffer.from("[1,2]") }, T0 + 3);
    expect(second!.id).not.toBe(first!.id);
    expect(await store.files.list({ jobId: id })).toEqual([second]);
    expect(await store.files.open(first!.id)).toBeNull();
    expect((await store.files.readAll(second!.id))!.bytes.toString()).toBe("[1,2]");
  });

  it("a file of 3.5 MiB comes back whole and in order (in several slices where the store slices)", async () => {
    const { store } = fx();
    const id = await runningJob(store);
    const bytes = randomBytes(3.5 * 1024 * 1024);
    const put = await store.files.putArtifact({ jobId: id, attempt: 1 }, { name: "big.bin", mediaType: "application/octet-stream", bytes }, T0);
    expect(put).toMatchObject({ size: bytes.length, sha256: sha(bytes) });
    const { bytes: streamed, slices } = await collect((await store.files.open(put!.id))!.chunks);
    expect(streamed.equals(bytes)).toBe(true);
    // PostgreSQL reads 1 MiB slices (substring on an EXTERNAL value); SQLite reads it whole (store/sqlite/files.ts says why).
    expect(slices).toBe(factory.name === "postgres" ? 4 : 1);
    expect((await store.files.readAll(put!.id))!.bytes.equals(bytes)).toBe(true);
  });

  it("a file deleted while it is read fails the read, never yields a short or mixed file", async () => {
    const { store } = fx();
    const id = await runningJob(store);
    const bytes = randomBytes(2.5 * 1024 * 1024);
    const put = await store.files.putArtifact({ jobId: id, attempt: 1 }, { name: "big.bin", mediaType: "application/octet-stream", bytes }, T0);
    const opened = await store.files.open(put!.id);
    await finish(store, { id, attempt: 1, outcome: "complete", result: null });
    expect(await store.jobs.prune(T0 + 10)).toBe(1);
    // A store that read the file whole at open (SQLite) hands it over whole; one that reads by
    // slices (PostgreSQL) must fail, not stop short.
    try {
      const { bytes: got } = await collect(opened!.chunks);
      expect(got.equals(bytes)).toBe(true);
    } catch (err) {
      expect(String(err)).toMatch(/deleted or replaced while it was read/);
    }
  });

  it("a job's artifacts are deleted with it when it is pruned, and only then", async () => {
    const { store } = fx();
    const id = await runningJob(store);
    await store.files.putArtifact({ jobId: id, attempt: 1 }, { name: "r.md", mediaType: "text/markdown", bytes: Buffer.from("# r") }, T0);
    await finish(store, { id, attempt: 1, outcome: "complete", result: { artifact: "r.md" } });
    expect(await store.jobs.prune(T0)).toBe(0);
    expect((await store.files.list({ jobId: id })).map((f) => f.name)).toEqual(["r.md"]);
    expect(await store.jobs.prune(T0 + 10)).toBe(1);
    expect(await store.files.list({ jobId: id })).toEqual([]);
  });

  it("a worker's own port (filesPortAt) reads and writes the same files as the store", async () => {
    const { store, location } = fx();
    const port = filesPortAt(location);
    const id = await runningJob(store);
    const bytes = randomBytes(1500);
    const put = await port.putArtifact({ jobId: id, attempt: 1 }, { name: "thumb.png", mediaType: "image/png", bytes }, T0);
    expect(await store.files.get({ jobId: id }, "thumb.png")).toEqual(put);
    expect(await port.putArtifact({ jobId: id, attempt: 7 }, { name: "x.png", mediaType: "image/png", bytes }, T0)).toBeNull();
    const a = await store.attachments.create({ taskId: null, name: "photo of me.jpg", file: { name: "photo of me.jpg", mediaType: "image/jpeg", bytes } }, T0);
    const upload = await port.readUpload(a.id);
    expect(upload).toMatchObject({ uploadName: "photo of me.jpg", file: { name: "original", size: 1500, sha256: sha(bytes) } });
    expect(upload!.bytes.equals(bytes)).toBe(true);
    expect(await port.readUpload(a.id + 1000)).toBeNull();
  });

  it("a put for a job that is gone (pruned) is refused, never an orphan", async () => {
    const { store } = fx();
    const id = await runningJob(store);
    await finish(store, { id, attempt: 1, outcome: "complete", result: null });
    await store.jobs.prune(T0 + 10);
    expect(await store.files.putArtifact({ jobId: id, attempt: 1 }, { name: "a.txt", mediaType: "text/plain", bytes: Buffer.from("a") }, T0)).toBeNull();
  });
});
