// What the backing filesystem is and whether it reports file types in readdir (d_type),
// the two facts `docker info` prints and overlay2 depends on.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { koffi, libcDeclarations } from './ffi.js';
import { statfsType } from './linux.js';

// Names as Docker's graphdriver prints them (fsMagic -> name).
const FS_NAMES = new Map<number, string>([
  [0xef53, 'extfs'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  [0x01021994, 'tmpfs'],
  [0x794c7630, 'overlayfs'],
  [0x2fc12fc1, 'zfs'],
  [0x65735546, 'fuse'],
  [0x61756673, 'aufs'],
  [0x6969, 'nfs'],
  [0x73717368, 'squashfs'],
  [0x858458f6, 'ramfs'],
  [0x52654973, 'reiserfs'],
  [0xe0f5e1e2, 'erofs'],
  [0x4244, 'hfs'],
  [0x5346544e, 'ntfs'],
]);

export const FS_MAGIC = {
  btrfs: 0x9123683e,
  zfs: 0x2fc12fc1,
  overlay: 0x794c7630,
  fuse: 0x65735546,
  xfs: 0x58465342,
  ext4: 0xef53,
  tmpfs: 0x01021994,
} as const;

export function backingFsName(path: string): string {
  const magic = statfsType(path);
  return FS_NAMES.get(magic) ?? `<unknown 0x${magic.toString(16)}>`;
}

const c = libcDeclarations((libc, koffi) => ({
  opendir: libc.func('void *opendir(const char *name)'),
  readdir: libc.func('void *readdir(void *dirp)'),
  closedir: libc.func('int closedir(void *dirp)'),
  // struct dirent on 64-bit glibc: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name[256]
  DIRENT_HEADER: koffi.struct('dirent_header', {
    d_ino: 'uint64_t',
    d_off: 'int64_t',
    d_reclen: 'uint16_t',
    d_type: 'uint8_t',
  }),
}));
const DT_UNKNOWN = 0;

/**
 * True when readdir on the filesystem holding `dir` fills in d_type. The entries dir already
 * has answer that without writing anything (so a store on a full disk still opens); only an
 * empty dir needs a probe file of our own.
 */
export function supportsDType(dir: string): boolean {
  const seen = direntTypes(dir, null);
  if (seen !== null) return seen;
  const probe = mkdtempSync(join(dir, '.dtype-probe-'));
  try {
    writeFileSync(join(probe, 'f'), '');
    return direntTypes(probe, 'f') ?? false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

/**
 * Whether readdir of dir reports a type for the entry named `name` (for any entry but `.` and
 * `..` when name is null, which some filesystems type even without d_type); null when there
 * is no such entry.
 */
function direntTypes(dir: string, name: string | null): boolean | null {
  const { opendir, readdir, closedir, DIRENT_HEADER } = c();
  const dp = opendir(dir);
  if (!dp) return null;
  try {
    for (;;) {
      const ent = readdir(dp);
      if (!ent) return null;
      const hdr = koffi().decode(ent, DIRENT_HEADER) as { d_type: number };
      const entName = koffi().decode(ent, 19, 'char', -1) as string;
      if (name === null ? entName !== '.' && entName !== '..' : entName === name) return hdr.d_type !== DT_UNKNOWN;
    }
  } finally {
    closedir(dp);
  }
}
