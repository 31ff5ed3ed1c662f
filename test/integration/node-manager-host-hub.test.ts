// Two sites' node managers on one host (as `fedlab up` runs them) holding the two ends of one stitched link: the kernel
// takes a VNI once per UDP port and namespace, so neither end may be a VXLAN device. With network.host_underlays each
// end joins the host-wide hub of the VNI (a bridge, no VXLAN device): the slivers ping each other across it at the
// link's shaping, no VXLAN element is opened, and unwiring both leaves no hub, port or VXLAN device. A link mixing
// ends on this host with far ones is refused. Needs root and `ip`; skipped with the reason otherwise.
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import type { FedlabError } from '../../services/core/errors.js';
import type { SliverInterface } from '../../services/generated/fedlab/v1/common.js';
import { parseCidr } from '../../services/node-manager/network/ipv4.js';
import { TcCommands } from '../../services/node-manager/network/link-shaping.js';
import { LinkWirer } from '../../services/node-manager/network/links.js';
import { NetCommands } from '../../services/node-manager/network/net-command.js';
import { netnsName } from '../../services/node-manager/network/net-names.js';
import type { NetworkPlan } from '../../services/node-manager/network/network-plan.js';

const root = process.getuid?.() === 0;
let ipOk = false;
try {
  execFileSync('ip', ['-V'], { stdio: 'ignore' });
  execFileSync('busybox', ['true'], { stdio: 'ignore' });
  ipOk = true;
} catch {
  ipOk = false;
}
const skipReason = !root ? 'needs root' : !ipOk ? 'needs iproute2 (ip) and busybox (ping)' : '';
if (skipReason) console.log(`node-manager-host-hub: skipped — ${skipReason}`);

const UNDERLAY_A = '10.254.77.1';
const UNDERLAY_B = '10.254.77.2';
const VNI = 7_700_001;
const HOST_HUB_VNI_LINK = 'st0';

const plan = (own: string, other: string): NetworkPlan => ({
  subnet: parseCidr('10.89.0.0/24'),
  gateway: '10.89.0.1',
  bridge: 'flbrhh',
  uplink: 'lo',
  nodeAddress: '192.0.2.10',
  firstPort: 20000,
  lastPort: 20999,
  portsPerSliver: 10,
  capacity: 100,
  underlayAddress: own,
  hostUnderlays: [own, other],
});

const iface = (address: string, mac: string, far: string[]): SliverInterface => ({
  link: HOST_HUB_VNI_LINK,
  name: 'eth1',
  address,
  bandwidthKbps: 50_000,
  delayMs: 0,
  lossPercent: 0,
  wiring: { mac, vni: VNI, remoteUnderlays: far, applied: [] },
});

/** A node manager's one sliver on the link, as its records hold it. */
function party(instance: string, scope: string, own: string, other: string, address: string, mac: string) {
  const name = 'sl1';
  const urn = `urn:fedlab:${instance}.test:sliver:${name}`;
  const wirer0 = (records: ConstructorParameters<typeof LinkWirer>[3]) =>
    new LinkWirer(instance, scope, plan(own, other), records, false, new TcCommands(), new NetCommands());
  const probe = wirer0({ get: () => undefined, list: () => [] });
  const interfaces = probe.check([iface(address, mac, [other])]);
  const record = { name, urn, interfaces };
  const wirer = wirer0({ get: (u) => (u === urn ? record : undefined), list: () => [record] });
  return { name, urn, netns: netnsName(instance, name), wirer };
}

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });
const linkDevices = (): string[] =>
  (JSON.parse(ip('-j', 'link', 'show')) as { ifname: string }[]).map((d) => d.ifname).filter((n) => /^fl[klx]/.test(n));

describe.skipIf(skipReason !== '')("a stitched link's two ends on one host", () => {
  const a = skipReason ? undefined : party('nmhha', 'site-hha', UNDERLAY_A, UNDERLAY_B, '10.201.0.1/24', '02:aa:00:00:00:01');
  const b = skipReason ? undefined : party('nmhhb', 'site-hhb', UNDERLAY_B, UNDERLAY_A, '10.201.0.2/24', '02:aa:00:00:00:02');
  const before = skipReason ? [] : linkDevices();

  afterAll(async () => {
    for (const p of [a, b]) {
      if (!p) continue;
      // Also on failure: the hub goes once neither port is on it.
      await p.wirer.unwire({ name: p.name, netns: p.netns, run: new NetCommands() });
      execFileSync('ip', ['netns', 'del', p.netns], { stdio: 'ignore' });
    }
  });

  it('meet on the host-wide hub of the VNI: ping crosses, no VXLAN device, nothing left after unwiring', async () => {
    const [pa, pb] = [a!, b!];
    for (const p of [pa, pb]) ip('netns', 'add', p.netns);
    const ctx = (p: typeof pa) =>
      ({
        sliver: { name: p.name, urn: p.urn, sliceUrn: 'urn:fedlab:hh.test:slice:s' },
        netns: p.netns,
        lease: {},
        plan: {},
        run: new NetCommands(),
      }) as unknown as Parameters<LinkWirer['wire']>[0];
    await pa.wirer.wire(ctx(pa));
    await pb.wirer.wire(ctx(pb));
    const made = linkDevices().filter((n) => !before.includes(n));
    // One bridge (the hub) and two ports, no VXLAN device.
    expect(made.filter((n) => n.startsWith('flk'))).toHaveLength(1);
    expect(made.filter((n) => n.startsWith('fll'))).toHaveLength(2);
    expect(made.filter((n) => n.startsWith('flx'))).toEqual([]);
    const out = execFileSync('ip', ['netns', 'exec', pa.netns, 'busybox', 'ping', '-c', '2', '-W', '2', '10.201.0.2'], {
      encoding: 'utf8',
    });
    expect(out).toMatch(/2 packets received/);
    expect(ip('-n', pa.netns, 'link', 'show', 'eth1')).toContain('02:aa:00:00:00:01');
    // Shaped at the link's bandwidth, as any link end.
    expect(execFileSync('tc', ['-n', pb.netns, 'qdisc', 'show', 'dev', 'eth1'], { encoding: 'utf8' })).toMatch(/tbf/);

    await pa.wirer.unwire({ name: pa.name, netns: pa.netns, run: new NetCommands() });
    // B's port still holds the hub.
    expect(linkDevices().filter((n) => n.startsWith('flk') && !before.includes(n))).toHaveLength(1);
    await pb.wirer.unwire({ name: pb.name, netns: pb.netns, run: new NetCommands() });
    expect(linkDevices().filter((n) => !before.includes(n))).toEqual([]);
  });

  it('refuses a link mixing ends on this host with far ones, naming the link', () => {
    const w = new LinkWirer(
      'nmhhc',
      'site-hhc',
      plan(UNDERLAY_A, UNDERLAY_B),
      { get: () => undefined, list: () => [] },
      false,
      new TcCommands(),
      new NetCommands(),
    );
    let err: FedlabError | undefined;
    try {
      w.check([iface('10.201.0.1/24', '02:aa:00:00:00:03', [UNDERLAY_B, '10.254.78.9'])]);
    } catch (e) {
      err = e as FedlabError;
    }
    expect(err?.kind).toBe('failed_precondition');
    expect(err?.message).toMatch(/link st0.*network\.host_underlays/);
  });
});
