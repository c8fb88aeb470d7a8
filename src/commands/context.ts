// What every command gets: the global options, resolved paths, output, and a client that
// auto-starts the daemon when allowed.

import { InvalidArgumentError, type Command } from "commander";
import { resolvePaths, type Paths } from "../config/paths.js";
import type { Client } from "../client/client.js";
import { connect } from "../client/autostart.js";
import { Output } from "../output/output.js";

export interface GlobalOptions {
  home?: string;
  json?: boolean;
  autostart: boolean;
}

export class CliContext {
  private _paths?: Paths;
  private _out?: Output;
  private _client?: Client;
  private warnedVersion = false;

  constructor(private readonly program: Command) {}

  get options(): GlobalOptions {
    const o = this.program.opts<{ home?: string; json?: boolean; autostart?: boolean }>();
    const envOff = ["1", "true", "yes"].includes((process.env.TEAMWORK_NO_AUTOSTART ?? "").toLowerCase());
    return { home: o.home, json: o.json, autostart: o.autostart !== false && !envOff };
  }

  get paths(): Paths {
    return (this._paths ??= resolvePaths({ home: this.options.home }));
  }

  get out(): Output {
    return (this._out ??= new Output({ json: Boolean(this.options.json) }));
  }

  async client(): Promise<Client> {
    return (this._client ??= connect({
      paths: this.paths,
      autostart: this.options.autostart,
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
