// Help that answers: one example under every command's --help, `strata help COMMAND…` for any
// command (commander's own help command looks one level down only), and the nearest command
// suggested for a misspelt one. The examples live here, keyed by command path, so the commands
// themselves stay as they are; test/cli/help.test.ts fails for a command that has none.
import { Help, type Command } from 'commander';
import { StrataError } from '../errors.js';
import { GROUPS } from './groups.js';

/** One example per command, by its path below the program ("system df"). */
const COMMAND_EXAMPLES: Record<string, string> = {
  load: 'strata load -i nginx.oci.tar',
  save: 'strata save -o web.tar --format oci web:2',
  images: "strata images --format '{{.Repository}}:{{.Tag}}'",
  tag: 'strata tag nginx:latest web:1',
  rmi: 'strata rmi web:1',
  unshare: 'strata unshare sh -c \'ls "$(strata mount web1)"\'',
  inspect: "strata inspect -f '{{.State.Status}} {{.State.ExitCode}}' web1",
  history: 'strata history --no-trunc nginx:latest',
  analyze: 'strata analyze --ci --lowest-efficiency 0.95 --highest-wasted-bytes 20M app:1',
  layers: "strata layers --format '{{.Tree}}{{.ID}} {{.Size}} {{.Images}}'",
  import: 'strata import rootfs.tar flat:1',
  create: 'strata create --name web1 -e MODE=prod nginx:latest nginx -g "daemon off;"',
  run: 'strata run -d --name web -p 127.0.0.1:8080:80 nginx:latest',
  start: 'strata start -a web1',
  stop: 'strata stop -t 30 web',
  exec: 'strata exec -it web sh',
  cp: 'strata cp ./nginx.conf web:/etc/nginx/nginx.conf',
  top: 'strata top web',
  restart: 'strata restart web',
  kill: 'strata kill -s HUP web',
  wait: 'strata wait web1',
  logs: 'strata logs -f --tail 20 web',
  attach: 'strata attach web',
  pause: 'strata pause web',
  unpause: 'strata unpause web',
  rename: 'strata rename web web-old',
  ps: 'strata ps -a --size',
  rm: 'strata rm -f web1',
  mount: 'cd "$(strata mount web1)"',
  umount: 'strata umount web1',
  diff: 'strata diff web1',
  commit: 'strata commit -m "add config" web1 web:2',
  export: 'strata export -o rootfs.tar web1',
  system: 'strata system df -v',
  'system df': 'strata system df -v',
  'system prune': 'strata system prune -f --all',
  check: 'strata check --repair',
  info: 'strata --root /srv/strata info',
  pull: 'strata pull --platform linux/arm64 nginx:1.27',
  push: 'strata push registry.example/team/web:2',
  login: 'strata login -u me --password-stdin registry.example < token.txt',
  logout: 'strata logout registry.example',
  completion: 'source <(strata completion bash)',
  ui: 'strata ui --port 8040 --no-open',
  help: 'strata help system prune',
  version: 'strata version',
  image: 'strata image ls --filter dangling=true',
  'image prune': 'strata image prune -a -f',
  container: 'strata container ls -a',
  'container prune': 'strata container prune -f',
};

/** The examples, with those of `image ls`, `container rm`, … made from their top-level command's. */
export const EXAMPLES: Record<string, string> = {
  ...COMMAND_EXAMPLES,
  ...Object.fromEntries(
    Object.entries(GROUPS).flatMap(([group, g]) =>
      Object.entries(g.commands).map(([sub, from]) => [`${group} ${sub}`, COMMAND_EXAMPLES[from].replace(` ${from}`, ` ${group} ${sub}`)]),
    ),
  ),
};

/** Every visible command below PROGRAM with its path ("system df"), parents before children. */
export function commandPaths(program: Command): [string, Command][] {
  const out: [string, Command][] = [];
  const help = new Help();
  const walk = (cmd: Command, prefix: string) => {
    // visibleCommands leaves hidden ones out, and adds commander's implicit `help`: not ours
    for (const c of help.visibleCommands(cmd).filter((v) => cmd.commands.includes(v))) {
      const path = prefix ? `${prefix} ${c.name()}` : c.name();
      out.push([path, c]);
      walk(c, path);
    }
  };
  walk(program, '');
  return out;
}

/** Add the examples, a `help [command...]` that walks the whole path, and suggestions. */
export function installHelp(program: Command, examples: Record<string, string> = EXAMPLES): void {
  program.showSuggestionAfterError(true);
  program.helpCommand(false);
  program
    .command('help')
    .description('Show help for a command')
    .argument('[command...]', 'the command, with its subcommands (system df)')
    .action(async (path: string[]) => {
      let target = program;
      for (const [i, name] of path.entries()) {
        const sub = target.commands.find((c) => c.name() === name || c.aliases().includes(name));
        if (!sub) {
          if (target.commands.length === 0) throw new StrataError(`${target.name()} has no subcommand "${name}"`);
          // The path up to the unknown name, parsed, gets commander's own "unknown command" error
          // with the nearest name, as typing it would.
          await program.parseAsync(path.slice(0, i + 1), { from: 'user' });
          return;
        }
        target = sub;
      }
      target.help();
    });
  for (const [path, cmd] of commandPaths(program)) {
    const example = examples[path];
    if (example) cmd.addHelpText('after', `\nExample:\n  $ ${example}\n`);
  }
}
