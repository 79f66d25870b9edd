// The archive package's public API: tar codec, compression, safe apply, changes and packing.
export * from './tar/header.js';
export { readTar, type TarEntry } from './tar/reader.js';
export { TarWriter, encodeHeader } from './tar/writer.js';
export * from './compression.js';
export { resolveInRoot, resolveInRootSync } from './rootpath.js';
export { applyLayer, UnsafeArchiveError, type ApplyOptions, type WhiteoutFormat } from './apply.js';
export { changesBetween, type Change, type ChangeKind } from './changes.js';
export { exportChanges, packDirectory, packPath } from './pack.js';
