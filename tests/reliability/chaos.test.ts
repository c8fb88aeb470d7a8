// Chaos: while ~3,000 jobs are being enqueued and run, kill -9 the daemon again and again at
// seeded random moments (some while it is still starting up and rescuing jobs), restart it
// on the same home, and keep enqueueing throughout. After each kill the test reads, from the
// database file itself, which jobs were running at that moment. At the end:
// - every acknowledged job (every id a reply carried) is complete, and nothing is lost, even
//   a job interrupted more times than its maxAttempts (3, the default here);
// - an attempt beyond the first is only ever explained by a kill: each repeated job has one
//   "interrupted" record per extra attempt, and was running at that many kills at least;
// - the handlers' own journal agrees: no attempt number of a job ever ran twice (a claim is
//   committed before its job starts, and a job handed over ahead counts as interrupted even
//   if its begin was not written yet); a job ran more than once only if it was running at a
//   kill (once more per such kill at most); every job's last attempt did run; and nothing
//   the store does not know ever ran.
//
// Replay a run with CHAOS_SEED=<seed> (the seed is printed, and named in every failure).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { FIXTURE_JOBS, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { waitFor } from "../helpers/wait.js";
import { allJobs } from "../helpers/jobs.js";
import type { JobSpec } from "../../src/protocol/routes.js";
import type { Job } from "../../src/protocol/types.js";
import { prng, RELIABILITY_JOBS, seedFrom, spawnDaemon, within } from "./support.js";

const SEED = seedFrom("CHAOS_SEED", 0x5eed_c4a0);
/** Rounds of kill -9 + restart; every third one adds a kill during start-up. */
const ROUNDS = 8;
const CONCURRENCY = 3;
/** Jobs acknowledged in batches, then one at a time; together about 3,000. */
const BATCHED_TARGET = 2_700;
const SINGLE_TARGET = 300;

let d: TestDaemon | undefined;
afterAll(async () => {
  await d?.cleanup();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe(`chaos: repeated kill -9 under load (seed ${SEED})`, () => {
  it("loses no acknowledged job, and repeats only attempts a kill interrupted", async () => {
    console.log(`chaos seed ${SEED} (replay with CHAOS_SEED=${SEED})`);
    // Separate streams, so the kill schedule does not depend on how the producers interleave.
    const killRand = prng(SEED);
    const batchRand = prng(SEED + 1);
    const singleRand = prng(SEED + 2);
    d = await startDaemon({ config: { concurrency: CONCURRENCY, jobModules: [FIXTURE_JOBS, RELIABILITY_JOBS] } });
    const daemon = d;
    const journal = join(daemon.home, "journal.log");
    const spec = (rand: () => number, slow: boolean): JobSpec => ({ type: "journal", payload: slow ? { file: journal, ms: 100 + Math.floor(rand() * 300) } : { file: journal } });

    const acked = new Set<number>();
    let batched = 0;
    let single = 0;
    let refused = 0;
    let stop = false;
    // The producers are paced by the kill rounds (a share of their target per round), so
    // that jobs are being enqueued while every kill happens, not only before the first.
    let round = 0;
    let roundStarted!: () => void;
    let nextRound = new Promise<void>((r) => (roundStarted = r));
    const quota = (target: number) => (round >= ROUNDS ? target : Math.ceil((target * (round + 1)) / ROUNDS));
    const untilQuota = async (done: () => number, target: number) => {
      while (done() >= quota(target) && round < ROUNDS && !stop) await nextRound;
    };

    // Producer 1: batches of 20–200 jobs, 1 in 40 of them slow. A batch the daemon did not
    // acknowledge (it was down, or died mid-request) is not counted; the next one is sent.
    const batches = (async () => {
      for (let sent = 0; batched < BATCHED_TARGET && !stop && sent < 2_000; sent++) {
        await untilQuota(() => batched, BATCHED_TARGET);
        const n = 20 + Math.floor(batchRand() * 180);
        const jobs = Array.from({ length: n }, () => spec(batchRand, batchRand() < 1 / 40));
        try {
          const r = await daemon.client.call("jobsEnqueueBatch", { jobs });
          for (const j of r.jobs) acked.add(j.job.id);
          batched += r.jobs.length;
        } catch {
          refused++;
          await sleep(20);
        }
      }
    })();
    // Producer 2: one job at a time, as a CLI would.
    const singles = (async () => {
      for (let sent = 0; single < SINGLE_TARGET && !stop && sent < 10_000; sent++) {
        await untilQuota(() => single, SINGLE_TARGET);
        try {
          const r = await daemon.client.call("jobsEnqueue", spec(singleRand, singleRand() < 1 / 20));
          acked.add(r.job.id);
          single++;
        } catch {
          refused++;
          await sleep(20);
        }
      }
    })();

    // The kills: each round kills the running, busy daemon; some rounds also kill the next
    // one while it is still starting (opening the database, rescuing what the last kill
    // interrupted). `kills` counts every SIGKILL.
    const kills: string[] = [];
    /** For each job, how many kills found it running (read from the database file while no daemon runs). */
    const runningAtKills = new Map<number, number>();
    const recordRunning = () => {
      const db = new Database(daemon.paths.database, { readonly: true, fileMustExist: true });
      try {
        for (const { id } of db.prepare<[], { id: number }>("SELECT id FROM jobs WHERE status = 'running'").all()) runningAtKills.set(id, (runningAtKills.get(id) ?? 0) + 1);
      } finally {
        db.close();
      }
    };
    const t0 = Date.now();
    for (; round < ROUNDS; ) {
      const after = 80 + Math.floor(killRand() * 500);
      await sleep(after);
      await daemon.kill9();
      recordRunning();
      kills.push(`${Date.now() - t0}ms: running, ${after}ms after the last start (${acked.size} acked so far)`);
      if (round % 3 === 1) {
        const early = spawnDaemon(daemon.home);
        const at = Math.floor(killRand() * 150);
        await sleep(at);
        early.child.kill("SIGKILL");
        await within(early.exited, 10_000, "a daemon killed while starting");
        recordRunning();
        kills.push(`${Date.now() - t0}ms: while starting, ${at}ms after its spawn`);
      }
      await daemon.restart();
      round++;
      roundStarted();
      nextRound = new Promise<void>((r) => (roundStarted = r));
    }
    console.log(`chaos seed ${SEED}: kills at\n  ${kills.join("\n  ")}`);

    await within(Promise.all([batches, singles]), 40_000, `the producers (seed ${SEED})`).finally(() => (stop = true));
    expect(acked.size, `seed ${SEED}`).toBe(batched + single);
    expect(acked.size, `seed ${SEED}`).toBeGreaterThanOrEqual(BATCHED_TARGET + SINGLE_TARGET);

    // Drain.
    await waitFor(
      async () => {
        const s = await daemon.client.call("daemonStatus", {});
        return s.counts.jobs.pending === 0 && s.counts.jobs.running === 0;
      },
      { timeoutMs: 40_000, intervalMs: 100, what: `the queue to drain (seed ${SEED})` },
    );

    const jobs = await allJobs(daemon.client);
    const byId = new Map<number, Job>(jobs.map((j) => [j.id, j]));

    // Nothing acknowledged is lost; everything stored (acknowledged or not) completed.
    const lost = [...acked].filter((id) => !byId.has(id));
    expect(lost, `seed ${SEED}: acknowledged jobs missing from the store`).toEqual([]);
    const unfinished = jobs.filter((j) => j.status !== "complete").map((j) => `${j.id}:${j.status}:${j.error}`);
    expect(unfinished, `seed ${SEED}: jobs that did not complete`).toEqual([]);

    // Every extra attempt is an interrupted one, and only a kill that found the job running interrupted it.
    const unexplained = jobs.filter((j) => {
      const interrupted = j.errors.filter((e) => /interrupted/.test(e.message)).length;
      return j.errors.length !== j.attempts - 1 || interrupted !== j.attempts - 1 || j.attempts - 1 > (runningAtKills.get(j.id) ?? 0);
    });
    expect(
      unexplained.map((j) => ({ id: j.id, attempts: j.attempts, runningAtKills: runningAtKills.get(j.id) ?? 0, errors: j.errors.map((e) => e.message) })),
      `seed ${SEED}: attempts not explained by a kill`,
    ).toEqual([]);
    const repeated = jobs.filter((j) => j.attempts > 1);
    const interruptions = jobs.reduce((n, j) => n + j.attempts - 1, 0);

    // The handlers' journal: every job's final attempt ran; a job ran again only if a kill
    // found it running, once per such kill at most; nothing the store does not know ran.
    const runs = readFileSync(journal, "utf8").trim().split("\n");
    const executions = new Map<number, number>();
    const seen = new Set<string>();
    const twice: string[] = [];
    for (const line of runs) {
      if (seen.has(line)) twice.push(line);
      seen.add(line);
      const id = Number(line.split(" ")[0]);
      executions.set(id, (executions.get(id) ?? 0) + 1);
    }
    expect(twice, `seed ${SEED}: an attempt number ran twice`).toEqual([]);
    const strangers = [...executions.keys()].filter((id) => !byId.has(id));
    expect(strangers, `seed ${SEED}: executions of unknown jobs`).toEqual([]);
    const neverRan = jobs
      .filter((j) => !seen.has(`${j.id} ${j.attempts}`))
      .map((j) => ({ id: j.id, acked: acked.has(j.id), attempts: j.attempts, ran: runs.filter((l) => l.startsWith(`${j.id} `)), errors: j.errors.map((e) => e.message), created: j.createdAt, started: j.startedAt, finished: j.finishedAt }));
    expect(neverRan, `seed ${SEED}: complete jobs whose final attempt never ran`).toEqual([]);
    const overRun = [...executions].filter(([id, n]) => n > 1 + (runningAtKills.get(id) ?? 0)).map(([id, n]) => `${id}: ran ${n} times, running at ${runningAtKills.get(id) ?? 0} kills`);
    expect(overRun, `seed ${SEED}: jobs run again without a kill finding them running`).toEqual([]);

    const log = daemon.log();
    expect(log.match(/daemon\.started/g)?.length ?? 0, `seed ${SEED}`).toBeGreaterThanOrEqual(ROUNDS + 1);
    expect(log, `seed ${SEED}`).not.toMatch(/daemon\.uncaught_exception|request\.failed|request\.crashed/);
    console.log(
      `chaos seed ${SEED}: ${acked.size} acknowledged (${refused} requests refused while down), ${jobs.length} stored, ` +
        `${repeated.length} jobs repeated (at most ${Math.max(...jobs.map((j) => j.attempts))} attempts), ${interruptions} interrupted attempts, ${runs.length} executions, ${runningAtKills.size} jobs running at some kill, ${kills.length} kills`,
    );
  }, 120_000);
});
