// Platforms in OCI terms (os/architecture/variant): the host's, `--platform` parsing, and picking
// an image from an index. Normalisation follows the rules containerd's platform matcher uses, so
// "aarch64", "arm64" and "arm64/v8" are one platform and "x86_64" is amd64.
import { InvalidInputError } from '../errors.js';
import type { Descriptor, Platform } from './types.js';

export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

const archAliases: Record<string, string> = {
  x86_64: 'amd64',
  'x86-64': 'amd64',
  x64: 'amd64',
  aarch64: 'arm64',
  armhf: 'arm',
  armel: 'arm',
  i386: '386',
  ia32: '386',
  i686: '386',
  mipsel: 'mipsle',
};

/** The canonical form: architecture aliases folded, default variants dropped, lower case. */
export function normalizePlatform(p: PlatformSpec): PlatformSpec {
  const os = p.os.toLowerCase() === 'macos' ? 'darwin' : p.os.toLowerCase();
  const rawArch = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() || undefined;
  let arch = archAliases[rawArch] ?? rawArch;
  if (rawArch === 'armhf' && variant === undefined) variant = 'v7';
  if (rawArch === 'armel' && variant === undefined) variant = 'v6';
  switch (arch) {
    case 'amd64':
      if (variant === 'v1') variant = undefined;
      break;
    case 'arm64':
      // v8 is what every arm64 machine runs; an arm64 image without a variant means v8.
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = undefined;
      break;
    case 'arm':
      if (variant === undefined || variant === '7') variant = 'v7';
      else if (variant === '5' || variant === '6' || variant === '8') variant = 'v' + variant;
      break;
  }
  if (arch === '') arch = rawArch;
  const out: PlatformSpec = { os, architecture: arch };
  if (variant !== undefined) out.variant = variant;
  return out;
}

/** `os/arch[/variant]` as `--platform` takes it. */
export function parsePlatform(s: string): PlatformSpec {
  const parts = s.trim().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => x === '' || !/^[A-Za-z0-9_.-]+$/.test(x))) {
    throw new InvalidInputError(`invalid platform ${JSON.stringify(s)}: expected os/arch[/variant], e.g. linux/arm64/v8`);
  }
  const spec: PlatformSpec = { os: parts[0], architecture: parts[1] };
  if (parts[2] !== undefined) spec.variant = parts[2];
  return spec;
}

export function formatPlatform(p: PlatformSpec): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

/** Normalised, with the variant an arm64 image implies spelled out ("linux/arm64/v8"), as docker's messages print it. */
export function describePlatform(p: PlatformSpec): string {
  const n = normalizePlatform(p);
  return formatPlatform(n.architecture === 'arm64' && n.variant === undefined ? { ...n, variant: 'v8' } : n);
}

/** Docker's refusal of an image whose platform is not the one `--platform` asked for. */
export function platformMismatch(ref: string, wanted: PlatformSpec, actual: PlatformSpec): string {
  return `image with reference ${ref} was found but does not match the specified platform: wanted ${describePlatform(wanted)}, actual: ${describePlatform(actual)}`;
}

/** The platform this process runs on, in OCI terms. */
export function hostPlatform(): PlatformSpec {
  const osMap: Record<string, string> = { win32: 'windows', sunos: 'solaris' };
  const archMap: Record<string, string> = { x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64', ppc64: 'ppc64le' };
  const os = osMap[process.platform] ?? process.platform;
  const architecture = archMap[process.arch] ?? process.arch;
  const spec: PlatformSpec = { os, architecture };
  if (architecture === 'arm') {
    // process.config knows the ARM version node was built for; v7 is the common case.
    const v = (process.config.variables as Record<string, unknown>).arm_version;
    spec.variant = typeof v === 'string' && v !== '' ? 'v' + v : 'v7';
  }
  return normalizePlatform(spec);
}

/** True when an image built for `candidate` is what `wanted` asks for. */
export function platformMatches(wanted: PlatformSpec, candidate: PlatformSpec | Platform): boolean {
  const w = normalizePlatform(wanted);
  const c = normalizePlatform(candidate);
  return w.os === c.os && w.architecture === c.architecture && w.variant === c.variant;
}

/**
 * The descriptor of the index entry for `wanted`. Entries without a platform are skipped when any
 * entry has one (they are attestations or similar); an index of only platform-less entries
 * yields its first entry. Throws naming the platforms on offer when none matches.
 */
export function selectManifest(manifests: Descriptor[], wanted: PlatformSpec, what = 'index'): Descriptor {
  if (manifests.length === 0) throw new InvalidInputError(`${what} lists no manifests`);
  const match = findManifest(manifests, wanted);
  if (match) return match;
  const withPlatform = manifests.filter((m) => m.platform !== undefined);
  const offered = withPlatform.map((m) => formatPlatform(m.platform as Platform)).join(', ');
  throw new InvalidInputError(`no image for platform ${formatPlatform(wanted)} in ${what} (it has: ${offered})`);
}

/** selectManifest's choice without the error: undefined when no entry is for `wanted`. */
export function findManifest(manifests: Descriptor[], wanted: PlatformSpec): Descriptor | undefined {
  const withPlatform = manifests.filter((m) => m.platform !== undefined);
  if (withPlatform.length === 0) return manifests[0];
  return withPlatform.find((m) => platformMatches(wanted, m.platform as Platform));
}
