// `teamwork completion bash|zsh`: shell completion generated from the command tree, so it
// never drifts from the real commands and options.

import { Command, InvalidArgumentError, type Option } from "commander";
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

/**
 * What completes the value of an option that takes one: its choices, a folder or a file
 * (from its placeholder, e.g. `--home <dir>`), or nothing (any text: offering command names
 * there would be wrong).
 */
function valueKind(o: Option): string {
  if (o.argChoices?.length) return `_tw_value=words; _tw_words="${o.argChoices.join(" ")}"`;
  if (/<dir>/.test(o.flags)) return "_tw_value=dirs";
  if (/<(file|path)>/.test(o.flags)) return "_tw_value=files";
  return "_tw_value=none";
}

/**
 * The case arms of _teamwork_option: for each command path, the options that take a value
 * (`--home <dir>`, `--board <board>`), grouped by how their value completes. A global option
 * matches at any path. Without this, an option's value counts as a word: `teamwork --home /x
 * jobs <TAB>` read "/x jobs" as the command and offered nothing.
 */
function valueOptionArms(program: Command): string {
  const arms = new Map<string, string[]>();
  const add = (pattern: string, o: Option) => {
    const kind = valueKind(o);
    arms.set(kind, [...(arms.get(kind) ?? []), pattern]);
  };
  const visit = (c: Command, path: string) => {
    for (const o of c.options) {
      if (!o.required) continue; // a flag, or an optional value (never the next word)
      for (const name of [o.long, o.short].filter((x): x is string => Boolean(x))) add(`"${path}|${name}"`, o);
    }
  };
  for (const c of program.commands) {
    visit(c, c.name());
    for (const s of c.commands) visit(s, `${c.name()} ${s.name()}`);
  }
  for (const o of program.options) {
    if (!o.required) continue;
    for (const name of [o.long, o.short].filter((x): x is string => Boolean(x))) add(`*"|${name}"`, o);
  }
  return [...arms].map(([kind, patterns]) => `    ${patterns.join("|")}) ${kind} ;;`).join("\n");
}

export function bashCompletion(program: Command): string {
  const cases = [...tree(program)]
    .map(([path, n]) => `    "${path}") words="${n.words.join(" ")}"; opts="${n.options.join(" ")}" ;;`)
    .join("\n");
  return `# teamwork completion for bash: eval "$(teamwork completion bash)"
# Sets _tw_value (and _tw_words) when option $2 takes a value at command path $1.
_teamwork_option() {
  case "$1|$2" in
${valueOptionArms(program)}
    *) return 1 ;;
  esac
}
_teamwork() {
  local cur path="" i w words opts valueof="" _tw_value="" _tw_words=""
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if [[ "$w" == -* ]]; then
      # An option that takes a value takes the next word too (unless written --opt=value).
      if [[ "$w" != *=* ]] && _teamwork_option "$path" "$w"; then
        if ((i + 1 == COMP_CWORD)); then valueof="$w"; break; fi
        i=$((i + 1))
      fi
      continue
    fi
    if [[ -z "$path" ]]; then path="$w"; elif [[ "$path" != *" "* ]]; then path="$path $w"; fi
  done
  if [[ -n "$valueof" ]]; then
    case "$_tw_value" in
      words) COMPREPLY=($(compgen -W "$_tw_words" -- "$cur")) ;;
      dirs) COMPREPLY=($(compgen -d -- "$cur")) ;;
      files) COMPREPLY=($(compgen -f -- "$cur")) ;;
      *) COMPREPLY=() ;;
    esac
    return 0
  fi
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
