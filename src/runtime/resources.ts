// cgroup limits of a container (`-m`, `--memory-swap`, `--cpus`, `--cpu-shares`, `--pids-limit`,
// `--cpuset-cpus`): read from the flags with docker's flag errors, checked as docker's daemon
// checks them at create (its messages), checked against what this host's cgroups can enforce
// (v1 or v2; a limit the host cannot apply is refused, not dropped; without root, where a
// container gets no cgroup of its own, every limit is refused), and turned into the
// `linux.resources` runc applies. Docker's HostConfig keeps them in the same units as here.
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseSizeOption } from '../drivers/common/size-option.js';
import { InvalidInputError } from '../errors.js';
import { isRootless } from '../sys/rootless.js';

/** Docker's HostConfig fields for these flags; 0 (or "" / null) means no limit. */
export interface Resources {
  /** Bytes. */
  memory: number;
  /** Memory plus swap, bytes; -1 is unlimited swap. Twice `memory` when only that is given, as docker. */
  memorySwap: number;
  /** CPUs × 10⁹. */
  nanoCpus: number;
  cpuShares: number;
  /** null: unlimited (docker shows 0 and -1 as null). */
  pidsLimit: number | null;
  /** "0-1,3" */
  cpusetCpus: string;
}

export const NO_LIMITS: Resources = { memory: 0, memorySwap: 0, nanoCpus: 0, cpuShares: 0, pidsLimit: null, cpusetCpus: '' };

/** The flags as the CLI takes them, still text. */
export interface ResourceFlags {
  memory?: string;
  memorySwap?: string;
  cpus?: string;
  cpuShares?: string;
  pidsLimit?: string;
  cpusetCpus?: string;
}

function flagError(value: string, flag: string, why: string): InvalidInputError {
  return new InvalidInputError(`invalid argument "${value}" for "${flag}" flag: ${why}`);
}

function size(value: string, flag: string): number {
  try {
    return parseSizeOption(value, flag);
  } catch {
    throw flagError(value, flag, `invalid size: '${value}'`);
  }
}

function integer(value: string, flag: string): number {
  if (!/^[+-]?\d+$/.test(value.trim())) throw flagError(value, flag, `strconv.ParseInt: parsing "${value}": invalid syntax`);
  return Number(value);
}

/** The flags' text as numbers, with docker's CLI errors for what does not parse. */
export function parseResourceFlags(f: ResourceFlags): Partial<Resources> {
  const out: Partial<Resources> = {};
  if (f.memory !== undefined) out.memory = size(f.memory, '-m, --memory');
  // "-1" is docker's unlimited swap; anything else is a size.
  if (f.memorySwap !== undefined) out.memorySwap = f.memorySwap.trim() === '-1' ? -1 : size(f.memorySwap, '--memory-swap');
  if (f.cpus !== undefined) {
    const n = Number(f.cpus);
    if (f.cpus.trim() === '' || !Number.isFinite(n)) throw flagError(f.cpus, '--cpus', `failed to parse ${f.cpus} as a rational number`);
    out.nanoCpus = Math.round(n * 1e9);
  }
  if (f.cpuShares !== undefined) out.cpuShares = integer(f.cpuShares, '-c, --cpu-shares');
  if (f.pidsLimit !== undefined) out.pidsLimit = integer(f.pidsLimit, '--pids-limit');
  if (f.cpusetCpus !== undefined) out.cpusetCpus = f.cpusetCpus;
  return out;
}

/** What this host's cgroups can limit. */
export interface HostCgroups {
  version: 1 | 2;
  memory: boolean;
  swap: boolean;
  cpuQuota: boolean;
  cpuShares: boolean;
  pids: boolean;
  cpuset: boolean;
  /** CPUs a container may be given ("0-1"). */
  cpusAvailable: string;
}

/** Read from the cgroup filesystem under `root` (the host's /sys/fs/cgroup). */
export function hostCgroups(root = '/sys/fs/cgroup'): HostCgroups {
  const online = readOr('/sys/devices/system/cpu/online', `0-${availableParallelism() - 1}`);
  if (existsSync(join(root, 'cgroup.controllers'))) {
    const controllers = new Set(readOr(join(root, 'cgroup.controllers'), '').split(/\s+/));
    // Swap accounting shows as memory.swap.max in every non-root cgroup; look in ours.
    const own = /^0::(\/.*)$/m.exec(readOr('/proc/self/cgroup', ''))?.[1] ?? '/';
    const swap = own === '/' ? controllers.has('memory') : existsSync(join(root, own, 'memory.swap.max'));
    return {
      version: 2,
      memory: controllers.has('memory'),
      swap,
      cpuQuota: controllers.has('cpu'),
      cpuShares: controllers.has('cpu'),
      pids: controllers.has('pids'),
      cpuset: controllers.has('cpuset'),
      cpusAvailable: readOr(join(root, 'cpuset.cpus.effective'), online),
    };
  }
  const has = (controller: string, file: string) => existsSync(join(root, controller, file));
  return {
    version: 1,
    memory: has('memory', 'memory.limit_in_bytes'),
    swap: has('memory', 'memory.memsw.limit_in_bytes'),
    cpuQuota: has('cpu', 'cpu.cfs_quota_us'),
    cpuShares: has('cpu', 'cpu.shares'),
    pids: existsSync(join(root, 'pids')),
    cpuset: has('cpuset', 'cpuset.cpus'),
    cpusAvailable: readOr(join(root, 'cpuset', 'cpuset.cpus'), online),
  };
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return fallback;
  }
}

/** "0-2,5" as the set {0,1,2,5}; null when it is not a CPU list. */
export function parseCpuList(list: string): Set<number> | null {
  const out = new Set<number>();
  if (list.trim() === '') return out;
  for (const part of list.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) return null;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi - lo > 4096) return null;
    for (let i = lo; i <= hi; i++) out.add(i);
  }
  return out;
}

const MIN_MEMORY = 6 * 1024 * 1024;

/** The flags that asked for limits in r, as docker names them. */
function limitFlags(r: Resources): string[] {
  const out: string[] = [];
  if (r.memory !== 0) out.push('--memory');
  if (r.memorySwap !== 0) out.push('--memory-swap');
  if (r.nanoCpus !== 0) out.push('--cpus');
  if (r.cpuShares !== 0) out.push('--cpu-shares');
  if (r.pidsLimit !== null) out.push('--pids-limit');
  if (r.cpusetCpus !== '') out.push('--cpuset-cpus');
  return out;
}

/**
 * The limits a container gets: docker's daemon rules (its messages), then what the host can
 * enforce. Unset fields are no limit; `memorySwap` defaults to twice `memory` where swap is
 * accounted, as docker's does. `rootless`: strata runs without root, where runc leaves a
 * container in the user's own cgroup (runtime/spec.ts), so no limit can be applied.
 */
export function checkResources(asked: Partial<Resources>, host: HostCgroups = hostCgroups(), rootless = isRootless()): Resources {
  const r: Resources = { ...NO_LIMITS, ...asked };
  if (r.pidsLimit !== null && r.pidsLimit <= 0) r.pidsLimit = null;
  // Before the swap default below: that one was not asked for.
  const flags = limitFlags(r);
  const cannot = (what: string) => new InvalidInputError(`this host's cgroups (v${host.version}) cannot limit ${what}`);
  if (r.memory < 0) throw new InvalidInputError(`invalid memory limit ${r.memory}`);
  if (r.memory > 0 && r.memory < MIN_MEMORY) throw new InvalidInputError('Minimum memory limit allowed is 6MB');
  if (r.memory > 0 && !host.memory) throw cannot('memory (-m): the memory controller is not mounted');
  if (r.memorySwap !== 0) {
    if (r.memory === 0) throw new InvalidInputError('You should always set the Memory limit when using Memoryswap limit, see usage');
    if (r.memorySwap > 0 && r.memorySwap < r.memory) throw new InvalidInputError('Minimum memoryswap limit should be larger than memory limit, see usage');
    if (r.memorySwap < -1) throw new InvalidInputError(`invalid memory swap limit ${r.memorySwap}`);
    if (!host.swap) throw cannot('swap (--memory-swap): Your kernel does not support swap limit capabilities or the cgroup is not mounted');
  } else if (r.memory > 0 && host.swap) r.memorySwap = r.memory * 2;
  if (r.nanoCpus !== 0) {
    const cpus = availableParallelism();
    if (r.nanoCpus < 1e7 || r.nanoCpus > cpus * 1e9) {
      throw new InvalidInputError(`Range of CPUs is from 0.01 to ${cpus.toFixed(2)}, as there are only ${cpus} CPUs available`);
    }
    if (!host.cpuQuota) throw cannot('CPU time (--cpus): the cpu controller has no CFS quota');
  }
  if (r.cpuShares !== 0) {
    if (r.cpuShares < 2 || r.cpuShares > 262144) throw new InvalidInputError(`invalid --cpu-shares ${r.cpuShares}: the allowed range is 2 to 262144`);
    if (!host.cpuShares) throw cannot('CPU shares (--cpu-shares): the cpu controller is not mounted');
  }
  if (r.pidsLimit !== null && !host.pids) throw cannot('processes (--pids-limit): the pids controller is not mounted');
  if (r.cpusetCpus !== '') {
    const want = parseCpuList(r.cpusetCpus);
    if (!want || want.size === 0) throw new InvalidInputError(`Invalid value ${r.cpusetCpus} for cpuset cpus: invalid format: ${r.cpusetCpus}`);
    if (!host.cpuset) throw cannot('CPUs (--cpuset-cpus): the cpuset controller is not mounted');
    const have = parseCpuList(host.cpusAvailable) ?? new Set<number>();
    if ([...want].some((c) => !have.has(c))) {
      throw new InvalidInputError(`Requested CPUs are not available - requested ${r.cpusetCpus}, available: ${host.cpusAvailable}`);
    }
  }
  if (rootless && flags.length > 0) {
    // cgroup v1 is never delegated to a user; v2 could be, but strata makes no cgroup without root.
    const why = host.version === 1 ? "this host's cgroups are v1, which cannot be delegated to a user" : 'strata without root gives a container no cgroup of its own';
    throw new InvalidInputError(`resource limits (${flags.join(', ')}) cannot be applied without root: ${why}; run the container without them`);
  }
  return r;
}

/** The CFS period docker uses for `--cpus`, in microseconds. */
const CPU_PERIOD = 100_000;

/** runc's `linux.resources` entries for these limits (the device rules are the spec's own). */
export function ociResources(r: Resources): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (r.memory > 0) out.memory = { limit: r.memory, ...(r.memorySwap !== 0 ? { swap: r.memorySwap } : {}) };
  const cpu: Record<string, unknown> = {};
  if (r.cpuShares > 0) cpu.shares = r.cpuShares;
  if (r.nanoCpus > 0) {
    cpu.period = CPU_PERIOD;
    cpu.quota = Math.round((r.nanoCpus * CPU_PERIOD) / 1e9);
  }
  if (r.cpusetCpus !== '') cpu.cpus = r.cpusetCpus;
  if (Object.keys(cpu).length) out.cpu = cpu;
  if (r.pidsLimit !== null) out.pids = { limit: r.pidsLimit };
  return out;
}

/** Docker's HostConfig fields for them (inspect, hostconfig.json). */
export function hostConfigResources(r: Resources = NO_LIMITS): Record<string, unknown> {
  return {
    Memory: r.memory,
    MemorySwap: r.memorySwap,
    NanoCpus: r.nanoCpus,
    CpuShares: r.cpuShares,
    CpuPeriod: 0,
    CpuQuota: 0,
    CpusetCpus: r.cpusetCpus,
    PidsLimit: r.pidsLimit,
  };
}
