// A multi-host test bed on one machine: "hosts" are network namespaces on a test bridge this helper makes
// (a private /24 per bed, names `flt-<random>` unique per test), each with its own underlay address and a
// default route through an "outside" namespace that stands for the Internet (an address in 198.18.x.0/24,
// outside every underlay). The root namespace holds the bridge's address: a management authority or test
// client there reaches every host over the underlay. A node manager runs inside a host with `nsenter --net`
// (its network namespace only: namespaces it names with `ip netns add` stay visible to the whole machine,
// also after a kill -9 and a restart). destroy() removes every namespace, link and process it made, also
// after a failed test. Tests that use it skip, saying why, when not root or when `ip netns` is unavailable.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cliArgs } from './cli.js';

const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p)) ?? 'ip';
const NSENTER = ['/usr/bin/nsenter', '/usr/sbin/nsenter', '/bin/nsenter'].find((p) => existsSync(p)) ?? 'nsenter';

function ip(args: readonly string[], timeout = 10_000): string {
  return execFileSync(IP, [...args], { encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Whether this machine can make test beds, and if not why. */
export function netnsSupport(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: `network namespaces need Linux, this is ${process.platform}` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'making network namespaces needs root' };
  if (!existsSync(NSENTER)) return { ok: false, reason: 'nsenter is missing (util-linux)' };
  try {
    ip(['netns', 'list']);
  } catch (err) {
    return { ok: false, reason: `ip netns is unavailable: ${(err as Error).message}` };
  }
  return { ok: true };
}

/** One host of the bed. */
export interface NetnsHost {
  /** Its network namespace. */
  readonly netns: string;
  /** Its address on the underlay (its eth0). */
  readonly address: string;
  /** Runs a program in the host's network namespace; resolves with its standard output. */
  exec(argv: readonly string[], timeoutMs?: number): string;
  /** Starts a long-running program in the host's network namespace (killed by the bed's destroy()). */
  spawn(argv: readonly string[]): ChildProcess;
}

/** A test bed. */
export interface TestBed {
  /** The bed's name (`flt-<random>`): prefix of everything it made. */
  readonly name: string;
  /** The underlay network (a /24) and the root namespace's address on it. */
  readonly underlay: string;
  readonly rootAddress: string;
  readonly hosts: readonly NetnsHost[];
  /** The "Internet": a namespace with an address outside every underlay, the hosts' default gateway. */
  readonly outside: NetnsHost & { readonly publicAddress: string };
  /** Starts `fedlab serve nm --config FILE` inside a host; resolves once it logs `listening`. */
  startNodeManager(host: NetnsHost, configFile: string, timeoutMs?: number): Promise<{ child: ChildProcess; output: () => string }>;
  /** Kills every process it started and removes every namespace and link it made. Idempotent. */
  destroy(): Promise<void>;
}

function randomOctet(min: number, max: number): number {
  return min + ((randomBytes(1)[0] as number) % (max - min + 1));
}

/** A /24 of 10.0.0.0/8 that no interface of the machine uses. */
function freeUnderlay(): string {
  const used = ip(['-o', '-4', 'addr', 'show']);
  for (let i = 0; i < 50; i++) {
    const net = `10.${randomOctet(200, 250)}.${randomOctet(1, 250)}`;
    if (!used.includes(` ${net}.`)) return net;
  }
  throw new Error('no free 10.x.y.0/24 for a test bed');
}

/** Makes a bed of `hosts` hosts (h1, h2, ...) and the outside namespace. */
export async function makeTestBed(o: { hosts: number }): Promise<TestBed> {
  const name = `flt-${randomBytes(3).toString('hex')}`;
  const net = freeUnderlay();
  const pub = `198.18.${randomOctet(1, 250)}`;
  const bridge = name;
  const made: { netns: string[]; links: string[]; procs: ChildProcess[] } = { netns: [], links: [], procs: [] };
  let destroyed = false;

  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    for (const p of made.procs) {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGKILL');
        await new Promise((r) => p.once('exit', r));
      }
    }
    for (const ns of made.netns) {
      try {
        ip(['netns', 'del', ns]);
      } catch {
        // Already gone.
      }
    }
    for (const l of made.links) {
      try {
        ip(['link', 'del', l]);
      } catch {
        // Went with its namespace.
      }
    }
  };

  const hostOf = (netns: string, address: string): NetnsHost => ({
    netns,
    address,
    exec: (argv, timeoutMs = 10_000) =>
      execFileSync(IP, ['netns', 'exec', netns, ...argv], { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] }),
    spawn: (argv) => {
      const child = spawn(NSENTER, [`--net=/run/netns/${netns}`, '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
      made.procs.push(child);
      return child;
    },
  });

  const addHost = (short: string, octet: number, extra?: string): NetnsHost => {
    const netns = `${name}-${short}`;
    const outer = `${name.replace('-', '')}${short}`.slice(0, 15);
    ip(['netns', 'add', netns]);
    made.netns.push(netns);
    ip(['link', 'add', outer, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    made.links.push(outer);
    ip(['link', 'set', outer, 'master', bridge, 'up']);
    ip(['-n', netns, 'link', 'set', 'lo', 'up']);
    ip(['-n', netns, 'addr', 'add', `${net}.${octet}/24`, 'dev', 'eth0']);
    if (extra) ip(['-n', netns, 'addr', 'add', extra, 'dev', 'eth0']);
    ip(['-n', netns, 'link', 'set', 'eth0', 'up']);
    return hostOf(netns, `${net}.${octet}`);
  };

  try {
    ip(['link', 'add', bridge, 'type', 'bridge']);
    made.links.push(bridge);
    // Bridged frames of the bed skip the root namespace's own iptables/nftables, whatever they hold.
    try {
      ip(['link', 'set', bridge, 'type', 'bridge', 'nf_call_iptables', '0', 'nf_call_ip6tables', '0', 'nf_call_arptables', '0']);
    } catch {
      // Older kernels: no per-bridge switch.
    }
    ip(['addr', 'add', `${net}.1/24`, 'dev', bridge]);
    ip(['link', 'set', bridge, 'up']);
    const outside = addHost('out', 254, `${pub}.1/24`);
    const hosts: NetnsHost[] = [];
    for (let i = 1; i <= o.hosts; i++) {
      const h = addHost(`h${i}`, 1 + i);
      ip(['-n', h.netns, 'route', 'add', 'default', 'via', outside.address]);
      hosts.push(h);
    }
    return {
      name,
      underlay: `${net}.0/24`,
      rootAddress: `${net}.1`,
      hosts,
      outside: { ...outside, publicAddress: `${pub}.1` },
      startNodeManager: (host, configFile, timeoutMs = 90_000) => startNm(host, configFile, timeoutMs),
      destroy,
    };
  } catch (err) {
    await destroy();
    throw err;
  }

  function startNm(host: NetnsHost, configFile: string, timeoutMs: number): Promise<{ child: ChildProcess; output: () => string }> {
    const child = host.spawn([process.execPath, ...cliArgs(), 'serve', 'nm', '--config', configFile]);
    let out = '';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node manager in ${host.netns} was not ready in time:\n${out}`)), timeoutMs);
      child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (/"msg":"listening"/.test(out)) {
          clearTimeout(timer);
          resolve({ child, output: () => out });
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`node manager in ${host.netns} exited (${code ?? signal}) before it was ready:\n${out}`));
      });
    });
  }
}
