// docker's flag parser (pflag) takes `--flag=false` / `-f=true` for any boolean flag; commander
// does not. Before parsing, such tokens for the boolean options of the command being run are
// rewritten to what commander understands: the flag itself for true, and for false nothing (the
// flag's absence) or its `--no-` twin when the flag defaults to true (`history -H=false`).
import type { Command, Option } from 'commander';

const ASSIGN = /^(--?[A-Za-z][\w-]*)=(true|false)$/;

/** The subcommand argv names (following `system df` style nesting), or the program itself. */
export function commandFor(program: Command, argv: string[]): Command {
  let cmd = program;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') break;
    if (a.startsWith('-')) {
      // Skip the value of an option that takes one (`--root DIR`).
      const opt = [...cmd.options, ...program.options].find((o) => o.long === a || o.short === a);
      if (opt && (opt.required || opt.optional)) i++;
      continue;
    }
    const sub = cmd.commands.find((c) => c.name() === a || c.aliases().includes(a));
    if (!sub) break;
    cmd = sub;
  }
  return cmd;
}

export function pflagBooleans(program: Command, argv: string[]): string[] {
  const cmd = commandFor(program, argv);
  const options: readonly Option[] = cmd === program ? program.options : [...cmd.options, ...program.options];
  const out: string[] = [];
  for (const a of argv) {
    if (a === '--') {
      out.push(...argv.slice(argv.indexOf(a)));
      break;
    }
    const m = ASSIGN.exec(a);
    const opt = m && options.find((o) => (o.short === m[1] || o.long === m[1]) && !o.required && !o.optional);
    if (!m || !opt) {
      out.push(a);
      continue;
    }
    if (m[2] === 'true') {
      out.push(opt.long ?? opt.short!);
      continue;
    }
    if (opt.negate) continue; // --no-trunc=false: the default
    const twin = options.find((o) => o.negate && o.attributeName() === opt.attributeName());
    if (twin) out.push(twin.long!);
  }
  return out;
}
