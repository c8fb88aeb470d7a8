// The /health probe of tests/helpers/health-probe.ts (an RPC connection from a worker thread of
// its own), loaded as it is: one implementation for the reliability suite and the bench.
import { loadTs } from "./load-ts.mjs";

/** @type {typeof import("../../tests/helpers/health-probe.ts").healthProbe} */
export const { healthProbe } = await loadTs("tests/helpers/health-probe.ts");
