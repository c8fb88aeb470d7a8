// The claim's time budget (ClaimLimits.budgetMs), as every store that holds the daemon's
// thread while it claims applies it. A tick's transaction on SQLite runs on the main thread:
// under load (issue 18, hostile clients) one that wrote 256 finishes and claimed 256 jobs took
// 10-70 ms, and /health waited for all of it. A count cap on the claim halved the drain
// (fewer jobs per round trip to the workers, whatever the load); a time budget only bites
// when the thread is slow: on an idle machine such a tick takes a few ms and claims in full.

/**
 * Whether a claim that has taken `claimed` jobs in `elapsedMs` takes another. The first job is
 * always taken (a claim on a thread so slow that one job spends the budget still moves the queue).
 */
export function claimMore(claimed: number, elapsedMs: number, budgetMs: number | undefined): boolean {
  return claimed === 0 || budgetMs === undefined || elapsedMs < budgetMs;
}
