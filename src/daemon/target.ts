// A request's target (`req.url`: "/jobs/12?limit=5") read as the API reads it: its path and
// its query. new URL(target, "http://localhost") is the rule; a plain target (the one every
// client sends) is read by slicing instead, which gives the same path and query without a URL
// object per request. Anything else goes through new URL: dot segments ("/a/../b", "%2e"),
// "//", backslashes, a fragment, and characters the URL parser would encode or drop.

/** A target's path and query as the routes use them. */
export class Target {
  constructor(
    /** As URL.pathname. */
    readonly pathname: string,
    /** As URL.search: "" when there is no query or it is empty, else "?..." */
    readonly search: string,
    private readonly url: URL | null = null,
  ) {}

  /** As URL.searchParams. */
  query(): URLSearchParams {
    return this.url ? this.url.searchParams : new URLSearchParams(this.search);
  }
}

/**
 * A plain target: "/" then path characters the URL parser keeps as they are (no "\", no
 * space or control, no quote, "<", ">", "^", "`", "{", "|", "}"), not "//" at the start; then
 * optionally "?" and printable ASCII the parser keeps as it is in a query (not "#", '"', "'",
 * "<", ">"). Its dot segments are looked for separately.
 */
const PLAIN = /^\/(?!\/)[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*(?:\?[!$-&(-;=?-~]*)?$/;
/** A path segment the URL parser resolves: ".", "..", or either spelled with %2e. */
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;

/** The target read as new URL(target, "http://localhost") reads it; throws as that does on a malformed one. */
export function parseTarget(target: string): Target {
  if (PLAIN.test(target)) {
    const q = target.indexOf("?");
    const pathname = q < 0 ? target : target.slice(0, q);
    if (!DOT_SEGMENT.test(pathname)) {
      const search = q < 0 || q === target.length - 1 ? "" : target.slice(q);
      return new Target(pathname, search);
    }
  }
  const url = new URL(target, "http://localhost");
  return new Target(url.pathname, url.search, url);
}
