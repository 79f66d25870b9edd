// A container's own storage options (`create --storage-opt k=v`), read with Docker's rules and
// refused with Docker's words, so scripts that match Docker's errors see the same lines. Drivers
// that can enforce a size (btrfs, zfs, devicemapper) take `size` in any case of letters, as
// Docker's do; every other key is Docker's "Unknown option <key>".
import { DriverError, type CreateOpts } from '../driver.js';
import { parseSizeOption } from './size-option.js';

/** The `size` a writable layer asks for (bytes), or null; any other key is refused. */
export function layerSize(opts?: CreateOpts): number | null {
  let size: number | null = null;
  for (const [key, value] of Object.entries(opts?.storageOpt ?? {})) {
    const k = key.toLowerCase();
    if (k !== 'size') throw new DriverError(`Unknown option ${k}`);
    // go-units' wording, which Docker passes on as it is.
    if (!/^\s*\d/.test(value)) throw new DriverError(`invalid size: '${value}'`);
    size = parseSizeOption(value, 'size');
  }
  return size;
}

/** Refuse any per-container option with Docker's message for a driver that takes none. */
export function refuseStorageOpt(opts: CreateOpts | undefined, message: string): void {
  if (Object.keys(opts?.storageOpt ?? {}).length > 0) throw new DriverError(message);
}
