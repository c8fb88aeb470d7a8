import { readFileSync } from "node:fs";

// Read once from package.json, which sits two folders up from both src/protocol and dist/protocol.
export const VERSION: string = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** Sent on every response so both sides can notice a mismatch. */
export const VERSION_HEADER = "x-teamwork-version";

/** The upgrade token of the RPC protocol (GET /rpc, then a JSON object per line each way). */
export const RPC_PROTOCOL = "teamwork-rpc";
