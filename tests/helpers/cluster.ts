// A cluster of real daemons on one fresh PostgreSQL database, for the scale-out tests
// (SCALE-OUT.md §10): N `teamwork daemon` processes, each on its own temp home and each
// reaching the database through its own fault proxy (./fault-proxy.ts), all running the
// ledger job type (../fixtures/jobs/ledger.mjs) into one ledger file.
//
//   const c = await startCluster(2, { config: { concurrency: 4 } });
//   try { … c.nodes[1].proxy.blackhole(); await c.killNode(0); … } finally { await c.teardown(); }
//
// Nothing is left behind, even when a test fails or its process dies: teardown() stops the
// daemons and drops the database; at exit, daemons still alive are killed; and every cluster
// writes a manifest in its folder, so that the next startCluster() on this machine removes
// what a cluster whose test process died (kill -9, a crashed worker) left: its daemons, its
// database, its folder.

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { Client } from "../../src/client/client.js";
import { TeamworkClient } from "../../src/client/teamwork.js";
import { resolvePaths, type Paths } from "../../src/config/paths.js";
import { DAEMON_EXIT } from "../../src/protocol/daemon-exit.js";
import { DAEMON, FIXTURE_JOBS } from "./daemon.js";
import { runCli, type CliResult } from "./cli.js";
import { startFaultProxy, type FaultProxy } from "./fault-proxy.js";
import { checkLedger, readLedger, LEDGER_JOBS, type Death, type FinalJob, type LedgerCheckOptions, type LedgerEntry, type LedgerReport, type SlotRun } from "./ledger.js";
import type { Json } from "../../src/protocol/types.js";
import { PG_TEST_URL, pgUrlFor } from "../store/factory.js";

export interface ClusterOptions {
  /** config.json of every daemon, over { jobModules: [fixtures, ledger] }. */
  config?: Record<string, unknown>;
  /** Per node, over `config`. */
  nodeConfig?: (index: number) => Record<string, unknown>;
  /** Extra environment of every daemon. */
  env?: NodeJS.ProcessEnv;
  /** Per node, over `env` (e.g. a fake clock for one node: libfaketime's LD_PRELOAD and FAKETIME). */
  nodeEnv?: (index: number) => NodeJS.ProcessEnv;
  /** How long a call of a node's client may take (default 15 s). */
  clientTimeoutMs?: number;
  /** How long a daemon may take to answer /health at start (default 20 s). */
  startTimeoutMs?: number;
}

export interface NodeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ClusterNode {
  readonly index: number;
  /** Its name in the ledger (TEAMWORK_TEST_NODE): n0, n1, … */
  readonly name: string;
  readonly home: string;
  readonly paths: Paths;
  /** The fault proxy between it and PostgreSQL; kept across restarts. */
  readonly proxy: FaultProxy;
  /** The socket API's client (raw routes). */
  readonly client: Client;
  /** The package's client, over the same connection. */
  readonly tw: TeamworkClient;
  /** The current process's pid. */
  readonly pid: number;
  readonly process: ChildProcess;
  /** True from start until the current process has exited. */
  readonly alive: boolean;
  readonly paused: boolean;
  /** Resolves when the current process exits. */
  readonly exited: Promise<NodeExit>;
  /** Its log (daemon.log: stdout and stderr of every process run on this home). */
  log(): string;
  /** The real CLI on this node's home. */
  cli(args: string[], opts?: { env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<CliResult>;
}

export interface Cluster {
  /** The database's name, and its URL straight to the server (not through a proxy). */
  readonly database: string;
  readonly url: string;
  readonly dir: string;
  readonly ledgerFile: string;
  readonly nodes: ClusterNode[];
  /** Processes killed with SIGKILL by killNode, and when: the ledger checker's deaths. */
  readonly deaths: Death[];
  node(i: number): ClusterNode;
  /** Sends a signal (default SIGKILL) and waits for the process to exit. */
  killNode(i: number, signal?: NodeJS.Signals): Promise<NodeExit>;
  /** SIGSTOP: the process freezes (a GC pause, a suspended VM). */
  pauseNode(i: number): void;
  /** SIGCONT. */
  resumeNode(i: number): void;
  /**
   * Starts the node's daemon again on its home, behind its proxy (stopping it first, SIGTERM,
   * if it runs). A refusal (the server has not yet seen its old sessions go) is tried again
   * for up to refusedRetryMs (default 10 s).
   */
  restartNode(i: number, opts?: { refusedRetryMs?: number }): Promise<ClusterNode>;
  /** Starts one more node. */
  addNode(): Promise<ClusterNode>;
  /** The index of the node that started the latest attempt of a job (from the ledger), or null. */
  nodeOf(job: number): number | null;
  /** The server's process ids of a node's sessions (its connections through its proxy). */
  backendsOf(i: number): Promise<number[]>;
  /** The first node whose process is alive, not paused and whose proxy is open. */
  healthyNode(): ClusterNode;
  /**
   * Calls fn until predicate holds on what it returns (fn's errors count as "not yet"), every
   * 25 ms, and returns that value; after timeoutMs fails saying what was awaited and the last
   * value or error seen.
   */
  waitFor<T>(fn: () => T | Promise<T>, predicate: (v: T) => boolean, timeoutMs?: number, what?: string): Promise<T>;
  /** A query on the cluster's database, straight to the server. */
  sql<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, params?: unknown[]): Promise<R[]>;
  ledger(): LedgerEntry[];
  /** The final states of these jobs, read through a healthy node. */
  jobs(ids: readonly number[]): Promise<FinalJob[]>;
  /** Every job of a type (default "ledger"), read through a healthy node. */
  allJobs(type?: string): Promise<FinalJob[]>;
  /** Reads the ledger and the jobs' states and checks the invariants (ledger.ts), with this cluster's deaths. */
  check(ids: readonly number[], opts?: LedgerCheckOptions): Promise<LedgerReport>;
  /** Daemons that exited without being told to (no killNode, restart or teardown), with their log's tail. */
  unexpectedExits(): { node: string; code: number | null; signal: NodeJS.Signals | null; log: string }[];
  /**
   * Stops every daemon, closes the proxies, drops the database, removes the folder. Safe to
   * call twice. The log tail of a daemon that exited unexpectedly is printed first (stderr),
   * since the folder goes.
   */
  teardown(): Promise<void>;
}

/** A daemon refused because the database is another daemon's (a build without nodes: one daemon per database). */
export class NodeRefused extends Error {
  constructor(
    readonly index: number,
    readonly log: string,
  ) {
    super(`node n${index} was refused: another daemon serves the database (this build runs one daemon per PostgreSQL database)`);
    this.name = "NodeRefused";
  }
}

const PREFIX = "tw-cluster-";
const DB_PREFIX = "tw_cluster_";

/** Every daemon process of every cluster of this process that may still run. */
const liveProcesses = new Set<ChildProcess>();
let exitHook = false;
function killAllAtExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.on("exit", () => {
    for (const p of liveProcesses) {
      try {
        p.kill("SIGKILL");
      } catch {
        // gone
      }
    }
  });
}

/** Whether a process with this pid exists (one of another user's counts). */
export const pidAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
};

interface Manifest {
  owner: number;
  database: string;
  /** Daemon pids with their home: a pid is killed only if its command line names that home. */
  daemons: { pid: number; home: string }[];
}

/**
 * Removes what clusters of dead test processes left on this machine: their daemons (only a
 * pid whose command line still names the cluster's home), their databases, their folders.
 */
async function sweep(admin: pg.Client): Promise<void> {
  const root = tmpdir();
  for (const name of readdirSync(root)) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = join(root, name);
    let m: Manifest;
    try {
      m = JSON.parse(readFileSync(join(dir, "cluster.json"), "utf8")) as Manifest;
    } catch {
      continue; // being written, or not ours
    }
    if (pidAlive(m.owner)) continue;
    for (const d of m.daemons) {
      try {
        if (readFileSync(`/proc/${d.pid}/cmdline`, "utf8").includes(d.home)) process.kill(d.pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    await admin.query(`DROP DATABASE IF EXISTS ${m.database} WITH (FORCE)`).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
  // Databases of clusters whose folder is gone: the owner's pid is in the name.
  const { rows } = await admin.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE $1", [`${DB_PREFIX}%`]);
  for (const { datname } of rows) {
    const owner = Number(datname.slice(DB_PREFIX.length).split("_")[0]);
    if (Number.isInteger(owner) && owner > 0 && !pidAlive(owner)) await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`).catch(() => {});
  }
}

export async function startCluster(n: number, opts: ClusterOptions = {}): Promise<Cluster> {
  killAllAtExit();
  const admin = new pg.Client({ connectionString: PG_TEST_URL, connectionTimeoutMillis: 5000 });
  admin.on("error", () => {});
  await admin.connect();
  await sweep(admin);

  const tag = randomBytes(4).toString("hex");
  const database = `${DB_PREFIX}${process.pid}_${tag}`;
  const dir = join(tmpdir(), `${PREFIX}${process.pid}-${tag}`);
  mkdirSync(dir, { recursive: true });
  const manifest: Manifest = { owner: process.pid, database, daemons: [] };
  const saveManifest = () => writeFileSync(join(dir, "cluster.json"), JSON.stringify(manifest));
  saveManifest();
  await admin.query(`CREATE DATABASE ${database}`);
  const url = pgUrlFor(database);
  const target = new URL(PG_TEST_URL);
  const ledgerFile = join(dir, "ledger.jsonl");
  const deaths: Death[] = [];
  const nodes: NodeImpl[] = [];
  const unexpected: ReturnType<Cluster["unexpectedExits"]> = [];
  let inspect: pg.Pool | undefined;
  let tornDown: Promise<void> | undefined;

  interface NodeImpl extends ClusterNode {
    child: ChildProcess;
    exit: Promise<NodeExit>;
    isAlive: boolean;
    isPaused: boolean;
    /** Set before the test's own signals, so that the exit they cause is not reported. */
    exitExpected: boolean;
    start(): Promise<void>;
  }

  const makeNode = async (index: number): Promise<NodeImpl> => {
    const home = join(dir, `n${index}`);
    mkdirSync(home, { recursive: true, mode: 0o700 });
    writeFileSync(join(home, "config.json"), JSON.stringify({ jobModules: [FIXTURE_JOBS, LEDGER_JOBS], ...opts.config, ...opts.nodeConfig?.(index) }, null, 2));
    const paths = resolvePaths({ home });
    const proxy = await startFaultProxy({ targetHost: target.hostname, targetPort: Number(target.port || 5432) });
    const client = new Client({ socket: paths.socket, keepAlive: false, timeoutMs: opts.clientTimeoutMs ?? 15_000 });
    const logFile = join(home, "daemon.log");
    const node: NodeImpl = {
      index,
      name: `n${index}`,
      home,
      paths,
      proxy,
      client,
      tw: new TeamworkClient(client),
      child: undefined as unknown as ChildProcess,
      exit: Promise.resolve({ code: null, signal: null }),
      isAlive: false,
      isPaused: false,
      exitExpected: false,
      get pid() {
        return node.child.pid!;
      },
      get process() {
        return node.child;
      },
      get alive() {
        return node.isAlive;
      },
      get paused() {
        return node.isPaused;
      },
      get exited() {
        return node.exit;
      },
      log: () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : ""),
      cli: (args, o = {}) => runCli(args, { home, env: o.env, timeoutMs: o.timeoutMs }),
      async start() {
        const fd = openSync(logFile, "a");
        const child = spawn(process.execPath, [DAEMON, "--home", home], {
          stdio: ["ignore", fd, fd],
          env: {
            ...process.env,
            ...opts.env,
            ...opts.nodeEnv?.(index),
            TEAMWORK_DATABASE_URL: proxy.urlThrough(url),
            TEAMWORK_TEST_LEDGER: ledgerFile,
            TEAMWORK_TEST_NODE: node.name,
          },
        });
        closeSync(fd);
        node.child = child;
        node.isAlive = true;
        node.isPaused = false;
        node.exitExpected = false;
        liveProcesses.add(child);
        manifest.daemons.push({ pid: child.pid!, home });
        saveManifest();
        node.exit = new Promise((resolve) =>
          child.on("exit", (code, signal) => {
            node.isAlive = false;
            liveProcesses.delete(child);
            if (!node.exitExpected) unexpected.push({ node: node.name, code, signal, log: node.log().slice(-4000) });
            resolve({ code, signal });
          }),
        );
        const deadline = Date.now() + (opts.startTimeoutMs ?? 20_000);
        let last: unknown;
        for (;;) {
          if (!node.isAlive) {
            const { code, signal } = await node.exit;
            // A failed start is this call's error, not an unexpected exit later.
            const i = unexpected.findIndex((u) => u.node === node.name);
            if (i >= 0) unexpected.splice(i, 1);
            const text = node.log();
            if (code === DAEMON_EXIT.alreadyRunning && text.includes("daemon.database_taken")) throw new NodeRefused(index, text);
            throw new Error(`node ${node.name} exited at start (code ${code}, signal ${signal}):\n${text.slice(-4000)}`);
          }
          try {
            if ((await client.call("health", {})).pid === child.pid) return;
          } catch (err) {
            last = err;
          }
          if (Date.now() > deadline) {
            throw new Error(`node ${node.name} did not answer /health within ${opts.startTimeoutMs ?? 20_000} ms (last: ${(last as Error)?.message}):\n${node.log().slice(-4000)}`);
          }
          await new Promise((r) => setTimeout(r, 25));
        }
      },
    };
    return node;
  };

  const stopProcess = async (node: NodeImpl, graceMs: number) => {
    if (!node.isAlive) return;
    node.exitExpected = true;
    if (node.isPaused) node.child.kill("SIGCONT");
    node.isPaused = false;
    node.child.kill("SIGTERM");
    const timer = setTimeout(() => node.child.kill("SIGKILL"), graceMs);
    await node.exit;
    clearTimeout(timer);
  };

  const cluster: Cluster = {
    database,
    url,
    dir,
    ledgerFile,
    nodes,
    deaths,
    node(i) {
      const nd = nodes[i];
      if (!nd) throw new Error(`no node ${i} (the cluster has ${nodes.length})`);
      return nd;
    },
    async killNode(i, signal = "SIGKILL") {
      const nd = nodes[i]!;
      if (!nd.isAlive) return nd.exit;
      const at = performance.timeOrigin + performance.now();
      nd.exitExpected = true;
      nd.child.kill(signal);
      if (signal === "SIGKILL") deaths.push({ pid: nd.child.pid!, at });
      else if (nd.isPaused) nd.child.kill("SIGCONT"); // a stopped process acts on its signal once continued
      nd.isPaused = false;
      return nd.exit;
    },
    pauseNode(i) {
      const nd = nodes[i]!;
      nd.child.kill("SIGSTOP");
      nd.isPaused = true;
    },
    resumeNode(i) {
      const nd = nodes[i]!;
      nd.child.kill("SIGCONT");
      nd.isPaused = false;
    },
    async restartNode(i, o = {}) {
      const nd = nodes[i]!;
      await stopProcess(nd, 15_000);
      const deadline = Date.now() + (o.refusedRetryMs ?? 10_000);
      for (;;) {
        try {
          await nd.start();
          return nd;
        } catch (err) {
          if (!(err instanceof NodeRefused) || Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    },
    async addNode() {
      const nd = await makeNode(nodes.length);
      nodes.push(nd);
      await nd.start();
      return nd;
    },
    nodeOf(job) {
      let last: LedgerEntry | undefined;
      for (const l of cluster.ledger()) if (l.job === job && l.event === "start" && (!last || l.attempt >= last.attempt)) last = l;
      if (!last) return null;
      const i = nodes.findIndex((nd) => nd.name === last!.node);
      return i < 0 ? null : i;
    },
    async backendsOf(i) {
      const ports = nodes[i]!.proxy.connections().map((c) => c.serverPort).filter((p): p is number => p !== null);
      if (ports.length === 0) return [];
      const rows = await cluster.sql<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND client_port = ANY($2::int[])", [database, ports]);
      return rows.map((r) => r.pid);
    },
    healthyNode() {
      const nd = nodes.find((x) => x.isAlive && !x.isPaused && x.proxy.mode === "open");
      if (!nd) throw new Error("no healthy node: every node is stopped, paused or cut off");
      return nd;
    },
    async waitFor<T>(fn: () => T | Promise<T>, predicate: (v: T) => boolean, timeoutMs = 20_000, what = "a condition") {
      const deadline = Date.now() + timeoutMs;
      let last: { value?: T; error?: unknown } = {};
      for (;;) {
        try {
          const v = await fn();
          if (predicate(v)) return v;
          last = { value: v };
        } catch (error) {
          last = { error };
        }
        if (Date.now() > deadline) {
          const seen = "error" in last ? `error ${(last.error as Error)?.message ?? String(last.error)}` : `value ${JSON.stringify(last.value)?.slice(0, 500)}`;
          throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last ${seen}`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async sql(text, params) {
      if (!inspect) {
        inspect = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 5000 });
        inspect.on("error", () => {});
      }
      return (await inspect.query(text, params)).rows;
    },
    ledger: () => readLedger(ledgerFile),
    async jobs(ids) {
      const c = cluster.healthyNode().client;
      const out: FinalJob[] = [];
      const want = new Set(ids);
      if (ids.length <= 50) {
        for (const id of ids) {
          const { job } = await c.call("jobsGet", { id });
          out.push({ id: job.id, status: job.status, attempts: job.attempts });
        }
        return out;
      }
      // Many: page through the list (newest first), keeping the ones asked for.
      let beforeId: number | undefined;
      for (;;) {
        const { jobs } = await c.call("jobsList", { limit: 1000, ...(beforeId === undefined ? {} : { beforeId }) });
        for (const j of jobs) if (want.has(j.id)) out.push({ id: j.id, status: j.status, attempts: j.attempts });
        if (jobs.length < 1000) break;
        beforeId = jobs[jobs.length - 1]!.id;
      }
      return out;
    },
    async allJobs(type = "ledger") {
      const c = cluster.healthyNode().client;
      const out: FinalJob[] = [];
      let beforeId: number | undefined;
      for (;;) {
        const { jobs } = await c.call("jobsList", { type, limit: 1000, ...(beforeId === undefined ? {} : { beforeId }) });
        for (const j of jobs) out.push({ id: j.id, status: j.status, attempts: j.attempts });
        if (jobs.length < 1000) return out.reverse();
        beforeId = jobs[jobs.length - 1]!.id;
      }
    },
    async check(ids, o = {}) {
      const finals = await cluster.jobs(ids);
      return checkLedger(cluster.ledger(), finals, { expected: ids, deaths, ...o, ...(o.deaths ? { deaths: [...deaths, ...o.deaths] } : {}) });
    },
    unexpectedExits: () => [...unexpected],
    teardown() {
      tornDown ??= (async () => {
        for (const u of unexpected) {
          process.stderr.write(`[cluster] node ${u.node} exited unexpectedly (code ${u.code}, signal ${u.signal}); its log ends:\n${u.log}\n`);
        }
        for (const nd of nodes) nd.proxy.heal(); // a daemon stops faster when it can reach its database
        await Promise.all(nodes.map((nd) => stopProcess(nd, 10_000)));
        for (const nd of nodes) {
          nd.client.close();
          await nd.proxy.close();
        }
        await inspect?.end().catch(() => {});
        await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
        await admin.end().catch(() => {});
        rmSync(dir, { recursive: true, force: true });
      })();
      return tornDown;
    },
  };

  try {
    for (let i = 0; i < n; i++) await cluster.addNode();
  } catch (err) {
    await cluster.teardown().catch(() => {});
    throw err;
  }
  return cluster;
}

/** Enqueues ledger jobs with these payloads through a node (1,000 a call); their ids, in order. */
export async function enqueueLedger(node: ClusterNode, payloads: { [k: string]: Json }[], extra: { priority?: number; maxAttempts?: number } = {}): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < payloads.length; i += 1000) {
    const r = await node.client.call("jobsEnqueueBatchIds", { jobs: payloads.slice(i, i + 1000).map((payload) => ({ type: "ledger", payload, ...extra })) });
    ids.push(...r.ids);
  }
  return ids;
}

/** A schedule's fired slots as the store recorded them (schedule_runs), oldest first, read straight from the database. */
export async function scheduleRuns(c: Cluster, name: string): Promise<SlotRun[]> {
  const rows = await c.sql<{ slot: number; outcome: SlotRun["outcome"]; job: string | null }>(
    `SELECT (extract(epoch FROM slot) * 1000)::float8 AS slot, outcome, job_id AS job FROM schedule_runs WHERE schedule = $1 ORDER BY slot`,
    [name],
  );
  return rows.map((r) => ({ slot: Math.round(r.slot), outcome: r.outcome, job: r.job === null ? null : Number(r.job) }));
}

/** The database's clock (ms). */
export async function dbNow(c: Cluster): Promise<number> {
  return Math.round((await c.sql<{ now: number }>(`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now`))[0]!.now);
}
