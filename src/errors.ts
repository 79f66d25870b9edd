// The one error hierarchy of strata, at the bottom of the import graph so that every module
// (sys, archive, image, registry, store) can throw it. A StrataError is something the caller
// can act on: bad input, a name that is not there, a conflict, a failure of a remote registry.
// Its `code` is stable (callers switch on it, not on the message) and `exitCode` is what the
// CLI exits with. Anything that is not a StrataError is a bug or a failure of the system.

export type ErrorCode =
  | 'invalid' //      bad input: a malformed reference, option, archive or layer
  | 'not-found' //    no such image, container or file
  | 'conflict' //     the name or object is in use
  | 'unsafe' //       a layer archive tries to reach outside its root
  | 'mismatch' //     content does not hash or measure to what its descriptor says
  | 'registry'; //    the registry refused or failed a request

export class StrataError extends Error {
  readonly code: ErrorCode;
  constructor(
    message: string,
    readonly exitCode = 1,
    code: ErrorCode = 'invalid',
  ) {
    super(message);
    this.name = 'StrataError';
    this.code = code;
  }
}

/** Bad input: malformed references, options, archives, manifests. */
export class InvalidInputError extends StrataError {
  constructor(message: string) {
    super(message, 1, 'invalid');
    this.name = 'InvalidInputError';
  }
}

export class NotFoundError extends StrataError {
  constructor(message: string) {
    super(message, 1, 'not-found');
    this.name = 'NotFoundError';
  }
}

export class ConflictError extends StrataError {
  constructor(message: string) {
    super(message, 1, 'conflict');
    this.name = 'ConflictError';
  }
}

/** Content whose digest or size differs from what its descriptor promised. */
export class MismatchError extends StrataError {
  constructor(message: string) {
    super(message, 1, 'mismatch');
    this.name = 'MismatchError';
  }
}
