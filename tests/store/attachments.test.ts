// Conformance: attachments. A file stored for a task (or none yet), and its thumbnail's
// outcome: the temporary copy's path is handed back once, when the thumbnail is settled.

import { expect, it } from "vitest";
import { forEachStore, iso, newTask, T0 } from "./suite.js";

const file = (over: Partial<{ taskId: number | null; name: string; path: string; tmpPath: string; size: number }> = {}) => ({
  taskId: null,
  name: "photo.jpg",
  path: "/uploads/1-photo.jpg",
  tmpPath: "/uploads/tmp/1-photo.jpg",
  size: 1234,
  ...over,
});

forEachStore("attachments", (fx) => {
  it("creates an attachment, pending its thumbnail, and gets it back", async () => {
    const { store } = fx();
    const t = await store.tasks.create(newTask(), T0);
    const a = await store.attachments.create(file({ taskId: t.id }), T0);
    expect(a).toEqual({
      id: expect.any(Number),
      taskId: t.id,
      name: "photo.jpg",
      path: "/uploads/1-photo.jpg",
      size: 1234,
      thumbnail: { status: "pending", path: null, error: null, jobId: null },
      createdAt: iso(T0),
    });
    expect(await store.attachments.get(a.id)).toEqual(a);
    expect(await store.attachments.get(a.id + 1000)).toBeNull();
  });

  it("an attachment with no task yet is kept, and listed for no task", async () => {
    const { store } = fx();
    const a = await store.attachments.create(file(), T0);
    expect((await store.attachments.get(a.id))!.taskId).toBeNull();
    expect(await store.attachments.listForTask(1)).toEqual([]);
  });

  it("lists a task's attachments in id order, and only that task's", async () => {
    const { store } = fx();
    const t1 = await store.tasks.create(newTask(), T0);
    const t2 = await store.tasks.create(newTask(), T0);
    const a = await store.attachments.create(file({ taskId: t1.id, name: "a" }), T0);
    await store.attachments.create(file({ taskId: t2.id, name: "b" }), T0);
    const c = await store.attachments.create(file({ taskId: t1.id, name: "c" }), T0 + 1);
    expect(await store.attachments.listForTask(t1.id)).toEqual([a, c]);
    expect((await store.attachments.listForTask(t2.id)).map((x) => x.name)).toEqual(["b"]);
  });

  it("records the thumbnail job, then its success; the temporary copy's path is handed back once", async () => {
    const { store } = fx();
    const a = await store.attachments.create(file(), T0);
    await store.attachments.setThumbnailJob(a.id, 77);
    expect((await store.attachments.get(a.id))!.thumbnail).toEqual({ status: "pending", path: null, error: null, jobId: 77 });
    expect(await store.attachments.finishThumbnail(a.id, { path: "/thumbs/1.webp" })).toBe("/uploads/tmp/1-photo.jpg");
    expect((await store.attachments.get(a.id))!.thumbnail).toEqual({ status: "ready", path: "/thumbs/1.webp", error: null, jobId: 77 });
    expect(await store.attachments.finishThumbnail(a.id, { path: "/thumbs/1.webp" })).toBeNull();
  });

  it("a failed thumbnail: failed with its error, and the temporary copy's path handed back", async () => {
    const { store } = fx();
    const a = await store.attachments.create(file(), T0);
    expect(await store.attachments.finishThumbnail(a.id, { error: "not an image" })).toBe("/uploads/tmp/1-photo.jpg");
    expect((await store.attachments.get(a.id))!.thumbnail).toMatchObject({ status: "failed", path: null, error: "not an image" });
  });

  it("finishing the thumbnail of an unknown attachment: null, nothing else changes", async () => {
    const { store } = fx();
    const a = await store.attachments.create(file(), T0);
    expect(await store.attachments.finishThumbnail(a.id + 1000, { path: "/x" })).toBeNull();
    expect((await store.attachments.get(a.id))!.thumbnail.status).toBe("pending");
  });

  it("two handles finishing one thumbnail at once: the temporary copy's path is handed to one of them", async () => {
    const { store, openAnother } = fx();
    const other = await openAnother();
    for (let i = 0; i < 10; i++) {
      const a = await store.attachments.create(file({ tmpPath: `/tmp/${i}` }), T0);
      const got = await Promise.all([store.attachments.finishThumbnail(a.id, { path: "/t" }), other.attachments.finishThumbnail(a.id, { error: "late" })]);
      expect(got.filter((p) => p !== null)).toEqual([`/tmp/${i}`]);
    }
  });
});
