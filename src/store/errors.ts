// The store's errors are the library-wide ones (src/errors.ts); this module keeps the store's
// own import path for them.
export { StrataError, NotFoundError, ConflictError, InvalidInputError } from '../errors.js';
