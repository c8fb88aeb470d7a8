import { VERSION } from "../../protocol/version.js";
import type { AppContext, Handlers } from "../context.js";
import { ok } from "../context.js";
import { processIsolationInfo } from "../../queue/pool/process.js";
import { describeOpenFiles, readOpenFileLimits } from "../descriptors.js";

/** The limit of open files now (it may have been changed from outside since the start). */
function openFilesNow(app: AppContext) {
  const now = readOpenFileLimits() ?? app.openFiles.after;
  return {
    soft: now?.soft ?? null,
    hard: now?.hard ?? null,
    softAtStart: app.openFiles.before?.soft ?? null,
    note: app.openFiles.note ?? null,
    summary: describeOpenFiles(app.openFiles, now),
  };
}

export function daemonRoutes(app: AppContext): Pick<Handlers, "health" | "daemonStatus" | "daemonStop"> {
  return {
    async health() {
      return ok({ ok: true as const, version: VERSION, pid: process.pid });
    },
    async daemonStatus() {
      const [boards, tasks, jobs] = await Promise.all([app.board.listBoards(), app.board.countTasks(), app.engine.counts()]);
      return ok({
        pid: process.pid,
        version: VERSION,
        startedAt: new Date(app.startedAt).toISOString(),
        uptimeMs: app.clock.now() - app.startedAt,
        home: app.paths.home,
        socket: app.paths.socket,
        database: app.storeWhere.where,
        store: app.storeWhere.kind,
        node: app.engine.owner,
        logFile: app.paths.logFile,
        concurrency: app.engine.concurrency,
        durability: app.config.durability,
        paused: app.engine.pausedState,
        isolation: { processTypes: app.engine.processTypes, ...processIsolationInfo() },
        counts: { boards: boards.length, tasks, jobs },
        openFiles: openFilesNow(app),
      });
    },
    async daemonStop() {
      app.requestStop("stop requested over the socket");
      return { status: 202, body: { stopping: true as const } };
    },
  };
}
