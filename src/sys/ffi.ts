// koffi (FFI into glibc) and libc, loaded at the first call that needs them rather than when a
// module that declares such calls is imported: loading koffi's addon and libc costs about 15 ms
// of CPU, which the commands that only read the store (images, ps, inspect) never need.
import { createRequire } from 'node:module';
import type * as KoffiModule from 'koffi';

export type Koffi = typeof KoffiModule;
export type LibraryHandle = KoffiModule.LibraryHandle;

declare const STRATA_BUNDLE: boolean | undefined;

let loaded: Koffi | undefined;
let libc: LibraryHandle | undefined;

export function koffi(): Koffi {
  // The CLI bundle (scripts/bundle.mjs defines STRATA_BUNDLE) finds koffi from where it lies.
  const from = typeof STRATA_BUNDLE === 'boolean' ? __filename : import.meta.url;
  return (loaded ??= createRequire(from)('koffi') as Koffi);
}

/**
 * Declarations against libc (functions, structs), made once at the first call of the function
 * returned, so that importing a module costs nothing until one of its calls runs.
 */
export function libcDeclarations<T>(declare: (lib: LibraryHandle, k: Koffi) => T): () => T {
  let made: T | undefined;
  return () => (made ??= declare((libc ??= koffi().load('libc.so.6')), koffi()));
}
