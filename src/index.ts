// The library API: `import { Store } from 'strata-store'`. Everything the CLI does goes through here.
export { Store, DEFAULT_ROOT } from './store/store.js';
export type { StoreOptions, ImageSummary, LoadedImage, RemovedImage, CreateOptions, CommitOptions } from './store/store.js';
export type { PullOptions, PullResult, PushOptions, PushResult, ProgressEvent } from './store/transfer.js';
export { login, logout } from './registry/login.js';
export { StrataError, InvalidInputError, NotFoundError, ConflictError, MismatchError, type ErrorCode } from './errors.js';
export { RegistryError } from './registry/client.js';
export { ReferenceError } from './reference/reference.js';
export { UnsafeArchiveError } from './archive/apply.js';
export { LayerArchiveError } from './archive/tar/header.js';
export { DigestMismatchError, SizeMismatchError } from './image/digest.js';
export { setLogLevel, logLevels, type LogLevel } from './log.js';
export { version } from './version.js';
export type { ContainerRecord } from './store/containers.js';
export type { LayerRecord } from './store/layers.js';
export type { Change, ChangeKind } from './archive/changes.js';
export type { Driver, DriverOptions, CreateOpts } from './drivers/driver.js';
export { driverNames } from './drivers/index.js';
export type { ImageSource, LayerSource, ExportImage, ExportLayer } from './image/source.js';
