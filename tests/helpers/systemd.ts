// Reading a systemd unit back as systemd would, for the tests of `daemon install`.

import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";

/** systemd's C unescape (systemd.syntax "Quoting"), the subset a unit may hold. */
function cunescape(s: string, i: number): [string, number] {
  const c = s[i + 1];
  const simple: Record<string, string> = { a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", "\\": "\\", '"': '"', "'": "'", s: " " };
  if (c !== undefined && c in simple) return [simple[c]!, i + 2];
  if (c === "x") return [String.fromCharCode(parseInt(s.slice(i + 2, i + 4), 16)), i + 4];
  throw new Error(`unknown escape \\${c} in ${JSON.stringify(s)}`);
}

/**
 * The argv systemd runs for an ExecStart= value: words split on blanks, quotes removed,
 * C escapes resolved, then `%` specifiers (only `%%` is expected here: any other would
 * have been expanded by systemd) and `$` variables (only `$$`) resolved.
 */
export function systemdArgv(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (line[i] === " " || line[i] === "\t") i++;
    if (i >= line.length) break;
    let word = "";
    let quote: string | null = null;
    for (; i < line.length; ) {
      const c = line[i]!;
      if (quote) {
        if (c === quote) (quote = null), i++;
        else if (c === "\\") [word, i] = ((r) => [word + r[0], r[1]])(cunescape(line, i));
        else (word += c), i++;
      } else if (c === " " || c === "\t") break;
      else if (c === '"' || c === "'") (quote = c), i++;
      else if (c === "\\") [word, i] = ((r) => [word + r[0], r[1]])(cunescape(line, i));
      else (word += c), i++;
    }
    if (quote) throw new Error(`unbalanced quoting in ${JSON.stringify(line)}`);
    words.push(word);
  }
  // The executable gets specifiers expanded but not variables (measured with systemd 252).
  return words.map((w, n) => {
    const noSpecifiers = w.replace(/%(.)/g, (_, c: string) => {
      if (c === "%") return "%";
      throw new Error(`specifier %${c} would be expanded by systemd in ${JSON.stringify(w)}`);
    });
    if (w.replace(/%[^]/g, "").includes("%")) throw new Error(`lone % at the end of ${JSON.stringify(w)}`);
    if (n === 0) return noSpecifiers;
    return noSpecifiers.replace(/\$(.)/g, (_, c: string) => {
      if (c === "$") return "$";
      throw new Error(`variable $${c}… would be expanded by systemd in ${JSON.stringify(w)}`);
    });
  });
}

export function directives(unit: string): [string, string][] {
  return unit
    .split("\n")
    .filter((l) => l && !l.startsWith("#") && !l.startsWith("["))
    .map((l) => {
      const eq = l.indexOf("=");
      expect(eq, `a line that is not a directive: ${JSON.stringify(l)}`).toBeGreaterThan(0);
      return [l.slice(0, eq), l.slice(eq + 1)];
    });
}

export const unitValues = (unit: string, key: string) => directives(unit).filter(([k]) => k === key).map(([, v]) => v);

/** systemd-analyze verify, when it runs here (it needs no running systemd in system mode). */
export function verify(file: string): string | null {
  const r = spawnSync("systemd-analyze", ["verify", file], { encoding: "utf8", timeout: 30_000 });
  if (r.error) return null;
  return r.status === 0 ? "" : `${r.stdout}${r.stderr}`;
}
/** Whether verify works at all here: installed, and able to check a unit known to be good (it may not be, e.g. without root). */
export function analyzeWorks(dir: string): boolean {
  if (spawnSync("systemd-analyze", ["--version"]).status !== 0) return false;
  const good = join(dir, "tw-known-good.service");
  writeFileSync(good, `[Service]\nExecStart=${process.execPath} -e 0\n`);
  const works = verify(good) === "";
  if (!works) console.warn("systemd-analyze verify does not run here (not installed, or it cannot check even a trivial unit): the generated units are checked by the test's own parser only");
  return works;
}
