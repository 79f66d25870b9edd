// Errors a user caused (bad reference, missing image, refused removal): the CLI prints the
// message on one line and exits with `exitCode`; anything else is a bug or a system failure.

export class StrataError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'StrataError';
  }
}

export class NotFoundError extends StrataError {
  constructor(message: string) {
    super(message, 1);
    this.name = 'NotFoundError';
  }
}

export class ConflictError extends StrataError {
  constructor(message: string) {
    super(message, 1);
    this.name = 'ConflictError';
  }
}
