// The package's library entry: what a user's job module may import.
export { defineJob, PermanentJobError } from "./jobs/define.js";
export type { JobContext, JobDefinition } from "./jobs/define.js";
