// The strata CLI on a real pty (node-pty), as a user at a terminal runs it: what the runtime's
// terminal tests (-it, resize, Ctrl-C, detach keys) type and read.
import * as pty from 'node-pty';
import { strataBin } from '../helpers/env.js';

export interface Session {
  p: pty.IPty;
  /** Resolves when the output so far matches `re` (fails after 20 s). */
  until(re: RegExp): Promise<void>;
  exited: Promise<number>;
  output(): string;
}

/** `strata --root ROOT --driver overlay2 ARGS…` on a pty of `size`. */
export function session(root: string, args: string[], size: { cols: number; rows: number } = { cols: 80, rows: 24 }): Session {
  const p = pty.spawn(process.execPath, [strataBin, '--root', root, '--driver', 'overlay2', ...args], { ...size, env: process.env as Record<string, string> });
  let out = '';
  p.onData((d) => (out += d));
  const exited = new Promise<number>((r) => p.onExit((e) => r(e.exitCode)));
  const until = async (re: RegExp) => {
    const t0 = Date.now();
    while (!re.test(out)) {
      if (Date.now() - t0 > 20_000) throw new Error(`no ${re} in ${JSON.stringify(out)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { p, until, exited, output: () => out };
}
