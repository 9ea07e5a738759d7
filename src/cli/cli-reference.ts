/**
 * The manual page chromogenic(1) and the bash and zsh completions, written from the command definitions
 * themselves (commander's tree of commands, arguments and options), so that they cannot drift from what the
 * CLI accepts: `scripts/write-cli-reference.mjs` writes them into man/ and completions/, and a test fails
 * while the files there differ from what this produces.
 */
import type { Argument, Command, Option } from "commander";

interface CommandInfo {
  /** Words after `chromogenic` ("image list"). */
  readonly path: string;
  readonly command: Command;
}

/** Every command that runs something, nested ones included, in definition order. */
function leafCommands(program: Command): CommandInfo[] {
  const out: CommandInfo[] = [];
  const walk = (command: Command, path: string) => {
    const subs = command.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
    if (path && (subs.length === 0 || hasAction(command))) out.push({ path, command });
    for (const sub of subs) walk(sub, path ? `${path} ${sub.name()}` : sub.name());
  };
  walk(program, "");
  return out;
}

function hasAction(command: Command): boolean {
  return typeof (command as unknown as { _actionHandler?: unknown })._actionHandler === "function";
}

function visibleOptions(command: Command): readonly Option[] {
  return command.options.filter((o) => !o.hidden);
}

function argumentText(a: Argument): string {
  const name = `${a.name()}${a.variadic ? "..." : ""}`;
  return a.required ? `<${name}>` : `[${name}]`;
}

/** roff with its special characters escaped: a backslash, and a dot or quote at the start of a line. */
function roff(text: string): string {
  return text
    .replace(/\\/g, "\\e")
    .replace(/-/g, "\\-")
    .replace(/^([.'])/gm, "\\&$1");
}

/** chromogenic(1): the synopsis and every command with its arguments and options. */
export function manPage(program: Command, version: string): string {
  const lines = [
    `.TH CHROMOGENIC 1 "" "chromogenic ${version}" "User Commands"`,
    ".SH NAME",
    `chromogenic \\- ${roff(program.description())}`,
    ".SH SYNOPSIS",
    ".B chromogenic",
    ".I command",
    "[options] [arguments]",
    ".SH DESCRIPTION",
    "Each command below is listed with its arguments and options, as",
    ".B chromogenic",
    ".I command",
    ".B \\-\\-help",
    "shows them. Exit status: 0 success, 1 failure, 2 usage error, 130 cancelled, 141 output pipe closed.",
    ".SH COMMANDS",
  ];
  for (const { path, command } of leafCommands(program)) {
    lines.push(".SS " + roff(`chromogenic ${path} ${command.registeredArguments.map(argumentText).join(" ")}`.trim()));
    lines.push(roff(command.description()));
    for (const a of command.registeredArguments) {
      lines.push(".TP", `.I ${roff(a.name())}`, roff(a.description || ""));
    }
    for (const o of visibleOptions(command)) {
      lines.push(".TP", `.B ${roff(o.flags)}`, roff(o.description || ""));
    }
  }
  lines.push(
    ".SH ENVIRONMENT",
    ".TP",
    ".B OS_CLOUD",
    "the default for \\-\\-cloud, \\-\\-from and \\-\\-to (clouds.yaml name), as for the openstack CLI",
    ".TP",
    ".B CHROMOGENIC_STATE_DIR",
    "where jobs and the default local image store live",
    ".SH SEE ALSO",
    ".BR qemu-img (1),",
    ".BR virt-sysprep (1),",
    ".BR openstack (1)",
  );
  return lines.join("\n") + "\n";
}

/** Shell words, quoted for a single-quoted bash/zsh string. */
function words(list: readonly string[]): string {
  return list.join(" ").replace(/'/g, "'\\''");
}

function optionWords(command: Command): string[] {
  return visibleOptions(command).flatMap((o) => [o.short, o.long].filter((f): f is string => !!f));
}

/** bash completion: commands, then each command's options; files for everything else. */
export function bashCompletion(program: Command): string {
  const top = program.commands.map((c) => c.name());
  const cases = leafCommands(program).map(
    ({ path, command }) => `    '${path}') opts='${words(optionWords(command))}' ;;`,
  );
  const groups = program.commands
    .filter((c) => c.commands.length > 0)
    .map((c) => `    ${c.name()}) subs='${words(c.commands.map((s) => s.name()))}' ;;`);
  return `# bash completion for chromogenic, generated from its command definitions (src/cli/cli-reference.ts)
_chromogenic() {
  local cur=\${COMP_WORDS[COMP_CWORD]} path="" subs="" opts=""
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W '${words(top)}' -- "$cur"))
    return
  fi
  path=\${COMP_WORDS[1]}
  case "$path" in
${groups.join("\n")}
  esac
  if [ -n "$subs" ]; then
    if [ "$COMP_CWORD" -eq 2 ]; then
      COMPREPLY=($(compgen -W "$subs" -- "$cur"))
      return
    fi
    path="$path \${COMP_WORDS[2]}"
  fi
  case "$path" in
${cases.join("\n")}
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o filenames -F _chromogenic chromogenic
`;
}

/** zsh completion: the same words, through zsh's _arguments and _describe. */
export function zshCompletion(program: Command): string {
  const describe = (list: readonly Command[]) =>
    list.map((c) => `'${`${c.name()}:${c.description().split(/[;:(]/)[0]!.trim()}`.replace(/'/g, "'\\''")}'`).join(" ");
  const cases = leafCommands(program).map(
    ({ path, command }) =>
      `    '${path}') opts=(${optionWords(command)
        .map((w) => `'${w}'`)
        .join(" ")}) ;;`,
  );
  const groups = program.commands
    .filter((c) => c.commands.length > 0)
    .map((c) => `    ${c.name()}) subs=(${describe(c.commands)}) ;;`);
  return `#compdef chromogenic
# zsh completion for chromogenic, generated from its command definitions (src/cli/cli-reference.ts)
_chromogenic() {
  local -a commands subs opts
  commands=(${describe(program.commands)})
  if (( CURRENT == 2 )); then
    _describe command commands
    return
  fi
  local path=\${words[2]}
  case $path in
${groups.join("\n")}
  esac
  if (( \${#subs} )); then
    if (( CURRENT == 3 )); then
      _describe subcommand subs
      return
    fi
    path="$path \${words[3]}"
  fi
  case $path in
${cases.join("\n")}
  esac
  if [[ \${words[CURRENT]} == -* ]]; then
    compadd -- $opts
  else
    _files
  fi
}
_chromogenic "$@"
`;
}
