// Docker's btrfs driver: every layer is a btrfs subvolume under btrfs/subvolumes/<id>, and a
// child starts as a snapshot of its parent's subvolume, so it shares every block until written.
// Nothing is mounted: the subvolume directory is the layer's view. A size on a layer is a
// qgroup limit on what the subvolume references. Without root it works where the filesystem is
// mounted with user_subvol_rm_allowed (a user may always make and snapshot subvolumes in dirs
// of theirs, but delete them only there); sizes, which need quotas, stay root's.
import { lstat, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../sys/fileio.js';
import { backingFsName, FS_MAGIC } from '../../sys/fsprobe.js';
import { statfsType } from '../../sys/linux.js';
import { nearestExisting } from '../common/backing.js';
import { DirectoryLayerDriver, pathExists } from '../common/dir-layers.js';
import { DriverError, type CreateOpts, type Driver, type BlockUsage, type DriverOptions } from '../driver.js';
import { parseSizeOption } from '../common/size-option.js';
import { layerSize } from '../common/storage-opt.js';
import { humanSize as goHumanSize } from '../../sys/units.js';
import { runTool, toolWorks } from '../../sys/run.js';
import { mountOf } from '../../sys/mountinfo.js';
import { isRootless } from '../../sys/rootless.js';

// The root directory of every subvolume has this inode number (BTRFS_FIRST_FREE_OBJECTID).
const SUBVOLUME_ROOT_INO = 256n;
const VERSION_HEADER = '/usr/include/btrfs/version.h';

/** The registry's usable() check: the root must be on btrfs and btrfs-progs installed. */
export async function btrfsUsable(root: string): Promise<true | string> {
  const at = nearestExisting(join(root, 'btrfs'));
  if (statfsType(at) !== FS_MAGIC.btrfs) return `${at} is on ${backingFsName(at)}, not btrfs`;
  if (!(await toolWorks('btrfs', ['--version']))) return 'the btrfs command (btrfs-progs) is not installed';
  // A user may make subvolumes, but delete them only where the filesystem allows it.
  if (isRootless() && !mountOf(at)?.superOptions.includes('user_subvol_rm_allowed')) {
    return `btrfs without root needs ${at}'s filesystem mounted with user_subvol_rm_allowed`;
  }
  return true;
}

export class BtrfsDriver extends DirectoryLayerDriver implements Driver {
  readonly name = 'btrfs';
  readonly home: string;
  /** quotas/<id> holds the byte limit of a layer created with size=, as Docker keeps it. */
  private readonly quotas: string;
  private quotaEnabled = false;

  private constructor(
    root: string,
    private readonly minSpace: number,
  ) {
    super(join(root, 'btrfs', 'subvolumes'));
    this.home = join(root, 'btrfs');
    this.quotas = join(this.home, 'quotas');
  }

  /** Open (creating if needed) the btrfs data under `${root}/btrfs`, finishing removals a crash cut short. */
  static async open(opts: DriverOptions): Promise<BtrfsDriver> {
    let minSpace = 0;
    for (const [key, value] of Object.entries(opts.options)) {
      if (key.toLowerCase() === 'btrfs.min_space') minSpace = parseSizeOption(value, key);
      else throw new DriverError(`btrfs: unknown storage option ${key}`);
    }
    const d = new BtrfsDriver(opts.root, minSpace);
    const at = nearestExisting(d.home);
    if (statfsType(at) !== FS_MAGIC.btrfs) {
      throw new DriverError(`btrfs: ${d.home} is not on a btrfs filesystem (${at} is on ${backingFsName(at)})`);
    }
    // 0710 like Docker (CVE-2021-41091): others must not walk into layer contents.
    await mkdir(d.home, { recursive: true, mode: 0o710 });
    await mkdir(d.layers, { recursive: true, mode: 0o710 });
    await d.finishRemovals();
    return d;
  }

  /** Image layers are made as read-write ones are (a size option included). */
  create(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    return this.createReadWrite(id, parent, opts);
  }

  async createReadWrite(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    // Parsed before anything exists, so a bad option leaves nothing behind.
    const size = this.parseLayerOptions(opts);
    const dir = this.dir(id);
    if (await pathExists(dir)) throw new DriverError(`btrfs: layer ${id} already exists`);
    if (parent === null) {
      await runTool('btrfs', ['subvolume', 'create', dir]);
    } else {
      const from = this.dir(parent);
      if (!(await pathExists(from))) throw new DriverError(`btrfs: parent layer ${parent} does not exist`);
      await runTool('btrfs', ['subvolume', 'snapshot', from, dir]);
    }
    if (size === null) return;
    try {
      await this.limit(dir, size);
      await mkdir(this.quotas, { recursive: true, mode: 0o700 });
      writeFileAtomic(join(this.quotas, id), String(size));
    } catch (err) {
      await deleteSubvolumeTree(dir).catch(() => undefined);
      throw err;
    }
  }

  private parseLayerOptions(opts?: CreateOpts): number | null {
    const size = layerSize(opts);
    if (size === 0) throw new DriverError('btrfs: invalid storage size: 0B');
    // Enabling quotas and setting a qgroup limit take CAP_SYS_ADMIN of the host, not of a user namespace.
    if (size !== null && isRootless()) throw new DriverError('btrfs: a layer size (size=) is a qgroup limit, which needs root');
    if (size !== null && size < this.minSpace) {
      throw new DriverError(`btrfs: storage size cannot be less than ${goHumanSize(this.minSpace, 4)}`);
    }
    return size;
  }

  /** Cap what the subvolume at dir references (its own blocks and those shared with its parent). */
  private async limit(dir: string, bytes: number): Promise<void> {
    if (!this.quotaEnabled) {
      // Idempotent: enabling quotas that are already on changes nothing.
      await runTool('btrfs', ['quota', 'enable', this.home]);
      this.quotaEnabled = true;
    }
    await runTool('btrfs', ['qgroup', 'limit', String(bytes), dir]);
  }

  async status(): Promise<[string, string][]> {
    const rows: [string, string][] = [['Backing Filesystem', backingFsName(this.home)]];
    const { build, library } = await versions();
    if (build !== null) rows.push(['Build Version', build]);
    if (library !== null) rows.push(['Library Version', library]);
    return rows;
  }

  protected async deleteTree(path: string): Promise<void> {
    if (await pathExists(path)) await deleteSubvolumeTree(path);
  }

  /** `btrfs filesystem du`: the subvolume's and each file's exclusive bytes (extents nothing else references). */
  async blockUsage(id: string, files: string[]): Promise<BlockUsage> {
    const dir = this.dir(id);
    // Delayed allocation: a file's extents exist once it is written back.
    await runTool('sync', ['-f', dir]);
    const exclusive = async (args: string[]) => {
      const out = new Map<string, number>();
      for (const line of (await runTool('btrfs', ['filesystem', 'du', '--raw', ...args])).split('\n').slice(1)) {
        const m = /^\s*(\d+)\s+(\d+)\s+\S+\s+(.*)$/.exec(line);
        if (m) out.set(m[3], Number(m[2]));
      }
      return out;
    };
    const layer = (await exclusive(['-s', dir])).get(dir) ?? 0;
    return { layer, files: files.length ? await exclusive(files) : new Map(), source: 'btrfs filesystem du: exclusive extents' };
  }

  protected override forget(id: string): Promise<void> {
    return rm(join(this.quotas, id), { force: true }).then(() => rm(join(this.quotas, `${id}.tmp`), { force: true }));
  }
}

/**
 * Delete the subvolume at path and every subvolume nested in it (a container may have made
 * some), deepest first: btrfs refuses to delete a subvolume that still holds another.
 */
async function deleteSubvolumeTree(path: string): Promise<void> {
  const nested: string[] = [];
  await findNested(path, nested);
  for (const sub of nested.reverse()) await runTool('btrfs', ['subvolume', 'delete', sub]);
  try {
    await runTool('btrfs', ['subvolume', 'delete', path]);
  } catch (err) {
    // Not a subvolume after all (a half-made layer): an ordinary tree goes the ordinary way.
    if (!(await isSubvolume(path))) await rm(path, { recursive: true, force: true });
    else throw err;
  }
}

async function findNested(dir: string, out: string[]): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const p = join(dir, e.name);
    if (await isSubvolume(p)) out.push(p);
    await findNested(p, out);
  }
}

async function isSubvolume(path: string): Promise<boolean> {
  try {
    const st = await lstat(path, { bigint: true });
    return st.isDirectory() && st.ino === SUBVOLUME_ROOT_INO;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Docker prints the BTRFS_BUILD_VERSION and BTRFS_LIB_VERSION it was compiled with; the same
 * header ships with libbtrfs-dev, so read it there. Without it, the build version comes from
 * the installed `btrfs --version` and the library version is unknown.
 */
async function versions(): Promise<{ build: string | null; library: string | null }> {
  let header = '';
  try {
    header = await readFile(VERSION_HEADER, 'utf8');
  } catch {
    // libbtrfs-dev is not installed
  }
  const major = define(header, 'BTRFS_LIB_MAJOR');
  const minor = define(header, 'BTRFS_LIB_MINOR');
  const patch = define(header, 'BTRFS_LIB_PATCHLEVEL');
  const library =
    major !== null && minor !== null && patch !== null ? String(Number(major) * 10000 + Number(minor) * 100 + Number(patch)) : null;
  const built = /^#define\s+BTRFS_BUILD_VERSION\s+"([^"]*)"/m.exec(header);
  if (built) return { build: built[1], library };
  try {
    const m = /v(\d+(?:\.\d+)*)/.exec(await runTool('btrfs', ['--version']));
    return { build: m ? `Btrfs v${m[1]}` : null, library };
  } catch {
    return { build: null, library };
  }
}

function define(header: string, name: string): string | null {
  const m = new RegExp(`^#define\\s+${name}\\s+(\\d+)\\s*$`, 'm').exec(header);
  return m ? m[1] : null;
}

