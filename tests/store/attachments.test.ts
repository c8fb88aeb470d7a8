// Conformance: attachments. A file stored for a task (or none yet) with its bytes, together,
// and its thumbnail's outcome: the thumbnail job's artifact copied to the attachment, so that
// it outlives the job.

import { createHash } from "node:crypto";
import { beforeEach, expect, it } from "vitest";
import { asNodes, forEachStore, iso, newJob, newTask, T0 } from "./suite.js";
import type { Store } from "../../src/store/types.js";

const bytes = Buffer.from("\x89PNG fake image bytes");
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const upload = (over: Partial<{ taskId: number | null; name: string; bytes: Buffer }> = {}) => {
  const b = over.bytes ?? bytes;
  return { taskId: over.taskId ?? null, name: over.name ?? "photo.png", file: { name: over.name ?? "photo.png", mediaType: "image/png", bytes: b } };
};

/** A running thumbnail job that stored `artifact`: what the engine and the worker leave. */
async function thumbnailJob(store: Store, artifact: string, content: Buffer): Promise<number> {
  const [job] = (await store.jobs.tick({ now: T0, owner: "o", inserts: [newJob({ type: "thumbnail" })], finishes: [], progress: [], checkpoints: [], logs: [], begins: [], claim: null })).inserted;
  const { claimed } = await store.jobs.claim({ owner: "o", now: T0, limit: 1, pausedTypes: [], budgets: { any: 1 }, draws: {}, otherTypes: ["any"] });
  expect(claimed.map((j) => j.id)).toEqual([job!.job.id]);
  expect(await store.files.putArtifact({ jobId: job!.job.id, attempt: 1 }, { name: artifact, mediaType: "image/png", bytes: content }, T0)).not.toBeNull();
  return job!.job.id;
}

forEachStore("attachments", (fx) => {
  // The owners these tests claim for are nodes of the store (PostgreSQL claims only for a live node).
  beforeEach(async () => {
    await asNodes(fx().store, "o");
  });

  it("creates an attachment with its bytes, pending its thumbnail, and gets it back", async () => {
    const { store } = fx();
    const t = await store.tasks.create(newTask(), T0);
    const a = await store.attachments.create(upload({ taskId: t.id }), T0);
    expect(a).toEqual({
      id: expect.any(Number),
      taskId: t.id,
      name: "photo.png",
      file: { name: "original", mediaType: "image/png", size: bytes.length, sha256: sha(bytes), createdAt: iso(T0) },
      path: null,
      size: bytes.length,
      thumbnail: { status: "pending", file: null, path: null, error: null, jobId: null },
      createdAt: iso(T0),
    });
    expect(await store.attachments.get(a.id)).toEqual(a);
    expect(await store.attachments.get(a.id + 1000)).toBeNull();
    const read = await store.files.readUpload(a.id);
    expect(read?.uploadName).toBe("photo.png");
    expect(read?.bytes.equals(bytes)).toBe(true);
  });

  it("an attachment with no task yet is kept, and listed for no task", async () => {
    const { store } = fx();
    const a = await store.attachments.create(upload(), T0);
    expect((await store.attachments.get(a.id))!.taskId).toBeNull();
    expect(await store.attachments.listForTask(1)).toEqual([]);
  });

  it("lists a task's attachments in id order, and only that task's", async () => {
    const { store } = fx();
    const t1 = await store.tasks.create(newTask(), T0);
    const t2 = await store.tasks.create(newTask(), T0);
    const a = await store.attachments.create(upload({ taskId: t1.id, name: "a" }), T0);
    await store.attachments.create(upload({ taskId: t2.id, name: "b" }), T0);
    const c = await store.attachments.create(upload({ taskId: t1.id, name: "c" }), T0 + 1);
    expect(await store.attachments.listForTask(t1.id)).toEqual([a, c]);
    expect((await store.attachments.listForTask(t2.id)).map((x) => x.name)).toEqual(["b"]);
  });

  it("records the thumbnail job, then its success: the artifact is copied to the attachment and outlives the job", async () => {
    const { store } = fx();
    const a = await store.attachments.create(upload(), T0);
    const thumb = Buffer.from("a small thumbnail");
    const jobId = await thumbnailJob(store, "photo-256.png", thumb);
    await store.attachments.setThumbnailJob(a.id, jobId);
    expect((await store.attachments.get(a.id))!.thumbnail).toEqual({ status: "pending", file: null, path: null, error: null, jobId });
    expect(await store.attachments.finishThumbnail(a.id, { jobId, artifact: "photo-256.png" })).toBeNull();
    const file = { name: "thumbnail", mediaType: "image/png", size: thumb.length, sha256: sha(thumb), createdAt: iso(T0) };
    expect((await store.attachments.get(a.id))!.thumbnail).toEqual({ status: "ready", file, path: null, error: null, jobId });
    // The job finishes and is pruned with its artifacts; the attachment keeps its copy.
    await store.jobs.tick({ now: T0 + 1, owner: "o", inserts: [], finishes: [{ id: jobId, attempt: 1, outcome: "complete", result: {} }], progress: [], checkpoints: [], logs: [], begins: [], claim: null });
    expect(await store.jobs.prune(T0 + 10)).toBe(1);
    expect(await store.files.list({ jobId })).toEqual([]);
    expect((await store.attachments.get(a.id))!.thumbnail.file).toEqual(file);
    const stored = await store.files.get({ attachmentId: a.id }, "thumbnail");
    expect((await store.files.readAll(stored!.id))!.bytes.equals(thumb)).toBe(true);
  });

  it("a thumbnail job that left no such artifact: failed, saying so", async () => {
    const { store } = fx();
    const a = await store.attachments.create(upload(), T0);
    const jobId = await thumbnailJob(store, "other.png", Buffer.from("x"));
    await store.attachments.finishThumbnail(a.id, { jobId, artifact: "photo-256.png" });
    expect((await store.attachments.get(a.id))!.thumbnail).toMatchObject({ status: "failed", file: null, error: `the thumbnail job ${jobId} left no artifact "photo-256.png"` });
  });

  it("a failed thumbnail: failed with its error", async () => {
    const { store } = fx();
    const a = await store.attachments.create(upload(), T0);
    expect(await store.attachments.finishThumbnail(a.id, { error: "not an image" })).toBeNull();
    expect((await store.attachments.get(a.id))!.thumbnail).toMatchObject({ status: "failed", file: null, path: null, error: "not an image" });
  });

  it("finishing the thumbnail of an unknown attachment: null, nothing else changes", async () => {
    const { store } = fx();
    const a = await store.attachments.create(upload(), T0);
    expect(await store.attachments.finishThumbnail(a.id + 1000, { error: "x" })).toBeNull();
    expect((await store.attachments.get(a.id))!.thumbnail.status).toBe("pending");
  });

  it("two handles finishing one thumbnail at once: one thumbnail is kept, whole", async () => {
    const { store, openAnother } = fx();
    const other = await openAnother();
    const thumb = Buffer.from("thumbnail bytes");
    const jobId = await thumbnailJob(store, "t.png", thumb);
    for (let i = 0; i < 5; i++) {
      const a = await store.attachments.create(upload(), T0);
      await Promise.all([store.attachments.finishThumbnail(a.id, { jobId, artifact: "t.png" }), other.attachments.finishThumbnail(a.id, { jobId, artifact: "t.png" })]);
      expect((await store.files.list({ attachmentId: a.id })).map((f) => f.name)).toEqual(["original", "thumbnail"]);
      expect((await store.attachments.get(a.id))!.thumbnail).toMatchObject({ status: "ready", file: { size: thumb.length, sha256: sha(thumb) } });
    }
  });
});
