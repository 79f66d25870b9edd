// Target: the layer applier (src/archive/apply.ts), in each whiteout format. Runs only in the
// isolated workers (fuzz.ts): every filesystem read-only but the tmpfs at SCRATCH_MOUNT that holds the
// scratch root. Beside the root sit a sentinel directory and a lower layer, which tar inputs aim
// their symlinks, hardlinks and whiteouts at; after every input both must be exactly as they
// were (names, types, modes, link counts, sizes, times, contents), else a finding.
// Clean errors: LayerArchiveError, UnsafeArchiveError, rootpath's ELOOP, and the kernel's refusal
// of a name (ENAMETOOLONG) or of a path through a non-directory (ENOTDIR, EEXIST from mkdir -p).
import fc from 'fast-check';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { applyLayer, LayerArchiveError, UnsafeArchiveError, type WhiteoutFormat } from '../../../src/archive/apply.js';
import { FuzzViolation, SCRATCH_MOUNT, type FuzzTarget } from '../target.js';
import { chunks, tarBytesArb } from './tar.js';

export interface ApplyInput {
  bytes: Buffer;
  format: WhiteoutFormat;
  /** Start from a root that already holds a dir, a file and symlinks out to the sentinel. */
  prefilled: boolean;
}

/** Error codes of system calls that a hostile name or tree shape legitimately runs into. */
const REFUSALS = new Set(['ELOOP', 'ENAMETOOLONG', 'ENOTDIR', 'EEXIST']);

export function applyClean(err: unknown): boolean {
  if (err instanceof LayerArchiveError || err instanceof UnsafeArchiveError) return true;
  const code = (err as { code?: unknown }).code;
  return err instanceof Error && !(err instanceof TypeError) && !(err instanceof RangeError) && typeof code === 'string' && REFUSALS.has(code);
}

/** Everything under dir but `skip`, as one string: a change anywhere shows. */
function signature(dir: string, skip: string): string {
  const out: string[] = [];
  const walk = (p: string, rel: string) => {
    if (p === skip) return;
    const st = lstatSync(p, { bigint: true });
    let extra = '';
    if (st.isSymbolicLink()) extra = readlinkSync(p);
    else if (st.isFile()) extra = readFileSync(p).toString('base64');
    out.push(`${rel} ${st.mode} ${st.nlink} ${st.uid}:${st.gid} ${st.size} ${st.mtimeNs} ${st.ctimeNs} ${extra}`);
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) walk(`${p}/${n}`, `${rel}/${n}`);
  };
  walk(dir, '.');
  return out.join('\n');
}

export async function make(): Promise<FuzzTarget<ApplyInput>> {
  const base = mkdtempSync(`${SCRATCH_MOUNT}/strata-fuzz-apply-`);
  const root = `${base}/root`;
  const sentinel = `${base}/sentinel`;
  const lower = `${base}/lower`;
  mkdirSync(`${sentinel}/dir`, { recursive: true });
  writeFileSync(`${sentinel}/file`, 'sentinel\n');
  writeFileSync(`${sentinel}/dir/inner`, 'inner\n');
  mkdirSync(`${lower}/d`, { recursive: true });
  writeFileSync(`${lower}/a`, 'lower a\n');
  writeFileSync(`${lower}/d/f`, 'lower d/f\n');
  symlinkSync('../sentinel/file', `${lower}/l`);
  // The base directory's own times change as the root is remade: only what is in it counts.
  const outside = () => signature(base, root).split('\n').slice(1).join('\n');
  const before = outside();
  const escapes = [sentinel, `${sentinel}/file`, `${sentinel}/dir`, '../sentinel', '../../sentinel/file', '/../sentinel/dir', `../lower/a`, `${lower}/d`];

  return {
    name: 'apply',
    arbitrary: fc.record({
      bytes: await tarBytesArb(escapes),
      format: fc.constantFrom<WhiteoutFormat>('snapshot', 'overlay', 'aufs'),
      prefilled: fc.boolean(),
    }),
    async run(input) {
      rmSync(root, { recursive: true, force: true });
      mkdirSync(root);
      if (input.prefilled) {
        mkdirSync(`${root}/d`);
        writeFileSync(`${root}/a`, 'a\n');
        symlinkSync(sentinel, `${root}/abs`);
        symlinkSync('../sentinel', `${root}/rel`);
        symlinkSync('abs/file', `${root}/d/f`);
      }
      let failure: unknown;
      try {
        await applyLayer(root, Readable.from(chunks(input.bytes, 64 << 10)), { whiteouts: input.format, lowers: [lower] });
      } catch (err) {
        failure = err;
      }
      const after = outside();
      if (after !== before) throw new FuzzViolation(`outside the root changed:\n--- before\n${before}\n--- after\n${after}`);
      if (failure !== undefined) throw failure;
    },
    clean: applyClean,
    bytes: (input) => input.bytes,
    close: () => rmSync(base, { recursive: true, force: true }),
  };
}
