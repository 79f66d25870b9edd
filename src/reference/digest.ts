// What a content digest is for strata ("sha256:<64 lowercase hex>"), at the bottom of the
// layers because images, the store and the registry all check the digests they are given.

import { InvalidInputError } from '../errors.js';

const SHA256_RE = /^sha256:[0-9a-f]{64}$/;
// The OCI grammar allows other algorithms; we recognise their shape so the error says "unsupported".
const ANY_DIGEST_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export function isDigest(s: string): boolean {
  return SHA256_RE.test(s);
}

/** Throws a one-line error unless `s` is a sha256 digest; returns it for chaining. */
export function validateDigest(s: unknown, what = 'digest'): string {
  if (typeof s !== 'string') throw new InvalidInputError(`invalid ${what}: expected a string, got ${typeof s}`);
  if (SHA256_RE.test(s)) return s;
  if (ANY_DIGEST_RE.test(s) && !s.startsWith('sha256:')) {
    throw new InvalidInputError(`unsupported ${what} algorithm: ${s.slice(0, s.indexOf(':'))} (${s})`);
  }
  throw new InvalidInputError(`invalid ${what}: ${JSON.stringify(s)}`);
}

/** The 64 hex characters of a sha256 digest. */
export function digestHex(digest: string): string {
  return validateDigest(digest).slice('sha256:'.length);
}

/** The 12 characters docker shows of an ID or digest ("sha256:" or any algorithm prefix dropped). */
export function shortId(id: string): string {
  const hex = id.indexOf(':') + 1;
  return id.slice(hex, hex + 12);
}
