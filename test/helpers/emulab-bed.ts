// An emulab site whose node managers run on the hosts of a netns test bed (test/helpers/netns-hosts.ts): the MA in
// the root namespace listens on every address, each node is enrolled the way an owner enrols one (ma-harness's
// enrolNode, not started), then its config is pointed at its host — gRPC on the host's underlay address, the MA at
// the bed's root address, the network section with the host's underlay address and its own bridge, sliver subnet,
// port range and id ranges — and `fedlab serve nm` starts inside the host. Helpers run programs inside slivers'
// namespaces, measure TCP throughput between two of them, and list what links leave on a host, from outside.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { instanceId } from '../../services/node-manager/index.js';
import { exited } from './cli.js';
import type { MaConfigInput } from '../../cli/kit/role-configs.js';
import { NodeHealth } from '../../services/generated/fedlab/v1/common.js';
import { enrolNode, siteParties, startSite, until, type Site, type SiteParties, type TestNode } from './ma-harness.js';
import { makeTestBed, type NetnsHost, type TestBed } from './netns-hosts.js';

/** A node of the bed: enrolled at the site, its node manager a process inside its host. */
export interface BedNode {
  readonly urn: string;
  readonly host: NetnsHost;
  readonly instance: string;
  readonly enrolled: TestNode;
  child: ChildProcess | undefined;
  /** Starts (again) its node manager inside its host. */
  start(): Promise<void>;
  /** kill -9 of its node manager (slivers keep running). */
  kill9(): Promise<void>;
  /** The named network namespace of a sliver of this node (by its URN). */
  netnsOf(sliverUrn: string): string;
}

/** An emulab site on a test bed. */
export interface EmulabBed {
  readonly tb: TestBed;
  readonly site: Site;
  readonly nodes: readonly BedNode[];
  readonly chain: string[];
  destroy(): Promise<void>;
}

/** Makes a bed of `hosts` hosts and an emulab site with one node per entry of `placement` (the host index of each). */
export async function makeEmulabBed(o: {
  hosts: number;
  placement: readonly number[];
  domain?: string;
  /** Heartbeat interval of the site and its nodes (200 ms unless given; a node is DOWN after three missed). */
  heartbeatMs?: number;
  /** Deadline of the site's calls to its node managers (8 s unless given). */
  nodeCallMs?: number;
  /** A bed another site already uses (its hosts are shared; this site's destroy() leaves the bed to its maker). */
  tb?: TestBed;
  /** The site's parties (e.g. peered with another site's); a new domain's unless given. */
  parties?: SiteParties;
  /** Extra MA config (merged over the bed's, section by section). */
  config?: Partial<MaConfigInput>;
  /** Run the MA as `fedlab serve ma` (a child process: kill -9 and restart, see Site). */
  child?: boolean;
  /** Prefix of the node names (`e` unless given: e1, e2, ...). */
  nodePrefix?: string;
  /** The site's style (emulab unless given; a planetlab site's nodes take only stitched links). */
  style?: 'emulab' | 'planetlab';
}): Promise<EmulabBed> {
  const heartbeatMs = o.heartbeatMs ?? 200;
  const ownBed = o.tb === undefined;
  const tb = o.tb ?? (await makeTestBed({ hosts: o.hosts }));
  const nodes: BedNode[] = [];
  let site: Site | undefined;
  const destroy = async (): Promise<void> => {
    for (const n of nodes) {
      if (n.child && n.child.exitCode === null && n.child.signalCode === null) {
        n.child.kill('SIGTERM');
        await exited(n.child);
      }
    }
    for (const n of nodes) await n.enrolled.destroy().catch(() => undefined);
    // Sliver namespaces are the machine's (named in /run/netns): they go with the bed.
    for (const n of nodes) for (const ns of sliverNamespaces(n.instance)) ipQuiet(['netns', 'del', ns]);
    await site?.destroy();
    if (ownBed) await tb.destroy();
  };
  try {
    site = await startSite({
      style: o.style ?? 'emulab',
      parties: o.parties ?? (await siteParties(o.domain ?? 'emu.test')),
      // A child MA listens on every address at the port it was given; an in-process one on any port.
      ...(o.child ? { child: true, listenHost: '0.0.0.0' } : {}),
      config: {
        ...(o.child ? {} : { listen: { host: '0.0.0.0', port: 0 } }),
        heartbeat: { interval_ms: heartbeatMs, flush_interval_ms: 100 },
        node_calls: { deadline_ms: o.nodeCallMs ?? 8000 },
        ...o.config,
      },
    });
    const maPort = Number(site.address.split(':').pop());
    for (const [k, hostIndex] of o.placement.entries()) {
      const host = tb.hosts[hostIndex] as NetnsHost;
      const enrolled = await enrolNode(site, { name: `${o.nodePrefix ?? 'e'}${k + 1}`, driver: 'container', noStart: true, heartbeatMs });
      const configFile = join(dirname(enrolled.dataDir), 'nm.json');
      const port = Number(enrolled.endpoint.split(':').pop());
      const config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
      Object.assign(config, {
        listen: { host: host.address, port },
        endpoint: `${host.address}:${port}`,
        log_level: 'info',
        management_authority: { ...(config.management_authority as object), address: `${tb.rootAddress}:${maPort}` },
        container: { uid_base: 1_200_000_000 + Math.floor(Math.random() * 4000) * 65_536 + k * 16 * 65_536, id_ranges: 16 },
        network: {
          bridge: `flbr${k}`,
          sliver_subnet: `10.${90 + k}.0.0/16`,
          port_range: `${21000 + k * 100}-${21000 + k * 100 + 99}`,
          ports_per_sliver: 4,
          underlay_address: host.address,
        },
      });
      writeFileSync(configFile, JSON.stringify(config, null, 2));
      const instance = instanceId(enrolled.dataDir);
      const node: BedNode = {
        urn: enrolled.urn,
        host,
        instance,
        enrolled,
        child: undefined,
        start: async () => {
          node.child = (await tb.startNodeManager(host, configFile)).child;
        },
        kill9: async () => {
          const c = node.child;
          if (!c || c.exitCode !== null || c.signalCode !== null) return;
          c.kill('SIGKILL');
          await exited(c);
        },
        netnsOf: (sliverUrn) => `fl-${instance.replace(/^nm-/, '')}-${sliverUrn.split(':').pop() as string}`,
      };
      nodes.push(node);
    }
    await Promise.all(nodes.map((n) => n.start()));
    const s = site;
    await until(
      async () =>
        (await s.maClient().listNodes({ pageSize: 0, pageToken: '', health: NodeHealth.NODE_HEALTH_UP })).nodes.filter(
          (n) => n.underlayAddress,
        ).length === nodes.length,
      30_000,
      'every node UP with its underlay address',
    );
    const chain = await s.saChain({ ttlS: 30 * 86_400 });
    return { tb, site: s, nodes, chain, destroy };
  } catch (err) {
    await destroy();
    throw err;
  }
}

function ipQuiet(args: readonly string[]): void {
  try {
    execFileSync('ip', [...args], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    // Already gone.
  }
}

/** The named sliver namespaces of a node manager instance that exist now. */
export function sliverNamespaces(instance: string): string[] {
  const prefix = `fl-${instance.replace(/^nm-/, '')}-`;
  return existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(prefix)) : [];
}

/** Runs a program inside a named namespace; resolves with its standard output (rejects on a non-zero exit). */
export function inNetns(ns: string, argv: readonly string[], timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`in ${ns}: ${argv.join(' ')}: exit ${code}: ${err.trim()}`));
    });
  });
}

// Receiver: counts bytes for `seconds` after 300 ms of warm-up, prints kbit/s.
const RECEIVER = `
const net = require('node:net');
const [host, port, seconds] = process.argv.slice(1);
const ms = Number(seconds) * 1000;
const srv = net.createServer((sock) => {
  let t0 = 0, bytes = 0, done = false;
  sock.on('data', (d) => {
    const now = Date.now();
    if (!t0) t0 = now;
    if (now - t0 >= 300) bytes += d.length;
    if (!done && now - t0 >= 300 + ms) {
      done = true;
      console.log(String(Math.round((bytes * 8) / ms)));
      sock.destroy();
      srv.close();
    }
  });
  sock.on('error', () => {});
});
srv.listen(Number(port), host);
`;
// Sender: writes as fast as the link takes it until the receiver hangs up.
const SENDER = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
const chunk = Buffer.alloc(64 * 1024, 7);
const sock = net.connect(Number(port), host, () => {
  const pump = () => { while (sock.write(chunk)) {} };
  sock.on('drain', pump);
  pump();
});
sock.on('error', () => process.exit(0));
sock.on('close', () => process.exit(0));
setTimeout(() => process.exit(0), 30000);
`;

/** TCP throughput (kbit/s) from one namespace to an address in another, measured by the receiver over `seconds`. */
export async function measureKbps(fromNs: string, toNs: string, toAddress: string, seconds = 2, port = 5201): Promise<number> {
  const host = toAddress.split('/')[0] as string;
  const receiving = inNetns(toNs, [process.execPath, '-e', RECEIVER, host, String(port), String(seconds)], 20_000 + seconds * 1000);
  await new Promise((r) => setTimeout(r, 400));
  await inNetns(fromNs, [process.execPath, '-e', SENDER, host, String(port)], 40_000);
  return Number((await receiving).trim());
}

/** Round-trip time (ms, median of `count` pings) from a namespace to an address. */
export async function pingMs(fromNs: string, toAddress: string, count = 20): Promise<number> {
  const out = await inNetns(
    fromNs,
    ['busybox', 'ping', '-c', String(count), '-i', '0.05', '-W', '2', toAddress.split('/')[0] as string],
    30_000,
  );
  const times = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? Number.NaN;
}

/** What links leave on a host, listed from outside: link devices (bridges, VXLAN, ports) and their qdiscs. */
export function linkLeftovers(host: NetnsHost): string[] {
  const links = JSON.parse(host.exec(['ip', '-j', '-d', 'link', 'show'])) as {
    ifname: string;
    ifalias?: string;
    linkinfo?: { info_kind?: string };
  }[];
  const out: string[] = [];
  for (const l of links) {
    if (l.ifalias?.startsWith('fedlab-link') || /^fl[klx][0-9a-f]{12}$/.test(l.ifname)) out.push(`device ${l.ifname}`);
    else if (l.linkinfo?.info_kind === 'vxlan') out.push(`vxlan ${l.ifname}`);
  }
  const qdiscs = JSON.parse(host.exec(['tc', '-j', 'qdisc', 'show'])) as { kind: string; dev: string }[];
  for (const q of qdiscs) if (['tbf', 'htb', 'netem'].includes(q.kind)) out.push(`qdisc ${q.kind} on ${q.dev}`);
  return out;
}
