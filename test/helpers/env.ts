// Shared test fixtures: where the corpus lives and scratch directories that always go away.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run from dist/test/…). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** ../shared/corpus beside the checkout (CI lays it out read-only), or $STRATA_CORPUS. */
export const corpusDir = process.env.STRATA_CORPUS ?? resolve(repoRoot, '..', 'shared', 'corpus');
export const imagesDir = join(corpusDir, 'images');

export function corpusImage(file: string): string {
  const p = join(imagesDir, file);
  if (!existsSync(p)) throw new Error(`corpus image missing: ${p}`);
  return p;
}

/** The strata CLI entry point. */
export const strataBin = join(repoRoot, 'bin', 'strata.cjs');

/** A scratch directory removed when the test (or the process) ends. */
export function scratch(t: { after(fn: () => void): void } | null, prefix = 'strata-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const clean = () => rmSync(dir, { recursive: true, force: true });
  if (t) t.after(clean);
  else process.on('exit', clean);
  return dir;
}
