// Shell completion, run for real: the generated script is loaded in bash and in zsh (through
// zsh's bashcompinit, as `eval "$(teamwork completion zsh)"` does), and asked to complete
// word arrays as the shell would build them from a command line.

import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN } from "../helpers/cli.js";

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const hasZsh = spawnSync("zsh", ["-fc", "true"]).status === 0;

let dir: string;
let script: { bash: string; zsh: string };
beforeAll(() => {
  if (!hasZsh) console.warn("zsh is not installed: the zsh completion tests are skipped");
  dir = mkdtempSync(join(tmpdir(), "tw-completion-"));
  mkdirSync(join(dir, "homedir"));
  const gen = (shell: string) => execFileSync(process.execPath, [BIN, "completion", shell], { encoding: "utf8" });
  script = { bash: gen("bash"), zsh: gen("zsh") };
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** What the shell offers for `words`, completing the last one. */
function complete(shell: "bash" | "zsh", words: string[]): string[] {
  const array = `(${words.map(q).join(" ")})`;
  const cword = words.length - 1;
  const run =
    shell === "bash"
      ? `${script.bash}\nCOMP_WORDS=${array}; COMP_CWORD=${cword}; _teamwork; printf '%s\\n' "\${COMPREPLY[@]}"`
      : // What zsh's _bash_complete does before it calls compgen -F, minus compadd (which
        // needs a completion widget): the same words, the same index, the same emulation.
        `autoload -U compinit && compinit -u -d ${q(join(dir, "zcompdump"))}\n${script.zsh}\nCOMP_WORDS=${array}; COMP_CWORD=${cword}\ncompgen -F _teamwork -- ${q(words.at(-1)!)}`;
  const out = execFileSync(shell, shell === "zsh" ? ["-fc", run] : ["-c", run], { encoding: "utf8", cwd: dir });
  // zsh's compgen leaves matching to compadd, which keeps what starts with the word.
  return out.split("\n").filter((w) => w && w.startsWith(words.at(-1)!)).sort();
}

for (const shell of ["bash", "zsh"] as const) {
  describe(`${shell} completion`, () => {
    it.skipIf(shell === "zsh" && !hasZsh)("skips the value of every global option that takes one", () => {
      expect(complete(shell, ["teamwork", "--home", "/x", "jobs", ""])).toEqual(expect.arrayContaining(["list", "show", "why"]));
      expect(complete(shell, ["teamwork", "--home", "/x", "--json", "tasks", "l"])).toEqual(["list"]);
      expect(complete(shell, ["teamwork", "--home=/x", "jobs", "s"])).toEqual(["show", "status"]);
      expect(complete(shell, ["teamwork", "--home", "/x", "jobs", "list", "--li"])).toEqual(["--limit"]);
      expect(complete(shell, ["teamwork", "--home", "/x", ""])).toEqual(expect.arrayContaining(["jobs", "tasks", "schedules"]));
    });

    it.skipIf(shell === "zsh" && !hasZsh)("skips the values of a command's own options too", () => {
      expect(complete(shell, ["teamwork", "tasks", "list", "--board", "web", "--st"])).toEqual(["--status"]);
      expect(complete(shell, ["teamwork", "schedules", "set", "--tz", "Europe/Oslo", "--ty"])).toEqual(["--type"]);
    });

    it.skipIf(shell === "zsh" && !hasZsh)("offers an option's value: its choices, a folder for --home, and not command names", () => {
      expect(complete(shell, ["teamwork", "jobs", "list", "--status", ""])).toEqual(["cancelled", "complete", "failed", "pending", "running"]);
      expect(complete(shell, ["teamwork", "tasks", "list", "--status", "d"])).toEqual(["doing", "done"]);
      expect(complete(shell, ["teamwork", "--home", "home"])).toEqual(["homedir"]);
      expect(complete(shell, ["teamwork", "jobs", "list", "--type", ""])).toEqual([]);
    });
  });
}
