import { InvalidArgumentError } from "commander";

/** A positive whole-number id, or commander's usage error (exit 2). */
export function parseId(value: string): number {
  if (!/^\d{1,15}$/.test(value) || Number(value) < 1) throw new InvalidArgumentError(`"${value}" is not an id (a positive whole number)`);
  return Number(value);
}

export function parseJsonArg(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new InvalidArgumentError(`not valid JSON: ${(err as Error).message}`);
  }
}
