// `strata ui` as a user starts it (the CLI in a process of its own) and the real browser that
// looks at it: Debian's chromium driven by playwright-core. Both are stopped by `after` hooks,
// which run even when the test fails.
import { spawn } from 'node:child_process';
import { chromium, type Browser } from 'playwright-core';
import { strataBin } from './env.js';

export const CHROMIUM = '/usr/bin/chromium';

export interface RunningUi {
  /** The printed address, token included. */
  url: string;
  /** http://127.0.0.1:PORT */
  origin: string;
  token: string;
  /** GET PATH with the token, as JSON. */
  api<T>(path: string): Promise<T>;
}

export async function startUi(root: string, driver: string, after: (fn: () => void | Promise<void>) => void): Promise<RunningUi> {
  const child = spawn(process.execPath, [strataBin, '--root', root, '--driver', driver, 'ui', '--no-open'], { stdio: ['ignore', 'pipe', 'pipe'] });
  after(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  });
  let out = '';
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const m = out.match(/^(http:\/\/\S+)\n/m);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`strata ui exited ${code} before printing its address: ${err}`)));
  });
  const u = new URL(url);
  const token = u.searchParams.get('token') ?? '';
  return {
    url,
    origin: u.origin,
    token,
    api: async <T>(path: string): Promise<T> => {
      const res = await fetch(`${u.origin}${path}?token=${token}`);
      if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as T;
    },
  };
}

export async function launchBrowser(after: (fn: () => void | Promise<void>) => void): Promise<Browser> {
  // root on this machine: chromium's sandbox needs an unprivileged user, so it goes without.
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  after(() => browser.close());
  return browser;
}
