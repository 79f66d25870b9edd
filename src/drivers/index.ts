// The storage drivers strata ships. Adding a driver is one register() line here; the
// priority numbers follow Docker's order (btrfs 10, zfs 20, overlay2 30, fuse-overlayfs 40,
// aufs 50, devicemapper 70, vfs 90): lower is tried first.
import { BtrfsDriver, btrfsUsable } from './btrfs/btrfs.js';
import { register } from './select.js';
import { ZfsDriver, zfsUsable } from './zfs/zfs.js';
import { VfsDriver } from './vfs/vfs.js';
import { Overlay2Driver, overlay2Usable } from './overlay2/overlay2.js';
import { FuseOverlayDriver, fuseOverlayUsable } from './fuse-overlayfs/fuseoverlay.js';
import { AufsDriver, aufsUsable } from './aufs/aufs.js';
import { DevmapperDriver, devmapperUsable } from './devicemapper/devicemapper.js';

register('overlay2', Overlay2Driver.open, { priority: 30, usable: overlay2Usable });
register('fuse-overlayfs', FuseOverlayDriver.open, { priority: 40, usable: fuseOverlayUsable });
register('btrfs', BtrfsDriver.open, { priority: 10, usable: btrfsUsable });
register('aufs', AufsDriver.open, { priority: 50, usable: aufsUsable, explicitOnly: true, needsRoot: true });
register('devicemapper', DevmapperDriver.open, { priority: 70, usable: devmapperUsable, explicitOnly: true, needsRoot: true });
register('zfs', ZfsDriver.open, { priority: 20, usable: zfsUsable, needsRoot: true });
register('vfs', VfsDriver.open, { priority: 90, usable: async () => true });

export { chooseDriver, createDriver, driverNames, driversWithData, hasDriverData, register, selectDriver } from './select.js';
export type { ChosenDriver, DriverFactory, DriverTraits } from './select.js';
export { DriverError } from './driver.js';
export { probeCache } from './common/probe-cache.js';
export type { CreateOpts, Driver, DriverOptions } from './driver.js';
