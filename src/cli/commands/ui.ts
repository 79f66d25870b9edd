// `strata ui`: serves the store's web page (src/ui/) until interrupted, printing the address with
// its token on stdout (the one line a script needs) and opening it in the desktop's browser.
import type { Command } from 'commander';
import { InvalidInputError } from '../../errors.js';
import { runTool } from '../../sys/run.js';
import type { Context, Output } from '../context.js';

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidInputError(`invalid port "${v}": expected 0 to 65535`);
  return n;
}

function openBrowser(url: string, io: Output): void {
  // Without a desktop session xdg-open falls back to text browsers that would take the terminal.
  if (!process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
    io.err.write('No desktop session to open a browser in: open the address above.\n');
    return;
  }
  runTool('xdg-open', [url], { ignoreStdout: true }).catch((err: Error) => io.err.write(`Could not open a browser (${err.message}): open the address above.\n`));
}

function interrupted(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(sig);
    };
    const onInt = on('SIGINT');
    const onTerm = on('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
  });
}

export function addUiCommands(program: Command, { io, withStore }: Context): void {
  program
    .command('ui')
    .description('Serve a read-only web page of the store on 127.0.0.1 (layers, images, containers, disk use)')
    .option('-p, --port <port>', 'port on 127.0.0.1 (default: a free one)', port, 0)
    .option('--no-open', 'do not open the page in a browser')
    .action(async (o: { port: number; open: boolean }) => {
      await withStore(async (store) => {
        // Loaded here: the server brings node:http, which no other command's start-up needs.
        const { serveUi } = await import('../../ui/server.js');
        const server = await serveUi(store, { port: o.port });
        io.print(server.url);
        io.err.write('Serving until interrupted (Ctrl-C).\n');
        if (o.open) openBrowser(server.url, io);
        await interrupted();
        await server.close();
      });
    });
}
