// Sizes in storage options, read as Docker reads them (go-units RAMInBytes): a number with
// an optional binary unit, so "50M" is 50 MiB and "1.5g" is 1.5 GiB.
import { DriverError } from '../driver.js';

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

/** Bytes for a size such as "50M", "512k", "10GiB" or "4096"; `what` names the option in errors. */
export function parseSizeOption(value: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp]?)i?b?$/i.exec(value.trim());
  if (!m) throw new DriverError(`invalid size for ${what}: ${JSON.stringify(value)} (expected e.g. 50M, 10G)`);
  const bytes = Math.floor(Number(m[1]) * UNITS[m[2].toLowerCase()]);
  if (!Number.isSafeInteger(bytes)) throw new DriverError(`size for ${what} is too large: ${value}`);
  return bytes;
}
