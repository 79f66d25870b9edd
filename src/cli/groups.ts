// docker's management commands: `image ls|rm|inspect|…` and `container ls|rm|start|…` are the
// top-level commands under a second name. Each command is defined once, in its module; for a
// group, the module's registration runs again on a scratch parent and the commands the group
// takes move under it, renamed, with every flag, help text and completion of the original.
// `image prune` and `container prune` exist only here, as in docker.
import type { Command } from 'commander';
import type { Context } from './context.js';

export type Register = (program: Command, ctx: Context) => void;

interface Group {
  description: string;
  /** Subcommand name → the top-level command it is (its own name when absent). */
  commands: Record<string, string>;
  /** Extra names of subcommands (docker's `ls` is also `list`). */
  aliases?: Record<string, string[]>;
  /** inspect's --type, fixed for the group. */
  inspectType: 'image' | 'container';
}

export const GROUPS: Record<'image' | 'container', Group> = {
  image: {
    description: 'Manage images',
    commands: { history: 'history', import: 'import', inspect: 'inspect', load: 'load', ls: 'images', pull: 'pull', push: 'push', rm: 'rmi', save: 'save', tag: 'tag' },
    aliases: { ls: ['list'], rm: ['rmi', 'remove'] },
    inspectType: 'image',
  },
  container: {
    description: 'Manage containers',
    commands: {
      attach: 'attach', commit: 'commit', cp: 'cp', create: 'create', diff: 'diff', exec: 'exec', export: 'export', inspect: 'inspect', kill: 'kill',
      logs: 'logs', ls: 'ps', pause: 'pause', rename: 'rename', restart: 'restart', rm: 'rm', run: 'run', start: 'start', stop: 'stop', top: 'top', unpause: 'unpause', wait: 'wait',
    },
    aliases: { ls: ['list', 'ps'], rm: ['remove'] },
    inspectType: 'container',
  },
};

/**
 * Add `image` and `container` with the commands `register` defines (the same functions that
 * defined the top-level ones), plus `prunes[group]`, which adds the group's own prune.
 */
export function addGroups(program: Command, ctx: Context, register: Register[], prunes: Record<keyof typeof GROUPS, (group: Command) => void>): void {
  for (const [name, g] of Object.entries(GROUPS) as [keyof typeof GROUPS, Group][]) {
    const scratch = program.createCommand(program.name());
    scratch.copyInheritedSettings(program);
    for (const r of register) r(scratch, ctx);
    const group = program.command(name).description(g.description);
    for (const [sub, from] of Object.entries(g.commands)) {
      const cmd = scratch.commands.find((c) => c.name() === from);
      if (!cmd) throw new Error(`${name} ${sub}: no command ${from} to take`);
      cmd.name(sub);
      for (const a of g.aliases?.[sub] ?? []) cmd.alias(a);
      if (sub === 'inspect') {
        cmd.options.find((o) => o.long === '--type')?.hideHelp();
        cmd.setOptionValueWithSource('type', g.inspectType, 'default');
      }
      group.addCommand(cmd);
    }
    prunes[name](group);
  }
}
