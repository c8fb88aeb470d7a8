import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const BIN = fileURLToPath(new URL("../../bin/teamwork.cjs", import.meta.url));

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs the real teamwork binary (compiled) with a given home; never a TTY (see tty tests for that). */
export function runCli(args: string[], opts: { home?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; onStdout?: (soFar: string) => void } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1", ...opts.env };
    delete env.FORCE_COLOR;
    if (opts.home) env.TEAMWORK_HOME = opts.home;
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    // Decoded as streams, so a character cut between two reads arrives whole.
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (c: string) => {
      stdout += c;
      opts.onStdout?.(stdout);
    });
    child.stderr.on("data", (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`teamwork ${args.join(" ")} did not finish in time\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 20_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ exitCode: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

/** Runs the CLI with --json and parses stdout. */
export async function runJson<T = unknown>(args: string[], opts: Parameters<typeof runCli>[1] = {}): Promise<{ exitCode: number; json: T; stderr: string }> {
  const r = await runCli([...args, "--json"], opts);
  let json: T;
  try {
    json = JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`stdout of teamwork ${args.join(" ")} is not JSON (exit ${r.exitCode}):\n${r.stdout}\nstderr: ${r.stderr}`);
  }
  return { exitCode: r.exitCode, json, stderr: r.stderr };
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Runs the binary in a real pseudo-terminal of a fixed size (util-linux `script`), until
 * `until(output)` holds or it exits. Returns everything it drew, escape codes included.
 */
export function runTty(
  args: string[],
  opts: { home?: string; env?: NodeJS.ProcessEnv; cols?: number; rows?: number; until?: (out: string) => boolean; timeoutMs?: number } = {},
): Promise<{ output: string; exitCode: number | null }> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, TERM: "xterm-256color", ...opts.env };
    delete env.CI;
    if (!opts.env?.NO_COLOR) delete env.NO_COLOR;
    if (opts.home) env.TEAMWORK_HOME = opts.home;
    const cmd = `stty cols ${opts.cols ?? 100} rows ${opts.rows ?? 24}; exec ${shellQuote(process.execPath)} ${shellQuote(BIN)} ${args.map(shellQuote).join(" ")}`;
    const child = spawn("script", ["-q", "-e", "-c", cmd, "/dev/null"], { env, stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    let done = false;
    const finish = (code: number | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ output, exitCode: code });
    };
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (c: string) => {
      output += c;
      if (opts.until?.(output)) {
        child.kill("SIGTERM");
      }
    });
    child.on("error", reject);
    child.on("close", (code) => finish(code));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`teamwork ${args.join(" ")} in a tty did not finish in time; output so far:\n${output}`));
    }, opts.timeoutMs ?? 15_000);
  });
}
