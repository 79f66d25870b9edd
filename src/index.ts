// The library API: `import { Store } from 'strata-store'`.
export { Store, DEFAULT_ROOT } from './store/store.js';
export type { StoreOptions, ImageSummary, LoadedImage, RemovedImage, CreateOptions, CommitOptions } from './store/store.js';
export { StrataError, NotFoundError, ConflictError } from './store/errors.js';
export type { ContainerRecord } from './store/containers.js';
export type { LayerRecord } from './store/layers.js';
export type { Change, ChangeKind } from './archive/changes.js';
export type { Driver, DriverOptions, CreateOpts } from './drivers/driver.js';
export { driverNames } from './drivers/index.js';
export type { ImageSource, LayerSource, ExportImage, ExportLayer } from './image/source.js';
