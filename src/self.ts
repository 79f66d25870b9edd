// How strata starts itself again (a container's monitor is `strata … __monitor ID` in a process
// of its own): node and the CLI entry. The CLI bundle knows where it lies (scripts/bundle.mjs
// defines STRATA_BUNDLE); the library finds bin/strata.cjs from its own place in the package.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

declare const STRATA_BUNDLE: boolean | undefined;

export function strataBin(): string {
  if (typeof STRATA_BUNDLE === 'boolean') return join(__dirname, '..', 'bin', 'strata.cjs');
  // dist/src/self.js → the package root.
  return fileURLToPath(new URL('../../bin/strata.cjs', import.meta.url));
}

export function defaultStrataCommand(): string[] {
  return [process.execPath, strataBin()];
}
