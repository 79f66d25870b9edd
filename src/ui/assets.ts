// Where the page's built files lie: scripts/bundle.mjs writes web/ (the front end, bundled with
// esbuild) to dist/web/, beside the CLI bundle dist/strata.cjs and above the library's
// dist/src/. Read once when the server starts; nothing is fetched from elsewhere at run time.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StrataError } from '../errors.js';

declare const STRATA_BUNDLE: boolean | undefined;

export interface PageAssets {
  'app.js': Buffer;
  'app.css': Buffer;
}

function assetDir(): string {
  if (typeof STRATA_BUNDLE === 'boolean') return join(__dirname, 'web');
  // dist/src/ui/assets.js → dist/web
  return fileURLToPath(new URL('../../web/', import.meta.url));
}

export function loadAssets(dir = assetDir()): PageAssets {
  try {
    return { 'app.js': readFileSync(join(dir, 'app.js')), 'app.css': readFileSync(join(dir, 'app.css')) };
  } catch (err) {
    throw new StrataError(`the ui page is missing from ${dir} (${(err as NodeJS.ErrnoException).code}): run npm run build`);
  }
}
