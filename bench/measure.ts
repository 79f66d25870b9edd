// What the benchmarks measure a command with: wall time, CPU time (user + system, the command's
// and, for a daemon-backed tool, its daemon's), peak RSS, and medians. Shared so that every row
// of `npm run bench` counts the same way.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

const TICKS_PER_SECOND = 100; // USER_HZ, the unit of /proc/<pid>/stat's times on Linux

/**
 * CPU seconds (user + system) from /proc/<pid>/stat: the process's own, its waited-for
 * children's (cutime, cstime: a finished command run by spawnSync lands there), or both.
 */
export function cpuSeconds(pid: number | 'self', which: 'children' | 'all'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // Fields after "(comm)": the third field of the line is the first here; utime is the 14th.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  const [utime, stime, cutime, cstime] = [f[11]!, f[12]!, f[13]!, f[14]!];
  return (which === 'all' ? utime + stime + cutime + cstime : cutime + cstime) / TICKS_PER_SECOND;
}

export interface Measured {
  /** Seconds from start to exit. */
  wall: number;
  /** CPU seconds of the command (and of `daemon`, when given). */
  cpu: number;
  /** Peak resident set of the command's own process, in bytes (GNU time's %M). */
  peakRss: number;
}

/**
 * Run argv to its end (it must exit 0) and measure it. The command runs under GNU time, which
 * reports the peak RSS of the process it waits for; time's own few hundred µs fall in the wall.
 */
export function measure(argv: string[], what: string, opts: { daemon?: number; input?: string } = {}): Measured {
  const out = join(tmpdir(), `strata-bench-time-${process.pid}`);
  const cpu = () => cpuSeconds('self', 'children') + (opts.daemon !== undefined ? cpuSeconds(opts.daemon, 'all') : 0);
  const cpu0 = cpu();
  const start = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', out, ...argv], {
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'],
    input: opts.input,
    maxBuffer: 16 << 20,
  });
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  const used = cpu() - cpu0;
  try {
    if (r.status !== 0) {
      throw new Error(`${what}: ${argv.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr.toString().trim().split('\n').slice(-3).join(' | ')}`);
    }
    const kib = Number(readFileSync(out, 'utf8').trim().split('\n').pop());
    return { wall, cpu: used, peakRss: kib * 1024 };
  } finally {
    rmSync(out, { force: true });
  }
}

/** Rows as a left-aligned text table, the first row the header. */
export function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  for (const r of rows) console.log(r.map((v, c) => v.padEnd(widths[c]!)).join('   ').trimEnd());
}

/**
 * The highest resident set a running process has reached (VmHWM), in bytes: a daemon started
 * afresh for one measured command (dockerd) reports there what that command made it hold.
 */
export function peakRssOf(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}
