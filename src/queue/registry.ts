// Job types by name. The daemon loads every job module once to know the types, their
// defaults and their validators; each worker loads the same modules to run them.

import { pathToFileURL } from "node:url";
import { ISOLATIONS, type JobDefinition } from "../jobs/define.js";
import { TeamworkError } from "../lib/errors.js";
import { didYouMean } from "../lib/suggest.js";

export interface RegisteredType {
  def: JobDefinition<unknown, unknown>;
  module: string;
}

export class Registry {
  constructor(readonly types: ReadonlyMap<string, RegisteredType>) {}

  get(type: string): RegisteredType {
    const t = this.types.get(type);
    if (!t) {
      const known = [...this.types.keys()];
      throw new TeamworkError(
        "invalid_input",
        `unknown job type "${type}"${didYouMean(type, known)}`,
        known.length ? `known types: ${known.join(", ")}` : "no job types are registered; add modules to jobModules in config.json",
      );
    }
    return t;
  }

  has(type: string): boolean {
    return this.types.has(type);
  }

  get modules(): string[] {
    return [...new Set([...this.types.values()].map((t) => t.module))];
  }
}

function check(def: unknown, module: string): JobDefinition<unknown, unknown> {
  const d = def as Partial<JobDefinition<unknown, unknown>> | null;
  if (typeof d !== "object" || d === null) throw new Error(`${module}: a job definition must be an object`);
  if (typeof d.type !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/.test(d.type)) {
    throw new Error(`${module}: job definition has no valid "type" (letters, digits, . _ : -)`);
  }
  if (typeof d.run !== "function") throw new Error(`${module}: job type "${d.type}" has no run(payload, ctx) function`);
  for (const k of ["timeoutMs", "maxAttempts", "memoryMb"] as const) {
    const v = d[k];
    if (v !== undefined && (typeof v !== "number" || !Number.isInteger(v) || v < 1)) {
      throw new Error(`${module}: job type "${d.type}": ${k} must be a positive whole number`);
    }
  }
  if (d.isolation !== undefined && !ISOLATIONS.includes(d.isolation)) {
    throw new Error(`${module}: job type "${d.type}": isolation must be ${ISOLATIONS.map((i) => `"${i}"`).join(" or ")}, got ${JSON.stringify(d.isolation)}`);
  }
  return d as JobDefinition<unknown, unknown>;
}

export async function loadRegistry(modules: string[]): Promise<Registry> {
  const types = new Map<string, RegisteredType>();
  for (const module of modules) {
    let exported: unknown;
    try {
      exported = ((await import(pathToFileURL(module).href)) as { default?: unknown }).default;
    } catch (err) {
      throw new TeamworkError("invalid_input", `job module ${module} failed to load: ${(err as Error).message}`);
    }
    const defs = Array.isArray(exported) ? exported : [exported];
    for (const raw of defs) {
      let def: JobDefinition<unknown, unknown>;
      try {
        def = check(raw, module);
      } catch (err) {
        throw new TeamworkError("invalid_input", (err as Error).message);
      }
      const prior = types.get(def.type);
      if (prior) throw new TeamworkError("invalid_input", `job type "${def.type}" is defined twice: in ${prior.module} and ${module}`);
      types.set(def.type, { def, module });
    }
  }
  return new Registry(types);
}
