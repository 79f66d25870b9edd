// Shell completion, as Docker ships it: `strata completion bash|zsh|fish` prints a script that
// asks the CLI itself (`strata __complete -- WORDS…`) what may come next. The answers are worked
// out here from commander's command tree at run time, so a command or flag added anywhere
// completes with no list to keep up to date; image and container names come read-only from the
// store's database.
import { Command, Help, Option, type Argument } from 'commander';
import type { Writable } from 'node:stream';
import { readCatalog } from '../store/catalog.js';

type Kind = 'images' | 'containers' | 'objects' | 'commands' | 'none';

/** What an argument names, by the name commander knows it by (`<image>`, `<container…>`). */
const ARGUMENT_KINDS: Record<string, Kind> = {
  image: 'images',
  source: 'images',
  target: 'images',
  reference: 'images',
  container: 'containers',
  name: 'objects',
  command: 'commands',
};

/** Arguments whose name says less than their command does (`push <name>` is an image). */
const COMMAND_ARGUMENT_KINDS: Record<string, Kind> = {
  'pull name': 'images',
  'push name': 'images',
};

const SHELLS = ['bash', 'zsh', 'fish'] as const;

const help = new Help();

function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

function findSubcommand(cmd: Command, word: string): Command | undefined {
  return cmd.commands.find((c) => c.name() === word || c.aliases().includes(word));
}

/** The option WORD names on CMD or on a command above it (options of the program are global). */
function findOption(cmd: Command, word: string): Option | undefined {
  // --flag=value, -xVALUE
  const flag = word.startsWith('--') ? word.split('=')[0] : word.slice(0, 2);
  for (let c: Command | null = cmd; c; c = c.parent) {
    const o = c.options.find((opt) => opt.long === flag || opt.short === flag);
    if (o) return o;
  }
  return undefined;
}

function flagsOf(cmd: Command): string[] {
  const flags: string[] = [];
  for (const o of help.visibleOptions(cmd)) {
    if (o.long) flags.push(o.long);
    if (o.short) flags.push(o.short);
  }
  return flags;
}

function argumentKind(cmd: Command, index: number): Kind {
  const args: readonly Argument[] = cmd.registeredArguments;
  const last = args.at(-1);
  const arg = index < args.length ? args[index] : last?.variadic ? last : undefined;
  if (!arg) return 'none';
  return COMMAND_ARGUMENT_KINDS[`${commandPath(cmd)} ${arg.name()}`] ?? ARGUMENT_KINDS[arg.name()] ?? 'none';
}

/**
 * What may stand in place of the last of WORDS (the word being typed, maybe empty), given the
 * words before it (the program's name left out). Names come from the store at ROOT, unless a
 * `--root` among the words says otherwise.
 */
export function completeWords(program: Command, words: string[]): string[] {
  const cur = words.at(-1) ?? '';
  let cmd = program;
  const rootOption = findOption(program, '--root');
  let root = String(program.getOptionValue('root'));
  const operands: string[] = [];
  let valueFor: Option | null = null;
  let endOfOptions = false;
  for (const w of words.slice(0, -1)) {
    if (valueFor) {
      if (valueFor === rootOption) root = w;
      valueFor = null;
    } else if (!endOfOptions && w === '--') {
      endOfOptions = true;
    } else if (!endOfOptions && w.startsWith('-') && w !== '-') {
      const o = findOption(cmd, w);
      const inline = w.startsWith('--') ? w.includes('=') : w.length > 2; // the value is in this word
      if (o === rootOption && inline) root = w.slice('--root='.length);
      else if (o?.required && !inline) valueFor = o;
    } else {
      const sub = operands.length === 0 ? findSubcommand(cmd, w) : undefined;
      if (sub) cmd = sub;
      else operands.push(w);
    }
  }

  const matching = (list: string[]) => [...new Set(list)].filter((s) => s.startsWith(cur));
  if (valueFor) return matching(valueFor.argChoices ?? []);
  if (!endOfOptions && cur.startsWith('-')) {
    const eq = cur.indexOf('=');
    if (eq > 0) {
      const o = findOption(cmd, cur);
      return matching((o?.argChoices ?? []).map((v) => `${cur.slice(0, eq)}=${v}`));
    }
    return matching(flagsOf(cmd));
  }
  if (operands.length === 0 && cmd.commands.length > 0) return matching(help.visibleCommands(cmd).map((c) => c.name()));

  const kind = argumentKind(cmd, operands.length);
  if (kind === 'commands') {
    // `help system <TAB>`: the commands under the ones already named
    let target: Command | undefined = program;
    for (const name of operands) target = target && findSubcommand(target, name);
    return target ? matching(help.visibleCommands(target).map((c) => c.name()).filter((n) => n !== 'help')) : [];
  }
  if (kind === 'none') return [];
  let catalog;
  try {
    catalog = readCatalog(root);
  } catch {
    return []; // a store that cannot be read completes nothing rather than printing at a prompt
  }
  const names = kind === 'images' ? catalog.images : kind === 'containers' ? catalog.containers : [...catalog.containers, ...catalog.images];
  return matching(names);
}

/** The script for SHELL; it runs the command by its name, as Docker's completion runs `docker`. */
export function completionScript(shell: (typeof SHELLS)[number], name: string): string {
  const fn = `_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
  switch (shell) {
    case 'bash':
      return `# bash completion for ${name}: source <(${name} completion bash)
${fn}() {
  # The words up to the cursor, split at blanks only: bash would also split at ':' and '=',
  # which image names (nginx:1.27) and flags (--format=json) contain.
  local line=\${COMP_LINE:0:COMP_POINT}
  local -a words
  read -ra words <<<"$line"
  [[ -z $line || $line =~ [[:space:]]$ ]] && words+=('')
  local cur=\${words[\${#words[@]}-1]}
  mapfile -t COMPREPLY < <(${name} __complete -- "\${words[@]:1}" 2>/dev/null)
  # bash replaces only what follows the last ':' or '=' that it splits at: answer with that part
  local breaks=''
  [[ $COMP_WORDBREAKS == *:* ]] && breaks+=':'
  [[ $COMP_WORDBREAKS == *=* ]] && breaks+='='
  if [[ -n $breaks && $cur == *[$breaks]* ]]; then
    local pre=\${cur%"\${cur##*[$breaks]}"}
    COMPREPLY=("\${COMPREPLY[@]#"$pre"}")
  fi
}
complete -o default -F ${fn} ${name}
`;
    case 'zsh':
      return `#compdef ${name}
# zsh completion for ${name}: source <(${name} completion zsh), after compinit
${fn}() {
  local -a candidates
  candidates=(\${(f)"$(${name} __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)"})
  if (( \${#candidates} )); then
    compadd -Q -- "\${candidates[@]}"
  else
    _files
  fi
}
if [[ \${funcstack[1]} == ${fn} ]]; then
  ${fn} "$@"
else
  compdef ${fn} ${name}
fi
`;
    case 'fish':
      return `# fish completion for ${name}: ${name} completion fish | source
function __${fn}_candidates
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -g __${fn}_found (${name} __complete -- $tokens[2..-1] "$cur" 2>/dev/null)
    test (count $__${fn}_found) -gt 0
end
# With no candidate (a file argument), fish offers files as usual.
complete -c ${name} -f -n __${fn}_candidates -a '$__${fn}_found'
`;
  }
}

/** Add `completion SHELL` and the hidden `__complete` that its scripts call back. */
export function installCompletion(program: Command, out: Writable): void {
  program
    .command('completion')
    .description('Print a shell completion script for commands, flags, image and container names')
    .addArgument(new Command().createArgument('<shell>', 'bash, zsh or fish').choices(SHELLS))
    .action((shell: (typeof SHELLS)[number]) => {
      out.write(completionScript(shell, program.name()));
    });

  program
    .command('__complete', { hidden: true })
    .description('List what may complete the last of WORDS (used by the completion scripts)')
    .argument('[words...]')
    .action((words: string[]) => {
      const list = completeWords(program, words.length ? words : ['']);
      if (list.length) out.write(`${list.join('\n')}\n`);
    });
}
