// The data plane's VXLAN boundary, tried from outside on a netns test bed of three hosts: an emulab site's two nodes
// (h1, h2) hold a slice's link — each the link's only endpoint on its host, so each end is a VXLAN device inside its
// sliver's namespace — and h3 holds nothing of it (an attacker on the underlay). Each check counts, with an nftables
// counter inside the receiving namespace, packets a sender made by hand:
// - a VXLAN packet forged for the link's VNI, addressed to the sliver's MAC and link address, reaches the sliver
//   from the link's peer host (the control) and never from h3 nor from the bed's root namespace (the MA's host);
// - a sliver cannot send UDP to port 4789 out of its eth0 (masqueraded it would leave from its node's address,
//   which peers trust), while another port passes (the control);
// - a flood entry towards h3 added to the sliver's VXLAN device (what a sliver root with CAP_NET_ADMIN, or a forged
//   plan, could do) carries nothing to h3, while the peer still gets the same broadcast (the control);
// - the slice deleted, no VXLAN filter element is left.
// Needs root and the container driver; skipped with the reason otherwise.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperationalState, type ResourceRequest } from '../../services/generated/fedlab/v1/common.js';
import { inNetns, makeEmulabBed, type EmulabBed } from '../helpers/emulab-bed.js';
import { disposeParties, until } from '../helpers/ma-harness.js';
import { canContain, cannotContainReason } from '../helpers/node-manager.js';
import { netnsSupport, type NetnsHost } from '../helpers/netns-hosts.js';

const execFileP = promisify(execFile);
const bedSupport = netnsSupport();
const skipReason = !canContain ? cannotContainReason : !bedSupport.ok ? bedSupport.reason : '';
if (skipReason) console.log(`vxlan-boundary: skipped — ${skipReason}`);

const sp = 'urn:fedlab:vxb.test:sp:acme';
const slice = 'urn:fedlab:vxb.test:slice:lan';
const MARK_PORT = 31337;
let bed: EmulabBed;
let attacker: NetnsHost;
let nsA: string;
let vni: number;
let aMac: string;
let aAddr: string;
let bAddr: string;

// Sends `count` VXLAN packets to host:4789 for `vni`, each carrying an Ethernet frame with an IPv4/UDP packet
// (correct header checksum, UDP checksum 0) from `src` to `dst`:MARK_PORT at MAC `dmac`.
const FORGER = `
const dgram = require('node:dgram');
const [host, vni, dmac, src, dst, port, count] = process.argv.slice(1);
const ip = (a) => Buffer.from(a.split('.').map(Number));
const payload = Buffer.from('forged');
const udp = Buffer.alloc(8);
udp.writeUInt16BE(40000, 0); udp.writeUInt16BE(Number(port), 2); udp.writeUInt16BE(8 + payload.length, 4);
const iph = Buffer.alloc(20);
iph[0] = 0x45; iph.writeUInt16BE(20 + 8 + payload.length, 2); iph[8] = 64; iph[9] = 17;
ip(src).copy(iph, 12); ip(dst).copy(iph, 16);
let sum = 0; for (let i = 0; i < 20; i += 2) sum += iph.readUInt16BE(i);
while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
iph.writeUInt16BE(~sum & 0xffff, 10);
const eth = Buffer.concat([Buffer.from(dmac.split(':').map((h) => parseInt(h, 16))), Buffer.from([2, 0, 0, 0, 0, 0x99]), Buffer.from([8, 0])]);
const vx = Buffer.alloc(8); vx[0] = 0x08; vx.writeUIntBE(Number(vni), 4, 3);
const pkt = Buffer.concat([vx, eth, iph, udp, payload]);
const s = dgram.createSocket('udp4');
let left = Number(count);
const next = () => { if (left-- <= 0) return s.close(); s.send(pkt, 4789, host, () => setTimeout(next, 5)); };
next();
`;

// Sends `count` UDP datagrams to host:port.
const SENDER = `
const s = require('node:dgram').createSocket('udp4');
const [host, port, count] = process.argv.slice(1);
let left = Number(count);
const next = () => { if (left-- <= 0) return s.close(); s.send(Buffer.from('x'), Number(port), host, () => setTimeout(next, 5)); };
next();
`;

/** Runs a program in a namespace (the bed's hosts and slivers are all named namespaces). */
const run = (ns: string, argv: string[]): Promise<string> => inNetns(ns, argv, 20_000);

/** Puts a counter of UDP packets to `port` in a namespace's prerouting (before anything there can drop them). */
async function addCounter(ns: string, port: number): Promise<void> {
  const script = `add table ip probe\nadd chain ip probe pre { type filter hook prerouting priority -300; policy accept; }\nadd rule ip probe pre udp dport ${port} counter\n`;
  await run(ns, ['sh', '-c', `printf '${script.replace(/\n/g, '\\n')}' | nft -f -`]);
}

/** The packets the namespace's counters saw, by port. */
async function counted(ns: string): Promise<Map<number, number>> {
  const out = JSON.parse(await run(ns, ['nft', '-j', 'list', 'table', 'ip', 'probe'])) as { nftables: Record<string, unknown>[] };
  const m = new Map<number, number>();
  for (const o of out.nftables) {
    const expr = (o.rule as { expr?: Record<string, unknown>[] } | undefined)?.expr ?? [];
    const port = expr.map((e) => (e.match as { right?: unknown } | undefined)?.right).find((r) => typeof r === 'number') as
      number | undefined;
    const c = expr.map((e) => e.counter as { packets: number } | undefined).find(Boolean);
    if (port !== undefined && c) m.set(port, (m.get(port) ?? 0) + c.packets);
  }
  return m;
}

async function dropCounter(ns: string): Promise<void> {
  await run(ns, ['nft', 'delete', 'table', 'ip', 'probe']).catch(() => '');
}

/** Elements of the node managers' VXLAN filter sets on a host. */
function vxlanElements(h: NetnsHost): string[] {
  const all = JSON.parse(h.exec(['nft', '-j', 'list', 'ruleset'])) as { nftables: Record<string, unknown>[] };
  return all.nftables.flatMap((o) => {
    const set = o.set as { table?: string; name?: string; elem?: unknown[] } | undefined;
    return set?.table?.startsWith('fedlab-') && set.name?.startsWith('vxlan_')
      ? (set.elem ?? []).map((e) => `${set.name}:${JSON.stringify(e)}`)
      : [];
  });
}

describe.skipIf(skipReason !== '')('the VXLAN boundary of a link between two hosts', () => {
  beforeAll(async () => {
    bed = await makeEmulabBed({ hosts: 3, placement: [0, 1], domain: 'vxb.test' });
    attacker = bed.tb.hosts[2] as NetnsHost;
    const agg = bed.site.aggClient();
    const request: ResourceRequest = {
      nodes: { nodeUrns: bed.nodes.map((n) => n.urn), count: 0, clientIds: ['a', 'b'] },
      links: [{ name: 'lan0', endpoints: ['a', 'b'], bandwidthKbps: 0, delayMs: 0, lossPercent: 0 }],
      exclusive: false,
      requestDocument: '',
      requestDocumentFormat: '',
    };
    await agg.allocate({ users: [], requestId: 'vxb-1', sliceUrn: slice, providerUrn: sp, request }, { chain: bed.chain });
    await agg.provision({ urns: [slice], bestEffort: false, start: true }, { chain: bed.chain });
    await until(
      async () =>
        (await agg.status({ urns: [slice] }, { chain: bed.chain })).slivers.every(
          (s) => s.operationalState === OperationalState.OPERATIONAL_STATE_READY,
        ),
      60_000,
      'READY',
    );
    const d = await agg.describe({ urns: [slice] }, { chain: bed.chain });
    const a = d.slivers.find((s) => s.clientId === 'a')!;
    const b = d.slivers.find((s) => s.clientId === 'b')!;
    nsA = bed.nodes[0]!.netnsOf(a.urn);
    vni = a.interfaces[0]!.wiring!.vni;
    aMac = a.interfaces[0]!.wiring!.mac;
    aAddr = a.interfaces[0]!.address.split('/')[0]!;
    bAddr = b.interfaces[0]!.address.split('/')[0]!;
  }, 300_000);

  afterAll(async () => {
    await bed?.destroy();
    await disposeParties();
  }, 120_000);

  it('takes a VXLAN packet for the link only from its peer host', async () => {
    const h1 = bed.nodes[0]!.host;
    const forge = (ns: string, n: number) =>
      run(ns, [process.execPath, '-e', FORGER, h1.address, String(vni), aMac, bAddr, aAddr, String(MARK_PORT), String(n)]);
    await addCounter(nsA, MARK_PORT);
    try {
      await forge(attacker.netns, 20);
      await new Promise((r) => setTimeout(r, 300));
      expect((await counted(nsA)).get(MARK_PORT) ?? 0).toBe(0);
      // The bed's root namespace: the MA's host, on the underlay too.
      await execFileP(process.execPath, ['-e', FORGER, h1.address, String(vni), aMac, bAddr, aAddr, String(MARK_PORT), '20']);
      await new Promise((r) => setTimeout(r, 300));
      expect((await counted(nsA)).get(MARK_PORT) ?? 0).toBe(0);
      // The control: the same packets from the link's peer host arrive.
      await forge(bed.nodes[1]!.host.netns, 20);
      await until(async () => ((await counted(nsA)).get(MARK_PORT) ?? 0) >= 15, 5000, 'forged packets from the peer host counted');
    } finally {
      await dropCounter(nsA);
    }
  }, 60_000);

  it('lets no sliver send UDP to port 4789 out of its eth0', async () => {
    const out = bed.tb.outside;
    await addCounter(out.netns, 4789);
    await addCounter(out.netns, 4790);
    try {
      await run(nsA, [process.execPath, '-e', SENDER, out.publicAddress, '4790', '10']);
      await run(nsA, [process.execPath, '-e', SENDER, out.publicAddress, '4789', '10']);
      await until(async () => ((await counted(out.netns)).get(4790) ?? 0) >= 8, 5000, 'the control port reached outside');
      expect((await counted(out.netns)).get(4789) ?? 0).toBe(0);
    } finally {
      await dropCounter(out.netns);
    }
  }, 60_000);

  it('sends the link to no host but its peer, whatever the VXLAN device is told', async () => {
    await addCounter(attacker.netns, 4789);
    await addCounter(bed.nodes[1]!.host.netns, 4789);
    try {
      await run(nsA, ['bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'eth1', 'dst', attacker.address]);
      // Broadcast ARP requests for an address nobody holds: flooded to every flood entry of the device.
      const nobody = aAddr.replace(/\.\d+$/, '.200');
      await run(nsA, ['busybox', 'arping', '-c', '3', '-w', '4', '-I', 'eth1', nobody]).catch(() => '');
      await until(async () => ((await counted(bed.nodes[1]!.host.netns)).get(4789) ?? 0) >= 2, 5000, 'the peer got the flood');
      expect((await counted(attacker.netns)).get(4789) ?? 0).toBe(0);
    } finally {
      await run(nsA, ['bridge', 'fdb', 'del', '00:00:00:00:00:00', 'dev', 'eth1', 'dst', attacker.address]).catch(() => '');
      await dropCounter(attacker.netns);
      await dropCounter(bed.nodes[1]!.host.netns);
    }
  }, 60_000);

  it('leaves no VXLAN filter element once the slice is deleted', async () => {
    const hosts = bed.nodes.map((n) => n.host);
    expect(hosts.every((h) => vxlanElements(h).length > 0)).toBe(true);
    await bed.site.aggClient().delete({ urns: [slice], bestEffort: false }, { chain: bed.chain });
    await until(async () => hosts.every((h) => vxlanElements(h).length === 0), 15_000, 'no VXLAN filter element left');
  }, 60_000);
});
