// The daemon process: `node dist/daemon/main.js [--home DIR] [--concurrency N]`.
// Started detached by `teamwork daemon start` or by auto-start (its own lines → --log-file,
// stdout and stderr → daemon.crash.log), or attached with `teamwork daemon start --foreground`.
//
// Exit codes (protocol/daemon-exit.ts): 0 stopped cleanly, 1 failed to start or crashed,
// 2 bad configuration, 5 database from a newer teamwork, 10 another daemon already runs on
// this home.

import { chmodSync, existsSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { parseArgs } from "node:util";
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { errorMessage } from "../lib/errors.js";
import { createLogger } from "../lib/logger.js";
import { RotatingLog } from "../lib/rotating-log.js";
import { FollowingClock, systemClock } from "../lib/clock.js";
import { loadConfig, type Config } from "../config/config.js";
import { resolvePaths, shortSocketDir, type Paths } from "../config/paths.js";
import { openStore, type StoreLocation } from "../store/index.js";
import { StoreError } from "../store/errors.js";
import { STORE_FAILURES, storeFailure } from "../protocol/errors.js";
import { taskEventPolicy } from "../board/task-events.js";
import { TaskBoard } from "../board/board.js";
import { EventBus } from "../queue/events/bus.js";
import { Engine } from "../queue/engine.js";
import { ApiCounters } from "../queue/metrics.js";
import { loadRegistry } from "../queue/registry.js";
import { StoreNode } from "../queue/node.js";
import { BUILTIN_JOB_MODULES } from "../jobs/builtin.js";
import { VERSION } from "../protocol/version.js";
import { DAEMON_EXIT } from "../protocol/daemon-exit.js";
import { createApiServer } from "./server.js";
import { daemonRoutes } from "./routes/daemon.js";
import { taskRoutes } from "./routes/tasks.js";
import { jobRoutes, jobStreams } from "./routes/jobs.js";
import { fileRoutes, fileStreams } from "./routes/files.js";
import { scheduleRoutes } from "./routes/schedules.js";
import { statsRoutes } from "./routes/stats.js";
import { nodeRoutes } from "./routes/nodes.js";
import { Scheduler } from "../scheduler/scheduler.js";
import { BUILTIN_SCHEDULES, Housekeeping } from "../scheduler/housekeeping.js";
import { Uploads } from "../board/uploads.js";
import { acquireHomeLock, AlreadyRunning, removePidFile } from "./lock.js";
import { describeOpenFiles, raiseOpenFileLimit } from "./descriptors.js";
import type { AppContext, Handlers } from "./context.js";


// Everything the daemon and its workers create is for the owner only (files 0600, folders
// 0700), whatever umask it was started with and whatever the mode of a home made beforehand:
// the database and its -wal and -shm, uploads, reports, thumbnails, mail, logs. One setting
// covers every writer, including SQLite and sharp, which take no mode.
process.umask(0o077);

// Until the configuration is read, and in the foreground, lines go to stderr; a detached
// daemon (--log-file) writes its own rotating file.
let logSink: (line: string) => void = (l) => void process.stderr.write(l);
let logsToFile = false;
const log = createLogger((line) => logSink(line));

/**
 * A fatal line goes to stderr as well when the log is a file: stderr is daemon.crash.log,
 * which is never rotated, and the log file may be full, gone or unwritable.
 */
function fatal(event: string, fields: Record<string, unknown>): void {
  log.error(event, fields);
  if (logsToFile) createLogger((line) => void process.stderr.write(line)).error(event, fields);
}
// stdout and stderr may be a file on a full disk, or a closed pipe: a failed write there is
// not a reason to stop serving.
process.stdout.on("error", () => {});
process.stderr.on("error", () => {});

/**
 * The folder that holds the socket and pid file: ours, and closed to everyone else. A folder
 * we create is made 0700; an existing one is never re-moded (it may be a system folder such
 * as /run under `--home /`), so one that others can open is refused instead.
 */
function privateDir(dir: string): void {
  const created = mkdirSync(dir, { recursive: true, mode: 0o700 }) !== undefined;
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  if (typeof process.getuid === "function" && st.uid !== process.getuid()) {
    throw new Error(`${dir} belongs to another user (uid ${st.uid}); refusing to put the socket there`);
  }
  if (created) chmodSync(dir, 0o700);
  else if ((st.mode & 0o077) !== 0) {
    throw new Error(`${dir} can be opened by other users (mode ${(st.mode & 0o777).toString(8)}); run \`chmod 700 ${dir}\` or use another --home`);
  }
}

function prepareDirs(paths: Paths): void {
  for (const d of [paths.dataDir, paths.stateDir, paths.uploads, paths.uploadsTmp, paths.reports, paths.outbox, paths.thumbs]) {
    mkdirSync(d, { recursive: true, mode: 0o700 });
  }
  privateDir(paths.runtimeDir);
  if (paths.socketRelocated) privateDir(shortSocketDir());
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { home: { type: "string" }, concurrency: { type: "string" }, durability: { type: "string" }, database: { type: "string" }, "log-file": { type: "string" } },
    strict: true,
  });
  const paths = resolvePaths({ home: values.home });
  let config: Config;
  try {
    config = loadConfig({ configFile: paths.configFile, flags: { concurrency: values.concurrency, durability: values.durability, database: values.database } });
  } catch (err) {
    log.error("daemon.config_invalid", { error: errorMessage(err) });
    return DAEMON_EXIT.config;
  }

  prepareDirs(paths);
  if (values["log-file"]) {
    const file = new RotatingLog(values["log-file"], config.logMaxBytes);
    logSink = (line) => file.write(line);
    logsToFile = true;
  }
  try {
    const { stalePid } = await acquireHomeLock(paths.runtimeDir, paths.pidFile);
    if (stalePid !== null) log.warn("daemon.stale_pid_file", { pid: stalePid, note: "left by a daemon that did not stop cleanly" });
  } catch (err) {
    if (err instanceof AlreadyRunning) {
      log.error("daemon.already_running", { pid: err.pid ?? "unknown" });
      return DAEMON_EXIT.alreadyRunning;
    }
    throw err;
  }

  try {
    return await serve(paths, config);
  } catch (err) {
    removePidFile(paths.pidFile);
    throw err;
  }
}

/** Runs the daemon on a home whose lock we hold, until it is stopped. */
async function serve(paths: Paths, config: Config): Promise<number> {
  // Before anything opens files: the soft limit of open files up to the hard one (./descriptors.ts).
  const openFiles = raiseOpenFileLimit();
  const openFilesFields = { limit: describeOpenFiles(openFiles), soft: openFiles.after?.soft ?? "unknown", hard: openFiles.after?.hard ?? "unknown", softAtStart: openFiles.before?.soft ?? "unknown" };
  if (openFiles.note) log.warn("daemon.open_files", { ...openFilesFields, note: openFiles.note });
  else log.info("daemon.open_files", { ...openFilesFields, raised: openFiles.raised });
  const location: StoreLocation = config.database ? { kind: "postgres", url: config.database } : { kind: "sqlite", path: paths.database };
  let store;
  try {
    store = await openStore(location, { durability: config.durability, taskEvents: taskEventPolicy, notify: config.databaseNotify });
  } catch (err) {
    removePidFile(paths.pidFile);
    if (!(err instanceof StoreError)) throw err;
    const { message, hint } = storeFailure(err);
    if (err.kind === "too_new") log.error("daemon.schema_too_new", { error: message, hint });
    else fatal("daemon.store_failed", { kind: err.kind, error: message, hint, driverCode: err.driverCode });
    return STORE_FAILURES[err.kind].daemonExit;
  }
  // This daemon run's node id: the owner its claims record (a new one if it fences itself).
  const owner = randomUUID();
  log.info("daemon.store", { store: store.where, owner });

  // On a shared store every daemon's times (run times, due times, slots) are the database's:
  // the clock follows it at each heartbeat (queue/node.ts), whatever this host's clock says.
  const following = location.kind === "postgres" ? new FollowingClock(systemClock) : null;
  const clock = following ?? systemClock;
  const bus = new EventBus();
  let registry;
  try {
    registry = await loadRegistry([...BUILTIN_JOB_MODULES, ...config.jobModules]);
  } catch (err) {
    log.error("daemon.job_modules_invalid", { error: errorMessage(err) });
    await store.close();
    removePidFile(paths.pidFile);
    return DAEMON_EXIT.config;
  }
  const engine = new Engine({
    owner,
    store,
    registry,
    bus,
    clock,
    log,
    config,
    workerData: {
      store: location,
      paths: { home: paths.home, reports: paths.reports, uploads: paths.uploads, uploadsTmp: paths.uploadsTmp, thumbs: paths.thumbs, outbox: paths.outbox },
      settings: {
        smtpUrl: config.smtpUrl,
        mailFrom: config.mailFrom,
        cleanupMaxAgeMs: config.cleanup.maxAge,
        digestRecipients: config.digest.recipients,
        digestSendEmpty: config.digest.sendEmpty,
        fileMaxBytes: config.fileMaxBytes,
      },
    },
  });

  // ---- nodes (issue 14): this daemon registers as a node of the store before anything is
  // rescued or claimed; on a shared store it keeps a lease, fences itself when it cannot, and
  // finds dead nodes (queue/node.ts).
  const node = new StoreNode({
    store,
    engine,
    clock,
    log,
    host: hostname(),
    pid: process.pid,
    followStoreClock: following
      ? (storeNow, sentAt, receivedAt) => {
          const before = following.offsetMs;
          if (following.follow(storeNow, sentAt, receivedAt) && Math.abs(following.offsetMs - before) > 1000) {
            log.warn("daemon.clock_offset", { offsetMs: Math.round(following.offsetMs), note: "this host's clock differs from the database's; the daemon keeps the database's time" });
          }
        }
      : undefined,
  });
  try {
    await node.join(owner);
  } catch (err) {
    await store.close().catch(() => {});
    removePidFile(paths.pidFile);
    if (!(err instanceof StoreError)) throw err;
    const { message, hint } = storeFailure(err);
    fatal("daemon.store_failed", { kind: err.kind, error: message, hint, driverCode: err.driverCode });
    return STORE_FAILURES[err.kind].daemonExit;
  }
  // ---- end nodes

  // On a shared store (PostgreSQL) other daemons change schedules too: follow them every second.
  const scheduler = new Scheduler({ store, engine, clock, log, builtins: BUILTIN_SCHEDULES, resyncMs: location.kind === "postgres" ? 1000 : 0 });
  const housekeeping = new Housekeeping({ store, engine, scheduler, clock, log, paths, config });
  const uploads = new Uploads({ store, engine, clock, log, paths, fileMaxBytes: config.fileMaxBytes });
  uploads.start();

  let stopping: Promise<void> | null = null;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  const app: AppContext = {
    paths,
    config,
    clock,
    log,
    board: new TaskBoard(store, clock),
    engine,
    store,
    bus,
    scheduler,
    housekeeping,
    uploads,
    startedAt: clock.now(),
    openFiles,
    storeWhere: { kind: location.kind, where: store.where },
    requestStop: (reason) => setImmediate(() => void shutdown(reason)),
  };
  const apiCounters = new ApiCounters();
  const handlers: Handlers = { ...daemonRoutes(app), ...taskRoutes(app), ...jobRoutes(app), ...scheduleRoutes(app), ...statsRoutes(app, apiCounters), ...fileRoutes(app), ...nodeRoutes(app) };
  const api = createApiServer({
    handlers,
    streams: { ...jobStreams(app), ...fileStreams(app) },
    log,
    limits: {
      maxConnections: config.connections.max,
      rpcIdleMs: config.connections.idleTimeout,
      keepAliveMs: Math.min(5_000, config.connections.idleTimeout),
      headersTimeoutMs: config.connections.headersTimeout,
      requestTimeoutMs: config.connections.requestTimeout,
    },
    onRequestTimeout: () => apiCounters.requestsTimedOut++,
  });

  // Nobody else may be here: we hold the lock, so a socket file left over is stale.
  if (existsSync(paths.socket)) {
    log.warn("daemon.stale_socket_removed", { socket: paths.socket });
    unlinkSync(paths.socket);
  }
  // The warm worker loads the job modules while the rest starts; the socket opens once it
  // is ready (or after a second, whatever happens), so even the first job meets a worker.
  const warm = await engine.warmUp(1000);
  if (!warm) log.warn("daemon.warm_worker_late", { waitedMs: 1000 });
  // The socket opens last, once the engine and the scheduler have loaded what they saved (the
  // queue's pause, the schedules): a request answered before would see the defaults, and a
  // change it made (a resume) would be undone by the saved state loaded after it. The engine's
  // start includes its first prune (on a damaged database that is where the start fails, as
  // it must); it is quick unless much aged out while no daemon ran.
  await housekeeping.start();
  await engine.start();
  await scheduler.start();
  const oldMask = process.umask(0o177); // the socket is created 0600
  try {
    await new Promise<void>((resolve, reject) => {
      api.server.once("error", reject);
      api.server.listen(paths.socket, () => resolve());
    });
  } finally {
    process.umask(oldMask);
  }
  chmodSync(paths.socket, 0o600);
  log.info("daemon.started", { pid: process.pid, version: VERSION, home: paths.home, socket: paths.socket, concurrency: config.concurrency, durability: config.durability, jobTypes: [...registry.types.keys()].join(",") || "none" });

  const shutdown = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      log.info("daemon.stopping", { reason, graceMs: config.shutdownGrace });
      // A watchdog: whatever hangs, the process ends.
      setTimeout(() => {
        log.error("daemon.shutdown_timeout", { note: "forcing exit" });
        process.exit(DAEMON_EXIT.failed);
      }, config.shutdownGrace + 10_000).unref();
      api.server.close();
      api.closeIdleConnections();
      scheduler.stop();
      housekeeping.stop();
      await node.markStopping();
      await engine.stop(config.shutdownGrace);
      await node.leave();
      api.closeStreams();
      api.closeAllConnections();
      await store.close();
      try {
        unlinkSync(paths.socket);
      } catch {
        // already gone
      }
      removePidFile(paths.pidFile);
      log.info("daemon.stopped", {});
      resolveStopped();
    })();
    return stopping;
  };

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      log.warn("daemon.forced_exit", { signal });
      removePidFile(paths.pidFile);
      process.exit(DAEMON_EXIT.failed);
    }
    void shutdown(`received ${signal}`);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  process.on("SIGHUP", () => log.info("daemon.sighup_ignored", {}));

  await stopped;
  return DAEMON_EXIT.ok;
}

process.on("uncaughtException", (err) => {
  fatal("daemon.uncaught_exception", { error: err.stack ?? String(err) });
  process.exit(DAEMON_EXIT.failed);
});
process.on("unhandledRejection", (err) => {
  log.error("daemon.unhandled_rejection", { error: (err as Error)?.stack ?? String(err) });
});

main().then(
  (code) => process.exit(code),
  (err) => {
    fatal("daemon.failed", { error: (err as Error)?.stack ?? String(err) });
    process.exit(DAEMON_EXIT.failed);
  },
);
