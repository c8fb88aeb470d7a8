// What every command gets: the global options, resolved paths, output, and a client that
// auto-starts the daemon when allowed.

import { InvalidArgumentError, type Command } from "commander";
import { resolvePaths, type Paths } from "../config/paths.js";
import type { TeamworkClient } from "../client/teamwork.js";
import { formatDuration, parseDuration } from "../lib/duration.js";
import { openClient } from "../client/connect.js";
import { Output } from "../output/output.js";

/** How long a command waits for the daemon's answer unless --timeout or TEAMWORK_TIMEOUT says otherwise. */
export const CLI_TIMEOUT_MS = 10_000;

export interface GlobalOptions {
  home?: string;
  json?: boolean;
  autostart: boolean;
  /** How long a call may wait for the daemon (--timeout, TEAMWORK_TIMEOUT), in ms. */
  timeoutMs: number;
}

export class CliContext {
  private _paths?: Paths;
  private _out?: Output;
  private _client?: TeamworkClient;
  private warnedVersion = false;

  constructor(private readonly program: Command) {}

  get options(): GlobalOptions {
    const o = this.program.opts<{ home?: string; json?: boolean; autostart?: boolean; timeout?: number }>();
    const envOff = ["1", "true", "yes"].includes((process.env.TEAMWORK_NO_AUTOSTART ?? "").toLowerCase());
    return { home: o.home, json: o.json, autostart: o.autostart !== false && !envOff, timeoutMs: o.timeout ?? CLI_TIMEOUT_MS };
  }

  get paths(): Paths {
    return (this._paths ??= resolvePaths({ home: this.options.home }));
  }

  get out(): Output {
    return (this._out ??= new Output({ json: Boolean(this.options.json) }));
  }

  /** The client applications use too (src/client/teamwork.ts): what the CLI can do, they can. */
  async client(): Promise<TeamworkClient> {
    return (this._client ??= openClient({
      paths: this.paths,
      autostart: this.options.autostart,
      timeoutMs: this.options.timeoutMs,
      onNotice: (message) => this.out.warn(message),
      onVersionMismatch: (v) => {
        if (this.warnedVersion) return;
        this.warnedVersion = true;
        this.out.warn(`the daemon runs teamwork ${v}, this CLI is a different version; restart it with \`teamwork daemon stop && teamwork daemon start\``);
      },
    }));
  }
}

/** Parses a whole number for a flag, or throws commander's usage error. */
export function intOption(name: string, min: number, max: number) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be a whole number, got "${value}"`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be between ${min} and ${max}`);
    return n;
  };
}

/** Parses a duration for a flag ("500ms", "10s"), or throws commander's usage error. */
export function durationOption(name: string, minMs: number, maxMs: number) {
  return (value: string): number => {
    let ms: number;
    try {
      ms = parseDuration(value);
    } catch (err) {
      throw new InvalidArgumentError(`${name}: ${(err as Error).message}`);
    }
    if (ms < minMs || ms > maxMs) throw new InvalidArgumentError(`${name} must be from ${formatDuration(minMs)} to ${formatDuration(maxMs)}, got "${value}"`);
    return ms;
  };
}
