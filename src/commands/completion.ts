// `teamwork completion bash|zsh`: shell completion generated from the command tree, so it
// never drifts from the real commands and options.

import { Command, InvalidArgumentError } from "commander";
import type { CliContext } from "./context.js";

interface Node {
  words: string[];
  options: string[];
}

function tree(program: Command): Map<string, Node> {
  const out = new Map<string, Node>();
  const opts = (c: Command) => c.options.flatMap((o) => [o.long, o.short]).filter((x): x is string => Boolean(x)).concat("--help");
  const globals = opts(program);
  out.set("", { words: program.commands.map((c) => c.name()), options: globals });
  for (const c of program.commands) {
    out.set(c.name(), { words: c.commands.map((s) => s.name()), options: [...opts(c), ...globals] });
    for (const s of c.commands) out.set(`${c.name()} ${s.name()}`, { words: [], options: [...opts(s), ...globals] });
  }
  return out;
}

export function bashCompletion(program: Command): string {
  const cases = [...tree(program)]
    .map(([path, n]) => `    "${path}") words="${n.words.join(" ")}"; opts="${n.options.join(" ")}" ;;`)
    .join("\n");
  return `# teamwork completion for bash: eval "$(teamwork completion bash)"
_teamwork() {
  local cur path="" i w words opts
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    if [[ -z "$path" ]]; then path="$w"; elif [[ "$path" != *" "* ]]; then path="$path $w"; fi
  done
  case "$path" in
${cases}
    *) words=""; opts="--help" ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
  fi
}
complete -F _teamwork teamwork
`;
}

export function zshCompletion(program: Command): string {
  return `#compdef teamwork
# teamwork completion for zsh: eval "$(teamwork completion zsh)"
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(program)}`;
}

export function registerCompletion(program: Command, _ctx: CliContext): void {
  program
    .command("completion")
    .description("print a shell completion script")
    .argument("<shell>", "bash or zsh", (v: string) => {
      if (v !== "bash" && v !== "zsh") throw new InvalidArgumentError(`"${v}" is not supported; use bash or zsh`);
      return v;
    })
    .addHelpText("after", '\nExamples:\n  $ eval "$(teamwork completion bash)"     # in ~/.bashrc\n  $ eval "$(teamwork completion zsh)"      # in ~/.zshrc')
    .action((shell: "bash" | "zsh") => {
      process.stdout.write(shell === "bash" ? bashCompletion(program) : zshCompletion(program));
    });
}
