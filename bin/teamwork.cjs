#!/usr/bin/env node
// Starts the bundled CLI (dist/cli/bundle.cjs) with V8's code cache: parsing and compiling the
// bundle is most of a command's own start-up, and the cache (dist/cli/bundle.cjs.v8cache,
// written by the build and rewritten here when V8 rejects it, e.g. after a Node upgrade) skips
// it. CommonJS on purpose: an ES module entry costs Node 20 a few more milliseconds per command.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");
const Module = require("node:module");

const file = path.join(__dirname, "..", "dist", "cli", "bundle.cjs");
const cacheFile = `${file}.v8cache`;
const source = fs.readFileSync(file, "utf8");
let cachedData;
try {
  cachedData = fs.readFileSync(cacheFile);
} catch {
  // no cache yet: compiled from source, and the cache is written on exit
}
const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
if (cachedData === undefined || script.cachedDataRejected) {
  // After the command ran, so the cache also holds the functions it compiled. A read-only
  // install just goes without; the rename keeps concurrent commands from reading half a file.
  process.once("exit", () => {
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, script.createCachedData());
      fs.renameSync(tmp, cacheFile);
    } catch {
      try { fs.rmSync(tmp, { force: true }); } catch { /* nothing to clean */ }
    }
  });
}
// A script compiled from a code cache has no import() in Node 20; the bundle imports through
// this one (src/lib/lazy-import.ts), which resolves from this package like the bundle would.
globalThis.__teamworkImport = (specifier) => import(specifier);
const mod = new Module(file, module);
script.runInThisContext()(mod.exports, Module.createRequire(file), mod, file, path.dirname(file));
