// `commit -c` and `import -c`: Dockerfile instructions applied to an image's runtime config, as
// docker's builder applies them for those two commands (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
// ONBUILD, USER, VOLUME, WORKDIR; any other instruction is refused, as docker refuses it).
import { posix } from 'node:path';
import { InvalidInputError } from '../errors.js';
import type { ContainerConfig } from './types.js';

const INSTRUCTIONS = ['add', 'arg', 'cmd', 'copy', 'entrypoint', 'env', 'expose', 'from', 'healthcheck', 'label', 'maintainer', 'onbuild', 'run', 'shell', 'stopsignal', 'user', 'volume', 'workdir'];
const ALLOWED = ['cmd', 'entrypoint', 'env', 'expose', 'label', 'onbuild', 'user', 'volume', 'workdir'];

/** A JSON array of strings (`["a", "b"]`), or null when the text is not one (then it is the shell form). */
function jsonArray(text: string): string[] | null {
  if (!text.startsWith('[')) return null;
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : null;
  } catch {
    return null;
  }
}

/** Words as the Dockerfile parser splits `K=V` lists: spaces separate, quotes group, `\` escapes. */
function words(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | null = null;
  let any = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) cur += text[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      any = true;
    } else if (c === '\\' && i + 1 < text.length) {
      cur += text[++i];
      any = true;
    } else if (/\s/.test(c)) {
      if (cur || any) out.push(cur);
      cur = '';
      any = false;
    } else {
      cur += c;
      any = true;
    }
  }
  if (quote) throw new InvalidInputError(`unterminated quote in "${text}"`);
  if (cur || any) out.push(cur);
  return out;
}

/** `ENV`/`LABEL` arguments: `K=V …`, or the legacy `K V` (one pair, the rest of the line as value). */
function pairs(instr: string, args: string): [string, string][] {
  const ws = words(args);
  if (ws.length === 0) throw new InvalidInputError(`${instr.toUpperCase()} requires at least one argument`);
  if (!ws[0].includes('=')) {
    const m = /^(\S+)\s+(.*)$/s.exec(args);
    if (!m) throw new InvalidInputError(`${instr.toUpperCase()} must have two arguments`);
    return [[m[1], words(m[2]).join(' ')]];
  }
  return ws.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new InvalidInputError(`Syntax error - can't find = in "${w}". Must be of the form: name=value`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

/** A copy of `config` with the changes applied, in order; a bad change is a one-line error. */
export function applyChanges(config: ContainerConfig, changes: string[]): ContainerConfig {
  const out: ContainerConfig = structuredClone(config);
  let cmdSet = false;
  for (const change of changes) {
    const m = /^\s*(\S+)\s*(.*?)\s*$/s.exec(change);
    if (!m) continue;
    const instr = m[1].toLowerCase();
    const args = m[2];
    if (!INSTRUCTIONS.includes(instr)) throw new InvalidInputError(`dockerfile parse error line 1: unknown instruction: ${m[1].toUpperCase()}`);
    if (!ALLOWED.includes(instr)) throw new InvalidInputError(`${instr} is not a valid change command`);
    const list = () => jsonArray(args) ?? ['/bin/sh', '-c', args];
    switch (instr) {
      case 'cmd':
        out.Cmd = list();
        cmdSet = true;
        break;
      case 'entrypoint':
        out.Entrypoint = args === '' ? null : list();
        // As in a Dockerfile, a new entrypoint drops the command unless a CMD came before it.
        if (!cmdSet) out.Cmd = null;
        break;
      case 'env': {
        const env = [...(out.Env ?? [])];
        for (const [k, v] of pairs(instr, args)) {
          const i = env.findIndex((e) => e.split('=')[0] === k);
          if (i >= 0) env[i] = `${k}=${v}`;
          else env.push(`${k}=${v}`);
        }
        out.Env = env;
        break;
      }
      case 'label':
        out.Labels = { ...(out.Labels ?? {}), ...Object.fromEntries(pairs(instr, args)) };
        break;
      case 'expose': {
        const ports = { ...(out.ExposedPorts ?? {}) };
        for (const p of words(args)) {
          if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/i.test(p)) throw new InvalidInputError(`invalid containerPort: ${p}`);
          ports[p.includes('/') ? p.toLowerCase() : `${p}/tcp`] = {};
        }
        out.ExposedPorts = ports;
        break;
      }
      case 'user':
        out.User = args;
        break;
      case 'workdir':
        out.WorkingDir = posix.resolve('/', out.WorkingDir || '/', args);
        break;
      case 'volume': {
        const vols = { ...(out.Volumes ?? {}) };
        for (const v of jsonArray(args) ?? words(args)) vols[v] = {};
        out.Volumes = vols;
        break;
      }
      case 'onbuild':
        out.OnBuild = [...((out.OnBuild as string[] | null | undefined) ?? []), args];
        break;
    }
  }
  return out;
}
