// A management authority and SSH: a node's SSH endpoint (from its heartbeats) is checked — host:port, a
// host key that parses, its fingerprint — and published in ListResources, GetNode and ListNodes; one that
// does not check out is never published. A slice's users are checked at Allocate (a bad key is
// INVALID_ARGUMENT naming it, nothing held), go to the node in CreateSliver, and UPDATE_USERS hands a new
// list to every sliver's node, again until a node that was down has it. Every sliver the MA reports once
// provisioned says how to log in to it (Sliver.ssh: the name its node gave, the node's endpoint).
import { status as Status } from '@grpc/grpc-js';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sshFingerprint } from '../../services/core/identity/ssh-keys.js';
import { createClient } from '../../services/core/rpc/client.js';
import { OperationalAction } from '../../services/generated/fedlab/v1/aggregate.js';
import { AllocationState, type SshEndpoint } from '../../services/generated/fedlab/v1/common.js';
import { ManagementAuthorityService } from '../../services/generated/fedlab/v1/management_authority.js';
import {
  disposeParties,
  enrolFakeNode,
  enrolNode,
  recordNodeCalls,
  startSite,
  until,
  type FakeNode,
  type Site,
  type TestNode,
} from '../helpers/ma-harness.js';

const D = 'plc.test';
const sp = `urn:fedlab:${D}:sp:acme`;
const ALICE = `urn:fedlab:${D}:user:alice`;
const BOB = `urn:fedlab:${D}:user:bob`;
const code = (e: unknown): number | undefined => (e as { code?: number }).code;
const pub = (type: 'ed25519' | 'rsa', comment = '', bits?: number): string =>
  ssh2.utils.generateKeyPairSync(type as 'ed25519', { comment, ...(bits ? { bits } : {}) } as never).public;
const blobOf = (line: string): Buffer => Buffer.from(line.split(' ')[1] as string, 'base64');
const DSA =
  'ssh-dss AAAAB3NzaC1kc3MAAACBALXGKbIlRbSuEA2nZWKy0LgseG39bO0EhbZGJDIk8ajN7iBQltb7RZGVi6VRLc9C8JzMACIZGtjphFHH+kBbeSwTf8EPGhRJRYHB1xKlcn/Y9UPmtSfqD+HV42O5sojt3oGMn4o9KDxdPAyM+pF9zgtDSnY4RhnZAw2imj+TWuofAAAAFQDV7aXjh74EfF0fgLainq7FDTOmbwAAAIA1G1QE/hMPepZik31LOEyZAs2L/x0wqNWjgy6LhgSstuOepJvbrrKxqyO3HbP8AG1rdldM+Z2agnrNBRulnwGVH6/OsKuyoJK3Z7WZuuhtMuJg0P37hJZ3637smCmaAMZtGJvIurT/mXZ5ZMmdKz1THd4HI4kgIC1dWKTVj/uRPQAAAIAU1a3XDD9sEkL/kvPBVHPxbQwEZFiPMvWUnga8Va29O42pKD4LXxGNfkKtsokfeUcHG5HbZsjSppHj8v7F+HB2G10eDbs2Ur0ZFVG2CSLYwjT5p68wrseVbki9hXuB8+7ubHjUVZVYphYAK4c4Iq2ZbAZCoWuqmuDSjgGtNc9Syg== c-dsa';

let site: Site;
let fakes: FakeNode[] = [];
let node: TestNode;
let chain: string[];

beforeAll(async () => {
  site = await startSite({ style: 'planetlab' });
  fakes = [await enrolFakeNode(site, 'f1'), await enrolFakeNode(site, 'f2')];
  node = await enrolNode(site, { name: 'n1', driver: 'process', config: { ssh: { listen: '127.0.0.1:0' } } });
  chain = await site.saChain({ ttlS: 300 * 86_400 });
}, 60_000);

afterAll(async () => {
  for (const f of fakes) f.close();
  await node?.destroy();
  await site?.destroy();
  await disposeParties();
});

let seq = 1000;
/** A heartbeat of a fake node saying `ssh` is its endpoint. */
async function beat(f: FakeNode, ssh: SshEndpoint | undefined): Promise<void> {
  const c = createClient(ManagementAuthorityService, {
    address: site.address,
    tls: f.tls,
    serverUrn: site.parties.maUrn,
    deadlineMs: 10_000,
  });
  try {
    const zero = { cpuMillis: 0, memMb: 0, diskMb: 0, pids: 0, bandwidthKbps: 0 };
    await c.heartbeat({
      nodeUrn: f.urn,
      sequence: ++seq,
      sentAt: new Date(),
      capacity: { cpuMillis: 1000, memMb: 1024, diskMb: 1024, pids: 512, bandwidthKbps: 0 },
      allocated: zero,
      usage: zero,
      sliverCount: 0,
      version: 'test',
      endpoint: '127.0.0.1:9',
      ssh,
    });
  } finally {
    c.close();
  }
}

const published = async (urn: string): Promise<{ node?: SshEndpoint; listed?: SshEndpoint; advertised?: SshEndpoint }> => {
  const ma = site.maClient();
  const res = await site.aggClient().listResources({ pageSize: 0, pageToken: '', availableOnly: false, documentFormat: '' });
  const list = await ma.listNodes({ pageSize: 0, pageToken: '', health: 0 });
  return {
    node: (await ma.getNode({ nodeUrn: urn })).node?.ssh,
    listed: list.nodes.find((n) => n.urn === urn)?.ssh,
    advertised: res.nodes.find((n) => n.urn === urn)?.ssh,
  };
};

describe('a node’s SSH endpoint', () => {
  it('is published once it checks out; a mismatched or malformed one never is', async () => {
    const [f1, f2] = fakes as [FakeNode, FakeNode];
    const hostKey = pub('ed25519', 'root@f1');
    const other = pub('ed25519');
    const fp = sshFingerprint(blobOf(hostKey));
    await beat(f1, { address: 'f1.plc.test:2222', hostKey, hostKeyFingerprint: fp });
    const want = { address: 'f1.plc.test:2222', hostKey: hostKey.split(' ').slice(0, 2).join(' '), hostKeyFingerprint: fp };
    expect(await published(f1.urn)).toEqual({ node: want, listed: want, advertised: want });

    // A fingerprint of another key: ignored, the endpoint that checked out stays.
    await beat(f1, { address: 'f1.plc.test:2222', hostKey: other, hostKeyFingerprint: fp });
    expect((await published(f1.urn)).node).toEqual(want);
    // A node that never sent one that checks out publishes none.
    await beat(f2, { address: 'f2.plc.test:22', hostKey: other, hostKeyFingerprint: fp });
    expect(await published(f2.urn)).toEqual({ node: undefined, listed: undefined, advertised: undefined });
    await beat(f2, { address: 'no-port', hostKey: other, hostKeyFingerprint: sshFingerprint(blobOf(other)) });
    await beat(f2, { address: 'f2.plc.test:22', hostKey: 'ssh-ed25519 AAAA', hostKeyFingerprint: 'SHA256:x' });
    expect((await published(f2.urn)).node).toBeUndefined();

    // A node that stops serving SSH says so by sending none.
    await beat(f1, undefined);
    expect((await published(f1.urn)).node).toBeUndefined();
  });

  it('of a node manager is the one the node reports itself', async () => {
    const own = (await node.client().getNodeInfo({}, { chain: node.ownerChain })).node?.ssh;
    expect(own?.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    await until(
      async () => (await published(node.urn)).node?.hostKeyFingerprint === own?.hostKeyFingerprint,
      10_000,
      'n1 endpoint published',
    );
    expect((await published(node.urn)).advertised).toEqual(own);
  });
});

describe('slice users at a site', () => {
  const slice = `urn:fedlab:${D}:slice:logins`;
  const alice = pub('ed25519', 'alice');

  it('Allocate refuses a bad key or user naming it, holding nothing', async () => {
    const before = site.ma!.aggregate.stats();
    const allocate = (users: { urn: string; sshKeys: string[] }[]) =>
      site
        .aggClient()
        .allocate(
          {
            users,
            requestId: `bad-${Math.random()}`,
            sliceUrn: `urn:fedlab:${D}:slice:bad`,
            providerUrn: sp,
            request: {
              nodes: { nodeUrns: [node.urn], count: 0, clientIds: [] },
              links: [],
              exclusive: false,
              requestDocument: '',
              requestDocumentFormat: '',
            },
          },
          { chain },
        )
        .catch((e: unknown) => e);
    const dsa = await allocate([{ urn: ALICE, sshKeys: [alice, DSA] }]);
    expect(code(dsa)).toBe(Status.INVALID_ARGUMENT);
    expect((dsa as Error).message).toMatch(
      /users\[0\]\.ssh_keys\[1\] \(user urn:fedlab:plc\.test:user:alice\): DSA \(ssh-dss\) keys are not accepted/,
    );
    const weak = await allocate([{ urn: ALICE, sshKeys: [pub('rsa', '', 1024)] }]);
    expect((weak as Error).message).toMatch(/1024 bits, fewer than 2048/);
    const notUser = await allocate([{ urn: node.urn, sshKeys: [alice] }]);
    expect((notUser as Error).message).toMatch(/users\[0\]\.urn must name a user/);
    expect(site.ma!.aggregate.stats()).toEqual(before);
  });

  it('go to the node in CreateSliver, are replaced with UPDATE_USERS, and every sliver says how to log in', async () => {
    const agg = site.aggClient();
    expect((await agg.getVersion({})).operationalActions).toContain(OperationalAction.OPERATIONAL_ACTION_UPDATE_USERS);
    const calls = recordNodeCalls(node);
    const alloc = await agg.allocate(
      {
        users: [{ urn: ALICE, sshKeys: [alice] }],
        requestId: 'logins-1',
        sliceUrn: slice,
        providerUrn: sp,
        request: {
          nodes: { nodeUrns: [node.urn], count: 0, clientIds: [] },
          links: [],
          exclusive: false,
          requestDocument: '',
          requestDocumentFormat: '',
        },
      },
      { chain },
    );
    expect(alloc.slivers[0]?.ssh).toBeUndefined();
    const prov = await agg.provision({ urns: [slice], bestEffort: false, start: true }, { chain });
    expect(calls.creates.map((c) => c.users)).toEqual([[{ urn: ALICE, sshKeys: [alice] }]]);
    const endpoint = (await published(node.urn)).node;
    expect(endpoint).toBeDefined();
    const login = { username: 'logins', endpoint };
    expect(prov.results[0]?.sliver?.allocationState).toBe(AllocationState.ALLOCATION_STATE_PROVISIONED);
    expect(prov.results[0]?.sliver?.ssh).toEqual(login);
    expect((await agg.describe({ urns: [slice] }, { chain })).slivers[0]?.ssh).toEqual(login);
    expect((await agg.status({ urns: [slice] }, { chain })).slivers[0]?.ssh).toEqual(login);

    // The whole new list, to every sliver's node.
    const bob = pub('ed25519', 'bob');
    const update = (users: { urn: string; sshKeys: string[] }[], urns = [slice]) =>
      agg.performOperationalAction({ urns, action: OperationalAction.OPERATIONAL_ACTION_UPDATE_USERS, bestEffort: true, users }, { chain });
    const res = await update([{ urn: BOB, sshKeys: [bob] }]);
    expect(res.results.map((r) => [r.status?.code, r.sliver?.ssh])).toEqual([[Status.OK, login]]);
    expect(calls.userUpdates.map((c) => [c.sliverUrn, c.users, c.ok])).toEqual([
      [prov.results[0]?.sliverUrn, [{ urn: BOB, sshKeys: [bob] }], true],
    ]);
    const whole = await update([], [prov.results[0]?.sliverUrn as string]).catch((e: unknown) => e);
    expect(code(whole)).toBe(Status.INVALID_ARGUMENT);
    expect(code(await update([{ urn: BOB, sshKeys: [DSA] }]).catch((e: unknown) => e))).toBe(Status.INVALID_ARGUMENT);

    // A node that is down gets the list once it is back.
    await node.stop();
    const down = await update([{ urn: ALICE, sshKeys: [alice] }]);
    expect(down.results[0]?.status?.code).not.toBe(Status.OK);
    expect(down.results[0]?.status?.reason).toMatch(/keeps handing them to the node/);
    await node.start();
    // The MA hands the list on by itself once the node is back, and then has nothing left to do.
    await until(
      async () => calls.userUpdates.some((c) => c.ok && c.users[0]?.urn === ALICE) && site.ma!.aggregate.stats().intents === 0,
      15_000,
      'n1 has the new users',
    );
    await agg.delete({ urns: [slice], bestEffort: true }, { chain });
  });
});
