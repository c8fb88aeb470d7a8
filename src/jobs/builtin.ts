// Built-in job modules, by file. Each default-exports a JobDefinition (or an array).
// From both src/jobs and dist/jobs these name the compiled modules.

import { fileURLToPath } from "node:url";

const builtin = (name: string) => fileURLToPath(new URL(`../../dist/jobs/${name}.js`, import.meta.url));

export const BUILTIN_JOB_MODULES: string[] = ["report", "thumbnail", "notify", "assignment-email", "cleanup", "digest"].map(builtin);
