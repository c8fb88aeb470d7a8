#!/usr/bin/env node
// The layers, checked: every import in src/**/*.ts must point downward (STYLE.md,
// "Dependencies may only point downward"), a database driver is imported only by its own
// store (src/store/<kind>/), and SQLite's result codes are named only there.
// No dependency: import specifiers are found with regular expressions over the source with
// comments blanked out, which is enough for this codebase's plain ES module syntax.
//
//   node scripts/check-layers.mjs [--root DIR]    exit 0: clean; 1: violations, one a line
//                                                 ("file:line: what"); 2: bad usage

import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, posix, relative, resolve, sep } from "node:path";

/**
 * Which areas each area may import (its own is always allowed). An area is a folder under
 * src/: its first level, except daemon/routes and each store/<kind> ("store/*"), which are
 * areas of their own; "." is src/ itself. Where these go beyond STYLE.md's chart they record
 * what the code does today (see the report of issue 13): board → queue (uploads enqueue
 * thumbnails), jobs → board (the digest's pure formatting) and jobs → protocol (types).
 */
export const MAY_IMPORT = {
  lib: [],
  protocol: ["lib"],
  config: ["lib"],
  mail: ["lib"],
  output: ["lib", "protocol"],
  client: ["lib", "protocol", "config"],
  commands: ["lib", "protocol", "config", "client", "output"],
  cli: ["lib", "protocol", "config", "client", "output", "commands"],
  // jobs → store: the board port's types (ctx.board); never a store's kind (store/*).
  jobs: ["lib", "mail", "protocol", "board", "store"],
  "store/*": ["lib", "protocol", "store"],
  // The store's interface and the factory that opens a store of some kind.
  store: ["lib", "protocol", "store/*"],
  board: ["lib", "protocol", "config", "store", "queue"],
  queue: ["lib", "protocol", "store", "jobs"],
  scheduler: ["lib", "protocol", "config", "store", "queue", "board"],
  "daemon/routes": ["lib", "protocol", "config", "daemon", "board", "queue", "scheduler"],
  daemon: ["lib", "protocol", "config", "store", "board", "queue", "scheduler", "jobs", "daemon/routes"],
  ".": ["jobs", "client", "protocol", "lib"],
};

/** Database drivers, each importable only from the area of its store. */
export const DRIVER_HOME = { "better-sqlite3": "store/sqlite", pg: "store/postgres" };

/** Words only one area may say. */
export const WORDS = [{ pattern: /\bSQLITE_[A-Z]/g, home: "store/sqlite", what: "SQLite's result codes (SQLITE_*)" }];

/** The area of a path relative to src/ (posix separators). */
export function areaOf(rel) {
  const parts = rel.split("/");
  if (parts.length === 1) return ".";
  if (parts[0] === "daemon" && parts[1] === "routes" && parts.length > 2) return "daemon/routes";
  if (parts[0] === "store" && parts.length > 2) return `store/${parts[1]}`;
  return parts[0];
}

/** The rule for an area: its own entry, or its pattern's ("store/*"). */
function ruleOf(area) {
  if (Object.hasOwn(MAY_IMPORT, area)) return MAY_IMPORT[area];
  const pattern = area.replace(/\/.*$/, "/*");
  return Object.hasOwn(MAY_IMPORT, pattern) ? MAY_IMPORT[pattern] : null;
}

function allowed(from, to) {
  if (from === to) return true;
  const rule = ruleOf(from) ?? [];
  return rule.includes(to) || (to.includes("/") && rule.includes(to.replace(/\/.*$/, "/*")));
}

/**
 * The text with comments replaced by spaces (newlines kept, so offsets and lines stay true);
 * strings are left as they are, so a "//" inside one is not taken for a comment.
 */
export function blankComments(text) {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const next = text[i + 1];
    if (c === "/" && next === "/") {
      const end = text.indexOf("\n", i);
      const stop = end === -1 ? text.length : end;
      out += " ".repeat(stop - i);
      i = stop;
    } else if (c === "/" && next === "*") {
      const end = text.indexOf("*/", i + 2);
      const stop = end === -1 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
    } else if (c === '"' || c === "'" || c === "`") {
      // A quote that opens no string (inside a regular expression literal) ends at the line's
      // end at worst: only template literals span lines.
      let j = i + 1;
      while (j < text.length && text[j] !== c && (c === "`" || text[j] !== "\n")) j += text[j] === "\\" ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

// import x from "m"; import type { A } from "m"; export * from "m"; export { a } from "m";
// import "m"; import("m"); require("m"). The specifier is the capture group named spec.
const SPECIFIERS = [
  /\b(?:import|export)\s+(?:type\s+)?[^'";]*?\sfrom\s*(["'])(?<spec>[^"']+)\1/g,
  /\bimport\s*(["'])(?<spec>[^"']+)\1/g,
  /\bimport\s*\(\s*(["'])(?<spec>[^"']+)\1\s*\)/g,
  /\brequire\s*\(\s*(["'])(?<spec>[^"']+)\1\s*\)/g,
];

/** Every import specifier of a source text, with the line it is on. */
export function importsOf(text) {
  const code = blankComments(text);
  const found = new Map();
  for (const re of SPECIFIERS) {
    for (const m of code.matchAll(re)) {
      const at = m.index + m[0].lastIndexOf(m.groups.spec);
      if (!found.has(at)) found.set(at, { spec: m.groups.spec, line: lineAt(code, at) });
    }
  }
  return [...found.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
}

const lineAt = (text, offset) => text.slice(0, offset).split("\n").length;

function sourceFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (entry.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

const toPosix = (p) => p.split(sep).join(posix.sep);
const packageOf = (spec) => (spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]);

/** The violations in the tree at root, each "src/file.ts:line: what", in file order. */
export function check(root) {
  const src = join(root, "src");
  const problems = [];
  for (const file of sourceFiles(src).sort()) {
    const rel = toPosix(relative(src, file));
    const shown = `src/${rel}`;
    const from = areaOf(rel);
    const text = readFileSync(file, "utf8");
    if (ruleOf(from) === null) {
      problems.push(`${shown}:1: no rule for src/${from}/: add one to MAY_IMPORT in scripts/check-layers.mjs`);
      continue;
    }
    for (const { spec, line } of importsOf(text)) {
      if (spec.startsWith(".")) {
        const target = toPosix(relative(src, resolve(dirname(file), spec)));
        if (target.startsWith("../")) {
          problems.push(`${shown}:${line}: ${from} imports ${spec}, outside src/`);
          continue;
        }
        const to = areaOf(target);
        if (!allowed(from, to)) problems.push(`${shown}:${line}: ${from} imports ${to} (${spec}); ${from} may import: ${ruleOf(from).join(", ") || "nothing of the project"}`);
      } else {
        const pkg = packageOf(spec);
        const home = DRIVER_HOME[pkg];
        if (home !== undefined && from !== home) problems.push(`${shown}:${line}: ${from} imports the driver ${pkg}; only src/${home}/ may`);
      }
    }
    for (const { pattern, home, what } of WORDS) {
      if (from === home) continue;
      for (const m of text.matchAll(pattern)) problems.push(`${shown}:${lineAt(text, m.index)}: ${what} named outside src/${home}/`);
    }
  }
  return problems;
}

function main(argv) {
  let root = resolve(dirname(new URL(import.meta.url).pathname), "..");
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--root" && argv[i + 1]) root = resolve(argv[++i]);
    else {
      process.stderr.write("usage: node scripts/check-layers.mjs [--root DIR]\n");
      return 2;
    }
  }
  const problems = check(root);
  for (const p of problems) process.stdout.write(`${p}\n`);
  if (problems.length > 0) {
    process.stderr.write(`check-layers: ${problems.length} import(s) against the layers (STYLE.md, "Dependencies may only point downward")\n`);
    return 1;
  }
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) process.exitCode = main(process.argv.slice(2));
