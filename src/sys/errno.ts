// Reading node's errors by their errno code, and the lstat that says "nothing there" with null:
// every layer of strata asks both questions, so they are answered once, here at the bottom.
import { lstatSync, type BigIntStats, type PathLike, type Stats } from 'node:fs';

/** Whether err is a system error with one of these codes (ENOENT, EBUSY, …). */
export function isCode(err: unknown, ...codes: string[]): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code !== undefined && codes.includes(code);
}

/** lstat of p, or null when nothing is there (ENOENT, or a path component is not a directory). */
export function lstatOrNull(p: PathLike): Stats | null;
export function lstatOrNull(p: PathLike, opts: { bigint: true }): BigIntStats | null;
export function lstatOrNull(p: PathLike, opts?: { bigint: true }): Stats | BigIntStats | null {
  try {
    return opts ? lstatSync(p, opts) : lstatSync(p);
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ENOTDIR')) return null;
    throw err;
  }
}
