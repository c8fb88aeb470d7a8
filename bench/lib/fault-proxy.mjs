// The fault proxy of tests/helpers/fault-proxy.ts (read it for what each fault means), loaded
// as it is: one implementation for the tests and the bench.
import { loadTs } from "./load-ts.mjs";

/** @type {typeof import("../../tests/helpers/fault-proxy.ts").startFaultProxy} */
export const { startFaultProxy } = await loadTs("tests/helpers/fault-proxy.ts");
