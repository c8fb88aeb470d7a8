// Heavy calls take turns. A list of a thousand rows is read from the store, shaped and
// serialised on the main thread, in one go: some 10 ms. Thirty-two of them back to back (one
// RPC connection's calls in flight) held the thread for a third of a second, and /health with
// it. Through a Gate they run one at a time, and each next one starts on a new turn of the
// event loop, so whatever arrived meanwhile (a /health, a job's result) is served between two.

/** Runs at most `permits` tasks at once; the others wait in order, each let in on a later turn. */
export class Gate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    readonly permits: number,
    /** How a waiting task is let in: on a later turn of the event loop. */
    private readonly later: (fn: () => void) => void = (fn) => void setImmediate(fn),
  ) {}

  /** Tasks waiting for their turn now. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Tasks running now. */
  get active(): number {
    return this.running;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.permits || this.waiting.length > 0) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await task();
    } finally {
      this.leave();
    }
  }

  /** A task ended: the next waiting one gets its permit, and starts on a later turn. */
  private leave(): void {
    const next = this.waiting.shift();
    if (!next) {
      this.running--;
      return;
    }
    // The permit passes to `next` now (nobody can overtake it), its work starts later.
    this.later(next);
  }
}
