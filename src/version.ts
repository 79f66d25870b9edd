// strata's version, from package.json: the CLI bundle has it inlined at build time
// (scripts/bundle.mjs defines STRATA_VERSION); the library reads the package's own file.
import { readFileSync } from 'node:fs';

declare const STRATA_VERSION: string | undefined;

function fromPackage(): string {
  // dist/src/version.js → the package root.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export const version: string = typeof STRATA_VERSION === 'string' ? STRATA_VERSION : fromPackage();
