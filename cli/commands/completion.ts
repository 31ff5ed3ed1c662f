/**
 * `fedlab completion bash|zsh`: a shell completion script for every command, subcommand and flag,
 * made from the command tree itself (so it never lags behind). Use: `source <(fedlab completion bash)`,
 * or for zsh `source <(fedlab completion zsh)`.
 */
import { Argument, type Command } from 'commander';
import { action } from '../cli-support.js';

/** Every command path (`am status`) → its subcommands and flags. */
function words(cmd: Command, prefix: string[], out: Map<string, string[]>): void {
  const subs = cmd.commands.map((c) => c.name());
  const flags = cmd.options.flatMap((o) => [o.long, o.short].filter((x): x is string => Boolean(x)));
  out.set(prefix.join(' '), [...subs, ...flags, '--help']);
  for (const c of cmd.commands) words(c, [...prefix, c.name()], out);
}

function bash(tree: Map<string, string[]>): string {
  const cases = [...tree].map(([path, w]) => `    ${JSON.stringify(path)}) words=${JSON.stringify(w.join(' '))} ;;`).join('\n');
  return `# fedlab bash completion: source <(fedlab completion bash)
_fedlab() {
  local cur path="" i w words=""
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ $w == -* ]] && continue
    case "\${path:+$path }$w" in
${[...tree.keys()]
  .filter((k) => k !== '')
  .map((k) => `      ${JSON.stringify(k)}) path=${JSON.stringify(k)} ;;`)
  .join('\n')}
    esac
  done
  case "$path" in
${cases}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _fedlab fedlab
`;
}

function zsh(tree: Map<string, string[]>): string {
  return `#compdef fedlab
# fedlab zsh completion: source <(fedlab completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bash(tree)}`;
}

/** Registers `fedlab completion`. */
export function registerCompletionCommand(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script: source <(fedlab completion bash)')
    .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh']))
    .action(
      action((shell: string) => {
        const tree = new Map<string, string[]>();
        words(program, [], tree);
        process.stdout.write(shell === 'zsh' ? zsh(tree) : bash(tree));
      }),
    );
}
