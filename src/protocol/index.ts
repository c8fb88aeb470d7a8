export * from "./types.js";
export * from "./routes.js";
export * from "./events.js";
export * from "./files.js";
export * from "./errors.js";
export { VERSION, VERSION_HEADER } from "./version.js";
