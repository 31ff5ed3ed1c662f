// Emulab links on the nodes, for real (root, container driver): an emulab site whose three node managers run on two
// hosts of a netns test bed (e1 and e2 on h1, e3 on h2; test/helpers/emulab-bed.ts). A LAN at 50 Mbit/s joins a
// sliver on each: every sliver reaches the others on eth1, TCP across hosts (VXLAN) runs within 10% of the rate, and
// deleting the slice leaves no link device, bridge, VXLAN device, qdisc or sliver namespace on either host (listed
// with ip -j and tc -j from outside) and no VNI at the MA. A link between the two nodes of h1 is veths on a bridge,
// no VXLAN. A node manager killed with -9 and started again keeps the slivers' links; link devices no sliver explains
// are removed at its start. Bad input leaves no VNI in the MA's store and no device.
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Link, ResourceRequest, Sliver } from '../../services/generated/fedlab/v1/common.js';
import { OperationalState } from '../../services/generated/fedlab/v1/common.js';
import { canContain, cannotContainReason } from '../helpers/node-manager.js';
import { inNetns, linkLeftovers, makeEmulabBed, measureKbps, sliverNamespaces, type EmulabBed } from '../helpers/emulab-bed.js';
import { until } from '../helpers/ma-harness.js';
import { linkScope } from '../../services/node-manager/network/link-names.js';
import { netnsSupport } from '../helpers/netns-hosts.js';

const bedSupport = netnsSupport();
const skipReason = !canContain ? cannotContainReason : !bedSupport.ok ? bedSupport.reason : '';
if (skipReason) console.log(`skipping emulab link tests: ${skipReason}`);

const SP = 'urn:fedlab:emu.test:sp:acme';
const RATE = 50_000;

describe.skipIf(skipReason !== '')('emulab links on node managers across hosts', () => {
  let bed: EmulabBed;
  let n = 0;

  const agg = () => bed.site.aggClient();
  const request = (nodeIdx: number[], clientIds: string[], links: Link[]): ResourceRequest => ({
    nodes: { nodeUrns: nodeIdx.map((i) => bed.nodes[i]!.urn), count: 0, clientIds },
    links,
    exclusive: false,
    requestDocument: '',
    requestDocumentFormat: '',
  });
  const lan = (name: string, endpoints: string[], bandwidthKbps: number): Link => ({
    name,
    endpoints,
    bandwidthKbps,
    delayMs: 0,
    lossPercent: 0,
  });

  /** Allocates and provisions (started) a slice; resolves with its slivers once all are READY. */
  async function makeSlice(slice: string, nodeIdx: number[], clientIds: string[], links: Link[]): Promise<Sliver[]> {
    const { chain } = bed;
    await agg().allocate(
      { users: [], requestId: `r-${++n}`, sliceUrn: slice, providerUrn: SP, request: request(nodeIdx, clientIds, links) },
      { chain },
    );
    const prov = await agg().provision({ urns: [slice], bestEffort: false, start: true }, { chain });
    expect(prov.results.map((r) => r.status?.reason ?? '')).toEqual(prov.results.map(() => ''));
    let slivers: Sliver[] = [];
    await until(
      async () => {
        slivers = (await agg().status({ urns: [slice] }, { chain })).slivers;
        return slivers.every((s) => s.operationalState === OperationalState.OPERATIONAL_STATE_READY);
      },
      60_000,
      `${slice} READY`,
    );
    return (await agg().describe({ urns: [slice] }, { chain })).slivers;
  }

  const nsOf = (s: Sliver): string => bed.nodes.find((x) => x.urn === s.nodeUrn)!.netnsOf(s.urn);
  const eth1 = (s: Sliver): string => s.interfaces.find((i) => i.name === 'eth1')!.address.split('/')[0]!;
  const devicesIn = async (ns: string) =>
    JSON.parse(await inNetns(ns, ['ip', '-j', '-d', 'link', 'show'])) as {
      ifname: string;
      address?: string;
      linkinfo?: { info_kind?: string };
    }[];
  const leftovers = () => bed.tb.hosts.flatMap((h) => linkLeftovers(h).map((l) => `${h.netns}: ${l}`));

  beforeAll(async () => {
    bed = await makeEmulabBed({ hosts: 2, placement: [0, 0, 1] });
  }, 240_000);

  afterAll(async () => {
    await bed?.destroy();
  }, 120_000);

  it('a LAN at 50 Mbit/s across two hosts: every sliver sees the others on eth1, TCP at the rate, nothing left after Delete', async () => {
    const slice = 'urn:fedlab:emu.test:slice:lan';
    const slivers = await makeSlice(slice, [0, 1, 2], ['a', 'b', 'c'], [lan('lan0', ['a', 'b', 'c'], RATE)]);
    const vni = bed.site.ma!.aggregate.linkVnis(slice).get('lan0');
    expect(vni).toBeGreaterThan(0);
    for (const s of slivers) {
      const i = s.interfaces.find((x) => x.name === 'eth1')!;
      expect(i).toMatchObject({ link: 'lan0', bandwidthKbps: RATE });
      expect(i.wiring?.vni).toBe(vni);
      expect(i.wiring?.applied.join(' ')).toMatch(/^tbf rate 50000kbit/);
      // The MAC the MA gave is the interface's, inside the sliver.
      const dev = (await devicesIn(nsOf(s))).find((d) => d.ifname === 'eth1')!;
      expect(dev.address).toBe(i.wiring?.mac);
      // a and b share h1 (two node managers): veths on the link's hub there; c is the link's one endpoint on h2: its
      // eth1 is the VXLAN device itself.
      expect(dev.linkinfo?.info_kind, s.clientId).toBe(s.clientId === 'c' ? 'vxlan' : 'veth');
    }
    for (const from of slivers)
      for (const to of slivers) {
        if (from === to) continue;
        const out = await inNetns(nsOf(from), ['busybox', 'ping', '-c', '1', '-W', '3', eth1(to)]);
        expect(out, `${from.clientId} -> ${to.clientId}`).toMatch(/1 packets received/);
      }
    // h1 has the link's hub: a VXLAN device (the VNI, UDP 4789 from h1's underlay address) on the link's bridge.
    const vx = JSON.parse(bed.tb.hosts[0]!.exec(['ip', '-j', '-d', 'link', 'show', 'type', 'vxlan'])) as {
      mtu: number;
      linkinfo: { info_data: { id: number; port: number; local: string } };
    }[];
    expect(vx.map((v) => v.linkinfo.info_data)).toEqual([
      expect.objectContaining({ id: vni, port: 4789, local: bed.tb.hosts[0]!.address }),
    ]);
    // No fragmentation on the underlay: the link's MTU leaves room for the encapsulation.
    expect(vx[0]!.mtu).toBe(1450);
    expect(JSON.parse(bed.tb.hosts[1]!.exec(['ip', '-j', 'link', 'show', 'type', 'vxlan']))).toEqual([]);

    const a = slivers.find((s) => s.clientId === 'a')!;
    const c = slivers.find((s) => s.clientId === 'c')!;
    const kbps = await measureKbps(nsOf(a), nsOf(c), eth1(c), 3);
    console.log(`emulab-links: ${kbps} kbit/s from h1 to h2 across a LAN shaped to ${RATE} kbit/s (ratio ${(kbps / RATE).toFixed(3)})`);
    expect(kbps).toBeGreaterThan(RATE * 0.9);
    expect(kbps).toBeLessThan(RATE * 1.1);

    await agg().delete({ urns: [slice], bestEffort: false }, { chain: bed.chain });
    await until(async () => leftovers().length === 0, 15_000, 'no link device left').catch(() => undefined);
    expect(leftovers()).toEqual([]);
    for (const node of bed.nodes) expect(sliverNamespaces(node.instance)).toEqual([]);
    expect([...bed.site.ma!.aggregate.vnisInUse()]).toEqual([]);
  }, 240_000);

  it('a link between the two nodes of one host is veths on a bridge, with no VXLAN; removed with the slice', async () => {
    const slice = 'urn:fedlab:emu.test:slice:local';
    const slivers = await makeSlice(slice, [0, 1], ['x', 'y'], [lan('l1', ['x', 'y'], 0)]);
    const [x, y] = [slivers.find((s) => s.clientId === 'x')!, slivers.find((s) => s.clientId === 'y')!];
    expect(x.interfaces[0]!.wiring?.applied).toEqual([]);
    for (const s of [x, y]) expect((await devicesIn(nsOf(s))).find((d) => d.ifname === 'eth1')?.linkinfo?.info_kind).toBe('veth');
    expect(await inNetns(nsOf(x), ['busybox', 'ping', '-c', '1', '-W', '3', eth1(y)])).toMatch(/1 packets received/);
    expect(JSON.parse(bed.tb.hosts[0]!.exec(['ip', '-j', 'link', 'show', 'type', 'vxlan']))).toEqual([]);
    await agg().delete({ urns: [slice], bestEffort: false }, { chain: bed.chain });
    expect(leftovers()).toEqual([]);
  }, 180_000);

  it("a node manager killed with -9 keeps its slivers' links at its restart; link devices no sliver explains are removed", async () => {
    const slice = 'urn:fedlab:emu.test:slice:restart';
    const slivers = await makeSlice(slice, [1, 2], ['p', 'q'], [lan('l2', ['p', 'q'], 20_000)]);
    const [p, q] = [slivers.find((s) => s.clientId === 'p')!, slivers.find((s) => s.clientId === 'q')!];
    const h2 = bed.tb.hosts[1]!;
    // A stray port of this node manager (as a crash between two steps could leave) and a hub of the site no port is on.
    const e3 = bed.nodes[2]!;
    h2.exec(['ip', 'link', 'add', 'flstray0', 'type', 'veth', 'peer', 'name', 'flstray1']);
    h2.exec(['ip', 'link', 'set', 'flstray0', 'alias', `fedlab-link ${e3.instance} port 77 gone-sliver eth1`]);
    h2.exec(['ip', 'link', 'add', 'flstrayhub', 'type', 'bridge']);
    h2.exec(['ip', 'link', 'set', 'flstrayhub', 'alias', `fedlab-link ${linkScope(bed.site.parties.maUrn)} bridge 77`]);
    await e3.kill9();
    await e3.start();
    await until(async () => !linkLeftovers(h2).some((l) => l.includes('flstray')), 20_000, 'stray port and hub removed');
    // Its peer went with it.
    expect(linkLeftovers(h2).join(' ')).not.toContain('flstray');
    expect(await inNetns(nsOf(p), ['busybox', 'ping', '-c', '1', '-W', '3', eth1(q)])).toMatch(/1 packets received/);
    await agg().delete({ urns: [slice], bestEffort: false }, { chain: bed.chain });
    expect(leftovers()).toEqual([]);
  }, 180_000);

  it('bad input: a code naming the link and endpoint, and no VNI, sliver or device left', async () => {
    const { chain } = bed;
    const slice = 'urn:fedlab:emu.test:slice:bad';
    const cases: [string, ResourceRequest, number, RegExp][] = [
      [
        'two links with one name',
        request([0, 2], ['a', 'b'], [lan('l', ['a', 'b'], 1000), lan('l', ['a', 'b'], 1000)]),
        Status.INVALID_ARGUMENT,
        /link l is named twice/,
      ],
      [
        'an endpoint naming no node',
        request([0, 2], ['a', 'b'], [lan('l', ['a', 'zz'], 1000)]),
        Status.INVALID_ARGUMENT,
        /link l: endpoint "zz"/,
      ],
      [
        "a bandwidth over the site's",
        request([0, 2], ['a', 'b'], [lan('l', ['a', 'b'], 10_000_000_000)]),
        Status.INVALID_ARGUMENT,
        /link l: must be 0 \(unshaped\)/,
      ],
      [
        'delay without netem',
        request([0, 2], ['a', 'b'], [{ ...lan('l', ['a', 'b'], 1000), delayMs: 10 }]),
        Status.FAILED_PRECONDITION,
        /link l: endpoint a is on node .*netem/,
      ],
    ];
    for (const [what, req, code, msg] of cases) {
      const err = (await agg()
        .allocate({ users: [], requestId: `bad-${++n}`, sliceUrn: slice, providerUrn: SP, request: req }, { chain })
        .catch((e: unknown) => e)) as { code: number; message: string };
      expect(err.code, what).toBe(code);
      expect(err.message, what).toMatch(msg);
    }
    expect([...bed.site.ma!.aggregate.vnisInUse()]).toEqual([]);
    expect(bed.site.ma!.aggregate.stats().slivers).toBe(0);
    expect(leftovers()).toEqual([]);
  }, 60_000);
});
