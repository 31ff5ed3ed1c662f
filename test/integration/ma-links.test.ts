// The MA's link plan without node managers (no root needed): nodes enrolled for real whose heartbeats the test
// sends, with underlay addresses. Each link takes a VNI unique at the site, written with the Allocate and released
// with the slice; interfaces carry the link's VNI and a MAC from slice, link and endpoint; a node's underlay
// address is checked (EnrollNode refuses a bad one, a heartbeat's bad one is ignored) and published; links to a
// node with no underlay address, over the node's bandwidth or asking netem it lacks are FAILED_PRECONDITION naming
// the link and the endpoint, and leave no VNI and no sliver.
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicKeyToPem } from '../../services/core/identity/keys.js';
import { createClient, type PromiseClient } from '../../services/core/rpc/client.js';
import { SliverIsolation, type Link, type ResourceRequest } from '../../services/generated/fedlab/v1/common.js';
import { ManagementAuthorityService } from '../../services/generated/fedlab/v1/management_authority.js';
import { enrollNode, issueOwnerCredential, OWNER_PRIVILEGES } from '../../services/management-authority/enrolment-client.js';
import { linkMac } from '../../services/management-authority/aggregate/links.js';
import { disposeParties, enrolFakeNode, siteParties, startSite, type FakeNode, type Site } from '../helpers/ma-harness.js';
import { generateKeyPair } from '../../services/core/identity/keys.js';

const SP = 'urn:fedlab:links.test:sp:acme';
const ZERO = { cpuMillis: 0, memMb: 0, diskMb: 0, pids: 0, bandwidthKbps: 0 };

interface Beating {
  readonly node: FakeNode;
  underlay: string | undefined;
  linkKbps: number;
  client: PromiseClient<typeof ManagementAuthorityService>;
  seq: number;
}

describe('the MA link plan: VNIs, MACs, underlay addresses and refusals naming link and endpoint', () => {
  let site: Site;
  let chain: string[];
  const nodes: Beating[] = [];
  let timer: NodeJS.Timeout | undefined;
  let rid = 0;

  const beat = async (b: Beating): Promise<void> => {
    await b.client.heartbeat({
      nodeUrn: b.node.urn,
      sequence: ++b.seq,
      sentAt: new Date(),
      capacity: { cpuMillis: 1000, memMb: 1024, diskMb: 1024, pids: 512, bandwidthKbps: b.linkKbps },
      allocated: ZERO,
      usage: ZERO,
      sliverCount: 0,
      version: 'test',
      endpoint: '127.0.0.1:9',
      ...(b.underlay !== undefined ? { underlayAddress: b.underlay } : {}),
    });
  };
  const request = (idx: number[], links: Link[]): ResourceRequest => ({
    nodes: { nodeUrns: idx.map((i) => nodes[i]!.node.urn), count: 0, clientIds: idx.map((i) => `c${i}`) },
    links,
    exclusive: false,
    requestDocument: '',
    requestDocumentFormat: '',
  });
  const link = (name: string, endpoints: string[], o: Partial<Link> = {}): Link => ({
    name,
    endpoints,
    bandwidthKbps: 1000,
    delayMs: 0,
    lossPercent: 0,
    ...o,
  });
  const allocate = (slice: string, req: ResourceRequest) =>
    site.aggClient().allocate({ users: [], requestId: `l-${++rid}`, sliceUrn: slice, providerUrn: SP, request: req }, { chain });
  const refusal = async (slice: string, req: ResourceRequest) =>
    (await allocate(slice, req).catch((e: unknown) => e)) as { code: number; message: string };

  beforeAll(async () => {
    site = await startSite({ style: 'emulab', parties: await siteParties('links.test') });
    const underlays = ['10.9.0.1', '10.9.0.2', '10.9.0.3', '10.9.0.4', undefined];
    for (const [k, underlay] of underlays.entries()) {
      const node = await enrolFakeNode(site, `n${k}`);
      const client = createClient(ManagementAuthorityService, {
        address: site.address,
        tls: node.tls,
        serverUrn: site.parties.maUrn,
        deadlineMs: 10_000,
      });
      nodes.push({ node, underlay, linkKbps: k === 3 ? 10_000 : 0, client, seq: 0 });
    }
    for (const b of nodes) await beat(b);
    // Heartbeats every 100 ms keep the nodes UP (the site marks a node DOWN after three 200 ms intervals).
    timer = setInterval(() => {
      for (const b of nodes) void beat(b).catch(() => undefined);
    }, 100);
    chain = await site.saChain({ ttlS: 30 * 86_400 });
  });

  afterAll(async () => {
    if (timer) clearInterval(timer);
    for (const b of nodes) {
      b.client.close();
      b.node.close();
    }
    await site?.destroy();
    await disposeParties();
  });

  it('publishes checked underlay addresses; a heartbeat with a bad one keeps the last good one', async () => {
    const listed = await site.maClient().listNodes({ pageSize: 0, pageToken: '', health: 0 });
    const byUrn = new Map(listed.nodes.map((n) => [n.urn, n]));
    expect(byUrn.get(nodes[0]!.node.urn)?.underlayAddress).toBe('10.9.0.1');
    expect(byUrn.get(nodes[4]!.node.urn)?.underlayAddress).toBeUndefined();
    expect(byUrn.get(nodes[3]!.node.urn)?.capacity?.bandwidthKbps).toBe(10_000);
    for (const bad of ['127.0.0.1', '0.0.0.0', '224.0.0.1', 'host.example', '10.9.0']) {
      nodes[0]!.underlay = bad;
      await beat(nodes[0]!);
      expect(site.ma!.registry.get(nodes[0]!.node.urn)?.underlayAddress, bad).toBe('10.9.0.1');
    }
    nodes[0]!.underlay = '10.9.0.1';
  });

  it('EnrollNode refuses a bad underlay address, naming the field', async () => {
    const p = site.parties;
    const { token } = await site
      .maClient()
      .createEnrollmentToken({ requestId: 'bad-underlay', nodeName: 'bad', ownerUrn: p.owner.urn, ttlS: 0 });
    const { chain: ownerChain } = await issueOwnerCredential({
      ownerKey: p.owner.privateKey,
      ownerUrn: p.owner.urn,
      maUrn: p.maUrn,
      maKey: p.ma.jwk as Record<string, unknown>,
      privileges: OWNER_PRIVILEGES,
      ttlSeconds: 86_400,
    });
    const keys = generateKeyPair('p256');
    const err = (await enrollNode(
      { address: site.enrolAddress, caPem: p.pki.caPem, maUrn: p.maUrn },
      {
        token,
        publicKeyPem: publicKeyToPem(keys.publicKey),
        csrPem: '',
        ownerCredentialChain: [...ownerChain],
        endpoint: '127.0.0.1:9',
        capacity: { cpuMillis: 1000, memMb: 1024, diskMb: 1024, pids: 512, bandwidthKbps: 0 },
        isolation: SliverIsolation.SLIVER_ISOLATION_CONTAINER,
        version: 'test',
        netemAvailable: false,
        underlayAddress: '127.0.0.1',
      },
    ).catch((e: unknown) => e)) as { code: number; message: string };
    expect(err.code).toBe(Status.INVALID_ARGUMENT);
    expect(err.message).toMatch(/underlay_address "127\.0\.0\.1" must not be a loopback address/);
    expect(site.ma!.registry.has('urn:fedlab:links.test:node:bad')).toBe(false);
  });

  it('gives each link a VNI unique at the site, written with the Allocate, and releases them with the slice', async () => {
    const a = 'urn:fedlab:links.test:slice:a';
    const b = 'urn:fedlab:links.test:slice:b';
    await allocate(a, request([0, 1], [link('l1', ['c0', 'c1']), link('l2', ['c0', 'c1'], { bandwidthKbps: 0 })]));
    await allocate(b, request([2, 3], [link('l1', ['c2', 'c3'])]));
    const va = site.ma!.aggregate.linkVnis(a);
    const vb = site.ma!.aggregate.linkVnis(b);
    const all = [...va.values(), ...vb.values()];
    expect(all).toHaveLength(3);
    expect(new Set(all).size).toBe(3);
    for (const v of all) expect(v).toBeGreaterThanOrEqual(4096);
    expect(site.ma!.aggregate.vnisInUse()).toEqual(new Set(all));

    // The interfaces as the aggregate shows them: eth1, eth2 in link order, the link's VNI, the MAC from slice, link, endpoint.
    const described = await site.aggClient().describe({ urns: [a] }, { chain });
    const c0 = described.slivers.find((s) => s.clientId === 'c0')!;
    // An allocated sliver has no interfaces yet: they are planned when it is provisioned.
    expect(c0.interfaces).toEqual([]);
    expect(linkMac(a, 'l1', 'c0')).toMatch(/^02(:[0-9a-f]{2}){5}$/);
    expect(linkMac(a, 'l1', 'c0')).toBe(linkMac(a, 'l1', 'c0'));
    expect(linkMac(a, 'l1', 'c0')).not.toBe(linkMac(a, 'l1', 'c1'));

    await site.aggClient().delete({ urns: [a], bestEffort: false }, { chain });
    expect(site.ma!.aggregate.vnisInUse()).toEqual(new Set(vb.values()));
    await site.aggClient().delete({ urns: [b], bestEffort: false }, { chain });
    expect(site.ma!.aggregate.vnisInUse().size).toBe(0);
  });

  it('refuses links the nodes cannot carry, naming link and endpoint, keeping nothing', async () => {
    const slice = 'urn:fedlab:links.test:slice:bad';
    const cases: [string, ResourceRequest, number, RegExp][] = [
      [
        'a node with no underlay address',
        request([0, 4], [link('up', ['c0', 'c4'])]),
        Status.FAILED_PRECONDITION,
        /link up: endpoint c4 is on node .*:n4, which takes no links: it reports no underlay address/,
      ],
      [
        "a bandwidth over the node's",
        request([0, 3], [link('fat', ['c0', 'c3'], { bandwidthKbps: 20_000 })]),
        Status.FAILED_PRECONDITION,
        /link fat: endpoint c3 is on node .*:n3, whose links carry at most 10000 kbit\/s/,
      ],
      [
        'delay where there is no netem',
        request([0, 1], [link('slow', ['c0', 'c1'], { delayMs: 5 })]),
        Status.FAILED_PRECONDITION,
        /link slow: endpoint c0 is on node .*:n0, whose kernel has no netem/,
      ],
      [
        'two links with one name',
        request([0, 1], [link('x', ['c0', 'c1']), link('x', ['c0', 'c1'])]),
        Status.INVALID_ARGUMENT,
        /link x is named twice/,
      ],
      [
        'an endpoint naming no node',
        request([0, 1], [link('y', ['c0', 'nowhere'])]),
        Status.INVALID_ARGUMENT,
        /link y: endpoint "nowhere" is not a client id/,
      ],
      ['an endpoint named twice', request([0, 1], [link('z', ['c0', 'c0'])]), Status.INVALID_ARGUMENT, /link z names endpoint "c0" twice/],
    ];
    for (const [what, req, code, msg] of cases) {
      const err = await refusal(slice, req);
      expect(err.code, what).toBe(code);
      expect(err.message, what).toMatch(msg);
    }
    // 0 is unshaped, not refused; it fits any node.
    await allocate(slice, request([0, 3], [link('free', ['c0', 'c3'], { bandwidthKbps: 0 })]));
    expect(site.ma!.aggregate.linkVnis(slice).size).toBe(1);
    await site.aggClient().delete({ urns: [slice], bestEffort: false }, { chain });
    expect(site.ma!.aggregate.vnisInUse().size).toBe(0);
    expect(site.ma!.aggregate.stats()).toMatchObject({ slices: 0, slivers: 0 });
  });
});
