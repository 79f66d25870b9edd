// Layer ids become file, directory and dataset names in every driver: one rule for all of
// them, so a hostile or mistaken id can never name a path outside the driver's home.
import { DriverError } from '../driver.js';

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function isLayerId(id: string): boolean {
  return ID_RE.test(id);
}

/** Throws unless id is a plain name that is not one of the driver's own reserved names. */
export function checkLayerId(driver: string, id: string, reserved: (id: string) => boolean = () => false): void {
  if (!ID_RE.test(id) || reserved(id)) throw new DriverError(`${driver}: invalid layer id ${JSON.stringify(id)}`);
}
