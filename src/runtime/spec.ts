// The OCI runtime spec (config.json) of a container, built the way Docker builds it: the
// process from the image config and the flags, Docker's default namespaces, capabilities,
// mounts, masked and read-only paths, and the container's own hostname/hosts/resolv.conf
// bind-mounted over the init layer's placeholders. Pure: what it returns depends only on
// what it is given, so tests compare it field by field with `docker inspect`/runc's view.
import type { ContainerConfig } from '../image/types.js';
import { InvalidInputError } from '../errors.js';
import type { ExecUser } from './user.js';

/** Docker's default PATH when the image sets none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Docker's default capability set (moby oci/caps). */
export const DEFAULT_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

/** Kernel interfaces Docker hides from a container (bind-mounted over with /dev/null or an empty tmpfs). */
export const MASKED_PATHS = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
];

/** Kernel interfaces Docker leaves visible but read-only. */
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export interface ProcessOptions {
  /** Arguments after the image name (`run IMAGE CMD…`); empty keeps the image's Cmd. */
  cmd?: string[];
  /** `--entrypoint`: '' clears the image's entrypoint; any value also drops the image's Cmd. */
  entrypoint?: string;
  /** `-e K=V` / `-e K` already expanded, in order. */
  env?: string[];
  /** `-w` */
  workdir?: string;
  /** `-u`; defaults to the image's User. */
  user?: string;
  hostname: string;
  tty?: boolean;
}

export interface ResolvedProcess {
  args: string[];
  /** Docker's Config.Entrypoint and Config.Cmd of the container, apart: `args` is the two joined. */
  entrypoint: string[];
  cmd: string[];
  env: string[];
  cwd: string;
  user: string;
}

function envKey(e: string): string {
  const i = e.indexOf('=');
  return i < 0 ? e : e.slice(0, i);
}

/** Later entries replace earlier ones with the same key, in place (Docker's ReplaceOrAppendEnvValues). */
export function mergeEnv(base: string[], overrides: string[]): string[] {
  const out = [...base];
  const at = new Map(out.map((e, i) => [envKey(e), i]));
  for (const e of overrides) {
    const i = at.get(envKey(e));
    if (i === undefined) {
      at.set(envKey(e), out.length);
      out.push(e);
    } else out[i] = e;
  }
  return out;
}

/** The process a container runs: Docker's rules for Entrypoint, Cmd, Env, WorkingDir and User. */
export function resolveProcess(image: ContainerConfig | undefined, opts: ProcessOptions): ResolvedProcess {
  const cfg = image ?? {};
  const entrypoint = opts.entrypoint !== undefined ? (opts.entrypoint === '' ? [] : [opts.entrypoint]) : (cfg.Entrypoint ?? []);
  const cmd = opts.cmd && opts.cmd.length > 0 ? opts.cmd : opts.entrypoint !== undefined ? [] : (cfg.Cmd ?? []);
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw new InvalidInputError('No command specified');
  const imageEnv = mergeEnv(cfg.Env ?? [], opts.env ?? []);
  const defaults = [
    ...(imageEnv.some((e) => envKey(e) === 'PATH') ? [] : [`PATH=${DEFAULT_PATH}`]),
    `HOSTNAME=${opts.hostname}`,
    ...(opts.tty ? ['TERM=xterm'] : []),
  ];
  const cwd = opts.workdir || cfg.WorkingDir || '/';
  if (!cwd.startsWith('/')) throw new InvalidInputError(`the working directory '${cwd}' is invalid, it needs to be an absolute path`);
  return { args, entrypoint, cmd, env: mergeEnv(defaults, imageEnv), cwd, user: opts.user ?? cfg.User ?? '' };
}

export type NetworkMode = { kind: 'none' } | { kind: 'host' } | { kind: 'netns'; path: string };

export interface BindMount {
  source: string;
  destination: string;
  readOnly: boolean;
}

export interface SpecInput {
  /** The merged root of the container (its read-write layer mounted). */
  rootfs: string;
  process: Omit<ResolvedProcess, 'entrypoint' | 'cmd'>;
  user: ExecUser;
  hostname: string;
  tty: boolean;
  readOnly: boolean;
  network: NetworkMode;
  /** containers/<id>/{hostname,hosts,resolv.conf} on the host. */
  files: { hostname: string; hosts: string; resolvConf: string };
  binds: BindMount[];
  /** `--init`: the host's init binary, mounted at /sbin/docker-init and run as PID 1. */
  init?: string;
  /** cgroup path (cgroupfs layout), e.g. /strata/<id>. */
  cgroupsPath: string;
  /**
   * strata runs rootless (as root of a user namespace): the container gets no cgroup of its
   * own (and so no device cgroup), since only real root may make one here; runc, which finds
   * itself in a user namespace, then leaves it in the user's cgroup, as `runc spec --rootless`.
   */
  rootless?: boolean;
  /** 64 MiB unless given. */
  shmSize?: number;
  /** cgroup limits beside the device rules (resources.ts: ociResources). */
  resources?: Record<string, unknown>;
}

/** One OCI mount; options as runc expects them. */
interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

function bind(source: string, destination: string, readOnly: boolean): OciMount {
  return { destination, type: 'bind', source, options: ['rbind', 'rprivate', ...(readOnly ? ['ro'] : [])] };
}

export function buildSpec(input: SpecInput): Record<string, unknown> {
  const spec = fullSpec(input);
  if (input.rootless) {
    const linux = spec.linux as Record<string, unknown>;
    // Limits would need a cgroup of the container's own: refused rather than dropped.
    const limits = Object.keys((linux.resources ?? {}) as object).filter((k) => k !== 'devices');
    if (limits.length > 0) {
      throw new InvalidInputError(`resource limits (${limits.join(', ')}) need a cgroup of the container's own, which only root can make here`);
    }
    delete linux.cgroupsPath;
    delete linux.resources;
  }
  return spec;
}

function fullSpec(input: SpecInput): Record<string, unknown> {
  const args = input.init ? ['/sbin/docker-init', '--', ...input.process.args] : input.process.args;
  const namespaces: { type: string; path?: string }[] = [{ type: 'mount' }, { type: 'pid' }, { type: 'ipc' }, { type: 'uts' }];
  if (input.network.kind === 'none') namespaces.push({ type: 'network' });
  if (input.network.kind === 'netns') namespaces.push({ type: 'network', path: input.network.path });
  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${input.shmSize ?? 64 * 1024 * 1024}`] },
    bind(input.files.resolvConf, '/etc/resolv.conf', input.readOnly),
    bind(input.files.hostname, '/etc/hostname', input.readOnly),
    bind(input.files.hosts, '/etc/hosts', input.readOnly),
    ...input.binds.map((b) => bind(b.source, b.destination, b.readOnly)),
    ...(input.init ? [bind(input.init, '/sbin/docker-init', true)] : []),
  ];
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: input.tty,
      user: { uid: input.user.uid, gid: input.user.gid, ...(input.user.additionalGids.length ? { additionalGids: input.user.additionalGids } : {}) },
      args,
      env: input.process.env,
      cwd: input.process.cwd,
      capabilities: {
        bounding: DEFAULT_CAPS,
        effective: DEFAULT_CAPS,
        permitted: DEFAULT_CAPS,
        inheritable: DEFAULT_CAPS,
      },
      oomScoreAdj: 0,
    },
    root: { path: input.rootfs, readonly: input.readOnly },
    hostname: input.network.kind === 'host' ? undefined : input.hostname,
    mounts,
    linux: {
      namespaces,
      cgroupsPath: input.cgroupsPath,
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
      resources: {
        ...input.resources,
        // Docker's device cgroup: nothing but the standard character devices and ptys.
        devices: [
          { allow: false, access: 'rwm' },
          { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
          { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
          { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
          { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
          { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
          { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' },
          { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },
          { allow: true, type: 'c', major: 136, access: 'rwm' },
          { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
          { allow: false, type: 'c', major: 10, minor: 229, access: 'rwm' },
        ],
      },
    },
  };
}
