// A peer's worker process (`fork`ed by lib/peers.mjs): sets the peer's worker up, says
// "ready", starts on "go", reports handler starts (for latency) and completion counts, and
// stops on "stop"; it says "running" once the peer's own start (go) has returned. It exits by
// itself if the bench goes away.
import { wallNow } from "../lib/util.mjs";

const [peerId, refJson, concurrencyText] = process.argv.slice(2);
const send = (m) => process.connected && process.send(m);
const peer = await import(`./${peerId}.mjs`);

let report = false;
let completed = 0;
let reported = -1;
let ticker;
const worker = await peer.startWorker(JSON.parse(refJson), {
  concurrency: Number(concurrencyText),
  // Called first thing in the handler; i() reads the job's index only when it is needed.
  onStart(i) {
    if (report) send({ t: "start", i: i(), at: wallNow() });
  },
  onComplete() {
    completed++;
  },
});

process.on("message", async (m) => {
  if (m.t === "go") {
    report = Boolean(m.report);
    // Completion counts for B only: a latency run (report) follows the starts instead, and
    // a 5 ms timer would keep an idle worker process awake, which teamwork's daemon is not.
    if (!report) {
      ticker = setInterval(() => {
        if (completed !== reported) send({ t: "count", count: (reported = completed) });
      }, 5);
    }
    await worker.go();
    send({ t: "running" });
  } else if (m.t === "stop") {
    clearInterval(ticker);
    const watchdog = setTimeout(() => process.exit(0), 10_000);
    try {
      await worker.stop();
    } catch (err) {
      process.stderr.write(`${peerId} worker stop: ${err.message}\n`);
    }
    clearTimeout(watchdog);
    process.exit(0);
  }
});
process.on("disconnect", () => process.exit(0));
setTimeout(() => process.exit(3), 30 * 60_000).unref(); // never outlive a bench run
send({ t: "ready" });
