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

// Intl's zone names cost ~0.1 ms a call (`ps -a` paid it per row): one formatter, and one name
// per UTC offset met (a zone's abbreviation follows its offset: CET/CEST, EST/EDT).
let zoneFormat: Intl.DateTimeFormat | undefined;
const zoneNames = new Map<string, string | undefined>();

/** Go's time.Time.String() of a Unix time, as `images`/`ps` print CreatedAt: "2026-11-28 03:26:25 +0000 UTC". */
export function goTime(iso: string): string {
  const p = localParts(iso);
  if (!p) return iso;
  if (!zoneNames.has(p.offset)) {
    zoneFormat ??= new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' });
    zoneNames.set(p.offset, zoneFormat.formatToParts(new Date(iso)).find((x) => x.type === 'timeZoneName')?.value);
  }
  const zone = zoneNames.get(p.offset);
  return `${p.local.replace('T', ' ')} ${p.offset} ${zone === 'GMT' || !zone ? 'UTC' : zone}`;
}

/** docker's ellipsis truncation (keeps the first n-1 characters plus "…"). */
export function truncate(s: string, n: number): string {
  const chars = [...s];
  return chars.length <= n ? s : chars.slice(0, n - 1).join('') + '…';
}

