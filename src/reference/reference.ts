// Image references: the distribution reference grammar plus Docker's normalisation
// (`nginx` → `docker.io/library/nginx`), with Docker's error wording so users see the
// same messages they know from `docker pull`.

import { InvalidInputError } from '../errors.js';

export interface Reference {
  /** Registry host with optional port ("docker.io", "127.0.0.1:5000", "[::1]:5000"); "" when absent. */
  domain: string;
  /** Repository path inside the registry ("library/nginx"). */
  path: string;
  tag?: string;
  /** "algo:hex". */
  digest?: string;
}

export class InvalidReferenceError extends InvalidInputError {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidReferenceError';
  }
}

const INVALID = 'invalid reference format';

export const defaultDomain = 'docker.io';
const legacyDefaultDomain = 'index.docker.io';
const officialRepoPrefix = 'library/';
export const defaultTag = 'latest';
const nameMaxLength = 255;

// Grammar pieces, kept as source strings so they compose into the anchored patterns below.
const alnum = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alnum}(?:${separator}${alnum})*`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domainName = `${domainComponent}(?:\\.${domainComponent})*`;
// Bracketed IPv6 literal only; zones (`%eth0`) and embedded IPv4 are not part of the grammar.
const ipv6 = '\\[[a-fA-F0-9:]+\\]';
const host = `(?:${domainName}|${ipv6})`;
const domainAndPort = `${host}(?::[0-9]+)?`;
const name = `(?:${domainAndPort}/)?${remoteName}`;
const tagPat = '[\\w][\\w.-]{0,127}';
const digestPat = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';

const referenceRe = new RegExp(`^(${name})(?::(${tagPat}))?(?:@(${digestPat}))?$`);
const anchoredNameRe = new RegExp(`^(?:(${domainAndPort})/)?(${remoteName})$`);
const anchoredTagRe = new RegExp(`^${tagPat}$`);
const identifierRe = /^[a-f0-9]{64}$/;

/** Known digest algorithms and the length of their lowercase hex encoding. */
const digestAlgorithms: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/**
 * Checks the digest part of a reference ("algo:hex") as go-digest does, with its wording: the
 * grammar admits sha384 and sha512 as well; what the store can use is validateDigest's (digest.ts).
 */
function checkDigestSyntax(digest: string): void {
  const i = digest.indexOf(':');
  if (i <= 0 || i + 1 === digest.length) throw new InvalidReferenceError('invalid checksum digest format');
  const algo = digest.slice(0, i);
  const hex = digest.slice(i + 1);
  const len = digestAlgorithms[algo];
  if (len === undefined) {
    if (!/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*$/.test(algo)) throw new InvalidReferenceError('invalid checksum digest format');
    throw new InvalidReferenceError(`unsupported digest algorithm: ${algo}`);
  }
  if (hex.length !== len) throw new InvalidReferenceError('invalid checksum digest length');
  if (!/^[a-f0-9]+$/.test(hex)) throw new InvalidReferenceError('invalid checksum digest format');
}

/** Parses a reference exactly as written: no default domain, no default tag. */
export function parseReference(s: string): Reference {
  const m = referenceRe.exec(s);
  if (!m) {
    if (s === '') throw new InvalidReferenceError(`${INVALID}: repository name must have at least one component`);
    if (referenceRe.test(s.toLowerCase())) throw new InvalidReferenceError(`${INVALID}: repository name must be lowercase`);
    throw new InvalidReferenceError(INVALID);
  }
  const fullName = m[1];
  if (fullName.length > nameMaxLength) {
    throw new InvalidReferenceError(`${INVALID}: repository name must not be more than ${nameMaxLength} characters`);
  }
  const nm = anchoredNameRe.exec(fullName);
  if (!nm) throw new InvalidReferenceError(INVALID);
  const ref: Reference = { domain: nm[1] ?? '', path: nm[2] };
  if (m[2] !== undefined) ref.tag = m[2];
  if (m[3] !== undefined) {
    try {
      checkDigestSyntax(m[3]);
    } catch (err) {
      throw new InvalidReferenceError(`${INVALID}: ${(err as Error).message}`);
    }
    ref.digest = m[3];
  }
  return ref;
}

/** Splits a name the way Docker does: the first component is a registry only if it looks like a host. */
function splitDockerDomain(s: string): { domain: string; remainder: string } {
  const i = s.indexOf('/');
  let domain: string;
  let remainder: string;
  if (i === -1) {
    domain = defaultDomain;
    remainder = s;
  } else {
    const first = s.slice(0, i);
    const looksLikeHost = /[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first;
    if (looksLikeHost) {
      domain = first;
      remainder = s.slice(i + 1);
    } else {
      domain = defaultDomain;
      remainder = s;
    }
  }
  if (domain === legacyDefaultDomain) domain = defaultDomain;
  if (domain === defaultDomain && !remainder.includes('/')) remainder = officialRepoPrefix + remainder;
  return { domain, remainder };
}

/**
 * Parses a reference as the Docker CLI does: `nginx` becomes docker.io/library/nginx, and
 * `index.docker.io` becomes docker.io. No tag is added (see withDefaultTag).
 */
export function parseNormalizedNamed(s: string): Reference {
  if (s === '') throw new InvalidReferenceError(`${INVALID}: repository name must have at least one component`);
  if (identifierRe.test(s)) {
    throw new InvalidReferenceError(`invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`);
  }
  const { domain, remainder } = splitDockerDomain(s);
  // Only the repository part is checked here: a tag may legally contain uppercase.
  const colon = remainder.indexOf(':');
  const at = remainder.indexOf('@');
  let end = remainder.length;
  if (colon !== -1) end = Math.min(end, colon);
  if (at !== -1) end = Math.min(end, at);
  const repoPart = remainder.slice(0, end);
  if (repoPart.toLowerCase() !== repoPart) {
    throw new InvalidReferenceError(`${INVALID}: repository name (${repoPart}) must be lowercase`);
  }
  const ref = parseReference(`${domain}/${remainder}`);
  if (ref.domain === '') throw new InvalidReferenceError(INVALID);
  return ref;
}

/** Adds `:latest` to a reference that has neither tag nor digest. */
export function withDefaultTag(ref: Reference): Reference {
  if (ref.tag !== undefined || ref.digest !== undefined) return { ...ref };
  return { ...ref, tag: defaultTag };
}

/** Returns a copy with the given tag, checking it against the tag grammar. */
export function withTag(ref: Reference, tag: string): Reference {
  if (!anchoredTagRe.test(tag)) throw new InvalidReferenceError(`invalid tag format: ${tag}`);
  return { ...ref, tag };
}

/** Returns a copy with the given digest, checking it. */
export function withDigest(ref: Reference, digest: string): Reference {
  checkDigestSyntax(digest);
  return { ...ref, digest };
}

/** "nginx" → "docker.io/library/nginx:latest": the one spelling image names are kept in. */
export function normalizeName(s: string): string {
  return referenceString(withDefaultTag(parseNormalizedNamed(s)));
}

/** "domain/path" (the repository name). */
export function repositoryName(ref: Reference): string {
  return ref.domain === '' ? ref.path : `${ref.domain}/${ref.path}`;
}

/** The full canonical string: domain/path[:tag][@digest]. */
export function referenceString(ref: Reference): string {
  let s = repositoryName(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** The short name `docker images` prints: docker.io and library/ dropped. */
export function familiarName(ref: Reference): string {
  if (ref.domain !== defaultDomain) return repositoryName(ref);
  const rest = ref.path.startsWith(officialRepoPrefix) ? ref.path.slice(officialRepoPrefix.length) : '';
  if (rest !== '' && !rest.includes('/')) return rest;
  return ref.path;
}

/** familiarName plus tag and digest: `nginx:latest`. */
export function familiarString(ref: Reference): string {
  let s = familiarName(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** The registry host a client connects to: Docker Hub's API lives on registry-1.docker.io. */
export function registryHost(ref: Reference): string {
  return ref.domain === defaultDomain ? 'registry-1.docker.io' : ref.domain;
}
