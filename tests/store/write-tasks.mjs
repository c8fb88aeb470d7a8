// A process that writes tasks on a shared store, to race others doing the same while a
// reader follows the task events by cursor: it opens the store (the built dist/), prints
// "ready", waits for "go" on stdin, then creates `count` tasks and moves each to "doing"
// (two events each), trying again when the store is busy (which changed nothing).
//
//   node tests/store/write-tasks.mjs '<StoreLocation JSON>' <title prefix> <count>

import { createInterface } from "node:readline";
import { openStore } from "../../dist/store/index.js";
import { StoreError } from "../../dist/store/errors.js";
import { taskEventPolicy } from "../../dist/board/task-events.js";

const [location, prefix, count] = [JSON.parse(process.argv[2]), process.argv[3], Number(process.argv[4])];

async function retryBusy(fn) {
  for (let busy = 0; ; busy++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof StoreError && err.kind === "busy") || busy > 1000) throw err;
      await new Promise((r) => setTimeout(r, Math.random() * 5));
    }
  }
}

const store = await openStore(location, { durability: "process", taskEvents: taskEventPolicy });
process.stdout.write("ready\n");
const lines = createInterface({ input: process.stdin });
for await (const line of lines) if (line === "go") break;
lines.close();
process.stdin.destroy();

for (let i = 0; i < count; i++) {
  const t = await retryBusy(() => store.tasks.create({ title: `${prefix}${i}`, board: "default", description: "", assignee: null, dueDate: null, status: "todo" }, Date.now()));
  await retryBusy(() => store.tasks.update(t.id, { status: "doing" }, Date.now()));
}
await store.close();
