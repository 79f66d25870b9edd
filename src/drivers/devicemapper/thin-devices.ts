// Devices as thin devices of a kernel dm-thin pool (thin-pool.ts): each a thin snapshot of its
// parent's device, active (a table under /dev/mapper) only while mounted. A creation records
// the device id it is about to take in `metadata/<id>.pending` before the kernel makes the
// device, so a kill at any later point leaves a name to free it by.
//
// Like thin-pool.ts, this path was written against the kernel's and Docker's documented
// behaviour on a machine without device-mapper, so it has not run here.
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { backingFsName } from '../../sys/fsprobe.js';
import { mount } from '../../sys/linux.js';
import { listLoops } from '../../sys/loop.js';
import { isCode } from '../../sys/errno.js';
import { writeFileAtomic } from '../../sys/fileio.js';
import { growFilesystem, makeFilesystem, ThinPool, withMounted } from './thin-pool.js';
import {
  BASE,
  checkGrowOnly,
  checkMinFree,
  DEVICESET,
  humanSize,
  readDeviceSet,
  recordNames,
  writeDeviceSet,
  type DeviceContext,
  type DevicePool,
  type DeviceRecord,
  type DeviceSet,
} from './devices.js';
import { DriverError } from '../driver.js';

export class ThinDevices implements DevicePool {
  readonly backend = 'dm-thin';

  constructor(
    private readonly ctx: DeviceContext,
    private readonly thin: ThinPool,
  ) {}

  use<T>(fn: () => Promise<T>): Promise<T> {
    return this.thin.use(fn);
  }

  /** A thin snapshot of the parent's device (or the base), grown when size= asks for more. */
  async create(id: string, parent: string | null, parentRec: DeviceRecord | null, want: number | null): Promise<void> {
    const thin = this.thin;
    await this.checkFreeSpace();
    const origin = parentRec ?? (await this.ensureBase());
    checkGrowOnly(want, origin.size, parent);
    const set = (await readDeviceSet(this.ctx.home)) as DeviceSet;
    // Recorded before the device exists, so a kill at any later point leaves a name for it.
    writeFileAtomic(this.pendingFile(id), JSON.stringify({ device_id: set.next_device_id }), 0o600);
    const deviceId = await thin.createDevice(set.next_device_id, { id: origin.device_id, name: thin.name(parent ?? BASE) });
    if (deviceId !== set.next_device_id) writeFileAtomic(this.pendingFile(id), JSON.stringify({ device_id: deviceId }), 0o600);
    try {
      writeDeviceSet(this.ctx.home, { ...set, next_device_id: (deviceId + 1) & 0xffffff });
      const size = want ?? origin.size;
      if (size > origin.size) await this.grow(id, deviceId, size);
      const txn = await thin.bumpTransactionId();
      this.ctx.writeRecord(id, { device_id: deviceId, size, transaction_id: txn, initialized: true, deleted: false, parent });
      await rm(this.pendingFile(id), { force: true });
    } catch (err) {
      await thin.deactivate(id).catch(() => undefined);
      await thin.deleteDevice(deviceId).catch(() => undefined);
      throw err;
    }
  }

  async destroy(id: string, rec: DeviceRecord): Promise<void> {
    await this.thin.use(async () => {
      await this.thin.deactivate(id);
      await this.thin.deleteDevice(rec.device_id);
    });
    await rm(this.pendingFile(id), { force: true });
  }

  /** The thin device a creation named in its pending record, unless a record claims that id now. */
  async destroyUnrecorded(id: string): Promise<void> {
    const thin = this.thin;
    let pending: number | null = null;
    try {
      pending = Number(JSON.parse(await readFile(this.pendingFile(id), 'utf8')).device_id);
    } catch (err) {
      if (!isCode(err, 'ENOENT')) throw err;
    }
    if (pending !== null && Number.isInteger(pending)) {
      await thin.use(async () => {
        await thin.deactivate(id).catch(() => undefined);
        // Creations are serialised by thin.use, so no live one is half way now; the id is
        // left alone when a record claims it (createDevice moved on to another id).
        if (!(await this.deviceIdClaimed(pending, id))) await thin.deleteDevice(pending);
      });
    }
    await rm(this.pendingFile(id), { force: true });
  }

  async mount(id: string, rec: DeviceRecord, dir: string): Promise<void> {
    const dev = await this.thin.activate(id, rec.device_id, rec.size);
    try {
      mount(dev, dir, this.ctx.fs, 0, this.ctx.mountData);
    } catch (err) {
      await this.thin.deactivate(id);
      throw err;
    }
  }

  /** A thin device's table goes with its mount (deferred while a lazy unmount still holds it). */
  unmounted(id: string, lazy: boolean): Promise<void> {
    return this.thin.deactivate(id, lazy);
  }

  async releaseIfIdle(): Promise<void> {
    await this.thin.removeIfIdle();
  }

  /** Unmount what nobody holds, then remove thin device tables nobody holds open, then an idle pool. */
  async reconcile(sweepMounts: () => Promise<void>): Promise<void> {
    await sweepMounts();
    if ((await this.thin.openCount(this.thin.poolName)) === null) return;
    for (const id of await this.thin.idleDevices()) await this.thin.deactivate(id);
    await this.thin.removeIfIdle();
  }

  deviceName(id: string): string {
    return this.thin.name(id);
  }

  /** Kernel dm-thin does not say which of a thin device's blocks are its own. */
  async blockUsage(): Promise<null> {
    return null;
  }

  /** Docker's info rows for a kernel pool, from `dmsetup status <pool>`. */
  async status(): Promise<[string, string][]> {
    const thin = this.thin;
    const active = (await thin.openCount(thin.poolName)) !== null;
    const s = active ? await thin.space() : null;
    const v = await thin.versions();
    const size = (n: number | undefined) => (n === undefined ? '(pool not active)' : humanSize(n));
    const devices = recordNames(readdirSync(this.ctx.metaDir)).filter((n) => n !== BASE).length;
    const loops = listLoops();
    const loopOf = (file: string) => loops.find((l) => l.backingFile === file)?.device ?? '(not attached)';
    const rows: [string, string][] = [
      ['Pool Name', thin.poolName],
      ['Pool Blocksize', size(s?.blockSize)],
      ['Base Device Size', humanSize(this.ctx.baseSize)],
      ['Backing Filesystem', backingFsName(this.ctx.home)],
      ['Base Device Filesystem', this.ctx.fs],
      ['Pool Backend', thin.loopLvm ? 'kernel dm-thin (loop-lvm: sparse data and metadata files on loop devices)' : `kernel dm-thin (dm.thinpooldev=${thin.poolDev})`],
      ['Devices', String(devices)],
    ];
    if (thin.loopLvm) rows.push(['Data file', loopOf(thin.dataFile)], ['Metadata file', loopOf(thin.metadataFile)]);
    rows.push(
      ['Data Space Used', size(s?.dataUsed)],
      ['Data Space Total', size(s?.dataTotal)],
      ['Data Space Available', size(s?.dataAvailable)],
      ['Metadata Space Used', size(s?.metadataUsed)],
      ['Metadata Space Total', size(s?.metadataTotal)],
      ['Metadata Space Available', size(s?.metadataAvailable)],
      ['Thin Pool Minimum Free Space', s ? humanSize(Math.floor((s.dataTotal * this.ctx.minFreePercent) / 100)) : '(pool not active)'],
      // udev sync needs a running udev; without one libdevmapper makes the /dev/mapper nodes itself.
      ['Udev Sync Supported', String(existsSync('/run/udev/control'))],
      ['Deferred Removal Enabled', 'false'],
      ['Deferred Deletion Enabled', 'false'],
      ['Deferred Deleted Device Count', '0'],
    );
    if (thin.loopLvm) rows.push(['Data loop file', thin.dataFile], ['Metadata loop file', thin.metadataFile]);
    rows.push(['Library Version', v.library], ['Driver Version', v.driver]);
    return rows;
  }

  // ---- devices ----

  /** `<id>.pending` holds the thin device id a creation is about to make (deleted with the layer). */
  private pendingFile(id: string): string {
    return `${this.ctx.metaFile(id)}.pending`;
  }

  /** Whether a device record (or another layer's pending record) names thin device deviceId. */
  private async deviceIdClaimed(deviceId: number, except: string): Promise<boolean> {
    for (const name of await readdir(this.ctx.metaDir)) {
      if (name === DEVICESET || name.endsWith('.tmp') || name.endsWith('-removing') || name === `${except}.pending`) continue;
      try {
        if ((JSON.parse(await readFile(join(this.ctx.metaDir, name), 'utf8')) as { device_id?: unknown }).device_id === deviceId) return true;
      } catch (err) {
        if (!isCode(err, 'ENOENT') && !(err instanceof SyntaxError)) throw err;
      }
    }
    return false;
  }

  /** The base thin device (made and formatted once, grown when dm.basesize grew), as Docker's `metadata/base`. */
  private async ensureBase(): Promise<DeviceRecord> {
    const thin = this.thin;
    const file = this.ctx.metaFile(BASE);
    const set = await readDeviceSet(this.ctx.home);
    const baseSize = this.ctx.baseSize;
    if (set && existsSync(file)) {
      const base = JSON.parse(await readFile(file, 'utf8')) as DeviceRecord;
      if (baseSize <= base.size) return base;
      await this.grow(BASE, base.device_id, baseSize);
      this.ctx.writeRecord(BASE, { ...base, size: baseSize });
      writeDeviceSet(this.ctx.home, { ...set, BaseDeviceSize: baseSize });
      return { ...base, size: baseSize };
    }
    const status = await thin.status();
    if (!thin.loopLvm && (status.usedDataBlocks !== 0 || status.transactionId !== 0)) {
      throw new DriverError(`devicemapper: will not take over thin pool ${thin.poolName}: it already has used data blocks or a transaction id`);
    }
    const deviceId = await thin.createDevice(set?.next_device_id ?? 1, null);
    try {
      const dev = await thin.activate(BASE, deviceId, baseSize);
      try {
        await makeFilesystem(dev, this.ctx.fs);
        // Docker keeps layer contents in rootfs/ of each device.
        await withMounted(dev, this.ctx.mnt(`${BASE}.tmp`), this.ctx.fs, this.ctx.mountData, (dir) => mkdir(join(dir, 'rootfs'), { mode: 0o755 }));
      } finally {
        await thin.deactivate(BASE);
      }
      const txn = await thin.bumpTransactionId();
      const rec: DeviceRecord = { device_id: deviceId, size: baseSize, transaction_id: txn, initialized: true, deleted: false, parent: null };
      writeDeviceSet(this.ctx.home, { next_device_id: (deviceId + 1) & 0xffffff, BaseDeviceSize: baseSize, BaseDeviceFilesystem: this.ctx.fs });
      this.ctx.writeRecord(BASE, rec);
      return rec;
    } catch (err) {
      await thin.deleteDevice(deviceId).catch(() => undefined);
      throw err;
    }
  }

  /** Give a thin device a bigger table and grow its filesystem to fill it. */
  private async grow(id: string, deviceId: number, size: number): Promise<void> {
    const dev = await this.thin.activate(id, deviceId, size);
    try {
      await this.thin.resize(id, deviceId, size);
      await growFilesystem(dev, join(this.ctx.mntRoot, `.grow-${process.pid}-${Date.now()}`), this.ctx.fs, this.ctx.mountData);
    } finally {
      await this.thin.deactivate(id);
    }
  }

  /** Data and metadata each keep dm.min_free_space free. */
  private async checkFreeSpace(): Promise<void> {
    const s = await this.thin.space();
    checkMinFree(s.dataAvailable, s.dataTotal, this.ctx.minFreePercent, 'data');
    checkMinFree(s.metadataAvailable, s.metadataTotal, this.ctx.minFreePercent, 'metadata');
  }
}
