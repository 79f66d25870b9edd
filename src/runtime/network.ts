// The default network of a container: a network namespace of its own, connected to the host's
// network by pasta (Debian's `passt`), which also publishes `-p` ports on the host. pasta works
// without a bridge, iptables or a daemon, and only by forwarding sockets, so a container never
// touches the host's interfaces, and a published port is an ordinary listening socket of the
// host (127.0.0.1:8080 answers only there). slirp4netns would do the same more slowly, and the
// CNI bridge would need iptables and a daemon-like cleanup of its rules.
import { accessSync, closeSync, constants, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { InvalidInputError, StrataError } from '../errors.js';
import { umount2 } from '../sys/linux.js';
import { runTool } from '../sys/run.js';
import { isRootless } from '../sys/rootless.js';

export interface PortBinding {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  proto: 'tcp' | 'udp';
}

function port(s: string, spec: string): number {
  const n = Number(s);
  if (!/^\d+$/.test(s) || n < 1 || n > 65535) throw new InvalidInputError(`invalid published port ${JSON.stringify(spec)}: ${s} is not a port number`);
  return n;
}

/** `-p [IP:][HOSTPORT:]CTRPORT[/tcp|udp]` as docker takes it; a missing host port is 0 (any free one). */
export function parsePublish(spec: string): PortBinding {
  let rest = spec;
  let proto: 'tcp' | 'udp' = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1);
    if (p !== 'tcp' && p !== 'udp') throw new InvalidInputError(`invalid published port ${JSON.stringify(spec)}: unsupported protocol ${p}`);
    proto = p;
    rest = rest.slice(0, slash);
  }
  const parts = rest.split(':');
  if (parts.length > 3 || parts.some((p, i) => p === '' && i === parts.length - 1)) throw new InvalidInputError(`invalid published port ${JSON.stringify(spec)}`);
  const containerPort = port(parts[parts.length - 1]!, spec);
  const hostPort = parts.length >= 2 && parts[parts.length - 2] !== '' ? port(parts[parts.length - 2]!, spec) : 0;
  const hostIp = parts.length === 3 ? parts[0]! : '0.0.0.0';
  if (hostIp !== '0.0.0.0' && !/^\d{1,3}(\.\d{1,3}){3}$/.test(hostIp)) throw new InvalidInputError(`invalid published port ${JSON.stringify(spec)}: invalid IP address ${hostIp}`);
  return { hostIp, hostPort, containerPort, proto };
}

/** A free port on the host for a binding that did not name one (docker picks from the ephemeral range). */
async function freePort(ip: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, ip, () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
}

/** docker's PORTS column: `127.0.0.1:8080->80/tcp, 0.0.0.0:53->53/udp`. */
export function portsText(bindings: PortBinding[]): string {
  return bindings.map((b) => `${b.hostIp}:${b.hostPort}->${b.containerPort}/${b.proto}`).join(', ');
}

export interface Sandbox {
  /** The network namespace to give the runtime. */
  netns: string;
  /** The bindings with the host ports they got. */
  ports: PortBinding[];
  close(): Promise<void>;
}

function pastaSpec(b: PortBinding): string {
  return `${b.hostIp === '0.0.0.0' ? '' : `${b.hostIp}/`}${b.hostPort}:${b.containerPort}`;
}

/**
 * Undo a sandbox: stop its pasta and remove its namespace file. The monitor does this when the
 * container ends; whoever reaps a container whose monitor died does it from the files alone.
 */
export function closeSandbox(dir: string, name: string): void {
  const netns = join(dir, name);
  const pidFile = join(dir, `${name}.pasta.pid`);
  let pid = 0;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim()) || 0;
  } catch {
    // pasta never got as far as writing it
  }
  // Only a pasta: after a reboot or a long time the pid may be another process's.
  if (pid > 0 && /^pas(ta|st)/.test(readComm(pid))) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  try {
    umount2(netns, 2 /* MNT_DETACH */);
  } catch {
    // not mounted (made half-way, or closed already)
  }
  rmSync(netns, { force: true });
  rmSync(pidFile, { force: true });
}

function readComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * Rootless, pasta opens /dev/net/tun as the user: udev makes it 0666, but a host without udev
 * may leave it root's alone, and pasta's own error ("Failed to open tun socket") says not why.
 */
function requireTun(): void {
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    throw new StrataError(
      'the default network needs /dev/net/tun, which this user may not open (udev makes it 0666; as root: chmod 0666 /dev/net/tun); use --network none or --network host',
      125,
    );
  }
}

/** Make the container's network namespace and connect it through pasta. */
export async function openSandbox(dir: string, name: string, bindings: PortBinding[]): Promise<Sandbox> {
  if (isRootless()) requireTun();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const netns = join(dir, name);
  const pidFile = join(dir, `${name}.pasta.pid`);
  const ports: PortBinding[] = [];
  for (const b of bindings) ports.push(b.hostPort === 0 ? { ...b, hostPort: await freePort(b.hostIp) } : b);
  closeSync(openSync(netns, 'w', 0o600));
  const close = async () => closeSandbox(dir, name);
  try {
    await runTool('unshare', [`--net=${netns}`, 'true'], { who: 'network', timeoutMs: 30_000 });
    const tcp = ports.filter((p) => p.proto === 'tcp').map(pastaSpec);
    const udp = ports.filter((p) => p.proto === 'udp').map(pastaSpec);
    // pasta drops to "nobody" by default, which cannot enter a namespace root made; it stays
    // root here, and it daemonises only once the namespace is configured and ports are bound.
    await runTool(
      'pasta',
      ['--runas', '0', '--config-net', '--netns', netns, '--netns-only', '-q', '-P', pidFile, ...(tcp.length ? tcp.flatMap((t) => ['-t', t]) : ['-t', 'none']), ...(udp.length ? udp.flatMap((u) => ['-u', u]) : ['-u', 'none']), '-T', 'none', '-U', 'none'],
      { who: 'network', timeoutMs: 30_000, noise: /syslog/ },
    );
  } catch (err) {
    await close();
    throw err;
  }
  return { netns, ports, close };
}
