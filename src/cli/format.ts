// Output the way the docker CLI prints it, so scripts written for docker keep working.
import { humanSize } from '../sys/units.js';
import type { Output } from './context.js';
import { formatRows, tabwrite, type RowsOptions } from './template/index.js';

export { humanSize };

/** go-units HumanDuration, as in "2 hours ago". */
export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.round(ms / 60000);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(ms / 3600000);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

export function since(iso: string, nowMs = Date.now()): string {
  const t = Date.parse(iso);
  if (!Number.isFinite(t) || t <= 0) return 'N/A';
  return `${humanDuration(Math.max(0, nowMs - t))} ago`;
}

/** A fixed table (header and rows) as docker's tabwriter aligns its tables: minwidth 10, padding 3. */
export function table(header: string[], rows: string[][]): string {
  return tabwrite([header, ...rows].map((r) => r.join('\t')).join('\n') + '\n');
}

/**
 * A list command's rows: docker's default table for the command (no format), a Go template,
 * or `json` for one object per line (docker 23's form; 20.10 has no such keyword).
 */
export function printRows(io: Output, format: string | undefined, rows: Record<string, unknown>[], opts: RowsOptions): void {
  if (format === 'json') for (const r of rows) io.print(JSON.stringify(r));
  else io.out.write(formatRows(rows, format ?? '', opts));
}

function localParts(iso: string): { local: string; offset: string; colonOffset: string } | null {
  const t = new Date(iso);
  if (!Number.isFinite(t.getTime()) || iso === '') return null;
  const off = -t.getTimezoneOffset();
  const abs = Math.abs(off);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  const sign = off < 0 ? '-' : '+';
  return { local: new Date(t.getTime() + off * 60000).toISOString().slice(0, 19), offset: `${sign}${hh}${mm}`, colonOffset: off === 0 ? 'Z' : `${sign}${hh}:${mm}` };
}

/** docker's RFC 3339 times (`history -H=false`): local offset, seconds precision. */
export function rfc3339(iso: string): string {
  const p = localParts(iso);
  return p ? p.local + p.colonOffset : iso;
}

// The zone's abbreviation, once per UTC offset met (it follows the offset: CET/CEST, EST/EDT):
// an Intl.DateTimeFormat costs ~20 ms to make, and ~0.1 ms a call after (`ps -a` paid both
// per row). On a UTC host (the common case, and the one Go names "UTC" whatever Intl says)
// Date's own zone name tells without making one.
const zoneNames = new Map<string, string>();

function zoneName(date: Date, offset: string): string {
  let zone = zoneNames.get(offset);
  if (zone === undefined) {
    if (offset === '+0000' && /\((Coordinated Universal|Greenwich Mean) Time\)$/.test(date.toString())) zone = 'UTC';
    else {
      const short = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(date).find((x) => x.type === 'timeZoneName')?.value;
      zone = short === 'GMT' || !short ? 'UTC' : short;
    }
    zoneNames.set(offset, zone);
  }
  return zone;
}

/** Go's time.Time.String() of a Unix time, as `images`/`ps` print CreatedAt: "2026-11-28 03:26:25 +0000 UTC". */
export function goTime(iso: string): string {
  const p = localParts(iso);
  if (!p) return iso;
  return `${p.local.replace('T', ' ')} ${p.offset} ${zoneName(new Date(iso), p.offset)}`;
}

/** docker's ellipsis truncation (keeps the first n-1 characters plus "…"). */
export function truncate(s: string, n: number): string {
  const chars = [...s];
  return chars.length <= n ? s : chars.slice(0, n - 1).join('') + '…';
}

