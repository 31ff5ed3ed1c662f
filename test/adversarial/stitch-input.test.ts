// What a hostile peer (a peered domain's slice authority, or a provider through it, or a peer site's MA whose stitch
// point our slice authority relays) may put in a stitched link, and what the site and its node managers refuse:
// - at Allocate (a real emulab site): more stitched ends than any slice authority asks for, an endpoint with more
//   links than a sliver has interfaces, an address that is no host address of a /8../30 (loopback, multicast,
//   link-local, a network or broadcast address, /0 or /31) — INVALID_ARGUMENT naming the field, nothing held;
// - at Provision (withPeerPoints): a peer underlay that is loopback, link-local, multicast, broadcast, unspecified
//   or one of this site's own nodes — INVALID_ARGUMENT naming link and endpoint;
// - at CreateSliver (the node manager's check): far underlays no other host could hold, and — when the node's owner
//   lists them in network.peer_underlays — far underlays outside the underlay network and that list.
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FailedPreconditionError, InvalidArgumentError } from '../../services/core/errors.js';
import type { ResourceRequest, SliverInterface, StitchEnd, StitchPoint } from '../../services/generated/fedlab/v1/common.js';
import { withPeerPoints } from '../../services/management-authority/aggregate/stitches.js';
import type { SliceRecord } from '../../services/management-authority/records.js';
import { parseCidr } from '../../services/node-manager/network/ipv4.js';
import { TcCommands } from '../../services/node-manager/network/link-shaping.js';
import { checkInterfaceFields, LinkWirer } from '../../services/node-manager/network/links.js';
import { NetCommands } from '../../services/node-manager/network/net-command.js';
import { networkConfigSchema } from '../../services/node-manager/network/network-config.js';
import type { NetworkPlan } from '../../services/node-manager/network/network-plan.js';
import { disposeParties, siteParties, startSite, type Site } from '../helpers/ma-harness.js';

let site: Site;
const domain = 'stin.test';
const slice = `urn:fedlab:${domain}:slice:s1`;

const end = (o: Partial<StitchEnd> = {}): StitchEnd => ({
  link: 'w0',
  clientId: 'a',
  vni: 0x81_0000,
  address: '10.201.0.1/24',
  peerSite: 'peer.test',
  peerClientId: 'b',
  bandwidthKbps: 0,
  delayMs: 0,
  lossPercent: 0,
  ...o,
});

async function allocate(ends: StitchEnd[]): Promise<{ code: number; message: string }> {
  const request: ResourceRequest = {
    nodes: { nodeUrns: [], count: 1, clientIds: ['a'] },
    links: [],
    exclusive: false,
    requestDocument: '',
    requestDocumentFormat: '',
    stitches: { ends },
  };
  const chain = await site.saChain();
  return site
    .aggClient()
    .allocate(
      {
        users: [],
        requestId: `r-${Math.random().toString(36).slice(2)}`,
        sliceUrn: slice,
        providerUrn: `urn:fedlab:${domain}:sp:acme`,
        request,
      },
      { chain },
    )
    .then(
      () => ({ code: 0, message: '' }),
      (err: unknown) => err as { code: number; message: string },
    );
}

describe('stitched-link input from a hostile peer', () => {
  beforeAll(async () => {
    site = await startSite({ style: 'emulab', parties: await siteParties(domain) });
  }, 60_000);

  afterAll(async () => {
    await site?.destroy();
    await disposeParties();
  });

  it('refuses more stitched ends than a slice authority asks for, and more links on one endpoint than it has interfaces', async () => {
    const many = Array.from({ length: 257 }, (_, i) => end({ link: `w${i}`, vni: 0x81_0000 + i, address: `10.201.${i % 256}.1/24` }));
    const err = await allocate(many);
    expect(err.code).toBe(Status.INVALID_ARGUMENT);
    expect(err.message).toMatch(/at most 256 stitched ends per request/);
    const crowded = Array.from({ length: 33 }, (_, i) => end({ link: `w${i}`, vni: 0x81_0000 + i, address: `10.201.${i}.1/24` }));
    const err2 = await allocate(crowded);
    expect(err2.code).toBe(Status.INVALID_ARGUMENT);
    expect(err2.message).toMatch(/stitched link w32 \(endpoint a\) would hold more than 32 links/);
    expect(site.ma!.aggregate.linkVnis(slice).size).toBe(0);
  });

  it('refuses a link address that is no host address a sliver may hold', async () => {
    for (const [address, msg] of [
      ['127.0.0.5/8', /loopback/],
      ['224.0.0.5/24', /unicast/],
      ['169.254.3.4/16', /link-local/],
      ['0.0.0.1/8', /unspecified/],
      ['10.201.0.0/24', /network or broadcast/],
      ['10.201.0.255/24', /network or broadcast/],
      ['10.201.0.1/0', /prefix length of 8 to 30/],
      ['10.201.0.1/31', /prefix length of 8 to 30/],
    ] as const) {
      const err = await allocate([end({ address })]);
      expect(err.code, address).toBe(Status.INVALID_ARGUMENT);
      expect(err.message, address).toMatch(/request\.stitches\[0\]\.address: stitched link w0 \(endpoint a\)/);
      expect(err.message, address).toMatch(msg);
    }
    expect(site.ma!.aggregate.linkVnis(slice).size).toBe(0);
  });
});

describe("a peer's stitch point at Provision", () => {
  const record = {
    urn: slice,
    links: [
      {
        name: 'w0',
        endpoints: ['a'],
        bandwidthKbps: 0,
        delayMs: 0,
        lossPercent: 0,
        subnet: 0,
        vni: 0x81_0000,
        stitch: { peerSite: 'peer.test', peerClientId: 'b', address: '10.201.0.1/24' },
      },
    ],
  } as unknown as SliceRecord;
  const point = (underlayAddress: string): StitchPoint => ({
    site: 'peer.test',
    link: 'w0',
    clientId: 'b',
    underlayAddress,
    vni: 0x81_0000,
  });
  const ours = new Set(['10.9.0.2', '10.9.0.3']);

  it('takes a unicast address of another host', () => {
    const links = withPeerPoints(record, [point('192.0.2.7')], ours);
    expect(links?.[0]?.stitch?.peerUnderlay).toBe('192.0.2.7');
  });

  it('refuses loopback, link-local, multicast, broadcast, unspecified and this site’s own nodes', () => {
    for (const [addr, msg] of [
      ['127.0.0.1', /loopback/],
      ['169.254.0.9', /link-local/],
      ['239.1.2.3', /unicast/],
      ['255.255.255.255', /unicast/],
      ['0.0.0.0', /unspecified/],
      ['10.9.0.3', /underlay address of a node of this site/],
      ['10.9.0.3 ', /IPv4/],
    ] as const) {
      expect(() => withPeerPoints(record, [point(addr)], ours), addr).toThrow(InvalidArgumentError);
      expect(() => withPeerPoints(record, [point(addr)], ours), addr).toThrow(msg);
      expect(() => withPeerPoints(record, [point(addr)], ours), addr).toThrow(/stitched link w0 \(peer endpoint b\)/);
    }
  });
});

describe("the node manager's check of far underlays", () => {
  const iface = (remoteUnderlays: string[]): SliverInterface => ({
    link: 'w0',
    name: 'eth1',
    address: '10.201.0.1/24',
    bandwidthKbps: 0,
    delayMs: 0,
    lossPercent: 0,
    wiring: { mac: '02:00:00:00:00:01', vni: 0x81_0000, remoteUnderlays, applied: [] },
  });

  it('refuses addresses no other host could hold', () => {
    for (const addr of ['127.0.0.1', '169.254.1.1', '224.0.0.1', '255.255.255.255', '0.0.0.0'])
      expect(() => checkInterfaceFields([iface([addr])]), addr).toThrow(/wiring\.remote_underlays.*not a unicast address/);
    expect(checkInterfaceFields([iface(['192.0.2.7'])])[0]?.wiring?.remoteUnderlays).toEqual(['192.0.2.7']);
  });
});

describe("the node owner's network.peer_underlays", () => {
  const plan = (peerUnderlays?: string[]): NetworkPlan => ({
    subnet: parseCidr('10.88.0.0/16'),
    gateway: '10.88.0.1',
    bridge: 'flbr0',
    uplink: 'eth0',
    nodeAddress: '192.0.2.10',
    firstPort: 20000,
    lastPort: 20099,
    portsPerSliver: 10,
    underlayAddress: '10.9.0.2',
    underlayNetwork: parseCidr('10.9.0.0/24'),
    ...(peerUnderlays ? { peerUnderlays: peerUnderlays.map((c) => parseCidr(c)) } : {}),
    capacity: 10,
  });
  const wirer = (p: NetworkPlan): LinkWirer =>
    new LinkWirer('nm-test', 'site-test', p, { get: () => undefined, list: () => [] }, false, new TcCommands(), new NetCommands());
  const iface = (remoteUnderlays: string[]): SliverInterface => ({
    link: 'w0',
    name: 'eth1',
    address: '10.201.0.1/24',
    bandwidthKbps: 0,
    delayMs: 0,
    lossPercent: 0,
    wiring: { mac: '02:00:00:00:00:01', vni: 0x81_0000, remoteUnderlays, applied: [] },
  });

  it('absent: a far underlay anywhere is taken', () => {
    expect(wirer(plan()).check([iface(['198.51.100.7'])])).toHaveLength(1);
  });

  it('set: a far underlay in neither the underlay network nor the list is FAILED_PRECONDITION naming the link', () => {
    const w = wirer(plan(['198.51.100.0/24']));
    expect(w.check([iface(['10.9.0.3', '198.51.100.7'])])).toHaveLength(1);
    expect(() => w.check([iface(['203.0.113.5'])])).toThrow(FailedPreconditionError);
    expect(() => w.check([iface(['10.9.0.3', '203.0.113.5'])])).toThrow(
      /interfaces eth1 \(link w0\): far underlay 203\.0\.113\.5 is neither in this node's underlay network nor in network\.peer_underlays/,
    );
  });

  it('is a list of networks in the config', () => {
    expect(networkConfigSchema.safeParse({ peer_underlays: ['198.51.100.0/24'] }).success).toBe(true);
    expect(networkConfigSchema.safeParse({ peer_underlays: ['198.51.100.7/24'] }).success).toBe(false);
  });
});
