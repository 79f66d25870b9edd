// cgroup limits (issue #12): `-m`, `--memory-swap`, `--cpus`, `--cpu-shares`, `--pids-limit`,
// `--cpuset-cpus` go through runc's spec into the container's own cgroup, read back from inside
// the container; `-m` really holds (a process that outgrows it is OOM-killed, exit 137); inspect's
// HostConfig shows them as docker 20.10 does (values taken from docker on this machine); bad
// values get docker's messages, exit 125 for run, 1 for create, and make nothing.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { checkResources, hostCgroups, type HostCgroups } from '../../src/runtime/resources.js';
import { leftovers, runtimeStore } from './harness.js';

const s = runtimeStore('overlay2', { after });
const { cli } = s;
const host = hostCgroups();

/** The container's own limits, as its cgroup files say them (v1 or v2 layout). */
const READ_LIMITS =
  host.version === 1
    ? 'cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpu/cpu.shares pids/pids.max cpuset/cpuset.cpus'
    : 'cd /sys/fs/cgroup; cat memory.max memory.swap.max cpu.max cpu.weight pids.max cpuset.cpus';

function hostConfig(ref: string): Record<string, unknown> {
  return JSON.parse(cli.ok(['inspect', ref]))[0].HostConfig;
}

const FIELDS = ['Memory', 'MemorySwap', 'NanoCpus', 'CpuShares', 'CpuPeriod', 'CpuQuota', 'CpusetCpus', 'PidsLimit'];
const pick = (h: Record<string, unknown>) => Object.fromEntries(FIELDS.map((f) => [f, h[f]]));

describe('cgroup limits (overlay2)', () => {
  test('every limit reaches the container\'s cgroup, and inspect shows them as docker does', (t) => {
    t.after(() => void cli.run(['rm', '-f', 'lim']));
    const flags = ['-m', '64m', '--memory-swap', '128m', '--cpus', '1.5', '--cpu-shares', '512', '--pids-limit', '50', '--cpuset-cpus', '1'];
    const out = cli.ok(['run', '--name', 'lim', '--network', 'none', ...flags, 'bb', 'sh', '-c', READ_LIMITS]).trim().split('\n');
    if (host.version === 1) assert.deepEqual(out, ['67108864', '134217728', '150000', '100000', '512', '50', '1']);
    // v2: swap.max is the swap alone; runc maps shares 2..262144 onto weight 1..10000.
    else assert.deepEqual(out, ['67108864', '67108864', '150000 100000', String(1 + Math.floor(((512 - 2) * 9999) / 262142)), '50', '1']);
    assert.deepEqual(pick(hostConfig('lim')), {
      Memory: 67108864,
      MemorySwap: 134217728,
      NanoCpus: 1500000000,
      CpuShares: 512,
      CpuPeriod: 0,
      CpuQuota: 0,
      CpusetCpus: '1',
      PidsLimit: 50,
    });
  });

  test("docker's defaults: no limits; -m alone doubles into MemorySwap; --pids-limit 0 and -1 are unlimited", (t) => {
    t.after(() => {
      for (const n of ['d0', 'd1', 'd2', 'd3']) cli.run(['rm', '-f', n]);
    });
    const create = (name: string, ...flags: string[]) => cli.ok(['create', '--name', name, '--network', 'none', ...flags, 'bb', 'true']);
    create('d0');
    assert.deepEqual(pick(hostConfig('d0')), { Memory: 0, MemorySwap: 0, NanoCpus: 0, CpuShares: 0, CpuPeriod: 0, CpuQuota: 0, CpusetCpus: '', PidsLimit: null });
    create('d1', '-m', '64m');
    assert.equal(hostConfig('d1').MemorySwap, host.swap ? 134217728 : 0);
    create('d2', '--pids-limit', '0');
    assert.equal(hostConfig('d2').PidsLimit, null);
    create('d3', '--pids-limit', '-1', '-m', '64m', '--memory-swap', '-1');
    assert.equal(hostConfig('d3').PidsLimit, null);
    assert.equal(hostConfig('d3').MemorySwap, -1);
    // Unlimited swap leaves the memory+swap limit at the kernel's maximum.
    if (host.version === 1) {
      const memsw = cli.ok(['run', '--rm', '--network', 'none', '-m', '64m', '--memory-swap', '-1', 'bb', 'cat', '/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes']);
      assert.ok(Number(memsw) > 2 ** 60, memsw);
    }
  });

  test('-m holds: a process that outgrows it is killed by the OOM killer (exit 137); --pids-limit stops forks', () => {
    const oom = cli.run(['run', '--rm', '--network', 'none', '-m', '16m', '--memory-swap', '16m', 'bb', 'sh', '-c', 'head -c 100000000 /dev/zero | tail']);
    assert.equal(oom.code, 137, oom.stderr);
    // The same without -m finishes (the limit, not the machine, killed it).
    assert.equal(cli.run(['run', '--rm', '--network', 'none', 'bb', 'sh', '-c', 'head -c 100000000 /dev/zero | tail | wc -c']).stdout.trim(), '100000000');
    const forks = cli.run(['run', '--rm', '--network', 'none', '--pids-limit', '5', 'bb', 'sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; wait']);
    assert.notEqual(forks.code, 0);
    assert.match(forks.stderr, /can't fork|Resource temporarily unavailable/);
    assert.deepEqual(leftovers(s.root, s.work), []);
  });

  test("bad values: docker's messages, 125 for run and 1 for create, nothing made", () => {
    const cpus = hostCgroups().cpusAvailable;
    const n = availableParallelism();
    const cases: [string[], string][] = [
      [['-m', 'x'], `invalid argument "x" for "-m, --memory" flag: invalid size: 'x'`],
      [['--cpus', 'abc'], 'invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number'],
      [['--pids-limit', 'x'], 'invalid argument "x" for "--pids-limit" flag: strconv.ParseInt: parsing "x": invalid syntax'],
      [['-m', '1m'], 'Minimum memory limit allowed is 6MB'],
      [['-m', '64m', '--memory-swap', '32m'], 'Minimum memoryswap limit should be larger than memory limit, see usage'],
      [['--memory-swap', '64m'], 'You should always set the Memory limit when using Memoryswap limit, see usage'],
      [['--cpuset-cpus', 'abc'], 'Invalid value abc for cpuset cpus: invalid format: abc'],
      [['--cpuset-cpus', '0-99'], `Requested CPUs are not available - requested 0-99, available: ${cpus}`],
      [['--cpu-shares', '1'], 'invalid --cpu-shares 1: the allowed range is 2 to 262144'],
    ];
    cases.push([['--cpus', String(n + 1)], `Range of CPUs is from 0.01 to ${n.toFixed(2)}, as there are only ${n} CPUs available`]);
    for (const [flags, message] of cases) {
      const run = cli.run(['run', '--rm', '--network', 'none', ...flags, 'bb', 'true']);
      assert.equal(run.code, 125, flags.join(' '));
      assert.equal(run.stderr, `Error: ${message}\n`, flags.join(' '));
      const create = cli.run(['create', '--network', 'none', ...flags, 'bb', 'true']);
      assert.equal(create.code, 1, flags.join(' '));
      assert.equal(create.stderr, `Error: ${message}\n`, flags.join(' '));
    }
    assert.equal(cli.ok(['ps', '-a', '-q']), '');
  });

  test('a limit the host cannot enforce is refused, not dropped (a cgroup v1 tree without swap accounting or pids)', () => {
    // A cgroup tree laid out as a v1 host mounts it, minus memory.memsw.* and the pids hierarchy.
    const root = join(s.work, 'fake-cgroup');
    for (const [dir, file] of [['memory', 'memory.limit_in_bytes'], ['cpu', 'cpu.cfs_quota_us'], ['cpu', 'cpu.shares'], ['cpuset', 'cpuset.cpus']]) {
      mkdirSync(join(root, dir!), { recursive: true });
      writeFileSync(join(root, dir!, file!), file === 'cpuset.cpus' ? '0\n' : '0\n');
    }
    const limited: HostCgroups = hostCgroups(root);
    assert.deepEqual({ ...limited, cpusAvailable: '0' }, { version: 1, memory: true, swap: false, cpuQuota: true, cpuShares: true, pids: false, cpuset: true, cpusAvailable: '0' });
    assert.throws(() => checkResources({ memory: 64 << 20, memorySwap: 128 << 20 }, limited), /^InvalidInputError: this host's cgroups \(v1\) cannot limit swap \(--memory-swap\)/);
    assert.throws(() => checkResources({ pidsLimit: 10 }, limited), /cannot limit processes \(--pids-limit\)/);
    assert.throws(() => checkResources({ cpusetCpus: '1' }, limited), /Requested CPUs are not available - requested 1, available: 0/);
    // -m alone still works there, with no swap limit added.
    assert.equal(checkResources({ memory: 64 << 20 }, limited).memorySwap, 0);
  });
});
