// `teamwork daemon install` (issue 17, item 9): the systemd unit it writes must run exactly
// this daemon on exactly this home, whatever the path holds (systemd reads `%` as a
// specifier, `$` as a variable, quotes and backslashes as quoting), must not restart in a
// loop on a start-up error that a restart cannot fix, and must log to the journal.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { unitFile } from "../../src/commands/service.js";
import { resolvePaths } from "../../src/config/paths.js";
import { DAEMON_ENTRY, DAEMON_NODE_FLAGS } from "../../src/client/autostart.js";
import { DAEMON_EXIT } from "../../src/protocol/daemon-exit.js";
import { analyzeWorks, directives, systemdArgv, unitValues as value, verify } from "../helpers/systemd.js";

const dir = mkdtempSync(join(tmpdir(), "tw-unitfile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NASTY = [
  "plain",
  "with space",
  "percent %h and %% and 100%",
  "dollar $HOME and ${USER} and $$",
  `quotes "double" and 'single'`,
  "back\\slash and trailing\\",
  "semi ; colon",
  "tab\there",
  "new\nline\nExecStartPre=/bin/false",
];

/** Folders for node: systemd runs the first directly, the second only through env. */
const NODES = ["bin %h $HOME 100% sp", `bin "q" 'q' back\\slash $x %h`];

const hasAnalyze = analyzeWorks(dir);

describe("unitFile", () => {
  it.each(NASTY)("runs exactly this daemon on the home %j", (name) => {
    const home = join(dir, name);
    const unit = unitFile(resolvePaths({ home }));
    const [exec, ...more] = value(unit, "ExecStart");
    expect(more).toEqual([]);
    expect(systemdArgv(exec!)).toEqual([process.execPath, ...DAEMON_NODE_FLAGS, DAEMON_ENTRY, "--home", home]);
    // Nothing from the path became a directive of its own.
    expect(directives(unit).map(([k]) => k).sort()).toEqual(
      ["Description", "Documentation", "Type", "ExecStart", "Restart", "RestartSec", "RestartPreventExitStatus", "StandardOutput", "StandardError", "SyslogIdentifier", "KillSignal", "TimeoutStopSec", "WantedBy"].sort(),
    );
    // No specifier left in the description either (only %%).
    expect(value(unit, "Description")[0]!.replace(/%%/g, "")).not.toMatch(/%/);
  });

  it("does not restart on a bad configuration, a newer database or a daemon already running", () => {
    const unit = unitFile(resolvePaths({ home: join(dir, "plain") }));
    expect(value(unit, "Restart")).toEqual(["on-failure"]);
    const codes = value(unit, "RestartPreventExitStatus")[0]!.split(" ").map(Number).sort((a, b) => a - b);
    expect(codes).toEqual([DAEMON_EXIT.config, DAEMON_EXIT.schemaTooNew, DAEMON_EXIT.alreadyRunning].sort((a, b) => a - b));
  });

  it("logs to the journal: stdout and stderr, and no --log-file of its own", () => {
    const unit = unitFile(resolvePaths({ home: join(dir, "plain") }));
    expect(value(unit, "StandardOutput")).toEqual(["journal"]);
    expect(value(unit, "StandardError")).toEqual(["journal"]);
    expect(value(unit, "ExecStart")[0]).not.toMatch(/--log-file/);
  });

  it("mirrors the daemon's exit codes (daemon/main.ts cannot be imported: importing it starts a daemon)", () => {
    const source = readFileSync(new URL("../../src/daemon/main.ts", import.meta.url), "utf8");
    const m = /export const DAEMON_EXIT = (\{[^}]*\})/.exec(source);
    if (m) expect(Function(`return (${m[1]})`)()).toEqual(DAEMON_EXIT);
    else expect(source).toMatch(/DAEMON_EXIT[^\n]*from "\.\.\/protocol\/daemon-exit\.js"/);
  });

  it.each(NODES)("runs node at %j, as itself or through /usr/bin/env (systemd refuses quotes and backslashes in an executable)", (bin) => {
    const node = join(dir, bin, "node");
    const [exec] = value(unitFile(resolvePaths({ home: join(dir, "plain") }), node), "ExecStart");
    const argv = systemdArgv(exec!);
    if (/["'\\]/.test(bin)) expect(argv.slice(0, 2)).toEqual(["/usr/bin/env", node]);
    else expect(argv[0]).toBe(node);
    expect(argv.slice(-2)).toEqual(["--home", join(dir, "plain")]);
  });

  it.skipIf(!hasAnalyze)("passes systemd-analyze verify with node and the home at nasty paths", () => {
    let i = 0;
    for (const bin of NODES) {
      mkdirSync(join(dir, bin), { recursive: true });
      const node = join(dir, bin, "node");
      symlinkSync(process.execPath, node);
      for (const name of NASTY) {
        const file = join(dir, `tw-verify-${++i}.service`);
        writeFileSync(file, unitFile(resolvePaths({ home: join(dir, name) }), node));
        expect(verify(file), `${name}:\n${readFileSync(file, "utf8")}`).toBe("");
      }
    }
  });
});
